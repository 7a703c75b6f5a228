"""Large imports as background jobs (services/accounts/imports/jobs.py on services/kernel/jobs.py): accepted with
202 and a job id, progress visible while it runs, the same file again is the same job, a crash mid-job resumes
without a duplicate or a gap, the job is readable only by its creator and internal control."""

import asyncio
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.accounts import models
from services.accounts.imports import jobs as import_jobs
from services.accounts.imports.schemas import ImportKind
from services.accounts.models import ImportJob, Person
from services.kernel import context, jobs
from services.kernel.context import Actor
from services.kernel.db import make_engine
from services.kernel.migrations import upgrade_database
from services.kernel.models import Job
from services.kernel.settings_sections import JobSettings
from tests.support.accounts import EMPLOYER_HEADER, cid
from tests.support.accounts import person as registry_person
from tests.support.accounts import ENROLMENT_HEADER, csv_bytes
from tests.support.registry import CITY, REGION, engine_of, make_citizen_id, make_uscc, outbox

ASYNC = {"Prefer": "respond-async"}
PERSON_HEADER = ["公民身份号码", "姓名", "行政区划代码", "性别", "出生日期"]
PERSONS = import_jobs.IMPORT_KINDS[ImportKind.persons]


def person(serial: int, name: str) -> list:
    """A distinct valid citizen id per serial (make_citizen_id repeats after 500 serials of one birth date)."""
    born = date(1985, 6, 15) + timedelta(days=serial // 500)
    return [make_citizen_id(serial % 500, born=born), name, REGION, "", ""]


def persons_file(n: int, *, bad: set[int] = frozenset(), duplicate_of: dict[int, int] | None = None) -> bytes:
    """``n`` person rows (row numbers 2..n+1); a ``bad`` serial gets a broken check digit, ``duplicate_of`` maps a
    serial to an earlier one it repeats."""
    rows = []
    for serial in range(n):
        source = (duplicate_of or {}).get(serial, serial)
        row = person(10_000 + source, f"人员{serial}")
        if serial in bad:
            good = row[0]
            row[0] = good[:-1] + ("0" if good[-1] != "0" else "1")
        rows.append(row)
    return csv_bytes(PERSON_HEADER, rows)


async def poll(client, job_id: str, headers: dict, seen: list[dict], timeout: float = 120.0) -> dict:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        response = await client.get(f"/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.append(body)
        if body["status"] in ("succeeded", "failed"):
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {seen[-1] if seen else None}")


def count_persons(engine) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(Person)).scalar_one()


def imported_citizen_ids(client) -> list[str]:  # noqa: ANN001
    return [p["citizen_id"] for e in outbox(client, "accounts.persons.imported.v1") for p in e["persons"]]


async def test_a_5000_row_import_runs_as_a_job_with_progress_and_the_same_file_is_the_same_job(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    data = persons_file(5000, bad={17, 4321}, duplicate_of={2500: 10})
    async with start_service("accounts") as accounts:
        response = await accounts.post("/imports/persons", headers={**clerk, **ASYNC},
                                       files={"file": ("persons.csv", data, "text/csv")})
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/jobs/{job['id']}"
        assert job["kind"] == "accounts.import.persons" and job["status"] in ("queued", "running", "succeeded")

        seen: list[dict] = []
        done = await poll(accounts, job["id"], clerk, seen)
        assert done["status"] == "succeeded", done
        assert (done["rows_total"], done["rows_done"], done["rows_rejected"]) == (5000, 5000, 3)
        progress = [s["rows_done"] for s in seen]
        assert progress == sorted(progress)  # never goes back
        assert any(s["status"] == "running" and 0 < s["rows_done"] < 5000 and s["eta_seconds"] is not None
                   for s in seen), progress  # progress visible during the job
        report = done["result"]
        assert (report["status"], report["accepted_rows"], report["rejected_rows"]) == ("completed", 4997, 3)
        assert report["rejections_by_code"] == {"INVALID_CITIZEN_ID": 2, "DUPLICATE_IN_FILE": 1}
        assert {r["row_no"]: r["code"] for r in report["rejections"]} == {
            19: "INVALID_CITIZEN_ID", 2502: "DUPLICATE_IN_FILE", 4323: "INVALID_CITIZEN_ID"}
        assert "第 12 行" in next(r["message"] for r in report["rejections"] if r["row_no"] == 2502)

        summary = (await accounts.get(f"/imports/{job['id']}", headers=clerk)).json()
        assert (summary["status"], summary["accepted_rows"]) == ("completed", 4997)
        ids = imported_citizen_ids(accounts)
        assert len(ids) == len(set(ids)) == 4997 == count_persons(engine_of(accounts))

        again = await accounts.post("/imports/persons", headers={**clerk, **ASYNC},
                                    files={"file": ("renamed.csv", data, "text/csv")})
        assert again.status_code == 202 and again.json()["id"] == job["id"]
        assert again.json()["status"] == "succeeded"
        assert count_persons(engine_of(accounts)) == 4997 and len(imported_citizen_ids(accounts)) == 4997

        other = auth("agency_clerk", region=REGION, subject="clerk.zhao")
        assert (await accounts.get(f"/jobs/{job['id']}", headers=other)).status_code == 404
        assert (await accounts.get("/jobs", headers=other)).json()["items"] == []
        auditor = auth("internal_auditor", region=REGION, subject="audit.wu")
        assert (await accounts.get(f"/jobs/{job['id']}", headers=auditor)).status_code == 200
        listed = (await accounts.get("/jobs", params={"kind": "accounts.import.persons"}, headers=clerk)).json()
        assert [j["id"] for j in listed["items"]] == [job["id"]]
        assert (await accounts.get(f"/jobs/{job['id']}", headers=auth("tax_system"))).status_code == 403


async def test_a_file_with_wrong_columns_is_refused_before_a_job_exists(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        response = await accounts.post("/imports/persons", headers={**clerk, **ASYNC},
                                       files={"file": ("x.csv", csv_bytes(["姓名"], [["张三"]]), "text/csv")})
        assert response.status_code == 422 and response.json()["error"]["code"] == "IMPORT_COLUMNS_INVALID"
        assert (await accounts.get("/jobs", headers=clerk)).json()["items"] == []


class Crash(BaseException):
    """The accounts process dies here."""


# The restarted process may run with another chunk size (SIFUND_JOBS_CHUNK_ROWS): 700 does not divide the 2 000 rows
# committed before the crash, so it resumes inside what would be one of its own chunks.
@pytest.mark.parametrize("resumed_chunk_rows", [None, 700], ids=["same-chunks", "other-chunk-size"])
async def test_an_import_job_killed_mid_way_resumes_on_restart_with_every_row_exactly_once(
        make_settings, nats_server, database_urls, start_service, auth, monkeypatch, resumed_chunk_rows):
    engine = make_engine(database_urls["accounts"])
    upgrade_database(engine, "accounts", models.metadata)
    clerk_actor = Actor(id="clerk.li", role="agency_clerk", roles=("agency_clerk",), region=REGION)
    data = persons_file(4500, bad={5}, duplicate_of={3900: 100})  # row 3902 repeats row 102, across the crash
    with context.trace(actor=clerk_actor):
        job, _ = jobs.submit_job(engine, PERSONS, data=data, filename="persons.csv", params={"mode": "per_row"})

    # The first accounts process: stores chunks 1 and 2, dies inside chunk 3 (its writes roll back).
    real = import_jobs.ImportWork.run_chunk
    calls = {"n": 0}

    def dies_in_third_chunk(self, session, offset):  # noqa: ANN001, ANN202
        step = real(self, session, offset)
        calls["n"] += 1
        if calls["n"] == 3:
            raise Crash("killed inside the third chunk")
        return step

    monkeypatch.setattr(import_jobs.ImportWork, "run_chunk", dies_in_third_chunk)
    first = jobs.JobRunner(SimpleNamespace(state=SimpleNamespace(engine=engine)),  # type: ignore[arg-type]
                           {PERSONS.name: PERSONS}, JobSettings(lease_seconds=0.5))
    claimed = jobs.claim_next(engine, [PERSONS.name], first.owner, first.lease)
    with pytest.raises(Crash):
        await first._run(claimed)
    monkeypatch.setattr(import_jobs.ImportWork, "run_chunk", real)
    assert count_persons(engine) == 1999  # chunks 1-2: 2 000 rows, one bad
    with Session(engine) as session:
        left = session.get(Job, job.id)
        assert (left.status, left.next_offset, left.rows_done) == ("running", 2000, 2000)
    engine.dispose()

    # The restarted process resumes the job at start-up once the dead one's lease ran out.
    settings = make_settings(nats_server.url, jobs={"lease_seconds": 0.5, "poll_seconds": 0.05,
                                                    "chunk_rows": resumed_chunk_rows})
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts", settings) as accounts:
        done = await poll(accounts, job.id, clerk, [])
        assert done["status"] == "succeeded", done
        assert (done["rows_done"], done["rows_rejected"], done["attempts"]) == (4500, 2, 2)
        assert done["result"]["rejections_by_code"] == {"INVALID_CITIZEN_ID": 1, "DUPLICATE_IN_FILE": 1}
        assert any(r["row_no"] == 3902 and "第 102 行" in r["message"] for r in done["result"]["rejections"])
        ids = imported_citizen_ids(accounts)
        assert len(ids) == len(set(ids)) == 4498 == count_persons(engine_of(accounts))
        with Session(engine_of(accounts)) as session:
            imported = session.get(ImportJob, job.id)
            assert (imported.status, imported.total_rows, imported.accepted_rows, imported.rejected_rows) == (
                "completed", 4500, 4498, 2)


async def test_an_enrolment_job_in_one_row_chunks_applies_the_rules_across_chunks_as_one_import_does(
        make_settings, nats_server, start_service, auth):
    """A job keeps nothing of earlier chunks in memory but the duplicate keys: each chunk reads what the earlier ones
    committed, so a later row meets an earlier one's enrolment as a one-step import would (the same codes, the same
    pension overlaps reported)."""
    settings = make_settings(nats_server.url, jobs={"chunk_rows": 1, "poll_seconds": 0.05})
    city, clerk = auth("agency_clerk", region=CITY), auth("agency_clerk", region=REGION)
    async with start_service("accounts", settings) as accounts:
        for kind, header, rows in (("employers", EMPLOYER_HEADER, [[make_uscc(1), "正常单位", REGION, ""]]),
                                   ("persons", ["公民身份号码", "姓名", "行政区划代码", "性别", "出生日期"],
                                    [registry_person(i) for i in range(1, 4)])):
            response = await accounts.post(f"/imports/{kind}", headers=city,
                                           files={"file": (f"{kind}.csv", csv_bytes(header, rows), "text/csv")})
            assert response.status_code == 201 and response.json()["accepted_rows"] == len(rows), response.text
        rows = [
            [cid(1), "PEN_EMP", make_uscc(1), "202001", "", ""],                # 2 good
            [cid(1), "PEN_RES", "", "202101", "", ""],                          # 3 second active pension
            [cid(2), "UNEMP", make_uscc(1), "201501", "201812", ""],            # 4 good (history)
            [cid(2), "UNEMP", make_uscc(1), "201801", "", ""],                  # 5 overlaps row 4 (same fund)
            [cid(1), "PEN_EMP", make_uscc(1), "202001", "", ""],                # 6 duplicate of row 2
            [cid(3), "PEN_GOV", make_uscc(1), "200001", "200912", "终止缴费"],   # 7 good
            [cid(3), "PEN_EMP", make_uscc(1), "200801", "201512", "终止缴费"],   # 8 good, overlaps row 7: reported
        ]
        response = await accounts.post("/imports/enrolments", headers={**clerk, **ASYNC},
                                       files={"file": ("e.csv", csv_bytes(ENROLMENT_HEADER, rows), "text/csv")})
        assert response.status_code == 202, response.text
        done = await poll(accounts, response.json()["id"], clerk, [])
        assert done["status"] == "succeeded" and done["rows_done"] == 7 and done["attempts"] == 1, done
        report = done["result"]
        assert {r["row_no"]: r["code"] for r in report["rejections"]} == {
            3: "DUPLICATE_PENSION", 5: "ENROLMENT_PERIOD_OVERLAP", 6: "DUPLICATE_IN_FILE"}
        assert (report["accepted_rows"], report["reported_overlaps"]) == (4, 1)
