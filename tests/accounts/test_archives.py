"""The electronic archive (社会保险业务档案) in accounts: every registry act filed into the dossier of the person or
employer it concerns, in the act's transaction, with its retention class and audit-chain position; items from other
services arrive as ``*.archive_items.filed.v1`` events and are filed once however often they are delivered; a
dossier exports as a package whose manifest verifies, and a tampered package names the altered file; every read
and export is in the access register (利用登记) the auditors read (004 第7项: the agency's archive management)."""

import hashlib
import json
from datetime import UTC, date, datetime
from sqlalchemy import func, select, update
from sqlmodel import Session

from services.accounts import models
from services.accounts.archives import backfill, export
from services.accounts.archives.models import Dossier, DossierItem
from services.accounts.employers.schemas import EmployerRegistration
from services.accounts.employers.service import register_employer
from services.accounts.enrolments.schemas import EnrolmentRequest
from services.accounts.enrolments.service import enrol
from services.accounts.models import Enrolment, Person
from services.accounts.persons.schemas import PersonRegistration
from services.accounts.persons.service import register_person
from services.contracts.archives import ArchiveItemLine
from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.kernel import clock, context, jobs
from services.kernel.context import Actor
from services.kernel.db import make_engine, unit_of_work
from services.kernel.events import new_event_id
from services.kernel.migrations import upgrade_database
from services.kernel.models import AuditEntry, Job
from tests.support.accounts import (
    EMPLOYER_HEADER,
    ENROLMENT_HEADER,
    PERSON_HEADER,
    WANG_ID,
    cid,
    csv_bytes,
    full_employer,
    person,
    person_body,
)
from tests.support.archives import PURPOSE, export_package, unzipped, zipped
from tests.support.e2e import eventually
from tests.support.jobs import run_until_killed
from tests.support.oversight import publish
from tests.support.registry import REGION, engine_of, error_code, make_uscc

async def dossier_of(client, headers, subject_id: str) -> dict:  # noqa: ANN001
    found = await client.get("/archives/dossiers", params={"subject_id": subject_id}, headers=headers)
    assert found.status_code == 200, found.text
    [dossier] = found.json()["items"]
    return dossier


