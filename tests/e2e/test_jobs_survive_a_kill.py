"""Long work survives a killed process: through the gateway of a real ``sifund up``, an import of persons (accounts)
and a tax bureau's file of collected lines (collection) run as background jobs in small chunks
(``SIFUND_JOBS_CHUNK_ROWS``); while each job is part-way (some rows done, not all) its service process is SIGKILLed,
the supervisor starts it again, and the restarted process resumes the job at once: the lease is an hour long here,
so the job resumes within the test's patience only because the runner sees that the holder was a process of this
machine and is gone (``services.kernel.jobs.holder_is_dead``).

Then every row is stored exactly once, counted through the API the owning service answers (persons; unmatched
payments with their amounts), and exactly once downstream (oversight's mirror of the persons; oversight's TAX leg
lines and amounts); every chunk was committed once (one audit entry per import chunk, the chunks' row ranges tiling
the file; one payment batch per tax chunk, no duplicate line); the job's progress and result give the right totals
and say it was taken twice (``attempts``).

SQLite by default; on PostgreSQL under ``bash infra/postgres/run-tests.sh``."""

import json
import os
import random
import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.collection.parameters.schemas import default_document
from tests.chaos.month import DISTRICT, citizen_id, fen, uscc, yuan
from tests.support.launcher import (
    Launcher, _record, _wait_restarted, _wait_until, demo_credentials, sign_in, supervised,
)
from tests.support.launcher import launcher  # noqa: F401 - fixture

CHUNK = 25  # rows per chunk: each job spans many chunks, so a kill lands part-way
PERSONS = 2_000
TAX_LINES = 2_000
EMPLOYERS = 20
PERIOD = 202610
PAID_ON = "2026-11-12"
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
JOB_SECONDS = 300.0  # a job's whole run, restart included, on a loaded machine
UNANSWERED = {502, 503, 504}  # the service is down or restarting: ask again


# -- the parties -----------------------------------------------------------------------------------------------------


