from collections.abc import Callable
from datetime import date
from json.encoder import encode_basestring as _json_text
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from pydantic_core import to_json

from services.collection.assessments import batch_body, service
from services.collection.assessments.schemas import (
    COLUMNS_DOC,
    MAX_BATCH_DECLARATIONS,
    MAX_BATCH_LINES,
    AssessmentDetail,
    AssessmentOut,
    AssessmentPage,
    DeclarationDetail,
    DeclarationBatchIn,
    DeclarationBatchResult,
    DeclarationIn,
    DeclarationLineOut,
    DeclarationOut,
    DeclarationOutcome,
    IssueResult,
    PeriodLineOut,
    PeriodLinePage,
    Refusal,
    SupersedeIn,
)
from services.collection.models import Assessment, AssessmentLine, Declaration, DeclarationLine
from services.kernel import json_body, openapi
from services.kernel.auth import allow
from services.kernel.collector import collector_paused
from services.kernel.errors import TooLarge
from services.kernel.json_body import RawJsonBody
from services.kernel.money import fen_to_yuan
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep
from services.kernel.strict import RowId

CLERKS = allow("agency_clerk")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "internal_auditor",
                "oversight_officer")

router = APIRouter(prefix="", tags=["assessments"])

_REFUSALS = (
    "Refusals: 404 `EMPLOYER_NOT_FOUND`, 403 `OUT_OF_REGION`, 409 `EMPLOYER_DEREGISTERED` / `EMPLOYER_SUSPENDED`, "
    "422 `PERIOD_IN_FUTURE`, 409 `ASSESSMENT_EXISTS` (correct it with supersede), 422 `NO_PARAMETERS`, and 422 "
    "`DECLARATION_REJECTED` with every bad line (`PERSON_NOT_FOUND`, `NOT_ENROLLED`, `ENROLMENT_SUSPENDED`, "
    "`DUPLICATE_PERSON`, `PERSON_MISMATCH`, `FUND_NOT_CONFIGURED`, and in files `INVALID_AMOUNT`, `INVALID_BASE`, "
    "`INVALID_CITIZEN_ID` …) in `details.reasons`: nothing is stored unless every line is good."
)
_UPLOAD = (
    "Multipart upload (field `file`): CSV in UTF-8 (with or without BOM) or GBK, or Excel `.xlsx` (first sheet), "
    "one row per person; Chinese headers or English aliases:\n\n" + COLUMNS_DOC + "\n\n"
)


def assessment_out(a: Assessment) -> AssessmentOut:
    return AssessmentOut(**a.model_dump(), employer_total=fen_to_yuan(a.employer_total_fen),
                         individual_total=fen_to_yuan(a.individual_total_fen),
                         total=fen_to_yuan(a.employer_total_fen + a.individual_total_fen))


def line_fields(line: AssessmentLine | Any, amount: Callable[[int], Any] = fen_to_yuan) -> dict[str, Any]:
    """The fields of an ``AssessmentLineOut`` from an ``AssessmentLine`` or a row of its columns, in its order (the
    amounts in yuan by ``amount``: a ``Decimal`` for the model, or ``yuan_text`` for the JSON of a page)."""
    return {"id": line.id, "person_id": line.person_id, "fund": line.fund, "period": line.period,
            "base_fen": line.base_fen, "employer_rate": line.employer_rate, "individual_rate": line.individual_rate,
            "employer_fen": line.employer_fen, "individual_fen": line.individual_fen, "base": amount(line.base_fen),
            "employer_amount": amount(line.employer_fen), "individual_amount": amount(line.individual_fen),
            "due_date": line.due_date, "status": line.status, "paid_principal_fen": line.paid_principal_fen,
            "paid_late_fee_fen": line.paid_late_fee_fen}


def yuan_text(fen: int) -> str:
    """Fen as the yuan text a ``Yuan`` field writes ("5432.10"), by integer arithmetic."""
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


