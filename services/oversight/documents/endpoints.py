"""Documents oversight issues as PDF; the public verification every issuing service answers."""

from fastapi import APIRouter
from fastapi.responses import Response

from services.kernel.auth import allow
from services.kernel.documents.endpoints import PDF_RESPONSES, pdf_response, verification_router
from services.kernel.service_app import EngineDep
from services.oversight.documents import service

router = APIRouter(prefix="/documents", tags=["documents"])
router.include_router(verification_router())


@router.post("/inspection-feedback-letters/{inspection_id}", status_code=201, response_class=Response,
             responses=PDF_RESPONSES, dependencies=[allow("oversight_officer")],
             summary="Issue the inspection's feedback letter as a document (问题反馈函, PDF)",
             description="After the letter is recorded (POST /inspections/{id}/feedback-letter, 409 "
                         "FEEDBACK_LETTER_NOT_ISSUED before): every finding with its amount and deadline.")
def issue_feedback_letter(inspection_id: str, engine: EngineDep) -> Response:
    return pdf_response(service.issue_feedback_letter(engine, inspection_id))
