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

ReportId = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]
REPORT_ACTIONS: dict[str, dict[str, str]] = {
    "assign": {"officer_id": "text", "note": "text?"},
    "investigate": {"note": "text?"},
    "answer": {"answer": "text", "outcome": "text", "verified_amount": "yuan?"},
    "close": {"reason": "text"},
    "notes": {"text": "text"},
    "reward": {"full_civil_capacity": "bool", "facts_already_known": "bool", "statutory_duty": "bool",
               "substantial_contribution": "bool", "supplementary_amount": "yuan?", "note": "text?"},
}
REPORT_ROUTE = "/api/oversight/whistleblowing/reports/{report_id}"


async def _report_page(page: Page, report_id: str, *, status_code: int = 200, error: str | None = None,
                       form: dict[str, str] | None = None) -> Response:
    report = await page.calls.json("GET", f"/api/oversight/whistleblowing/reports/{quote(report_id, safe='')}")
    allowed = {action for action in REPORT_ACTIONS if await page.may("POST", f"{REPORT_ROUTE}/{action}")}
    return await page.render("whistleblowing_report.html", status_code=status_code, report=report, allowed=allowed,
                             error=error, form=form or {})


@router.get("/whistleblowing/{report_id}")
async def whistleblowing_report(page: Annotated[Page, screen_page("whistleblowing_reports")],
                                report_id: ReportId) -> Response:
    return await _report_page(page, report_id)


@router.post("/whistleblowing/{report_id}/{action}")
async def whistleblowing_action(page: Annotated[Page, screen_page("whistleblowing_reports")], report_id: ReportId,
                                action: Annotated[str, Path(pattern="^(" + "|".join(REPORT_ACTIONS) + ")$")],
                                ) -> Response:
    rid = quote(report_id, safe="")

    async def again(**context: Any) -> Response:
        return await _report_page(page, report_id, **context)

    return await forms.submit(page, f"{REPORT_ROUTE}/{action}", f"/api/oversight/whistleblowing/reports/{rid}/{action}",
                              REPORT_ACTIONS[action], f"/console/oversight/whistleblowing/{rid}", again)


INSPECTION_ROUTE = "/api/oversight/inspections/{inspection_id}"
INSPECTION_ACTIONS: dict[str, dict[str, str]] = {
    "notification": {"notified_on": "text", "notice_ref": "text?"},
    "findings": {"title": "text", "description": "text", "fund": "text?", "amount": "yuan"},
    "report": {"reported_on": "text", "summary": "text", "reported_to_higher": "bool"},
}


async def _inspection_page(page: Page, inspection_id: str, *, status_code: int = 200, error: str | None = None,
                           form: dict[str, str] | None = None) -> Response:
    detail = await page.calls.json("GET", f"/api/oversight/inspections/{quote(inspection_id, safe='')}")
    allowed = {action for action in INSPECTION_ACTIONS if await page.may("POST", f"{INSPECTION_ROUTE}/{action}")}
    return await page.render("inspection.html", status_code=status_code, inspection=detail, allowed=allowed,
                             error=error, form=form or {})


@router.get("/inspections/{inspection_id}")
async def inspection(page: Annotated[Page, screen_page("inspections")], inspection_id: ReportId) -> Response:
    """An inspection (plan, notice, team, findings, feedback letter, report: 001 第八条、第十一条)."""
    return await _inspection_page(page, inspection_id)


@router.post("/inspections/{inspection_id}/{action}")
async def inspection_action(page: Annotated[Page, screen_page("inspections")], inspection_id: ReportId,
                            action: Annotated[str, Path(pattern="^(" + "|".join(INSPECTION_ACTIONS) + ")$")],
                            ) -> Response:
    iid = quote(inspection_id, safe="")

    async def again(**context: Any) -> Response:
        return await _inspection_page(page, inspection_id, **context)

    return await forms.submit(page, f"{INSPECTION_ROUTE}/{action}", f"/api/oversight/inspections/{iid}/{action}",
                              INSPECTION_ACTIONS[action], f"/console/oversight/inspections/{iid}", again)


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


# -- a major incident: its reports to the same-level and provincial supervisors (001 第三十一条) ----------------------

INCIDENT_REPORT = "/api/oversight/incidents/{incident_id}/reports"
INCIDENT_REPORT_FIELDS = {"level": "text", "reported_on": "text", "reference": "text?"}


async def _incident_page(page: Page, incident_id: str, *, status_code: int = 200, error: str | None = None,
                         form: dict[str, str] | None = None) -> Response:
    incident = await page.calls.json("GET", f"/api/oversight/incidents/{quote(incident_id, safe='')}")
    return await page.render("incident.html", status_code=status_code, incident=incident, error=error,
                             form=form or {}, may_report=await page.may("POST", INCIDENT_REPORT),
                             today=china_today().isoformat())


@router.get("/incidents/{incident_id}")
async def incident(page: Annotated[Page, screen_page("incidents")], incident_id: ReportId) -> Response:
    return await _incident_page(page, incident_id)


@router.post("/incidents/{incident_id}/reports")
async def report_incident(page: Annotated[Page, screen_page("incidents")], incident_id: ReportId) -> Response:
    iid = quote(incident_id, safe="")

    async def again(**context: Any) -> Response:
        return await _incident_page(page, incident_id, **context)

    return await forms.submit(page, INCIDENT_REPORT, f"/api/oversight/incidents/{iid}/reports",
                              INCIDENT_REPORT_FIELDS, f"/console/oversight/incidents/{iid}", again)
