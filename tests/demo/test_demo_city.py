"""``sifund demo city`` against ``sifund up`` (NATS, the four services and the gateway as processes): a small district
(200 persons) is filled through the gateway; each planted anomaly is found by oversight (the reconciliation cell
not matched, each rule's case opened, the cash-payment case in rectification due today), and a second run doubles
nothing (the same registry, assessments, tax lines, receipts, claims, payroll, exchange batches and cases)."""

import os
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from services.kernel import clock
from services.kernel.identifiers import validate_bank_card, validate_citizen_id, validate_uscc
from sifund.demo_city.district import Calendar, bank_card, build_district
from tests.chaos.platform import RunningPlatform, free_port_base
from tests.support.launcher import sifund_command

pytestmark = pytest.mark.once  # `sifund up` on SQLite whatever the run

PERSONS = 200
SEED = 7
CITY_SECONDS = 600


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> RunningPlatform:
    data_dir = tmp_path_factory.mktemp("democity") / "var"
    clock.utc_now()  # the pin is anchored (its variables exported) before the platform copies them
    # The platform and `sifund demo city` run on the suite's pinned clock, anchored at the same instant as this process.
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("SIFUND_") or k in ("SIFUND_TEST_CLOCK", clock.ANCHORED_AT)}
    running = RunningPlatform(data_dir, environment, free_port_base()).start()
    try:
        yield running
    finally:
        running.stop()


def fill(platform: RunningPlatform) -> subprocess.CompletedProcess:
    result = subprocess.run([*sifund_command(), "demo", "city", "--persons", str(PERSONS), "--seed", str(SEED),
                             "--gateway", platform.gateway_url], env=platform.environment,
                            cwd=platform.data_dir.parent, capture_output=True, text=True, timeout=CITY_SECONDS)
    assert result.returncode == 0, f"sifund demo city failed:\n{result.stdout}\n{result.stderr}"
    return result


