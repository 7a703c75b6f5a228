"""Accounts service (参保登记): employers, persons, enrolments, individual accounts, inter-department data."""

from fastapi import FastAPI

from services.accounts import models
from services.accounts.archives.endpoints import router as archives_router
from services.accounts.archives.jobs import ARCHIVE_JOBS
from services.accounts.archives.filing import FILING
from services.accounts.archives.handlers import ARCHIVE_CONSUMERS
from services.accounts.employers.endpoints import router as employers_router
from services.accounts.documents.endpoints import router as documents_router
from services.accounts.enrolments.endpoints import router as enrolments_router, verification_router
from services.accounts.exchange.endpoints import router as exchange_router
from services.accounts.imports.endpoints import router as imports_router
from services.accounts.internal_control.endpoints import router as internal_control_router
from services.accounts.internal_control.jobs import CONTROL_JOBS
from services.accounts.imports.jobs import IMPORT_KINDS
from services.accounts.ledger.endpoints import router as ledger_router
from services.accounts.persons.endpoints import corrections_router, router as persons_router
from services.accounts.posting.endpoints import router as posting_router
from services.accounts.posting.handlers import POSTING_CONSUMER
from services.kernel.jobs import job_runner, jobs_router
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings

SPEC = ServiceSpec(
    name="accounts",
    title="sifund accounts",
    description="参保登记: the registry of employers, insured persons, enrolments and individual accounts.",
    metadata=models.metadata,
    routers=[employers_router, persons_router, corrections_router, enrolments_router, ledger_router, exchange_router,
             imports_router, verification_router, posting_router,
             jobs_router([*IMPORT_KINDS.values(), *ARCHIVE_JOBS, *CONTROL_JOBS]),
             documents_router, archives_router, internal_control_router],
    # posts what collection reports collected (AGENCY leg); files the other services' archive items
    consumers=[POSTING_CONSUMER, *ARCHIVE_CONSUMERS],
    # large imports (imports/jobs.py), the archive's seal, backfill and exports (archives/jobs.py), internal control's draws
    background=[job_runner(*IMPORT_KINDS.values(), *ARCHIVE_JOBS, *CONTROL_JOBS)],
    archive=FILING,  # accounts keeps the dossiers: its own acts are filed straight into them
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
