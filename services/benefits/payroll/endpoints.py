"""Monthly payroll, bank payment files and bank results; the rules are in service.py, the file
format in bankfile.py.

Who does what: the agency clerk computes, an agency approver (another person) approves, the accountant asks finance
for the funds, the cashier issues and re-issues bank files and downloads them, the bank's system posts results.
"""

from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import Session

from services.benefits.models import BankFile, PayrollRun
from services.benefits.payroll import bankfile, result_files, service
from services.benefits.payroll.schemas import (
    FUND_PATTERN,
    BankFileIssued,
    BankFileOut,
    FundingOut,
    LineOut,
    LinePage,
    NotReissued,
    Reissued,
    ResultsApplied,
    ResultsIn,
    RunComputed,
    RunIn,
    RunOut,
    RunVerification,
    StatusTotal,
)
from services.kernel import openapi
from services.kernel.auth import allow
from services.kernel.db import snapshot_session
from services.kernel.errors import Invalid
from services.kernel.jobs import JobOut, accepted, save_upload
from services.kernel.money import fen_to_yuan
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep
from services.kernel.settings import SettingsDep

CLERK = allow("agency_clerk")
APPROVER = allow("agency_approver")
ACCOUNTANT = allow("accountant")
CASHIER = allow("cashier")
BANK = allow("bank_system")
FILE_READERS = allow("cashier", "bank_system")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier", "internal_auditor")
# Finance funds the runs (专户 → 支出户): its officer reads the runs and their totals, never their lines (personal data)
# and approves nothing.
RUN_READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier", "internal_auditor",
                    "finance_officer")

router = APIRouter(prefix="/payroll", tags=["payroll"])


def run_out(session: Session, run: PayrollRun) -> RunOut:
    by_status = service.status_totals(session, run.id)
    withheld = by_status.get(service.WITHHELD, (0, 0))
    return RunOut(
        id=run.id, fund=run.fund, period=run.period, status=run.status, lines=run.lines,
        total=fen_to_yuan(run.total_fen), large_lines=run.large_lines, withheld_lines=withheld[0],
        withheld_total=fen_to_yuan(withheld[1]),
        by_status={s: StatusTotal(lines=n, total=fen_to_yuan(t)) for s, (n, t) in sorted(by_status.items())},
        computed_at=run.computed_at, computed_by=run.computed_by, approved_at=run.approved_at,
        approved_by=run.approved_by, funding_requested_at=run.funding_requested_at,
        bank_files=service.bank_file_count(session, run.id),
    )


def file_out(session: Session, file: BankFile) -> BankFileOut:
    summary = service.file_summary(session, file)
    return BankFileOut(
        id=file.id, run_id=file.run_id, sequence=file.sequence, lines=file.lines, total=fen_to_yuan(file.total_fen),
        checksum=file.checksum, status=file.status, paid_lines=summary.paid[0], paid_total=fen_to_yuan(summary.paid[1]),
        failed_lines=summary.failed[0], returned_total=fen_to_yuan(summary.failed[1]),
        awaiting_result=summary.awaiting, offset_total=fen_to_yuan(summary.offset_fen), created_at=file.created_at,
        created_by=file.created_by,
    )


# -- runs ------------------------------------------------------------------------------------------------------------


@router.post("/runs", response_model=RunComputed, status_code=status.HTTP_201_CREATED,
             summary="Compute the monthly payroll of a fund (one line per active entitlement covering the month)",
             description="Amounts come from the entitlements only, paid into the person's own active account; a line "
                         "without one is withheld with its reason. The same fund and month again returns the same "
                         "run (200): recomputed while not approved, unchanged once approved. A month after the "
                         "current one is 422 PERIOD_IN_FUTURE.",
             dependencies=[CLERK])
def compute_run(body: RunIn, session: SessionDep, response: Response) -> RunComputed:
    outcome = service.compute_run(session, body.fund, body.period)
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return RunComputed(run=run_out(session, outcome.run), created=outcome.created, recomputed=outcome.recomputed,
                       frozen=outcome.frozen)


@router.get("/runs", response_model=list[RunOut], summary="Payroll runs, newest month first",
            description="`funding=requested`: only the runs whose funds the accountant has asked finance for (the "
                        "finance officer's list of funding requests); `funding=awaiting`: approved runs not asked yet.",
            dependencies=[RUN_READERS])
