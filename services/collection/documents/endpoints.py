"""Documents collection issues as PDF; the public verification every issuing service answers."""

from fastapi.responses import Response

from services.collection.arrears import endpoints as arrears_routes
from services.collection.documents import service
from services.kernel.auth import allow
from services.kernel.documents.endpoints import PDF_RESPONSES, documents_router, pdf_response
from services.kernel.documents.registry import Readers
from services.kernel.service_app import EngineDep

# Fetched again by the readers of arrears notices (GET /arrears/notices), for an employer of their area.
router = documents_router({service.ARREARS_NOTICE.code: Readers.like(arrears_routes.READERS, service.may_read)})


@router.post("/arrears-notices/{notice_id}", status_code=201, response_class=Response, responses=PDF_RESPONSES,
             dependencies=[allow("agency_clerk")],
             summary="Issue an arrears notice as a document (社会保险费催缴通知书, PDF)",
             description="From a notice issued with POST /arrears/notices: principal and late fee to its as-of day "
                         "(社会保险法 第八十六条), per contribution type and month; a clerk of the employer's area.")
def issue_arrears_notice(notice_id: str, engine: EngineDep) -> Response:
    return pdf_response(service.issue_arrears_notice(engine, notice_id))
