"""Collection service (征缴与资金: declarations, assessments, tax collection, arrears, fund bank accounts.)"""

from fastapi import FastAPI

from services.collection import models
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings

SPEC = ServiceSpec(
    name="collection",
    title="sifund collection",
    description="征缴与资金: declarations, assessments, tax collection, arrears, fund bank accounts.",
    metadata=models.metadata,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