# One ``AssessmentLineOut`` as JSON: its fields in the model's order, compact as pydantic writes them; text values
# go through the JSON string encoder, numbers are integers, the amounts yuan text.
_LINE_JSON = (
    '{"id":%s,"person_id":%s,"fund":%s,"period":%d,"base_fen":%d,"employer_rate":%s,"individual_rate":%s,'
    '"employer_fen":%d,"individual_fen":%d,"base":"%s","employer_amount":"%s","individual_amount":"%s",'
    '"due_date":"%s","status":%s,"paid_principal_fen":%d,"paid_late_fee_fen":%d}'
)


# A ``PeriodLineOut`` as msgspec writes it: the model's fields in its order, the amounts yuan text (a page of 5 000
# lines is encoded in one pass in C, not formatted line by line).
_PeriodLine = msgspec.defstruct("_PeriodLine", list(PeriodLineOut.model_fields), gc=False)  # text and ints: no cycle
_PAGE_ENCODER = msgspec.json.Encoder()


def _period_line(line: Any) -> Any:
    line_id, assessment_id, employer_id, person_id, fund, base, employer, individual, line_status = line
    # Positional, in the model's field order (keywords cost a fifth more, 5 000 times a page).
    return _PeriodLine(
        line_id, assessment_id, employer_id, person_id, fund, base, employer, individual,
        "%d.%02d" % divmod(employer, 100) if employer >= 0 else yuan_text(employer),
        "%d.%02d" % divmod(individual, 100) if individual >= 0 else yuan_text(individual), line_status)


def _line_json(line: Any, day: dict[date, str]) -> str:
    return _LINE_JSON % _line_values(line, day)


def _line_values(line: Any, day: dict[date, str]) -> tuple:
    base, employer, individual = line.base_fen, line.employer_fen, line.individual_fen
    due = line.due_date
    return (
        _json_text(line.id), _json_text(line.person_id), _json_text(line.fund), line.period, base,
        _json_text(line.employer_rate), _json_text(line.individual_rate), employer, individual,
        "%d.%02d" % divmod(base, 100) if base >= 0 else yuan_text(base),
        "%d.%02d" % divmod(employer, 100) if employer >= 0 else yuan_text(employer),
        "%d.%02d" % divmod(individual, 100) if individual >= 0 else yuan_text(individual),
        day[due] if due in day else day.setdefault(due, due.isoformat()), _json_text(line.status),
        line.paid_principal_fen, line.paid_late_fee_fen)


def assessment_page_json(assessment: Assessment, lines: list[Any], next_cursor: str | None) -> bytes:
    """An ``AssessmentDetail`` as JSON, written without a model or a dict per line: the tax bureau's client reads
    every line of every assessment, 1 000 a page. The same bytes as the model's ``model_dump_json`` (a test holds
    them equal)."""
    day: dict[date, str] = {}
    items = ",".join([_line_json(x, day) for x in lines])
    head = to_json(assessment_out(assessment).model_dump(mode="json")).decode()
    return f'{{"assessment":{head},"items":[{items}],"next_cursor":{to_json(next_cursor).decode()}}}'.encode()


def period_page_json(lines: list[Any], next_cursor: str | None) -> bytes:
    """A ``PeriodLinePage`` as JSON from rows of ``service.PERIOD_LINE_COLUMNS``, the lines written by msgspec (a test
    holds it equal to the model's)."""
    items = _PAGE_ENCODER.encode([_period_line(x) for x in lines])
    return b'{"items":%s,"next_cursor":%s}' % (items, to_json(next_cursor))


def declaration_out(d: Declaration) -> DeclarationOut:
    return DeclarationOut.model_validate(d, from_attributes=True)


def declaration_line_out(line: DeclarationLine) -> DeclarationLineOut:
    return DeclarationLineOut(person_id=line.person_id, declared_base_fen=line.declared_base_fen,
                              base_fen=line.base_fen, declared_base=fen_to_yuan(line.declared_base_fen),
                              base=fen_to_yuan(line.base_fen), clamp=line.clamp)


def result_out(issued: service.Issued) -> IssueResult:
    return IssueResult(declaration=declaration_out(issued.declaration), assessment=assessment_out(issued.assessment),
                       clamped=issued.clamped,
                       superseded=assessment_out(issued.superseded) if issued.superseded is not None else None)