class Api:
    def __init__(self, platform: RunningPlatform, role: str):
        secrets = platform.credentials()
        self.client = httpx.Client(base_url=platform.gateway_url, timeout=30.0, trust_env=False)
        token = self.client.post("/auth/token", data={"username": f"demo_{role}",
                                                      "password": secrets[f"demo_{role}"]}).json()["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params) -> dict | list:
        response = self.client.get(f"/api{path}", params=params)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        return response.json()

    def every(self, path: str, **params) -> list[dict]:
        items, after = [], None
        while True:
            page = self.get(path, limit=200, **params, **({"after": after} if after else {}))
            items += page["items"]
            after = page.get("next_cursor")
            if not after:
                return items


def person_id(clerk: Api, citizen_id: str) -> str:
    [found] = clerk.get("/accounts/persons", citizen_id=citizen_id)["items"]
    return found["id"]


def snapshot(officer: Api, clerk: Api, calendar: Calendar) -> dict:
    """What a second run must leave as it was, read through the API."""
    r1 = {}
    for month in calendar.periods:
        report = officer.get(f"/oversight/reconciliation/months/{month}", include_matched=True)
        r1[month] = sorted((c["fund"], c["status"], tuple(sorted(c["amounts"].items())))
                           for c in next(c for c in report["checks"] if c["check"] == "R1")["cells"])
    return {
        "persons": len(clerk.every("/accounts/persons")),
        "employers": len(clerk.every("/accounts/employers")),
        "r1": r1,
        "claims": sorted((c["person_id"], c["status"], c["next_level"]) for c in clerk.every("/benefits/claims")),
        "payroll": sorted((r["fund"], r["period"], r["lines"], r["total"], r["bank_files"])
                          for r in clerk.get("/benefits/payroll/runs")),
        "cases": sorted((c["rule_id"], c["fact_key"], c["status"]) for c in officer.every("/oversight/cases")),
        "exchange": len(clerk.every("/accounts/exchange/batches")),
        "reports": sorted((r["title"], r["status"]) for r in officer.every("/oversight/whistleblowing/reports")),
        "incidents": sorted((i["title"], i["status"]) for i in officer.every("/oversight/incidents")),
        "inspections": sorted((i["target_unit"], i["status"], i["letter_no"], len(i["findings"]))
                              for i in officer.every("/oversight/inspections")),
    }


def supervisor_plants(officer: Api, calendar: Calendar) -> None:
    """The public's web report, the major incident in its 5-working-day countdown and the inspection with its
    feedback letter, each found through the API by what the demo printed."""
    [report] = [r for r in officer.every("/oversight/whistleblowing/reports") if r["title"].endswith(f"（演示城市 {SEED}）")]
    assert report["channel"] == "web" and report["anonymous"] and report["status"] == "received", report
    [incident] = [i for i in officer.every("/oversight/incidents") if i["title"].endswith(f"（演示城市 {SEED}）")]
    assert incident["major"] and incident["discovered_on"] == calendar.today.isoformat(), incident
    due = officer.get("/oversight/incidents/due")
    assert incident["id"] in {i["id"] for i in due["due"] + due["overdue"] + due["deadline_unknown"]}, due
    [inspection] = [i for i in officer.every("/oversight/inspections") if i["target_unit"].endswith(f"（演示城市 {SEED}）")]
    assert inspection["status"] == "feedback_issued" and inspection["letter_no"], inspection
    assert len(inspection["findings"]) == 2 and all(f["rectify_by"] for f in inspection["findings"]), inspection


def test_the_city_is_filled_its_anomalies_found_and_a_second_run_doubles_nothing(platform: RunningPlatform):
    first = fill(platform)
    assert "监督：全部埋点已立案" in first.stdout
    for secret in platform.credentials().values():
        assert secret not in first.stdout + first.stderr  # never a password or a secret

    calendar, district = Calendar.of_today(), build_district(PERSONS, SEED)
    officer, clerk = Api(platform, "oversight_officer"), Api(platform, "agency_clerk")
    last = calendar.periods[-1]

    # The tax line finance never received: R1 of the last month's UNEMP is not matched, and S15 has its case.
    report = officer.get(f"/oversight/reconciliation/months/{last}", include_matched=True)
    r1 = {c["fund"]: c for c in next(c for c in report["checks"] if c["check"] == "R1")["cells"]}
    assert r1["UNEMP"]["status"] != "matched" and r1["PEN_EMP"]["status"] == "matched", r1
    s15 = officer.every("/oversight/cases", rule_id="S15")
    assert any(str(last) in c["fact_key"] and "UNEMP" in c["fact_key"] for c in s15), s15
    # The earlier months were fully matched and closed (the public disclosure shows them).
    for month in calendar.periods[:-1]:
        assert officer.get(f"/oversight/reconciliation/months/{month}")["closed"] is not None

    # The cash payment: S17, worked to a rectification due today, overdue from tomorrow.
    [s17] = [c for c in officer.every("/oversight/cases", rule_id="S17") if f"DC{last}-CASH-PEN_EMP" in c["fact_key"]]
    assert s17["status"] == "rectifying" and s17["current_deadline"] == calendar.today.isoformat(), s17
    tomorrow = (calendar.today + timedelta(days=1)).isoformat()
    assert s17["id"] in {c["id"] for c in officer.get("/oversight/cases/overdue", as_of=tomorrow)}
    assert s17["id"] not in {c["id"] for c in officer.get("/oversight/cases/overdue")}

    # Paid after death: S01 for a paid injury-allowance holder of the first employer.
    first_staff = {person_id(clerk, p.citizen_id) for p in district.employers[0].staff[:14]}
    s01 = officer.every("/oversight/cases", rule_id="S01")
    assert any(c["person_id"] in first_staff for c in s01), s01

    # The overlapping residents' pension history: S03 for that person.
    duplicate = person_id(clerk, district.employers[2].staff[0].citizen_id)
    assert any(c["person_id"] == duplicate for c in officer.every("/oversight/cases", rule_id="S03"))

    # The employer declaring below the base floor: S10 for each of its months, and no other employer's.
    low = district.employers[3]
    [low_id] = [e["id"] for e in clerk.every("/accounts/employers") if e["uscc"] == low.uscc]
    s10 = {c["fact_key"] for c in officer.every("/oversight/cases", rule_id="S10")}
    assert s10 == {f"S10:clamp:{low_id}:{month}" for month in calendar.periods}, s10

    # Claims at every level, a payroll with bank failures.
    claims = clerk.every("/benefits/claims")
    levels = {c["next_level"] for c in claims if c["status"] == "in_review"}
    assert levels == {"first_review", "second_review", "approval"}, levels
    assert {"approved", "rejected", "blocked"} <= {c["status"] for c in claims}
    [run] = [r for r in clerk.get("/benefits/payroll/runs") if r["fund"] == "INJURY"]
    assert run["by_status"]["failed"]["lines"] == 2 and run["by_status"]["paid"]["lines"] >= 1, run

    supervisor_plants(officer, calendar)
    assert "/console/oversight/whistleblowing/" in first.stdout and "举报人查询码" in first.stdout
    assert (platform.data_dir / "demo-city-state.json").stat().st_mode & 0o777 == 0o600

    before = snapshot(officer, clerk, calendar)
    assert before["persons"] == PERSONS and before["employers"] == len(district.employers)
    second = fill(platform)
    assert "跳过导入" in second.stdout
    code = re.search(r"举报人查询码 (\S+?)，", first.stdout).group(1)
    assert f"举报人查询码 {code}，" in second.stdout  # kept in the demo's state, printed again
    assert snapshot(officer, clerk, calendar) == before


def test_sifund_demo_alone_still_creates_the_accounts_once(tmp_path: Path):
    """``demo`` became a command group (``demo city``): on its own it still creates the demo accounts."""
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")},
                   "SIFUND_DATA_DIR": str(tmp_path / "var")}
    first = subprocess.run([*sifund_command(), "demo"], env=environment, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "9 users and 3 system clients created" in first.stdout
    assert (tmp_path / "var" / "demo-credentials.txt").stat().st_mode & 0o777 == 0o600
    again = subprocess.run([*sifund_command(), "demo"], env=environment, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "every demo account exists already" in again.stdout


def test_without_demo_accounts_it_says_what_to_run(tmp_path: Path):
    result = subprocess.run([*sifund_command(), "demo", "city", "--gateway", "http://127.0.0.1:9"],
                            env={**os.environ, "SIFUND_DATA_DIR": str(tmp_path / "var")}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "run `sifund demo`" in result.stderr and "demo-credentials.txt" in result.stderr


def test_the_district_is_seeded_and_its_identifiers_valid():
    one, again, other = build_district(500, 3), build_district(500, 3), build_district(500, 4)
    assert [p.citizen_id for p in one.persons] == [p.citizen_id for p in again.persons]
    assert [p.citizen_id for p in one.persons] != [p.citizen_id for p in other.persons]
    assert len(one.persons) == 500 and len({p.citizen_id for p in one.persons}) == 500
    for person in one.persons:  # the platform's own validators: a bad identifier raises
        assert validate_citizen_id(person.citizen_id) == person.citizen_id
        assert validate_bank_card(bank_card(person.serial)) == bank_card(person.serial)
    assert all(validate_uscc(e.uscc) == e.uscc for e in one.employers) and len(one.employers) >= 4
    calendar = Calendar.of_today()
    assert calendar.today > date.fromisoformat(calendar.received_on(calendar.periods[-1]))
