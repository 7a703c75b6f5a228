"""Agency screens (经办/复核/审批): the claims waiting at my level with their computation and verification, the claim
page where the reviewer or approver decides the claim's next level, a person's page (enrolments, contribution
months, individual account, claims; a claim submitted from it by a clerk), an employer's page, unmatched tax lines,
imports with their rejected rows."""

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gateway.console import forms
from gateway.console import reports as r
from gateway.console.calls import ApiError
from gateway.console.pages import Page, ScreenRefused, screen_page

router = APIRouter(prefix="/agency")

ClaimsPage = Annotated[Page, screen_page("claims")]
PersonsPage = Annotated[Page, screen_page("persons")]
Id = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]
DECIDE = ("POST", "/api/benefits/claims/{claim_id}/decisions")
RETURN = ("POST", "/api/benefits/claims/{claim_id}/returns")
RESUBMIT = ("POST", "/api/benefits/claims/{claim_id}/resubmission")
SUBMIT = ("POST", "/api/benefits/claims")
DECISION_FIELDS = {"decision": "text", "reason": "text", "level": "text?"}
CORRECTIONS = "/api/accounts/persons/{person_id}/life-status-corrections"
CORRECTION_FIELDS = {"new_status": "text", "death_date": "text?", "imprisoned_from": "text?",
                     "imprisoned_until": "text?", "reason": "text", "evidence": "text?"}
CorrectionStep = Annotated[str, Path(pattern="^(approve|reject)$")]
CLAIM_FIELDS = {"kind": "text", "effective_period": "int", "fund": "text?", "monthly_amount": "yuan?",
                "one_off_amount": "yuan?", "note": "text?"}