# -- declaring -------------------------------------------------------------------------------------------------------


@router.post("/employers/{employer_id}/declarations", status_code=status.HTTP_201_CREATED, response_model=IssueResult,
             summary="Declare an employer's monthly bases (申报) and issue the assessment (核定)",
             description="Bases are yuan as decimal strings (\"5432.10\"); JSON numbers with a fraction are refused. "
                         "Bases outside [floor, cap] are clamped and the clamp recorded. " + _REFUSALS,
             dependencies=[CLERKS])
def declare(employer_id: str, declaration: DeclarationIn, session: SessionDep) -> IssueResult:
    lines = service.lines_from_request(declaration.lines)
    return result_out(service.issue(session, employer_id, declaration.period, lines, source="api"))


def outcome_out(outcome: service.Outcome) -> DeclarationOutcome:
    issued, refusal = outcome.issued, outcome.refusal
    if issued is None:
        assert refusal is not None
        return DeclarationOutcome(employer_id=outcome.employer_id, status="refused", refusal=Refusal(
            status=refusal.status, code=refusal.code, message=refusal.message, details=refusal.details))
    return DeclarationOutcome(employer_id=outcome.employer_id, status="issued", declaration_id=issued.declaration.id,
                              assessment=assessment_out(issued.assessment), clamped=issued.clamped)



@router.post("/declarations/batches", status_code=status.HTTP_201_CREATED, response_model=DeclarationBatchResult,
             summary="Declare many employers' monthly bases at once and issue their assessments",
             description=f"At most {MAX_BATCH_DECLARATIONS} employers and {MAX_BATCH_LINES} lines in all (more: 413 "
                         "`BATCH_TOO_LARGE`, nothing stored). Each declaration is checked and issued as "
                         "`POST /employers/{employer_id}/declarations` does it, on its own: a refused one is listed "
                         "with the status, code, message and details that route would answer (nothing of it "
                         "stored), the others are issued, all in one transaction. Sent again after an answer that "
                         "said nothing, the issued ones are refused `ASSESSMENT_EXISTS`. " + _REFUSALS,
             openapi_extra=openapi.json_body(DeclarationBatchIn), dependencies=[CLERKS])
def declare_batch(body: RawJsonBody, session: SessionDep) -> DeclarationBatchResult:
    # Decoded here (msgspec, in this worker thread: kernel.json_body), read by ``batch_body`` (``DeclarationBatchIn``
    # validates it only when it is not plain); documented as ``DeclarationBatchIn`` (openapi_extra).
    period, declarations = batch_body.validated_batch(json_body.decoded(body))  # DeclarationBatchIn's values, or 422
    lines = sum(len(declared) for _, declared in declarations)
    if lines > MAX_BATCH_LINES:
        raise TooLarge("BATCH_TOO_LARGE", f"一个申报批次最多 {MAX_BATCH_LINES} 条申报明细，本批次 {lines} 条；请拆分后重新提交",
                       details={"max_lines": MAX_BATCH_LINES, "lines": lines})
    outcomes = service.issue_many(session, period, declarations, source="api")
    issued = [o.issued for o in outcomes if o.issued is not None]
    return DeclarationBatchResult(period=period, declarations=len(outcomes), issued=len(issued),
                                  refused=len(outcomes) - len(issued),
                                  assessed_lines=sum(i.assessment.lines for i in issued),
                                  items=[outcome_out(o) for o in outcomes])


@router.post("/employers/{employer_id}/declarations/upload", status_code=status.HTTP_201_CREATED,
             response_model=IssueResult, summary="Declare from a CSV or Excel file and issue the assessment",
             description=_UPLOAD + _REFUSALS + " Row numbers in the reasons are those of the file.",
             dependencies=[CLERKS])
def declare_upload(
    employer_id: str,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="the CSV or .xlsx file")],
    period: Annotated[Period, Form(description="费款所属期 YYYYMM")],
) -> IssueResult:
    lines, file_format = service.lines_from_file(file.file.read(service.MAX_FILE_BYTES + 1))
    return result_out(service.issue(session, employer_id, period, lines, source=file_format))


