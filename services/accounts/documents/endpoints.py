"""Documents accounts issues as PDF; the public verification every issuing service answers."""

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response

from services.accounts.archives import endpoints as archive_routes
from services.accounts.archives import export as archive_export
from services.accounts.archives import service as archive
from services.accounts.documents import service
from services.accounts.internal_control import endpoints as control_routes
from services.accounts.internal_control import report as control_report
from services.accounts.ledger import endpoints as ledger_routes
from services.accounts.persons import service as persons
from services.kernel import clock
from services.kernel.auth import allow
from services.kernel.documents.endpoints import PDF_RESPONSES, documents_router, pdf_response
from services.kernel.documents.registry import Readers
from services.kernel.service_app import EngineDep

# Fetched again by the readers of what each is about, for what their area covers: a person's statement as the
# individual account (GET /individual-accounts/{id}); a dossier's catalogue and notes sheet as the dossier; the
# yearly internal-control report as GET /internal-control/reports.
_DOSSIER = Readers.like(archive_routes.READERS, lambda session, document: archive.get_dossier(session,
                                                                                             document.subject_id))
router = documents_router({
    service.ACCOUNT_STATEMENT.code: Readers.like(
        ledger_routes.READERS, lambda session, document: persons.get_person(session, document.subject_id)),
    archive_export.CATALOGUE.code: _DOSSIER,
    archive_export.NOTES.code: _DOSSIER,
    control_report.CONTROL_REPORT.code: Readers.like(control_routes.READERS, control_report.may_read),
})


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