def list_runs(
    session: SessionDep,
    fund: Annotated[str | None, Query(pattern=FUND_PATTERN)] = None,
    period: Annotated[Period | None, Query()] = None,
    funding: Annotated[str | None, Query(pattern="^(requested|awaiting)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RunOut]:
    return [run_out(session, r) for r in service.list_runs(session, fund=fund, period=period, funding=funding,
                                                           limit=limit)]


@router.get("/runs/{run_id}", response_model=RunOut, summary="One payroll run with its totals per line status",
            dependencies=[RUN_READERS])
def get_run(run_id: str, session: SessionDep) -> RunOut:
    return run_out(session, service.get_run(session, run_id))


@router.get("/runs/{run_id}/lines", response_model=LinePage, summary="The run's lines, cursor-paginated",
            dependencies=[READERS])
def list_lines(
    run_id: str,
    session: SessionDep,
    line_status: Annotated[str | None, Query(alias="status",
                                             pattern="^(pending|in_file|paid|failed|withheld)$")] = None,
    after: Annotated[str | None, Query(max_length=36, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LinePage:
    rows, next_cursor = service.list_lines(session, run_id, status=line_status, after=after, limit=limit)
    return LinePage(items=[LineOut(id=r.id, entitlement_id=r.entitlement_id, person_id=r.person_id, period=r.period,
                                   amount=fen_to_yuan(r.amount_fen), bank_account_id=r.bank_account_id,
                                   account_no=r.account_no, status=r.status, reason=r.failure_reason)
                           for r in rows],
                    next_cursor=next_cursor)


@router.get("/runs/{run_id}/verify", response_model=RunVerification,
            summary="Recompute the run's total from its lines and check lines and bank files",
            description="ok when the payable lines add up to the run's count and total, every bank file's content "
                        "matches its checksum, count and total, and (before approval) every line equals its "
                        "entitlement's monthly amount.",
            dependencies=[READERS])
def verify_run(run_id: str, session: SessionDep) -> RunVerification:
    v = service.verify_run(session, run_id)
    return RunVerification(run_id=v.run.id, ok=v.ok, stored_lines=v.run.lines,
                           stored_total=fen_to_yuan(v.run.total_fen),
                           recomputed_lines=v.lines, recomputed_total=fen_to_yuan(v.total_fen),
                           lines_not_matching_entitlement=v.not_matching, problems=v.problems)


@router.post("/runs/{run_id}/approve", response_model=RunOut,
             summary="Approve a computed run (another person than the one who computed it); PayrollApproved",
             description="Freezes the run: a later POST /payroll/runs for the same fund and month returns it "
                         "unchanged. 403 SAME_PERSON_CANNOT_APPROVE for the person who computed it; 409 "
                         "PAYROLL_ALREADY_APPROVED.",
             dependencies=[APPROVER])
def approve_run(run_id: str, session: SessionDep) -> RunOut:
    return run_out(session, service.approve(session, run_id))


@router.post("/runs/{run_id}/funding-request", response_model=FundingOut, status_code=status.HTTP_201_CREATED,
             summary="Ask finance to allocate the approved total to the expenditure account; FundingRequested",
             description="Finance records the allocation in collection (POST /treasury/allocations, "
                         "payroll_reference = the run id). Asking again returns the first request (200).",
             dependencies=[ACCOUNTANT])
def request_funding(run_id: str, session: SessionDep, response: Response) -> FundingOut:
    run, replayed = service.request_funding(session, run_id)
    if replayed:
        response.status_code = status.HTTP_200_OK
    return FundingOut(run=run_out(session, run), amount=fen_to_yuan(run.total_fen), replayed=replayed)


# -- bank files ------------------------------------------------------------------------------------------------------


@router.post("/runs/{run_id}/bank-files", response_model=BankFileIssued, status_code=status.HTTP_201_CREATED,
             summary="Issue the run's bank payment file (every pending line, own accounts only); PaymentsIssued",
             description="Only for an approved run whose funding was requested (409 PAYROLL_NOT_APPROVED, "
                         "FUNDING_NOT_REQUESTED). The format is documented in services/benefits/payroll/bankfile.py. "
                         "Lines whose entitlement was suspended or ended since approval are held back; recovery "
                         "offsets are deducted. Asking again returns the first file (200); failed payments go out "
                         "again through /reissue.",
             dependencies=[CASHIER])
def issue_bank_file(run_id: str, session: SessionDep, response: Response) -> BankFileIssued:
    issued = service.issue_bank_file(session, run_id)
    if issued.replayed:
        response.status_code = status.HTTP_200_OK
    return BankFileIssued(file=file_out(session, issued.file), replayed=issued.replayed,
                          held_back=[NotReissued(**h) for h in issued.held_back],
                          fully_offset_lines=issued.fully_offset)


@router.post("/runs/{run_id}/reissue", response_model=Reissued, status_code=status.HTTP_201_CREATED,
             summary="Re-issue the failed payments whose beneficiary now has a corrected own account",
             description="A new file (sequence 2, 3, …) with only the failed lines, each paid into the person's "
                         "new own active account (never one that failed). Lines still without one are listed and "
                         "wait; 409 NOTHING_TO_REISSUE / NO_CORRECTED_ACCOUNT when no line can go.",
             dependencies=[CASHIER])
def reissue(run_id: str, session: SessionDep) -> Reissued:
    outcome = service.reissue(session, run_id)
    return Reissued(file=file_out(session, outcome.file),
                    not_reissued=[NotReissued(**w) for w in outcome.not_reissued])


@router.get("/runs/{run_id}/bank-files", response_model=list[BankFileOut], summary="The run's bank files",
            dependencies=[READERS])
def list_bank_files(run_id: str, session: SessionDep) -> list[BankFileOut]:
    return [file_out(session, f) for f in service.files_of_run(session, run_id)]


@router.get("/bank-files/{file_id}", response_model=BankFileOut,
            summary="One bank file: lines, totals, checksum, paid and returned amounts",
            dependencies=[allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier",
                                "internal_auditor", "bank_system")])
def get_bank_file(file_id: str, session: SessionDep) -> BankFileOut:
    return file_out(session, service.get_file(session, file_id))


@router.get("/bank-files/{file_id}/content", summary="Download the bank payment file (text/csv, UTF-8)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "the file, in the format of bankfile.py"}},
            dependencies=[FILE_READERS])
def download_bank_file(file_id: str, session: SessionDep) -> Response:
    file = service.get_file(session, file_id)
    run = service.get_run(session, file.run_id)
    name = f"payroll-{run.fund}-{run.period}-{file.sequence}-{file.id}.csv"
    return Response(content=file.content.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Checksum-SHA256": file.checksum})


RESULTS_BODY = openapi.json_body(ResultsIn, other_content={
    "text/csv": {"schema": {"type": "string", "description": "the result file format of bankfile.py"}},
})


@router.post("/bank-files/{file_id}/results", response_model=ResultsApplied,
             summary="Import the bank's results for a payment file (JSON or the documented CSV); PaymentsSettled",
             description="The payment file's checksum must be echoed (422 BANK_FILE_CHECKSUM_MISMATCH). Lines not in "
                         "the file: 422 UNKNOWN_BANK_FILE_LINES naming them, nothing applied. A line already settled "
                         "is a no-op with the same result, 409 BANK_RESULT_CONFLICT with another. Failed payments "
                         "are returned to the expenditure account (returned_total).",
             openapi_extra=RESULTS_BODY, dependencies=[BANK])
async def import_results(file_id: str, request: Request, session: SessionDep) -> ResultsApplied:
    raw = await request.body()
    declared_file_id = None
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        if media_type in ("text/csv", "text/plain"):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Invalid("BANK_RESULT_FILE_INVALID", "银行回盘文件须为 UTF-8 编码") from None
            declared_file_id, checksum, lines = bankfile.parse_result_file(text)
            body = ResultsIn.model_validate({"checksum": checksum, "lines": lines})
        else:
            body = ResultsIn.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    applied = await run_in_threadpool(service.import_results, session, file_id, body,
                                      declared_file_id=declared_file_id)
    return ResultsApplied(
        file_id=applied.file.id, run_id=applied.run.id, applied=applied.applied, unchanged=applied.unchanged,
        paid_lines=applied.paid[0], paid_total=fen_to_yuan(applied.paid[1]), failed_lines=applied.failed[0],
        returned_total=fen_to_yuan(applied.failed[1]), file_status=applied.file.status, run_status=applied.run.status,
    )


@router.post("/bank-files/{file_id}/result-files", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut,
             summary="Upload the bank's result file (回盘文件) for a payment file as a background job",
             description="Multipart field `file`: the result format of bankfile.py as CSV (UTF-8 or GBK) or in the "
                         "first sheet of an .xlsx (a row naming the columns after the tag row is skipped; 成功/失败 "
                         "read as paid/failed). Refused at once with 422 when it is not a result file "
                         "(BANK_RESULT_FILE_INVALID, IMPORT_FILE_EMPTY, IMPORT_ENCODING_INVALID), names another "
                         "file (BANK_FILE_MISMATCH) or echoes another checksum (BANK_FILE_CHECKSUM_MISMATCH); 404 "
                         "for an unknown payment file; 413 FILE_TOO_LARGE past SIFUND_MAX_UPLOAD_BYTES. Accepted "
                         "with 202 and `Location: …/jobs/{id}`; applied as the bank system's results are "
                         "(PaymentsSettled, returned amounts), but a malformed row, a line not in the file, a "
                         "repeated line number or a line settled otherwise is set aside with its reason (the job's "
                         "`rejections`) and the other lines applied. The same file again (the same SHA-256 and "
                         "`Idempotency-Key`, or none) is the same job. Audited as uploaded by the caller.",
             dependencies=[CASHIER])
async def upload_result_file(
    file_id: str, request: Request, settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the bank's result file, CSV or .xlsx")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    limit = settings.max_upload_bytes
    path = await save_upload(file, limit, "FILE_TOO_LARGE", f"上传文件超过 {limit // (1024 * 1024)} MB")
    engine = request.app.state.engine

    def check() -> None:
        declared, checksum = result_files.read_head(path)
        with snapshot_session(engine) as session:
            service.check_result_file(service.get_file(session, file_id), declared, checksum)

    try:
        await run_in_threadpool(check)
        runner = request.app.state.jobs
        job, _ = await run_in_threadpool(lambda: runner.submit(
            result_files.RESULT_FILE.name, data=path, filename=file.filename or "回盘文件",
            params={"file_id": file_id}, idempotency_key=idempotency_key))
    finally:
        path.unlink(missing_ok=True)
    return accepted(request, job)