async def items_of(client, headers, dossier_id: str) -> list[dict]:  # noqa: ANN001
    response = await client.get(f"/archives/dossiers/{dossier_id}/items", params=PURPOSE, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_registry_acts_are_filed_with_class_and_audit_position_and_export_verifies(start_service, auth,
                                                                                         monkeypatch):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhao")
    auditor = auth("internal_auditor", region=REGION, subject="auditor.qian")
    async with start_service("accounts") as accounts:
        employer = (await accounts.post("/employers", json=full_employer(1), headers=clerk)).json()
        person = (await accounts.post("/persons", json=person_body(), headers=clerk)).json()
        enrolment = await accounts.post("/enrolments", json={
            "person_id": person["id"], "fund": "PEN_EMP", "employer_id": employer["id"], "start_period": 202601},
            headers=clerk)
        assert enrolment.status_code == 201, enrolment.text
        changed = await accounts.patch(f"/persons/{person['id']}", json={"phone": "13900000000"}, headers=clerk)
        assert changed.status_code == 200, changed.text

        dossier = await dossier_of(accounts, clerk, person["id"])
        assert (dossier["subject_type"], dossier["registration_number"], dossier["item_count"]) == (
            "person", WANG_ID, 3)
        by_number = await accounts.get("/archives/dossiers", params={"registration_number": WANG_ID}, headers=clerk)
        assert [d["id"] for d in by_number.json()["items"]] == [dossier["id"]]
        items = await items_of(accounts, clerk, dossier["id"])
        assert [(i["serial"], i["item_type"], i["retention_class"], i["retention_years"]) for i in items] == [
            (1, "person_registration", "long", 100), (2, "enrolment", "long", 100), (3, "person_change", "long", 100)]
        assert all(i["decided_by"] == "clerk.zhao" and i["decided_role"] == "agency_clerk" for i in items)
        assert "社会保险业务档案管理规定" in items[0]["retention_basis"]
        with Session(engine_of(accounts)) as session:
            for item in items:  # the position proves the act: the entry at that seq has that hash
                entry = session.get(AuditEntry, item["audit_seq"])
                assert entry is not None and entry.hash == item["audit_hash"]
        employer_items = await items_of(accounts, clerk, (await dossier_of(accounts, clerk, employer["id"]))["id"])
        assert [(i["item_type"], i["retention_class"]) for i in employer_items] == [
            ("employer_registration", "permanent"), ("enrolment", "long")]

        # Another service's items arrive as events; a redelivery (a second publish of the same event id, or the
        # same act in a new event) files nothing twice.
        line = ArchiveItemLine(source="benefits", subject_type="person", subject_id=person["id"],
                               item_type="claim_decision", act_id="claim-1/first", title="基本养老金申请 初审",
                               decision="初审：同意", decided_by="reviewer.wu", decided_role="agency_reviewer",
                               level="first", audit_seq=7, audit_hash="a" * 64, occurred_at="2026-07-01T02:00:00+00:00")
        await publish(accounts, BenefitsArchiveItemsFiled(items=[line]))
        await publish(accounts, BenefitsArchiveItemsFiled(items=[line]))

        async def count() -> int:
            return (await dossier_of(accounts, clerk, person["id"]))["item_count"]

        await eventually(count, lambda n: n >= 4)
        with Session(engine_of(accounts)) as session:
            types = session.execute(select(DossierItem.item_type).where(
                DossierItem.dossier_id == dossier["id"]).order_by(DossierItem.serial)).scalars().all()
        assert types == ["person_registration", "enrolment", "person_change", "claim_decision"]

        data, result = await export_package(accounts, dossier["id"], clerk)
        files = unzipped(data)
        manifest = json.loads(files["manifest.json"])
        assert {"归档文件目录.pdf", "备考表.pdf", "items/00001.json", "items/00004.json"} <= set(files)
        assert manifest["item_count"] == 4 and set(manifest["files"]) == set(files) - {"manifest.json"}
        assert (manifest["export_id"], result["items"], result["bytes"]) == (result["export_id"], 4, len(data))
        # Only the one who exported it downloads it (the purpose registered is theirs).
        other = await accounts.get(result["package_at"], headers=auth("agency_clerk", region=REGION))
        assert (other.status_code, error_code(other)) == (404, "ARCHIVE_EXPORT_NOT_FOUND")
        elsewhere = await accounts.post(f"/archives/dossiers/{dossier['id']}/exports", params=PURPOSE,
                                        headers=auth("agency_clerk", region="150203"))
        assert elsewhere.status_code == 403, elsewhere.text
        unknown = await accounts.post("/archives/dossiers/no-such-dossier/exports", params=PURPOSE, headers=clerk)
        assert (unknown.status_code, error_code(unknown)) == (404, "DOSSIER_NOT_FOUND")

        async def verify(data: bytes) -> dict:
            response = await accounts.post("/archives/packages/verification", headers=auditor,
                                           files={"file": ("dossier.zip", data, "application/zip")})
            assert response.status_code == 200, response.text
            return response.json()

        assert (await verify(data))["result"] == "genuine"
        tampered = dict(files)
        tampered["items/00002.json"] = files["items/00002.json"].replace(b"PEN_EMP", b"PEN_RES")
        verdict = await verify(zipped(tampered))
        assert (verdict["result"], verdict["altered_files"], verdict["manifest_altered"]) == (
            "altered", ["items/00002.json"], False)
        relisted = dict(tampered, **{"manifest.json": files["manifest.json"].replace(
            manifest["files"]["items/00002.json"].encode(),
            hashlib.sha256(tampered["items/00002.json"]).hexdigest().encode())})
        verdict = await verify(zipped(relisted))
        assert (verdict["result"], verdict["altered_files"], verdict["manifest_altered"]) == ("altered", [], True)
        bad = await accounts.post("/archives/packages/verification", headers=auditor,
                                  files={"file": ("x.zip", b"not a zip", "application/zip")})
        assert (bad.status_code, error_code(bad)) == (422, "ARCHIVE_PACKAGE_INVALID")
        # A package that would expand past the bound is refused before a byte of it is unpacked (a zip bomb).
        monkeypatch.setattr(export, "MAX_UNPACKED_BYTES", sum(len(v) for v in files.values()) - 1)
        bomb = await accounts.post("/archives/packages/verification", headers=auditor,
                                   files={"file": ("dossier.zip", data, "application/zip")})
        assert (bomb.status_code, error_code(bomb)) == (413, "ARCHIVE_PACKAGE_TOO_LARGE")
        monkeypatch.undo()

        register = await accounts.get("/archives/access-register", params={"dossier_id": dossier["id"]},
                                      headers=auditor)
        assert register.status_code == 200, register.text
        uses = [(u["actor_id"], u["action"], u["purpose"]) for u in register.json()["items"]]
        assert uses[0] == ("clerk.zhao", "export", PURPOSE["purpose"])
        assert ("clerk.zhao", "read", PURPOSE["purpose"]) in uses
        refused = await accounts.get("/archives/access-register", headers=clerk)
        assert refused.status_code == 403
        no_purpose = await accounts.get(f"/archives/dossiers/{dossier['id']}/items", headers=clerk)
        assert no_purpose.status_code == 422


def old_line(person_id: str, act_id: str, claim_kind: str = "unemployment",
             when: str = "1990-03-01T02:00:00+00:00") -> ArchiveItemLine:
    """A claim decision of 1990: an unemployment benefit's is kept 10 years (附件 五(三)), a pension's permanently
    while its row of the attachment is unconfirmed."""
    return ArchiveItemLine(source="benefits", subject_type="person", subject_id=person_id, item_type="claim_decision",
                           act_id=act_id, title="1990 年 3 月待遇核定", decision="核定发放 100.00 元",
                           decided_by="approver.old", references={"claim_kind": claim_kind}, occurred_at=when)


async def test_a_sealed_year_keeps_its_hash_and_expired_items_go_only_with_two_approvals(start_service, auth):
    """《社会保险业务档案管理规定（试行）》: 销毁清册 kept for good, two people at least; electronic archives formed at year
    end (004 第7项)."""
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhao")
    clerk_as_reviewer = auth("agency_reviewer", region=REGION, subject="clerk.zhao")
    reviewer = auth("agency_reviewer", region=REGION, subject="reviewer.wu")
    approver = auth("agency_approver", region=REGION, subject="approver.wang")
    auditor = auth("internal_auditor", region=REGION, subject="auditor.qian")
    async with start_service("accounts") as accounts:
        person = (await accounts.post("/persons", json=person_body(), headers=clerk)).json()
        dossier = await dossier_of(accounts, clerk, person["id"])
        await publish(accounts, BenefitsArchiveItemsFiled(items=[
            old_line(person["id"], "line-1"), old_line(person["id"], "claim-1", claim_kind="basic_pension")]))

        async def count() -> int:
            return (await dossier_of(accounts, clerk, person["id"]))["item_count"]

        await eventually(count, lambda n: n == 3)

        accepted = await accounts.post("/archives/years/1990/seal", headers=approver)
        assert accepted.status_code == 202, accepted.text
        done = await eventually(lambda: accounts.get(accepted.headers["location"], headers=approver),
                                lambda r: r.json()["status"] in ("succeeded", "failed"))
        assert done.json()["status"] == "succeeded", done.text
        assert (done.json()["result"]["dossiers"], done.json()["result"]["items"]) == (1, 2)
        assert (await accounts.get("/archives/years/1990/seal", headers=auditor)).json()["root_sha256"] == \
            done.json()["result"]["root_sha256"]
        again = await accounts.post("/archives/years/1990/seal", headers=approver)
        assert (again.status_code, error_code(again)) == (409, "ARCHIVE_YEAR_SEALED")
        early = await accounts.post(f"/archives/years/{clock.china_today().year}/seal", headers=approver)
        assert (early.status_code, error_code(early)) == (422, "ARCHIVE_YEAR_NOT_ENDED")
        assert (await accounts.post("/archives/years/1991/seal", headers=clerk)).status_code == 403

        # An act of 1990 arriving now is a supplement: the sealed year still verifies, and names it.
        await publish(accounts, BenefitsArchiveItemsFiled(items=[old_line(person["id"], "line-2")]))
        await eventually(count, lambda n: n == 4)
        verified = (await accounts.get("/archives/years/1990/verification", headers=auditor)).json()
        assert (verified["intact"], verified["supplements"]) == (True, [{"dossier_id": dossier["id"], "serial": 4}])

        proposed = await accounts.post("/archives/disposals", json={"reason": "保管期限已满，经鉴定无继续保存价值"},
                                       headers=clerk)
        assert proposed.status_code == 201, proposed.text
        listed = proposed.json()
        assert (listed["status"], listed["item_count"]) == ("proposed", 2)
        assert [(line["serial"], line["item_type"], line["expires_after_year"]) for line in listed["lines"]] == [
            (2, "claim_decision", 2000), (4, "claim_decision", 2000)]
        path = f"/archives/disposals/{listed['id']}"
        decision = {"reason": "同意销毁"}
        own = await accounts.post(f"{path}/approvals", json=decision, headers=clerk_as_reviewer)
        assert (own.status_code, error_code(own)) == (403, "SAME_PERSON_CANNOT_APPROVE")
        first = await accounts.post(f"{path}/approvals", json=decision, headers=reviewer)
        assert (first.status_code, first.json()["status"]) == (200, "approved_once")
        assert len(await items_of(accounts, clerk, dossier["id"])) == 4  # nothing destroyed on one approval
        twice = await accounts.post(f"{path}/approvals", json=decision, headers=reviewer)
        assert (twice.status_code, error_code(twice)) == (403, "SAME_PERSON_TWO_APPROVALS")
        second = await accounts.post(f"{path}/approvals", json=decision, headers=approver)
        assert second.status_code == 200, second.text
        assert (second.json()["status"], second.json()["first_approved_by"], second.json()["second_approved_by"]) == (
            "destroyed", "reviewer.wu", "approver.wang")
        assert [i["serial"] for i in await items_of(accounts, clerk, dossier["id"])] == [1, 3]
        kept = (await accounts.get(path, headers=auditor)).json()
        assert (kept["status"], len(kept["lines"])) == ("destroyed", 2)  # the 销毁清册 stays
        nothing = await accounts.post("/archives/disposals", json={"reason": "再次鉴定"}, headers=clerk)
        assert (nothing.status_code, error_code(nothing)) == (409, "NOTHING_TO_DISPOSE")

        # A late redelivery of a destroyed act does not bring it back; the sealed year still verifies.
        await publish(accounts, BenefitsArchiveItemsFiled(items=[old_line(person["id"], "line-1"),
                                                                 old_line(person["id"], "line-3")]))
        await eventually(count, lambda n: n == 5)
        assert [i["act_id"] for i in await items_of(accounts, clerk, dossier["id"])] == [
            person["id"], "claim-1", "line-3"]
        assert (await accounts.get("/archives/years/1990/verification", headers=auditor)).json()["intact"] is True

        # An item of the sealed year changed behind the archive's back breaks its dossier-year.
        with Session(engine_of(accounts)) as session:
            session.execute(update(DossierItem).where(DossierItem.act_id == "claim-1").values(decision="不同意"))
            session.commit()
        broken = (await accounts.get("/archives/years/1990/verification", headers=auditor)).json()
        assert (broken["intact"], broken["changed_dossiers"]) == (False, [dossier["id"]])


async def test_an_import_files_each_registration_and_a_persons_enrolments_as_one_item(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhao")
    async with start_service("accounts") as accounts:
        async def upload(kind: str, header: list[str], rows: list[list]) -> dict:
            response = await accounts.post(f"/imports/{kind}", headers=clerk, files={
                "file": ("import.csv", csv_bytes(header, rows), "application/octet-stream")})
            assert response.status_code in (200, 201), response.text
            return response.json()

        await upload("employers", EMPLOYER_HEADER, [[make_uscc(1), "甲公司", REGION, ""]])
        await upload("persons", PERSON_HEADER, [person(1), person(2)])
        job = await upload("enrolments", ENROLMENT_HEADER, [
            [cid(1), fund, make_uscc(1), "202601", "", ""] for fund in ("PEN_EMP", "UNEMP", "INJURY")])
        assert job["accepted_rows"] == 3, job
        dossier = (await accounts.get("/archives/dossiers", params={"registration_number": cid(1)},
                                      headers=clerk)).json()["items"][0]
        items = await items_of(accounts, clerk, dossier["id"])
        assert [(i["item_type"], i["references"]["import_job_id"] is not None) for i in items] == [
            ("person_registration", True), ("enrolment", True)]
        assert all(fund in items[1]["decision"] for fund in ("PEN_EMP", "UNEMP", "INJURY"))
        employer = (await accounts.get("/archives/dossiers", params={"registration_number": make_uscc(1)},
                                       headers=clerk)).json()["items"][0]
        assert [i["decision"] for i in await items_of(accounts, clerk, employer["id"])][1:] == [
            "导入参保登记 3 条（第 2–4 行）"]
        other = (await accounts.get("/archives/dossiers", params={"registration_number": cid(2)},
                                    headers=clerk)).json()["items"][0]
        assert other["item_count"] == 1


# -- backfill (补录归档) ---------------------------------------------------------------------------------------------

def old_database(url: str) -> tuple[str, str, str]:
    """An accounts database as it was before the archive: an employer, a person enrolled through it and a person
    imported (no audit entry of their own), none with a dossier. Returns (employer, person, imported person) ids."""
    engine = make_engine(url)
    upgrade_database(engine, "accounts", models.metadata)  # no Filing attached to this engine: nothing is filed
    clerk = Actor(id="clerk.old", role="agency_clerk", roles=("agency_clerk",), region=REGION)
    with context.trace(actor=clerk), unit_of_work(engine) as session:
        employer = register_employer(session, EmployerRegistration(**full_employer(1)))
        person = register_person(session, PersonRegistration(**person_body()))
        enrol(session, EnrolmentRequest(person_id=person.id, fund="PEN_EMP", employer_id=employer.id,
                                        start_period=202001))
        imported = Person(id=new_event_id(), citizen_id=cid(7), name="李旧档", region=REGION, sex="F",
                          birth_date=date(1985, 6, 15), life_status="alive", registered_by="import.2019",
                          registered_at=datetime(2019, 5, 6, 2, 0, tzinfo=UTC))
        session.add(imported)
        session.flush()
        session.add(Enrolment(id=new_event_id(), person_id=imported.id, fund="PEN_RES", fund_group="PEN",
                              start_period=201906, status="active", created_by="import.2019",
                              created_at=datetime(2019, 5, 6, 2, 0, tzinfo=UTC)))
        ids = employer.id, person.id, imported.id
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Dossier)).scalar_one() == 0
    engine.dispose()
    return ids


