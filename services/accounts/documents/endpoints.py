"""Documents accounts issues as PDF; the public verification every issuing service answers."""

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response

from services.accounts.documents import service
from services.kernel import clock
from services.kernel.auth import allow
from services.kernel.documents.endpoints import PDF_RESPONSES, documents_router, pdf_response
from services.kernel.service_app import EngineDep

router = documents_router()


@router.post("/account-statements/{person_id}", status_code=201, response_class=Response, responses=PDF_RESPONSES,
             dependencies=[allow("agency_clerk")],
             summary="Issue a person's individual account statement for a year (个人权益记录, PDF)",
             description="社会保险法 第七十四条: the record of the person's rights, sent to them. A clerk of the "
                         "person's area; 404 ACCOUNT_NOT_FOUND when the person has no individual account.")
def issue_account_statement(
    person_id: str,
    engine: EngineDep,
    year: Annotated[int | None, Query(ge=1990, le=2200, description="default: this year")] = None,
) -> Response:
    return pdf_response(service.issue_account_statement(engine, person_id, year or clock.china_today().year))
