"""The catalogue of the platform's services: name → spec and app factory. Used by the CLI, launcher and tests."""

from importlib import import_module

from services.kernel.service_app import ServiceSpec
from services.kernel.settings import SERVICES


def spec(service: str) -> ServiceSpec:
    if service not in SERVICES:
        raise KeyError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return import_module(f"services.{service}.app").SPEC


def app_factory_path(service: str) -> str:
    """What uvicorn is given: ``services.<name>.app:create_app`` (with ``--factory``)."""
    return f"services.{service}.app:create_app"