async def test_backfill_files_an_old_databases_acts_once_and_resumes_after_a_crash(
        make_settings, nats_server, database_urls, start_service, auth, monkeypatch):
    employer_id, person_id, imported_id = old_database(database_urls["accounts"])
    engine = make_engine(database_urls["accounts"])
    approver_actor = Actor(id="approver.wang", role="agency_approver", roles=("agency_approver",), region=REGION)
    with context.trace(actor=approver_actor):
        job, _ = jobs.submit_job(engine, backfill.BACKFILL)

    # One record a chunk; the process dies inside the fourth chunk (its writes roll back).
    await run_until_killed(engine, backfill.BACKFILL, backfill.BackfillWork, killed_in_chunk=4,
                           monkeypatch=monkeypatch, chunk_rows=1)
    with Session(engine) as session:
        left = session.get(Job, job.id)
        assert (left.status, left.rows_done) == ("running", 3)  # three audit entries: registrations, enrolment
        assert session.execute(select(func.count()).select_from(DossierItem)).scalar_one() == 4
    engine.dispose()

    settings = make_settings(nats_server.url, jobs={"lease_seconds": 0.5, "poll_seconds": 0.05, "chunk_rows": 2})
    approver = auth("agency_approver", region=REGION, subject="approver.wang")
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhao")
    async with start_service("accounts", settings) as accounts:
        async def finished(location: str) -> dict:
            done = await eventually(lambda: accounts.get(location, headers=approver),
                                    lambda r: r.json()["status"] in ("succeeded", "failed"))
            assert done.json()["status"] == "succeeded", done.text
            return done.json()

        done = await finished(f"/jobs/{job.id}")
        assert done["attempts"] == 2 and done["result"]["items_filed"] == 6, done
        assert (done["result"]["with_audit_position"], done["result"]["audit_position_unknown"]) == (4, 2)
        items = await items_of(accounts, clerk, (await dossier_of(accounts, clerk, person_id))["id"])
        assert [(i["item_type"], i["decided_by"], i["references"]["audit_position"]) for i in items] == [
            ("person_registration", "clerk.old", "found"), ("enrolment", "clerk.old", "found")]
        assert all("补录归档" in i["title"] and i["audit_seq"] and i["filed_at"] >= i["occurred_at"] for i in items)
        employer_items = await items_of(accounts, clerk, (await dossier_of(accounts, clerk, employer_id))["id"])
        assert [i["item_type"] for i in employer_items] == ["employer_registration", "enrolment"]
        old = await items_of(accounts, clerk, (await dossier_of(accounts, clerk, imported_id))["id"])
        assert [(i["item_type"], i["audit_seq"], i["references"]["audit_position"], i["year"]) for i in old] == [
            ("person_registration", None, "unknown", 2019), ("enrolment", None, "unknown", 2019)]
        assert "审计链位置不明" in old[0]["decision"] and old[0]["decided_by"] == "import.2019"

        # Again: nothing is filed twice.
        refused = await accounts.post("/archives/backfill", headers=clerk)
        assert refused.status_code == 403
        again = await accounts.post("/archives/backfill", headers=approver)
        assert again.status_code == 202, again.text
        rerun = await finished(again.headers["location"])
        assert rerun["result"]["items_filed"] == 0 and rerun["rows_done"] == done["rows_done"], rerun
        with Session(engine_of(accounts)) as session:
            assert session.execute(select(func.count()).select_from(DossierItem)).scalar_one() == 6
