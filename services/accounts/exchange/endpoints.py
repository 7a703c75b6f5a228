"""Inter-department data (数据共享): partner systems upload batches; agency reviewers work the open lines."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from pydantic import ValidationError

from services.accounts.exchange import service
from services.accounts.exchange.schemas import (
    BatchKind,
    BatchPage,
    BatchResult,
    BatchUpload,
    DismissRequest,
    ExchangeRecordOut,
    RecordPage,
    RecordStatus,
    ResolveRequest,
)
from services.kernel.auth import allow
from services.kernel.errors import Invalid
from services.kernel.service_app import SessionDep

PARTNERS = allow("partner_system")
BATCH_READERS = allow("partner_system", "agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")
RECORD_READERS = allow("agency_reviewer", "agency_approver", "internal_auditor")
REVIEWERS = allow("agency_reviewer")

router = APIRouter(prefix="/exchange", tags=["exchange"])

_CREATED = {201: {"description": "received and applied"}, 200: {"description": "the same batch again: nothing changed"}}


def _answer(response: Response, result: BatchResult, created: bool) -> BatchResult:
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return result


@router.post("/batches", response_model=BatchResult, status_code=status.HTTP_201_CREATED, responses=_CREATED,
             summary="Upload a batch of partner data (JSON, up to 10 000 records)", dependencies=[PARTNERS])
def upload_batch(upload: BatchUpload, session: SessionDep, response: Response) -> BatchResult:
    result, created = service.receive_batch(session, upload)
    return _answer(response, result, created)


@router.post("/batches/csv", response_model=BatchResult, status_code=status.HTTP_201_CREATED, responses=_CREATED,
             summary="Upload a batch of partner data as CSV (UTF-8 or GBK, header row of field names)",
             dependencies=[PARTNERS])
def upload_batch_csv(
    session: SessionDep,
    response: Response,
    batch_key: Annotated[str, Form(min_length=1, max_length=100)],
    kind: Annotated[BatchKind, Form()],
    file: Annotated[UploadFile, File(description="CSV with a header row; columns as the JSON record fields")],
) -> BatchResult:
    records, _encoding = service.parse_csv(file.file.read(), kind)
    try:
        upload = BatchUpload(batch_key=batch_key, kind=kind, records=records)
    except ValidationError as exc:
        raise Invalid("VALIDATION_ERROR", "请求数据校验失败",
                      details=[{"loc": list(e["loc"]), "message": e["msg"]} for e in exc.errors()]) from None
    result, created = service.receive_batch(session, upload)
    return _answer(response, result, created)


@router.get("/batches", response_model=BatchPage, summary="Received batches (a partner sees its own), cursor-paginated",
            dependencies=[BATCH_READERS])
def list_batches(
    session: SessionDep,
    batch_key: str | None = None,
    kind: BatchKind | None = None,
    source: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> BatchPage:
    items, next_cursor = service.list_batches(session, batch_key=batch_key, kind=kind, source=source, after=after,
                                              limit=limit)
    return BatchPage(items=items, next_cursor=next_cursor)


@router.get("/batches/{batch_id}", response_model=BatchResult, summary="A batch's result and its lines' status now",
            dependencies=[BATCH_READERS])
def get_batch(batch_id: str, session: SessionDep) -> BatchResult:
    return service.batch_result(session, service.get_batch(session, batch_id))


@router.get("/records", response_model=RecordPage,
            summary="Lines by status for review (default: unmatched, conflict and invalid), cursor-paginated",
            dependencies=[RECORD_READERS])
def list_records(
    session: SessionDep,
    status_: Annotated[RecordStatus | None, Query(alias="status")] = None,
    batch_id: str | None = None,
    kind: BatchKind | None = None,
    citizen_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RecordPage:
    items, next_cursor = service.list_records(session, status=status_, batch_id=batch_id, kind=kind,
                                              citizen_id=citizen_id, after=after, limit=limit)
    return RecordPage(items=items, next_cursor=next_cursor)


@router.get("/records/{record_id}", response_model=ExchangeRecordOut, summary="One line of a batch",
            dependencies=[RECORD_READERS])
def get_record(record_id: str, session: SessionDep) -> ExchangeRecordOut:
    return service.get_record(session, record_id)


@router.post("/records/{record_id}/resolve", response_model=ExchangeRecordOut,
             summary="Re-match an unmatched or conflicting line against the registry now, and apply it",
             dependencies=[REVIEWERS])
def resolve_record(record_id: str, body: ResolveRequest, session: SessionDep) -> ExchangeRecordOut:
    return service.resolve_record(session, record_id, note=body.note,
                                  accept_name_difference=body.accept_name_difference)


@router.post("/records/{record_id}/dismiss", response_model=ExchangeRecordOut,
             summary="Close an open line without applying it, with a note", dependencies=[REVIEWERS])
def dismiss_record(record_id: str, body: DismissRequest, session: SessionDep) -> ExchangeRecordOut:
    return service.dismiss_record(session, record_id, note=body.note)
