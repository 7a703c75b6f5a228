"""The oversight scheduler in tests: its settings with every interval far away, an oversight app whose gateway is
nowhere, free ports."""

import socket

from services.kernel.service_app import create_service_app
from services.kernel.settings_sections import OversightSchedulerSettings as SchedulerSettings
from sifund import services as catalogue

FAR = 24 * 3600.0  # an interval that does not come round during a test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def schedule(**overrides) -> SchedulerSettings:
    values = dict(enabled=True, poll_seconds=0.05, lease_seconds=5.0, stop_grace_seconds=5.0,
                  chains_interval_seconds=FAR, escalations_interval_seconds=FAR, sweep_interval_seconds=FAR,
                  client_id=None, client_secret=None)
    values.update(overrides)
    return SchedulerSettings(**values)


def nowhere(make_settings, nats_server, **overrides):  # noqa: ANN001, ANN201
    """Oversight settings whose other components and gateway are at ports where nothing listens."""
    values = dict(accounts_url=free_url(), collection_url=free_url(), benefits_url=free_url(), gateway_url=free_url(),
                  port_base=free_port())
    values.update(overrides)
    return make_settings(nats_server.url, **values)


def oversight_app(settings, scheduler: SchedulerSettings):  # noqa: ANN001, ANN201
    return create_service_app(catalogue.spec("oversight"), settings.model_copy(update={"oversight_scheduler": scheduler}))
