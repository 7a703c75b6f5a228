"""Collection service (征缴与资金): rates and bases, declarations and assessments, tax collection (TAX leg),
arrears and late fees, fund bank accounts and treasury (FINANCE leg)."""

from fastapi import FastAPI

from services.collection import models
from services.collection.arrears.endpoints import router as arrears_router
from services.collection.assessments.endpoints import router as assessments_router
from services.collection.documents.endpoints import router as documents_router
from services.collection.parameters.endpoints import router as parameters_router
from services.collection.payments.endpoints import router as payments_router
from services.collection.payments.jobs import JOB_KINDS
from services.collection.payments.jobs import router as tax_files_router
from services.collection.registry.endpoints import router as registry_router
from services.collection.registry.handlers import ACCOUNTS_CONSUMER
from services.collection.treasury.endpoints import router as treasury_router
from services.collection.assessments.service import SOURCE
from services.collection.documents.service import document_dossiers
from services.contracts.collection import CollectionArchiveItemsFiled
from services.kernel import archives
from services.kernel.jobs import job_runner, jobs_router
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings

SPEC = ServiceSpec(
    name="collection",
    title="sifund collection",
    description="征缴与资金: declarations, assessments, tax collection, arrears, fund bank accounts and treasury.",
    metadata=models.metadata,
    routers=[parameters_router, registry_router, assessments_router, tax_files_router, payments_router,
             arrears_router, treasury_router, jobs_router(JOB_KINDS), documents_router],
    consumers=[ACCOUNTS_CONSUMER],  # the registry mirror (services/collection/registry/handlers.py)
    background=[job_runner(*JOB_KINDS)],  # tax-line files beyond one request (payments/jobs.py)
    # Assessments and arrears notices go to the employers' dossiers accounts keeps.
    archive=archives.Filing(sink=archives.outbox_sink(CollectionArchiveItemsFiled, source=SOURCE),
                            document_dossiers=document_dossiers),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
