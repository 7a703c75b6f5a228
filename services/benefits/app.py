"""Benefits service (待遇: claims, approvals, payroll, bank payments, eligibility upkeep, recovery.)"""

from fastapi import FastAPI

from services.benefits import models
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings

SPEC = ServiceSpec(
    name="benefits",
    title="sifund benefits",
    description="待遇: claims, approvals, payroll, bank payments, eligibility upkeep, recovery.",
    metadata=models.metadata,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
