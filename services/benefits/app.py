"""Benefits service (待遇): claims, approvals, payroll, bank payments, eligibility upkeep and recovery."""

from fastapi import FastAPI

from services.benefits import models
from services.benefits.claims.endpoints import router as claims_router
from services.benefits.documents.endpoints import router as documents_router
from services.benefits.eligibility.endpoints import router as eligibility_router
from services.benefits.parameters.endpoints import router as parameters_router
from services.benefits.payroll.endpoints import router as payroll_router
from services.benefits.payroll.result_files import JOB_KINDS
from services.benefits.recovery.endpoints import router as recovery_router
from services.benefits.registry.endpoints import router as registry_router
from services.benefits.registry.handlers import ACCOUNTS_CONSUMER, COLLECTION_CONSUMER, EXCHANGE_CONSUMER
from services.benefits.claims.service import SOURCE
from services.benefits.documents.service import document_dossiers
from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.kernel import archives
from services.kernel.jobs import job_runner, jobs_router
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings

SPEC = ServiceSpec(
    name="benefits",
    title="sifund benefits",
    description="待遇: claims, approvals, payroll, bank payments, eligibility upkeep, recovery of overpayments.",
    metadata=models.metadata,
    routers=[registry_router, parameters_router, claims_router, payroll_router, eligibility_router, recovery_router,
             documents_router, jobs_router(JOB_KINDS)],
    background=[job_runner(*JOB_KINDS)],  # bank result files uploaded by the cashier (payroll/result_files.py)
    # The registry mirror (persons, payment accounts, life status with its effects, the contribution index).
    consumers=[ACCOUNTS_CONSUMER, EXCHANGE_CONSUMER, COLLECTION_CONSUMER],
    # Claim decisions, payroll lines and recovery notices go to the dossiers accounts keeps.
    archive=archives.Filing(sink=archives.outbox_sink(BenefitsArchiveItemsFiled, source=SOURCE),
                            document_dossiers=document_dossiers),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