@router.post("/assessments/{assessment_id}/supersede", status_code=status.HTTP_201_CREATED, response_model=IssueResult,
             summary="Correct an assessment with a complete new declaration (the old one becomes superseded)",
             description="Publishes AssessmentSuperseded for the old assessment, then AssessmentIssued for the new "
                         "one. " + _REFUSALS, dependencies=[CLERKS])
def supersede(assessment_id: str, correction: SupersedeIn, session: SessionDep) -> IssueResult:
    lines = service.lines_from_request(correction.lines)
    return result_out(service.supersede(session, assessment_id, lines, period=correction.period,
                                        reason=correction.reason, source="api"))


@router.post("/assessments/{assessment_id}/supersede/upload", status_code=status.HTTP_201_CREATED,
             response_model=IssueResult, summary="Correct an assessment with a new declaration file",
             description=_UPLOAD + _REFUSALS, dependencies=[CLERKS])
def supersede_upload(
    assessment_id: str,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="the CSV or .xlsx file")],
    reason: Annotated[str, Form(min_length=1, max_length=2000, description="更正原因")],
) -> IssueResult:
    lines, file_format = service.lines_from_file(file.file.read(service.MAX_FILE_BYTES + 1))
    return result_out(service.supersede(session, assessment_id, lines, period=None, reason=reason.strip(),
                                        source=file_format))


# -- reading ---------------------------------------------------------------------------------------------------------


@router.get("/assessments", response_model=AssessmentPage, dependencies=[READERS],
            summary="Assessments of employers in my area, by employer, period and status, newest first")
def list_assessments(
    session: SessionDep,
    employer_id: str | None = None,
    period: Period | None = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(issued|superseded)$")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AssessmentPage:
    rows, next_cursor = service.list_assessments(session, employer_id=employer_id, period=period, status=status_,
                                                 after=after, limit=limit)
    return AssessmentPage(items=[assessment_out(a) for a in rows], next_cursor=next_cursor)


@router.get("/assessments/lines", response_model=PeriodLinePage, dependencies=[READERS],
            summary="A month's issued assessment lines of employers in my area, by assessment then line",
            description="What the tax bureau collects for a month, in pages of up to 5 000 lines (each with its "
                        "assessment and employer); superseded assessments are left out.")
def list_period_lines(
    session: SessionDep,
    period: Period,
    employer_id: str | None = None,
    after: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    with collector_paused():  # a page's rows and lines all live until it is written: see services/kernel/collector.py
        lines, next_cursor = service.period_lines(session, period, employer_id=employer_id, after=after, limit=limit)
        return Response(period_page_json(lines, next_cursor), media_type="application/json")


@router.get("/assessments/{assessment_id}", response_model=AssessmentDetail, dependencies=[READERS],
            summary="One assessment with a page of its lines")
def get_assessment(
    assessment_id: str,
    session: SessionDep,
    fund: str | None = None,
    person_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    assessment = service.get_assessment(session, assessment_id)
    lines, next_cursor = service.assessment_lines(session, assessment_id, after=after, limit=limit, fund=fund,
                                                  person_id=person_id)
    # The documented body (``AssessmentDetail``), written directly: the model is for the schema.
    return Response(assessment_page_json(assessment, lines, next_cursor), media_type="application/json")


@router.get("/declarations/{declaration_id}", response_model=DeclarationDetail, dependencies=[READERS],
            summary="One declaration with a page of its lines (declared base, assessed base, clamp)")
def get_declaration(
    declaration_id: str,
    session: SessionDep,
    after: RowId | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeclarationDetail:
    declaration = service.get_declaration(session, declaration_id)
    lines, next_cursor = service.declaration_lines(session, declaration_id, after=after, limit=limit)
    return DeclarationDetail(declaration=declaration_out(declaration), items=[declaration_line_out(x) for x in lines],
                             next_cursor=str(next_cursor) if next_cursor is not None else None)
