"""Supervisor screens beside the matrix and the cases (oversight.py): the rectification ledger, major incidents with
their 5-working-day countdown (001 第三十一条), audit-chain status per service, whistleblower reports, inspections,
the dishonesty list, the rule catalogue with its case counts, sweeps (and the ledger rebuild) and the scheduler's runs;
the pages of a whistleblower report, an inspection and a major incident with their forms."""

from collections import Counter
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gateway.console import forms
from gateway.console import reports as r
from gateway.console.calls import ApiError
from gateway.console.pages import Page, ScreenRefused, screen_page
from services.kernel.clock import china_today
from services.kernel.workdays import working_days_after

router = APIRouter(prefix="/oversight")
CASES_COUNTED = 500


async def _incident_deadlines(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """Major incidents not yet reported to every level, with the working days left before their due day."""
    due = await page.calls.json("GET", "/api/oversight/incidents/due")
    today = china_today()
    countdown = []
    for incident in due["overdue"] + due["due"] + due["deadline_unknown"]:
        left = None
        if incident.get("due_on") and not incident.get("days_overdue"):
            left = working_days_after(today, date.fromisoformat(incident["due_on"])).count
        countdown.append({**incident, "working_days_left": left})
    return {"countdown": countdown, "as_of": due["as_of"]}


async def _case_counts(page: Page, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rule's cases: open and all, counted over the latest CASES_COUNTED cases the user may see."""
    listing = await page.calls.json("GET", "/api/oversight/cases", params={"limit": CASES_COUNTED})
    open_statuses = {"issued", "investigating", "classified", "rectifying"}
    every = Counter(c["rule_id"] for c in listing["items"])
    still_open = Counter(c["rule_id"] for c in listing["items"] if c["status"] in open_statuses)
    return [{**rule, "open_cases": still_open[rule["id"]], "all_cases": every[rule["id"]]} for rule in rows]


r.add_table(router, "rectification", "/rectification", r.RECTIFICATION,
            intro="每个进入整改的案件在台账中一条记录（001 第十三条），销号时记录核查意见。")
r.add_table(router, "incidents", "/incidents", r.INCIDENTS, template="incidents.html", extra=_incident_deadlines,
            intro="重大要情须在发现后 5 个工作日内报同级及省级社会保险基金监督机构（001 第三十一条）。")
r.add_table(router, "chains", "/chains", r.CHECKPOINTS, intro="各服务审计日志哈希链的最近一次校验结果。")
r.add_table(router, "whistleblowing_reports", "/whistleblowing", r.REPORTS)
r.add_table(router, "inspections", "/inspections", r.INSPECTIONS)
r.add_table(router, "dishonesty", "/dishonesty", r.DISHONESTY, intro="严重失信人名单（001 第三十条）。")
r.add_table(router, "rules", "/rules", r.RULES, enrich=_case_counts,
            intro=f"案件数按您可见的最近 {CASES_COUNTED} 件案件统计。")
SWEEP = ("POST", "/api/oversight/rules/sweeps")
REBUILD = ("POST", "/api/oversight/ledger/rebuild")


async def _sweep_actions(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"may_sweep": await page.may(*SWEEP), "may_rebuild": await page.may(*REBUILD)}


r.add_table(router, "sweeps", "/sweeps", r.SWEEPS, template="sweeps.html", extra=_sweep_actions)


async def _scheduled_jobs(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"jobs": await page.calls.json("GET", "/api/oversight/scheduler/jobs")}


r.add_table(router, "scheduler", "/scheduler", r.SCHEDULER_RUNS, template="scheduler.html", extra=_scheduled_jobs)

SweepId = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]


@router.get("/sweeps/{sweep_id}")
async def sweep(page: Annotated[Page, screen_page("sweeps")], sweep_id: SweepId) -> Response:
    """One sweep; while it runs, the page asks again (htmx) until it is done, then shows each rule's result."""
    run = await page.calls.json("GET", f"/api/oversight/rules/sweeps/{sweep_id}")
    return await page.render("sweep.html", run=run, running=run["status"] == "running", fragment=page.is_htmx)


# -- a whistleblower report: assign, investigate, answer, close, note, reward -----------------------------------------

REPORT = forms.Workflow(
    api="/api/oversight/whistleblowing/reports/{report_id}", page="/console/oversight/whistleblowing/{report_id}",
    template="whistleblowing_report.html", name="report", steps={
        "assign": ("/assign", {"officer_id": "text", "note": "text?"}),
        "investigate": ("/investigate", {"note": "text?"}),
        "answer": ("/answer", {"answer": "text", "outcome": "text", "verified_amount": "yuan?"}),
        "close": ("/close", {"reason": "text"}),
        "notes": ("/notes", {"text": "text"}),
        "reward": ("/reward", {"full_civil_capacity": "bool", "facts_already_known": "bool", "statutory_duty": "bool",
                               "substantial_contribution": "bool", "supplementary_amount": "yuan?", "note": "text?"}),
    })
REPORT.add_routes(router, "whistleblowing_reports")

TEAM_ROWS = 5  # the team form's rows; the API wants at least 2 inspectors (001 第八条)


def team_body(form: dict[str, str]) -> dict[str, Any]:
    """The team form's filled rows as the API's members; the leader is the row chosen by the radio ``leader``."""
    members = []
    for row in range(1, TEAM_ROWS + 1):
        inspector, name = form.get(f"inspector_id_{row}", "").strip(), form.get(f"name_{row}", "").strip()
        if inspector or name:
            members.append({"inspector_id": inspector, "name": name, "leader": form.get("leader") == str(row)})
    return {"members": members}


def letter_body(form: dict[str, str]) -> dict[str, Any]:
    """问题反馈函: the letter's fields and one deadline per finding (``rectify_by_<finding id>``), each sent as typed:
    a finding left without a date is the API's to refuse (DEADLINE_MISSING names it)."""
    body = forms.body_of({"letter_no": "text", "issued_on": "text", "oral_feedback_on": "text?",
                          "requirements": "text?"}, form)
    body["deadlines"] = [{"finding_id": name.removeprefix("rectify_by_"), "rectify_by": value.strip()}
                         for name, value in form.items() if name.startswith("rectify_by_") and value.strip()]
    return body


LETTER_PDF = ("POST", "/api/oversight/documents/inspection-feedback-letters/{inspection_id}")


async def _inspection_extra(page: Page, inspection: dict[str, Any]) -> dict[str, Any]:
    return {"may_letter_pdf": await page.may(*LETTER_PDF), "team_rows": range(1, TEAM_ROWS + 1)}


# An inspection: plan, notice, team, findings, feedback letter, report (001 第八条、第十一条).
INSPECTION = forms.Workflow(
    api="/api/oversight/inspections/{inspection_id}", page="/console/oversight/inspections/{inspection_id}",
    template="inspection.html", name="inspection", steps={
        "team": ("/team", team_body),
        "notification": ("/notification", {"notified_on": "text", "notice_ref": "text?"}),
        "findings": ("/findings", {"title": "text", "description": "text", "fund": "text?", "amount": "yuan"}),
        "feedback-letter": ("/feedback-letter", letter_body),
        "report": ("/report", {"reported_on": "text", "summary": "text", "reported_to_higher": "bool"}),
    }, methods={"team": "PUT"}, extra=_inspection_extra)
InspectionId = Annotated[str, Path(max_length=100, pattern=r"^[\w-]+$")]


@router.post("/inspections/{inspection_id}/documents/feedback-letter")
async def feedback_letter_pdf(page: Annotated[Page, screen_page("inspections")],
                              inspection_id: InspectionId) -> Response:
    """The letter as the API issues it (a PDF document), passed through as a download."""
    if not await page.may(*LETTER_PDF):
        raise ScreenRefused()
    response = await page.calls.call("POST", LETTER_PDF[1].format(inspection_id=quote(inspection_id, safe="")))
    if response.status_code != 201:
        raise ApiError.of(response)
    return page.finish(Response(response.content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="feedback-letter-{inspection_id}.pdf"'}))


INSPECTION.add_routes(router, "inspections")

# A major incident: its reports to the same-level and provincial supervisors (001 第三十一条).
INCIDENT = forms.Workflow(
    api="/api/oversight/incidents/{incident_id}", page="/console/oversight/incidents/{incident_id}",
    template="incident.html", name="incident",
    steps={"reports": ("/reports", {"level": "text", "reported_on": "text", "reference": "text?"})})
INCIDENT.add_routes(router, "incidents")


@router.post("/sweeps")
async def start_sweep(page: Annotated[Page, screen_page("sweeps")]) -> Response:
    """Runs the sweep now (the API runs it within the request) and shows its result."""
    if not await page.may(*SWEEP):
        raise ScreenRefused()
    run = await page.calls.json("POST", "/api/oversight/rules/sweeps", json={})
    return page.redirect(f"/console/oversight/sweeps/{quote(run['id'], safe='')}")


@router.post("/ledger/rebuild")
async def start_rebuild(page: Annotated[Page, screen_page("sweeps")]) -> Response:
    """Starts the rebuild of oversight's mirror, ledger and facts (a background job) and follows it on its page."""
    if not await page.may(*REBUILD):
        raise ScreenRefused()
    job = await page.calls.json("POST", "/api/oversight/ledger/rebuild")
    return page.redirect(f"/console/jobs/oversight/{quote(job['id'], safe='')}")