async def _my_queue(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """The claims in review whose next level is decided by one of my roles, that I neither submitted nor acted on at
    another level (the API would refuse me: SUBMITTER_CANNOT_DECIDE, SAME_PERSON_TWO_LEVELS — a level returned to
    me is mine again); for a clerk, the claims returned (退回) to be corrected and resubmitted."""
    roles, me = set(page.session.roles), page.session.username
    in_review = await page.calls.json("GET", "/api/benefits/claims", params={"status": "in_review", "limit": 200})
    mine = []
    for claim in in_review["items"]:
        level = next((lv for lv in claim["levels"] if lv["level"] == claim.get("next_level")), None)
        elsewhere = {d["decided_by"] for d in claim["decisions"] if d["level"] != claim.get("next_level")}
        if level and level["role"] in roles and me not in elsewhere and claim["submitted_by"] != me:
            mine.append(claim)
    returned = None
    if await page.may(*RESUBMIT):
        returned = (await page.calls.json("GET", "/api/benefits/claims",
                                          params={"status": "returned", "limit": 200}))["items"]
    return {"queue": mine, "queue_more": in_review.get("next_cursor") is not None, "returned": returned}


r.add_table(router, "claims", "/claims", r.CLAIMS, template="claims.html", extra=_my_queue)
r.add_table(router, "persons", "/persons", r.PERSONS)
r.add_table(router, "employers", "/employers", r.EMPLOYERS)
r.add_table(router, "unmatched", "/unmatched", r.UNMATCHED,
            intro="税务征收明细中无法对应核定明细的行，由复核人员逐笔处理，不会被丢弃。")
r.add_table(router, "exchange", "/exchange", r.EXCHANGE,
            intro="卫健、民政、法院、市场监管等部门交换的数据中，与登记信息冲突或无法匹配的记录由复核人员处理。")

IMPORT = ("POST", "/api/accounts/imports/{kind}")
IMPORT_KINDS = ("employers", "persons", "enrolments")


async def _import_form(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"may_import": await page.may(*IMPORT), "import_kinds": IMPORT_KINDS}


r.add_table(router, "imports", "/imports", r.IMPORTS, template="imports.html", extra=_import_form)


@router.post("/imports")
async def start_import(page: Annotated[Page, screen_page("imports")]) -> Response:
    """The file goes to the API as a background job (``Prefer: respond-async``), followed on the job's page."""
    if not await page.may(*IMPORT):
        raise ScreenRefused()
    form = await page.request.form()
    upload, kind = form.get("file"), page.form.get("kind", "")
    mode = page.form.get("mode") or "per_row"
    if kind not in IMPORT_KINDS or upload is None or isinstance(upload, str) or not upload.filename:
        raise ApiError(422, "IMPORT_FORM_INCOMPLETE", "请选择导入类型和文件")
    # The file as Starlette spooled it (to disk past a megabyte), streamed on to the API: never whole in memory.
    response = await page.calls.call(
        "POST", f"/api/accounts/imports/{kind}", params={"mode": mode}, headers={"Prefer": "respond-async"},
        files={"file": (upload.filename, upload.file, upload.content_type or "application/octet-stream")})
    if response.status_code != 202:
        raise ApiError.of(response)
    return page.redirect(f"/console/jobs/accounts/{quote(response.json()['id'], safe='')}")


async def _claim_page(page: Page, claim_id: str, *, status_code: int = 200, error: str | None = None,
                      reason: str = "", typed: dict[str, str] | None = None) -> Response:
    claim = await page.calls.json("GET", f"/api/benefits/claims/{quote(claim_id, safe='')}")
    level = next((lv for lv in claim["levels"] if lv["level"] == claim.get("next_level")), None)
    may_decide = (claim["status"] == "in_review" and level is not None and level["role"] in page.session.roles
                  and await page.may(*DECIDE))
    live = {d["level"]: d for d in claim["decisions"]
            if d.get("voided_at") is None and d["decision"] in ("approve", "reject")}
    return await page.render("claim.html", status_code=status_code, claim=claim, level=level, live=live,
                             may_decide=may_decide, may_return=may_decide and await page.may(*RETURN),
                             may_resubmit=claim["status"] == "returned" and await page.may(*RESUBMIT),
                             error=error, reason=reason, typed=typed or {})


@router.get("/claims/{claim_id}")
async def claim(page: ClaimsPage, claim_id: Id) -> Response:
    return await _claim_page(page, claim_id)


@router.post("/claims/{claim_id}/decisions")
async def decide(page: ClaimsPage, claim_id: Id) -> Response:
    """Approve or reject the claim's next level (the API checks the role, the level, and that nobody decides two)."""
    cid = quote(claim_id, safe="")

    async def again(status_code: int, form: dict[str, str], error: str) -> Response:
        return await _claim_page(page, claim_id, status_code=status_code, error=error, reason=form.get("reason", ""))

    return await forms.submit(page, DECIDE[1], f"/api/benefits/claims/{cid}/decisions", DECISION_FIELDS,
                              f"/console/agency/claims/{cid}", again)


async def _person_page(page: Page, person_id: str, *, status_code: int = 200, error: str | None = None,
                       form: dict[str, str] | None = None, correction_error: str | None = None) -> Response:
    pid = quote(person_id, safe="")
    person, enrolments = await asyncio.gather(page.calls.json("GET", f"/api/accounts/persons/{pid}"),
                                              page.calls.json("GET", f"/api/accounts/enrolments/by-person/{pid}"))
    funds = sorted({e["fund"] for e in enrolments["items"]})
    corrections, claims, account, entries, eligibility, history, *months = await asyncio.gather(
        _optional(page, CORRECTIONS, CORRECTIONS.format(person_id=pid)),
        _optional(page, "/api/benefits/claims", "/api/benefits/claims", {"person_id": person_id, "limit": 50}),
        _optional(page, "/api/accounts/individual-accounts/{person_id}", f"/api/accounts/individual-accounts/{pid}"),
        _optional(page, "/api/accounts/individual-accounts/{person_id}/entries",
                  f"/api/accounts/individual-accounts/{pid}/entries", {"limit": 24}),
        _optional(page, "/api/benefits/eligibility/persons/{person_id}", f"/api/benefits/eligibility/persons/{pid}"),
        _optional(page, "/api/accounts/persons/{person_id}/history", f"/api/accounts/persons/{pid}/history"),
        *(_optional(page, "/api/accounts/verification/contribution-months",
                    "/api/accounts/verification/contribution-months",
                    {"citizen_id": person["citizen_id"], "fund": fund}) for fund in funds))
    return await page.render("person.html", status_code=status_code, person=person,
                             enrolments=enrolments["items"], claims=(claims or {}).get("items"), account=account,
                             entries=(entries or {}).get("items"), eligibility=eligibility, history=history,
                             months=[m for m in months if m], error=error, form=form or {},
                             may_submit=await page.may(*SUBMIT), corrections=corrections,
                             correction_error=correction_error, may_request=await page.may("POST", CORRECTIONS),
                             may_decide=await page.may("POST", CORRECTIONS + "/{correction_id}/approve"))


async def _optional(page: Page, route: str, path: str, params: dict[str, Any] | None = None) -> Any:
    """A section of a page whose route (``route``, the template of ``path``) the user's roles may not admit: shown
    only when they do."""
    if not await page.may("GET", route):
        return None
    response = await page.calls.call("GET", path, params=params)
    return response.json() if response.status_code == 200 else None


@router.get("/persons/{person_id}")
async def person(page: PersonsPage, person_id: Id) -> Response:
    return await _person_page(page, person_id)


@router.post("/persons/{person_id}/claims")
async def submit_claim(page: PersonsPage, person_id: Id) -> Response:
    """A clerk submits a claim for the person (the API verifies and computes it; its messages are shown)."""
    if not await page.may(*SUBMIT):
        raise ScreenRefused()
    form = page.form
    body = {**forms.body_of(CLAIM_FIELDS, form), "person_id": person_id,
            "documents": [{"kind": form.get("document_kind", "").strip(),
                           "reference": form.get("document_ref", "").strip()}]}
    response = await page.calls.call("POST", "/api/benefits/claims", json=body)
    if response.status_code in (200, 201):
        return page.redirect(f"/console/agency/claims/{quote(response.json()['id'], safe='')}")
    error = ApiError.of(response)
    return await _person_page(page, person_id, status_code=error.status, error=error.in_words(), form=dict(form))


async def _correction(page: Page, person_id: str, route: str, path: str, fields: dict[str, str]) -> Response:
    """A life-status correction (后台修改) requested, or decided by a second person (the API refuses the requester:
    SAME_PERSON_CANNOT_APPROVE); a refusal shown beside the corrections with what was typed."""
    async def again(status_code: int, form: dict[str, str], error: str) -> Response:
        return await _person_page(page, person_id, status_code=status_code, form=form, correction_error=error)

    return await forms.submit(page, route, path, fields, f"/console/agency/persons/{quote(person_id, safe='')}",
                              again)


@router.post("/persons/{person_id}/corrections")
async def request_correction(page: PersonsPage, person_id: Id) -> Response:
    path = CORRECTIONS.format(person_id=quote(person_id, safe=""))
    return await _correction(page, person_id, CORRECTIONS, path, CORRECTION_FIELDS)


@router.post("/persons/{person_id}/corrections/{correction_id}/{step}")
async def decide_correction(page: PersonsPage, person_id: Id, correction_id: Id, step: CorrectionStep) -> Response:
    path = f"{CORRECTIONS.format(person_id=quote(person_id, safe=''))}/{quote(correction_id, safe='')}/{step}"
    return await _correction(page, person_id, f"{CORRECTIONS}/{{correction_id}}/{step}", path, {"reason": "text?"})


@router.get("/employers/{employer_id}")
async def employer(page: Annotated[Page, screen_page("employers")], employer_id: Id) -> Response:
    eid = quote(employer_id, safe="")
    unit, enrolments = await asyncio.gather(page.calls.json("GET", f"/api/accounts/employers/{eid}"),
                                            page.calls.json("GET", f"/api/accounts/enrolments/by-employer/{eid}"))
    assessments, arrears = await asyncio.gather(
        _optional(page, "/api/collection/assessments", "/api/collection/assessments", {"employer_id": employer_id}),
        _optional(page, "/api/collection/arrears", "/api/collection/arrears", {"employer_id": employer_id}))
    return await page.render("employer.html", unit=unit, enrolments=enrolments["items"],
                             assessments=(assessments or {}).get("items"), arrears=arrears)


@router.get("/imports/{job_id}")
async def import_job(page: Annotated[Page, screen_page("imports")], job_id: Id) -> Response:
    """An import with its rejected rows; while it runs, the page asks again (htmx) until it has finished."""
    jid = quote(job_id, safe="")
    job, rejections = await asyncio.gather(page.calls.json("GET", f"/api/accounts/imports/{jid}"),
                                           page.calls.json("GET", f"/api/accounts/imports/{jid}/rejections"))
    return await page.render("import.html", job=job, rejections=rejections, running=job["status"] == "running",
                             fragment=page.is_htmx)
