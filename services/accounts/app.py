"""Accounts service (参保登记): employers, persons, enrolments, individual accounts, inter-department data."""

from fastapi import FastAPI

from services.accounts import models
from services.accounts.employers.endpoints import router as employers_router
from services.kernel.service_app import ServiceSpec, create_service_app
from services.kernel.settings import Settings

SPEC = ServiceSpec(
    name="accounts",
    title="sifund accounts",
    description="参保登记: the registry of employers, insured persons, enrolments and individual accounts.",
    metadata=models.metadata,
    routers=[employers_router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings)
