"""When the scheduler runs what, and as whom: configuration, not code, read from ``SIFUND_OVERSIGHT_SCHEDULER_*``
environment variables (or ``.env``).

The client credential (``CLIENT_ID`` / ``CLIENT_SECRET``) is a gateway system client with the ``oversight_officer``
role; ``sifund up`` provisions one on first start and passes it to the oversight process. Without it the jobs that
call other services are recorded as ``skipped`` (and logged), never run with someone else's token.
"""

from datetime import time
from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIFUND_OVERSIGHT_SCHEDULER_", env_file=".env", extra="ignore")

    # Off: the loop does not start (GET /scheduler/jobs still lists the jobs; an officer may still run one now).
    enabled: bool = True
    # Jobs the loop leaves alone, e.g. SIFUND_OVERSIGHT_SCHEDULER_DISABLED_JOBS='["sweep"]'.
    disabled_jobs: frozenset[str] = frozenset()
    # How often the loop looks for a due job.
    poll_seconds: float = 30.0
    # A run holds its job's lease (a row in ``scheduled_job``) for this long and renews it every third of it while
    # it runs; a process that dies mid-run frees the job when the lease runs out.
    lease_seconds: float = 300.0
    # On shutdown, how long a running job may take to finish before it is cancelled.
    stop_grace_seconds: float = 10.0

    # Audit-chain verification of accounts, collection, benefits and the gateway (OVERSIGHT.md).
    chains_interval_seconds: float = 15 * 60
    # Escalation of overdue cases (at most once per case per escalation interval, so running often is harmless).
    escalations_interval_seconds: float = 60 * 60
    # The suspicion-rule sweep: daily at this time of day in China (UTC+8) …
    sweep_at: time = time(2, 0)
    # … or, when set, every this many seconds instead.
    sweep_interval_seconds: float | None = None

    # The gateway system client the scheduler acts as (client-credentials grant at the gateway's /auth/token).
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret and self.client_secret.get_secret_value())


@lru_cache
def scheduler_settings() -> SchedulerSettings:
    return SchedulerSettings()