def _client_token(gateway: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    response = gateway.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                  "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _get(gateway: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> httpx.Response | None:
    """The answer, or None while the service behind the gateway is down."""
    try:
        response = gateway.get(path, headers=headers, params=params)
    except httpx.TransportError:
        return None
    if response.status_code in UNANSWERED:
        return None
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response


def _every(gateway: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> list[dict]:
    """Every item of a cursor-paginated list."""
    items: list[dict] = []
    after = None
    while True:
        page = gateway.get(path, headers=headers, params={**params, "limit": 500,
                                                          **({"after": after} if after else {})})
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        after = page.json()["next_cursor"]
        if not after:
            return items


# -- the job: submitted, caught part-way, killed, resumed ------------------------------------------------------------


def _job(gateway: httpx.Client, location: str, headers: dict[str, str]) -> dict | None:
    response = _get(gateway, location, headers)
    return response.json() if response is not None else None


def _kill_part_way(launcher: Launcher, gateway: httpx.Client, service: str, location: str,
                   headers: dict[str, str], total: int) -> dict:
    """Wait until the job has committed some chunks but not all, SIGKILL the service's process, wait for the
    supervisor to start it again; returns the progress seen just before the kill."""
    seen: dict = {}

    def part_way() -> bool:
        job = _job(gateway, location, headers)
        assert job is None or job["status"] in ("queued", "running"), f"the job ended before the kill: {job}"
        seen.update(job or {})
        return job is not None and 2 * CHUNK <= job["rows_done"] < total - 4 * CHUNK

    assert _wait_until(part_way, timeout=JOB_SECONDS, interval=0.05), seen
    pid = supervised(launcher)[service]["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_restarted(launcher, service, pid, restarts=1)
    return seen


def _finished(gateway: httpx.Client, location: str, headers: dict[str, str]) -> dict:
    last: dict = {}

    def done() -> bool:
        job = _job(gateway, location, headers)
        last.update(job or {})
        return job is not None and job["status"] in ("succeeded", "failed")

    assert _wait_until(done, timeout=JOB_SECONDS, interval=0.2), f"the job did not finish: {last}"
    assert last["status"] == "succeeded", last
    return last


def _assert_progress(job: dict, total: int, before_kill: dict) -> None:
    assert 0 < before_kill["rows_done"] < total, before_kill
    assert (job["rows_total"], job["rows_done"], job["rows_rejected"], job["percent"], job["eta_seconds"]) == (
        total, total, 0, 100.0, 0.0), job
    assert job["attempts"] == 2, job  # taken by the killed process, then by the restarted one


def _eventually(condition: Callable[[], bool], what: str) -> None:
    assert _wait_until(condition, timeout=JOB_SECONDS, interval=0.5), what


# -- the files -------------------------------------------------------------------------------------------------------


def _persons_file(citizen_ids: list[str]) -> bytes:
    rows = ["公民身份号码,姓名,行政区划代码"] + [f"{c},参保人{n},{DISTRICT}" for n, c in enumerate(citizen_ids, 1)]
    return ("\n".join(rows) + "\n").encode()


def _tax_lines(rng: random.Random) -> list[dict]:
    lines = []
    for n in range(1, TAX_LINES + 1):
        serial = 1 + n % EMPLOYERS
        lines.append({"tax_line_id": f"SW-JOB-{n:06d}", "payer_uscc": uscc(serial),
                      "citizen_id": citizen_id(50_000 + n), "fund": FUNDS[n % len(FUNDS)], "period": PERIOD,
                      "employer_fen": rng.randrange(10_000, 500_000), "individual_fen": rng.randrange(0, 100_000),
                      "voucher_no": f"PZ-JOB-{serial:04d}"})
    return lines


def _tax_file(lines: list[dict]) -> bytes:
    header = "税务明细编号,统一社会信用代码,公民身份号码,险种,费款所属期,单位缴费金额,个人缴费金额,滞纳金,缴费方式,票证号码,缴费日期"
    rows = [header] + [
        f"{x['tax_line_id']},{x['payer_uscc']},{x['citizen_id']},{x['fund']},{x['period']},{yuan(x['employer_fen'])},"
        f"{yuan(x['individual_fen'])},0.00,bank_withholding,{x['voucher_no']},{PAID_ON}" for x in lines]
    return ("\n".join(rows) + "\n").encode()


# -- the test --------------------------------------------------------------------------------------------------------


def _environment(launcher: Launcher, database_urls: dict[str, str]) -> None:
    launcher.environment.update(
        SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS="0.2",
        SIFUND_JOBS_CHUNK_ROWS=str(CHUNK),
        # Not run out before the test's patience is: the restarted process must see that the holder is dead.
        SIFUND_JOBS_LEASE_SECONDS="3600",
    )
    if not database_urls["accounts"].startswith("sqlite"):
        launcher.environment.update({f"SIFUND_{n.upper()}_DATABASE_URL": url for n, url in database_urls.items()})


@pytest.mark.skipif(not os.environ.get("SIFUND_CHAOS"),
                    reason="a platform, two kills and two restarts (~2 min): the long profile, run by make test-cluster")
def test_an_import_and_a_tax_file_resume_after_their_service_is_killed(launcher: Launcher,
                                                                        database_urls: dict[str, str]):
    _environment(launcher, database_urls)
    launcher.start()
    _record(launcher, launcher.wait_ready())
    with httpx.Client(base_url=launcher.gateway_url, timeout=60, trust_env=False) as gateway:
        credentials = demo_credentials(launcher.data_dir)
        clerk = sign_in(gateway, *credentials["demo_agency_clerk"])
        officer = sign_in(gateway, *credentials["demo_oversight_officer"])
        _import_survives_a_kill(launcher, gateway, clerk, officer)
        _tax_file_survives_a_kill(launcher, gateway, credentials, clerk, officer)


def _import_survives_a_kill(launcher: Launcher, gateway: httpx.Client, clerk: dict, officer: dict) -> None:
    citizen_ids = [citizen_id(n) for n in range(1, PERSONS + 1)]
    before = len(_every(gateway, "/api/accounts/persons", clerk))
    submitted = gateway.post("/api/accounts/imports/persons", headers={**clerk, "Prefer": "respond-async"},
                             files={"file": ("persons.csv", _persons_file(citizen_ids), "text/csv")})
    assert submitted.status_code == 202, submitted.text
    location = submitted.headers["Location"]
    assert location == f"/api/accounts/jobs/{submitted.json()['id']}"

    before_kill = _kill_part_way(launcher, gateway, "accounts", location, clerk, PERSONS)
    job = _finished(gateway, location, clerk)
    _assert_progress(job, PERSONS, before_kill)
    result = job["result"]
    assert (result["status"], result["total_rows"], result["accepted_rows"], result["rejected_rows"]) == (
        "completed", PERSONS, PERSONS, 0), result

    # Every person once in accounts, and once in oversight's mirror.
    stored = Counter(p["citizen_id"] for p in _every(gateway, "/api/accounts/persons", clerk))
    assert sum(stored.values()) == before + PERSONS
    assert all(stored[c] == 1 for c in citizen_ids)

    def mirrored() -> bool:
        return len(_every(gateway, "/api/oversight/mirror/persons", officer, region=DISTRICT)) >= PERSONS

    _eventually(mirrored, "the imported persons did not all reach oversight's mirror")
    mirror = Counter(p["citizen_id"] for p in _every(gateway, "/api/oversight/mirror/persons", officer,
                                                     region=DISTRICT))
    assert sorted(mirror) == sorted(citizen_ids) and set(mirror.values()) == {1}

    # Each chunk committed once: one audit entry per chunk, their row ranges tiling the file (rows 2 … N + 1).
    entries = gateway.get("/api/accounts/audit/entries", headers=officer, params={
        "entity_type": "import_job", "entity_id": job["id"], "limit": 1000}).json()
    ranges = sorted(json.loads(e["detail"])["rows"] for e in entries if e["action"] == "import.persons.stored")
    assert len(ranges) == -(-PERSONS // CHUNK)
    assert [first for first, _ in ranges] == [2 + CHUNK * k for k in range(len(ranges))]
    assert all(last == first + CHUNK - 1 for first, last in ranges[:-1]) and ranges[-1][1] == PERSONS + 1


def _tax_file_survives_a_kill(launcher: Launcher, gateway: httpx.Client, credentials: dict, clerk: dict,
                              officer: dict) -> None:
    accountant = sign_in(gateway, *credentials["demo_accountant"])
    approver = sign_in(gateway, *credentials["demo_agency_approver"])
    tax = _client_token(gateway, *credentials["demo_tax"])
    proposed = gateway.post("/api/collection/parameters", headers=accountant, json={
        "region": "150100", "valid_from": 202601, "document": default_document(800_000), "reason": "2026 年度费率基数"})
    assert proposed.status_code == 201, proposed.text
    approved = gateway.post(f"/api/collection/parameters/{proposed.json()['id']}/approve", headers=approver,
                            json={"reason": "同意"})
    assert approved.status_code == 200, approved.text

    lines = _tax_lines(random.Random(20261206))
    submitted = gateway.post("/api/collection/tax-payments/files", headers=tax,
                             files={"file": ("tax.csv", _tax_file(lines), "text/csv")})
    assert submitted.status_code == 202, submitted.text
    location = submitted.headers["Location"]

    before_kill = _kill_part_way(launcher, gateway, "collection", location, tax, TAX_LINES)
    job = _finished(gateway, location, tax)
    _assert_progress(job, TAX_LINES, before_kill)
    chunks = -(-TAX_LINES // CHUNK)
    result = job["result"]
    assert result["totals"] == {"lines": TAX_LINES, "accepted": TAX_LINES, "duplicates": 0, "rejected": 0,
                                "matched": 0, "unmatched": TAX_LINES}, result["totals"]
    assert [(b["first_line"], b["last_line"]) for b in result["batches"]] == [
        (2 + CHUNK * k, min(1 + CHUNK * (k + 1), TAX_LINES + 1)) for k in range(chunks)]

    # Each chunk one payment batch, committed once; every line stored once, to the fen.
    batches = _every(gateway, "/api/collection/tax-payments/batches", tax)
    assert sorted(b["id"] for b in batches) == sorted(b["batch_id"] for b in result["batches"])
    assert sum(b["lines"] for b in batches) == sum(b["accepted"] for b in batches) == TAX_LINES
    stored = _every(gateway, "/api/collection/tax-payments/unmatched", clerk, period=PERIOD)
    assert sorted(p["tax_line_id"] for p in stored) == [x["tax_line_id"] for x in lines]
    expected = {fund: sum(x["employer_fen"] + x["individual_fen"] for x in lines if x["fund"] == fund)
                for fund in FUNDS}
    got: Counter = Counter()
    for payment in stored:
        got[payment["fund"]] += fen(payment["employer_amount"]) + fen(payment["individual_amount"])
    assert dict(got) == expected

    # Oversight's TAX leg holds every line once, to the fen.
    cells: dict[str, dict] = {}

    def counted() -> bool:
        report = _get(gateway, f"/api/oversight/reconciliation/months/{PERIOD}", officer, include_matched=True)
        if report is None:
            return False
        cells.clear()
        cells.update({c["fund"]: c for check in report.json()["checks"] if check["check"] == "R1"
                      for c in check["cells"]})
        return sum(c["detail"]["tax_lines"] for c in cells.values()) >= TAX_LINES

    _eventually(counted, f"oversight's TAX leg did not reach {TAX_LINES} lines: {cells}")
    assert {fund: (c["detail"]["tax_lines"], fen(str(c["amounts"]["tax_principal"]))) for fund, c in cells.items()} == {
        fund: (sum(1 for x in lines if x["fund"] == fund), expected[fund]) for fund in FUNDS}
