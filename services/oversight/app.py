"""Oversight service (基金监督): independent ledger, reconciliation, suspicion rules, cases. Fed only by events."""

from fastapi import FastAPI

from services.contracts.oversight import OversightArchiveItemsFiled
from services.kernel import archives
from services.kernel.jobs import job_runner, jobs_router
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings
from services.oversight import metrics, models  # noqa: F401 - metrics: registers the supervisor's figures
from services.oversight.budget.endpoints import router as budget_router
from services.oversight.cases.endpoints import dishonesty_router
from services.oversight.cases.endpoints import rectification_router as rectification_ledger_router
from services.oversight.cases.endpoints import router as cases_router
from services.oversight.cases.handlers import BENEFITS_CONSUMER as CASES_BENEFITS_CONSUMER
from services.oversight.chains.endpoints import router as chains_router
from services.oversight.documents.endpoints import router as documents_router
from services.oversight.documents.service import document_dossiers
from services.oversight.disclosure.endpoints import router as disclosure_router
from services.oversight.incidents.endpoints import router as incidents_router
from services.oversight.internal_control.endpoints import router as internal_control_router
from services.oversight.internal_control.handlers import INTERNAL_CONTROL_CONSUMER
from services.oversight.inspections.endpoints import router as inspections_router
from services.oversight.ledger.handlers import LEDGER_CONSUMERS
from services.oversight.rebuild import JOB_KINDS
from services.oversight.rebuild import router as ledger_router
from services.oversight.mirror.endpoints import router as mirror_router
from services.oversight.mirror.handlers import ACCOUNTS_CONSUMER, EXCHANGE_CONSUMER
from services.oversight.reconciliation.endpoints import router as reconciliation_router
from services.oversight.rules.endpoints import router as rules_router
from services.oversight.rules.handlers import RULES_CONSUMERS
from services.oversight.scheduler.endpoints import router as scheduler_router
from services.oversight.scheduler.service import create_scheduler
from services.oversight.whistleblowing.endpoints import router as whistleblowing_router

SPEC = ServiceSpec(
    name="oversight",
    title="sifund oversight",
    description="基金监督: the supervisor's independent copy of every fact, reconciliation and cases.",
    metadata=models.metadata,
    routers=[mirror_router, cases_router, rectification_ledger_router, dishonesty_router, chains_router,
             reconciliation_router, rules_router,
             whistleblowing_router, incidents_router, inspections_router, budget_router, disclosure_router,
             scheduler_router, ledger_router, jobs_router(JOB_KINDS), documents_router, internal_control_router],
    consumers=[ACCOUNTS_CONSUMER, EXCHANGE_CONSUMER, CASES_BENEFITS_CONSUMER, INTERNAL_CONTROL_CONSUMER,
               *LEDGER_CONSUMERS,
               *RULES_CONSUMERS],  # the rules last: they read what the mirror and the ledger applied
    # chain verification, case escalation, the rule sweep (scheduler/service.py); the rebuild from the streams
    # (rebuild.py)
    background=[create_scheduler, job_runner(*JOB_KINDS)],
    # Steps of cases that name a person or an employer go to the dossiers accounts keeps.
    # The inspection feedback letter goes to the inspected employer's dossier or the inspection's own.
    archive=archives.Filing(sink=archives.outbox_sink(OversightArchiveItemsFiled, source="oversight"),
                            document_dossiers=document_dossiers),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
