"""Oversight's side of the agency's internal control: a non-conformity opens one case however often it is delivered
(001 第十九条), and the yearly report (001 第二十四条) is kept once per year and area, listed with its status."""

from datetime import datetime, timezone

from services.contracts.accounts import InternalControlNonconformity, InternalControlReportSubmitted
from services.kernel import clock
from tests.support.e2e import eventually
from tests.support.oversight import publish
from tests.support.registry import REGION, error_code


def nonconformity(finding_id: str) -> InternalControlNonconformity:
    return InternalControlNonconformity(
        finding_id=finding_id, sample_id="s-1", period="2026-10", item_type="claim_decision", risk="injury",
        act_id="claim-1/approval", source="benefits", subject_type="person", subject_id="p-1", region=REGION,
        decided_by="approver.he", reviewed_by="auditor.qian", reason="缺少工伤认定决定书",
        found_at=datetime(2026, 11, 3, 2, tzinfo=timezone.utc))


def submitted(year: int, number: str, at: datetime) -> InternalControlReportSubmitted:
    return InternalControlReportSubmitted(
        year=year, region=REGION, document_id=f"doc-{number}", document_number=number, document_sha256="a" * 64,
        submitted_by="auditor.qian", submitted_at=at, samples=12, sampled_items=240, nonconforming=3)


async def test_a_redelivered_nonconformity_counts_on_its_case_and_a_report_is_kept_once(start_service, auth):
    officer = auth("oversight_officer", region=REGION, subject="officer.sun")
    async with start_service("oversight") as oversight:
        await publish(oversight, nonconformity("f-1"), nonconformity("f-1"), nonconformity("f-2"))

        async def cases() -> list[dict]:
            return (await oversight.get("/cases", params={"rule_id": "IC"}, headers=officer)).json()["items"]

        found = await eventually(cases, lambda rows: len(rows) == 2)
        assert {c["fact_key"] for c in found} == {"IC:f-1", "IC:f-2"}
        assert {c["severity"] for c in found} == {"high"}

        late = datetime(2025, 12, 31, 16, 30, tzinfo=timezone.utc)  # 1 January 2026, China time
        await publish(oversight, submitted(2025, "社保内控字〔2026〕1号", late),
                      submitted(2025, "社保内控字〔2026〕2号", late))

        async def listed() -> list[dict]:
            r = await oversight.get("/internal-control/reports", params={"year": 2025}, headers=officer)
            assert r.status_code == 200, r.text
            return r.json()

        [report] = await eventually(listed, lambda rows: len(rows) == 1)
        assert (report["status"], report["due_on"], report["report"]["document_number"]) == (
            "late", "2025-12-31", "社保内控字〔2026〕1号")
        this_year = clock.china_today().year
        pending = (await oversight.get(f"/internal-control/reports/{this_year}", headers=officer)).json()
        assert pending["region"] == REGION and pending["report"] is None
        assert pending["status"] in ("missing", "unknown")
        bad = await oversight.get("/internal-control/reports/2025", params={"region": "15010"}, headers=officer)
        assert bad.status_code == 422 and error_code(bad) == "INVALID_REGION_CODE", bad.text
