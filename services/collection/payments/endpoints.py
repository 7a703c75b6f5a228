"""Tax collection (征收): the tax bureau's system posts payment batches; the agency works the unmatched lines."""

from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status

from services.collection.payments import service
from services.collection.payments.schemas import (
    CSV_DOC,
    MAX_LINES,
    BatchDetail,
    BatchPage,
    BatchResult,
    PaymentDetail,
    PaymentPage,
    ResolveRequest,
    TaxPaymentBatchIn,
)
from services.kernel import json_body, openapi
from services.kernel.auth import allow
from services.kernel.errors import TooLarge
from services.kernel.json_body import RawJsonBody
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep
from services.kernel.settings import SettingsDep

TAX_SYSTEM = allow("tax_system")
BATCH_READERS = allow("tax_system", "agency_clerk", "agency_reviewer", "accountant", "internal_auditor")
PAYMENT_READERS = allow("tax_system", "agency_clerk", "agency_reviewer", "accountant", "internal_auditor")
UNMATCHED_READERS = allow("agency_clerk", "agency_reviewer", "accountant", "internal_auditor")
REVIEWERS = allow("agency_reviewer")

MAX_FILE_BYTES = 16 * 1024 * 1024

router = APIRouter(prefix="/tax-payments", tags=["payments"])

_BATCH_DOC = (
    f"At most {MAX_LINES} lines: more is refused with 413 `BATCH_TOO_LARGE` and nothing is applied. Each line is "
    "checked on its own; rejected lines are listed in `rejections` with a code and a Chinese reason (and published "
    "in `collection.payments.rejected.v1`), the good lines are stored, matched and settled, all in one transaction. "
    "Cash, cash cheques, post-dated bills and securities are refused (`REFUSED_PAYMENT_METHOD`, 002 四). A line id "
    "received before with the same content is a duplicate (no change); with other content it is rejected "
    "`TAX_LINE_CONFLICT`."
)


@router.post("/batches", response_model=BatchResult, status_code=status.HTTP_201_CREATED,
             summary="Post a batch of collected payments (JSON, up to 10 000 lines)", description=_BATCH_DOC,
             openapi_extra=openapi.json_body(TaxPaymentBatchIn), dependencies=[TAX_SYSTEM])
def post_batch(body: RawJsonBody, settings: SettingsDep, session: SessionDep) -> BatchResult:
    # Decoded here (msgspec, in this worker thread), not by FastAPI on the event loop; answered as FastAPI would.
    batch = json_body.validated(TaxPaymentBatchIn, json_body.decoded(body))
    return service.receive_batch(session, list(enumerate(batch.lines, start=1)), source_format="json",
                                 region=settings.region)


@router.post("/batches/csv", response_model=BatchResult, status_code=status.HTTP_201_CREATED,
             summary="Post a batch of collected payments as CSV (UTF-8 or GBK) or .xlsx",
             description=_BATCH_DOC + "\n\nMultipart field `file`; the header row names the columns (Chinese header "
                         "or field name). A wrong column set is refused with 422 `IMPORT_COLUMNS_INVALID` naming "
                         f"the missing columns; line numbers are the file's row numbers. Columns:\n\n{CSV_DOC}",
             dependencies=[TAX_SYSTEM])
def post_batch_csv(
    settings: SettingsDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="CSV (UTF-8, UTF-8 BOM or GBK) or .xlsx with a header row")],
) -> BatchResult:
    data = file.file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise TooLarge("FILE_TOO_LARGE", f"上传文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB")
    lines = service.read_csv_lines(data)
    return service.receive_batch(session, lines, source_format="csv", region=settings.region)


@router.get("/batches", response_model=BatchPage, summary="Received batches, newest first (the bureau sees its own)",
            dependencies=[BATCH_READERS])
def list_batches(
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BatchPage:
    items, next_cursor = service.list_batches(session, after=after, limit=limit)
    return BatchPage(items=items, next_cursor=next_cursor)


@router.get("/batches/{batch_id}", response_model=BatchDetail,
            summary="A batch's summary: counts, totals per fund × period, every rejected line",
            dependencies=[BATCH_READERS])
def get_batch(batch_id: str, session: SessionDep) -> BatchDetail:
    return service.batch_detail(session, batch_id)


@router.get("/unmatched", response_model=PaymentPage,
            summary="Stored payments not matched to an assessment line, oldest first (cursor-paginated)",
            dependencies=[UNMATCHED_READERS])
def list_unmatched(
    session: SessionDep,
    fund: str | None = None,
    period: Period | None = None,
    employer_id: str | None = None,
    batch_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PaymentPage:
    items, next_cursor = service.list_unmatched(session, fund=fund, period=period, employer_id=employer_id,
                                                batch_id=batch_id, after=after, limit=limit)
    return PaymentPage(items=items, next_cursor=next_cursor)


@router.get("/{payment_id}", response_model=PaymentDetail,
            summary="One payment line with how it settled assessment lines (LateFeeCharge rows)",
            dependencies=[PAYMENT_READERS])
def get_payment(payment_id: str, session: SessionDep) -> PaymentDetail:
    return service.get_payment(session, payment_id)


@router.post("/{payment_id}/resolve", response_model=PaymentDetail,
             summary="Match an unmatched payment to an assessment line and settle it (principal, then late fee)",
             dependencies=[REVIEWERS])
def resolve_payment(payment_id: str, body: ResolveRequest, settings: SettingsDep,
                    session: SessionDep) -> PaymentDetail:
    return service.resolve_payment(session, payment_id, assessment_line_id=body.assessment_line_id, note=body.note,
                                   region=settings.region)
