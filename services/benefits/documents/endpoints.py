"""Benefits' documents: issue a recovery notice as PDF; the public verification every issuing service answers."""

from fastapi.responses import Response

from services.benefits.documents import service
from services.benefits.recovery import endpoints as recovery_routes
from services.benefits.recovery import service as recovery
from services.kernel.auth import allow
from services.kernel.documents.endpoints import PDF_RESPONSES, documents_router, pdf_response
from services.kernel.documents.registry import Readers
from services.kernel.service_app import EngineDep

# Fetched again by the readers of recovery notices, for a person of their area (as GET /recovery/notices/{id}).
router = documents_router({service.RECOVERY_NOTICE.code: Readers.like(
    recovery_routes.READERS, lambda session, document: recovery.get_notice(session, document.subject_id))})

@router.post("/recovery-notices/{notice_id}", status_code=201, response_class=Response, responses=PDF_RESPONSES,
             dependencies=[allow("agency_clerk")],
             summary="Issue the recovery notice as a document (追回社会保险待遇告知书, PDF)",
             description="A clerk of the person's area prints the notice to hand or send to the person: a new "
                         "document number and verification code each time (the registry keeps each one issued).")
def issue_recovery_notice(notice_id: str, engine: EngineDep) -> Response:
    return pdf_response(service.issue_recovery_notice(engine, notice_id))
