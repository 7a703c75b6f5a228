"""The electronic archive (社会保险业务档案) in accounts: every registry act filed into the dossier of the person or
employer it concerns, in the act's transaction, with its retention class and audit-chain position; items from other
services arrive as ``*.archive_items.filed.v1`` events and are filed once however often they are delivered; a
dossier exports as a package whose manifest verifies, and a tampered package names the altered file; every read
and export is in the access register (利用登记) the auditors read (004 第7项: the agency's archive management)."""

import hashlib
import json

from sqlalchemy import select
from sqlmodel import Session

from services.accounts.archives.models import DossierItem
from services.contracts.archives import ArchiveItemLine
from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.kernel.models import AuditEntry
from tests.support.accounts import WANG_ID, full_employer, person_body
from tests.support.archives import PURPOSE, unzipped, zipped
from tests.support.e2e import eventually
from tests.support.oversight import publish
from tests.support.registry import REGION, engine_of, error_code

async def dossier_of(client, headers, subject_id: str) -> dict:  # noqa: ANN001
    found = await client.get("/archives/dossiers", params={"subject_id": subject_id}, headers=headers)
    assert found.status_code == 200, found.text
    [dossier] = found.json()["items"]
    return dossier


async def items_of(client, headers, dossier_id: str) -> list[dict]:  # noqa: ANN001
    response = await client.get(f"/archives/dossiers/{dossier_id}/items", params=PURPOSE, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_registry_acts_are_filed_with_class_and_audit_position_and_export_verifies(start_service, auth):
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

        exported = await accounts.post(f"/archives/dossiers/{dossier['id']}/exports", params=PURPOSE, headers=clerk)
        assert exported.status_code == 201, exported.text
        files = unzipped(exported.content)
        manifest = json.loads(files["manifest.json"])
        assert {"归档文件目录.pdf", "备考表.pdf", "items/00001.json", "items/00004.json"} <= set(files)
        assert manifest["item_count"] == 4 and set(manifest["files"]) == set(files) - {"manifest.json"}

        async def verify(data: bytes) -> dict:
            response = await accounts.post("/archives/packages/verification", headers=auditor,
                                           files={"file": ("dossier.zip", data, "application/zip")})
            assert response.status_code == 200, response.text
            return response.json()

        assert (await verify(exported.content))["result"] == "genuine"
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
