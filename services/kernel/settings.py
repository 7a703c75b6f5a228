"""Platform settings: one ``Settings`` object, read from ``SIFUND_*`` environment variables (or ``.env``).

It is the only place that reads configuration from the environment (tests/test_settings_rules.py checks it). A
service's domain figures are sections of it (services/kernel/settings_sections.py), each keeping its documented
variable names. ``create_service_app(spec, settings)`` makes the settings it is given the process's settings
(:func:`activate`); endpoints take the app's settings through ``SettingsDep`` (services/kernel/service_app.py), and
code with no request at hand (event handlers, rules, jobs) calls :func:`get_settings`. Tests build
``Settings(...)`` with overrides and pass it to the app.

Every port derives from ``SIFUND_PORT_BASE`` and every file lives under ``SIFUND_DATA_DIR`` so that several
instances (a developer's, the test suite's) can run side by side on one machine.
"""

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.kernel.settings_sections import (
    BenefitsUpkeepSettings,
    JobSettings,
    OversightBudgetSettings,
    OversightCaseSettings,
    OversightRuleSettings,
    OversightSchedulerSettings,
    Section,
    WhistleblowingSettings,
)

SERVICES = ("accounts", "collection", "benefits", "oversight")
# Offsets from SIFUND_PORT_BASE; the gateway takes the base itself.
PORT_OFFSETS = {"gateway": 0, "accounts": 1, "collection": 2, "benefits": 3, "oversight": 4, "nats": 10, "nats_monitor": 11}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIFUND_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    # The pooling region (统筹区) this deployment serves, as a 行政区划代码; default: 呼和浩特市.
    region: str = "150100"
    host: str = "127.0.0.1"
    port_base: int = 8000

    # Each service owns its database; empty means a SQLite file under data_dir.
    accounts_database_url: str | None = None
    collection_database_url: str | None = None
    benefits_database_url: str | None = None
    oversight_database_url: str | None = None
    gateway_database_url: str | None = None

    # Where the gateway finds each service; empty means host:port_base+offset. Several comma-separated URLs are the
    # service's replicas: the gateway balances across them (gateway/upstream.py); a service calling another uses
    # the first.
    accounts_url: str | None = None
    collection_url: str | None = None
    benefits_url: str | None = None
    oversight_url: str | None = None
    # Where services reach the gateway (oversight pulls the identity reports and the gateway's audit chain).
    gateway_url: str | None = None

    # One URL, or several comma-separated (the seed servers of a NATS cluster; the client learns the rest).
    nats_url: str | None = None
    # Replicas of every stream and durable consumer: 1 on the embedded single server, 3 on a 3-node cluster
    # (survives the loss of one node). Changing it updates existing streams and consumers.
    nats_replicas: int = Field(default=1, ge=1, le=5)
    nats_monitor_url: str | None = None
    # JetStream de-duplication window: a relay that re-publishes after a crash within it is a no-op.
    stream_duplicate_window_seconds: float = 600.0

    outbox_batch_size: int = 500
    outbox_poll_seconds: float = 0.2
    # Published outbox rows are kept this long for operators (JetStream keeps the events themselves), then deleted
    # by the relay in small batches; None keeps them forever. A city writes millions of lines a month.
    outbox_retention_hours: float | None = 24.0 * 7
    consumer_batch_size: int = 500
    # After start-up, move the objects alive then (modules, models, metadata: ~200 000 in a service) out of the
    # collector's reach with gc.freeze(): they live as long as the process, and every full collection re-scanned them
    # (~75 ms, about once per 100 bulk events; a 1 000-line event parsed 2.11 → 1.34 ms). Process-wide, so off by
    # default (a test process starts many apps); `sifund up` turns it on for its service processes.
    gc_freeze_after_startup: bool = False
    # A message that fails this many deliveries goes to the dead-letter table instead of being retried forever.
    consumer_max_attempts: int = 5
    consumer_retry_delay_seconds: float = 1.0
    # An event that must wait (it names an entity another stream has not delivered yet, or the database had a
    # transient error) is retried at least this long after it was published before it is dead-lettered: longer
    # than any restart or stream-leader election, short enough for an operator to hear of a real gap the same hour.
    consumer_gap_patience_seconds: float = Field(default=600.0, ge=0)
    consumer_ack_wait_seconds: float = 30.0
    # A consumer commits a fetched batch in chunks of at most this much work (or this many events), so that no
    # writer holds SQLite's one write lock for long and readers' snapshots stay fresh; each chunk's messages are
    # acknowledged right after its commit.
    consumer_transaction_seconds: float = Field(default=1.0, ge=0)
    consumer_transaction_events: int = Field(default=500, ge=1)

    # Connections per service process. Readers never take the write lock (snapshot sessions), so SQLite serves many
    # at once; a request that finds every connection taken waits ``database_pool_timeout_seconds`` for one.
    database_pool_size: int = Field(default=20, ge=1)
    database_pool_overflow: int = Field(default=40, ge=0)
    database_pool_timeout_seconds: float = Field(default=20.0, gt=0)
    # SQLite's page cache per connection (its default is 2 MB). A month of a city is a million assessment lines and
    # as many payments, each indexed four ways: with 2 MB the indexes' pages are read again from the OS for nearly
    # every line and a large transaction spills dirty pages before its commit. 64 MB took the 1 000 000-line month
    # from 226.8 to 185.3 µs CPU per line (bench/month_real_path.py); the memory is taken only as pages are read, by
    # each connection that reads them (collection's peak RSS 424 → 870 MB in that month).
    sqlite_cache_mb: int = Field(default=64, ge=1)
    # How large a service's WAL grows (in 4 KiB pages) before the committing connection copies it back into the
    # database (SQLite's default is 1 000 pages, 4 MB: a 10 000-line batch checkpointed at nearly every commit). A
    # page written by several commits in between is copied once; inserting 1 000 000 rows into a table indexed
    # like collection's in 10 000-row transactions cost 14.2 µs CPU a row at 1 000 pages, 13.1 at 16 384 (SQLite
    # alone through the sqlite3 module, synchronous=FULL, two runs each at load ~7). The file is cut back to this
    # size after each checkpoint (journal_size_limit); a crash replays at most this much.
    sqlite_wal_pages: int = Field(default=16384, ge=100)

    gateway_connect_timeout_seconds: float = 2.0
    gateway_read_timeout_seconds: float = 30.0
    # A service calling another (benefits verifying with accounts, oversight reading audit chains) gives up after
    # this long and answers 503 DEPENDENCY_UNAVAILABLE: well before the gateway's own timeout, so that an outage is
    # named as such instead of surfacing as the gateway's 504 after 30 s.
    internal_call_timeout_seconds: float = 5.0

    # Chinese working days the chinesecalendar package does not know yet: a JSON file transcribing the State
    # Council's yearly holiday arrangement (format in services/kernel/workdays.py); a year in it replaces the package's.
    workday_calendar_file: Path | None = None

    # `sifund up` restarts a child that died on its own after a backoff doubling from the initial value up to the
    # maximum; a child restarted max_restarts times within window_seconds is marked failed (the others keep serving).
    supervisor_backoff_initial_seconds: float = Field(default=0.5, gt=0)
    supervisor_backoff_max_seconds: float = Field(default=30.0, gt=0)
    supervisor_max_restarts: int = Field(default=5, ge=0)
    supervisor_window_seconds: float = Field(default=300.0, gt=0)

    log_level: str = "INFO"
    # Logs (README, "Operations: metrics and logs"): `sifund up` writes each child's lines to <data dir>/logs/<name>.log
    # and rotates the file past log_max_bytes, keeping log_backup_count older files (<name>.log.1 …).
    log_max_bytes: int = Field(default=50 * 1024 * 1024, ge=4096)
    log_backup_count: int = Field(default=5, ge=0, le=100)
    # /metrics of every process answers only a direct caller (no X-Forwarded-For/Forwarded: not through the gateway
    # or another proxy) from one of these networks, or one presenting "Authorization: Bearer <metrics_token>".
    metrics_allowed_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    metrics_token: SecretStr | None = None
    # Figures a scrape computes from a service's database (oversight's reconciliation cells and cases) are reused
    # this long: recomputing a large city's cells costs seconds of oversight's CPU.
    metrics_database_refresh_seconds: float = Field(default=120.0, ge=0)

    # Tokens: Ed25519-signed JWTs. The gateway signs with the private key; every service verifies with the public
    # key alone. PEM text in the setting wins over the file; without either, a dev key pair is generated under
    # data_dir/keys on first run (never committed: var/ is ignored).
    jwt_private_key: str | None = None
    jwt_public_key: str | None = None
    jwt_private_key_path: Path | None = None
    jwt_public_key_path: Path | None = None
    jwt_issuer: str = "sifund-gateway"
    jwt_audience: str = "sifund"
    access_token_minutes: int = 15
    # Access tokens each process keeps verified (by hash, until they expire; services/kernel/auth.VerifiedTokens):
    # a cached token costs a hash and a time check instead of an Ed25519 verification. 0 turns the cache off.
    token_cache_size: int = Field(default=10_000, ge=0)
    refresh_token_hours: int = 8
    # The console (gateway/console) keeps a user's tokens in an httpOnly cookie encrypted and authenticated with this
    # Fernet key (32 url-safe base64 bytes). Without it, one is generated under data_dir/keys on first run (mode 0600,
    # shared by every gateway process of the data directory); never printed.
    console_session_key: SecretStr | None = None
    console_session_key_path: Path | None = None

    # Password policy and lockout (identity store in the gateway).
    password_min_length: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15

    # Gateway processes under `sifund up` (uvicorn --workers). Each has its own rate-limit buckets and its own view of
    # which upstream is down (gateway/guard.py, gateway/upstream.py), as separate gateway replicas would.
    gateway_workers: int = Field(default=1, ge=1, le=64)
    # The services' own access log (services.kernel.web.RequestMiddleware): a line per request, also logged by the
    # gateway that forwarded it; off saves a masked JSON line per request in the service. The gateway always logs.
    service_access_log: bool = True

    # Gateway guard.
    rate_limit_per_principal_per_minute: int = 1200
    rate_limit_per_ip_per_minute: int = 2400
    rate_limit_token_per_ip_per_minute: int = 20
    max_request_bytes: int = 16 * 1024 * 1024  # a 10 000-line bulk upload fits
    # A file uploaded to run as a job (imports, a tax-line file), at the gateway and in the service: a city's person
    # or enrolment file, or ~3.7 million tax lines of ~140 bytes; spooled to disk and stored in parts, never in memory.
    max_upload_bytes: int = 512 * 1024 * 1024
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000"])

    # Domain sections, each read from its own variables (``Section.env_prefix``), e.g. SIFUND_BENEFITS_*,
    # SIFUND_OVERSIGHT_SCHEDULER_*: see services/kernel/settings_sections.py.
    benefits_upkeep: BenefitsUpkeepSettings = Field(default_factory=BenefitsUpkeepSettings)
    oversight_cases: OversightCaseSettings = Field(default_factory=OversightCaseSettings)
    oversight_scheduler: OversightSchedulerSettings = Field(default_factory=OversightSchedulerSettings)
    oversight_budget: OversightBudgetSettings = Field(default_factory=OversightBudgetSettings)
    oversight_rules: OversightRuleSettings = Field(default_factory=OversightRuleSettings)
    whistleblowing: WhistleblowingSettings = Field(default_factory=WhistleblowingSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Priority as pydantic-settings' own: arguments, then the environment, then .env; a section's values given
        # as arguments are merged field by field over those of the environment (a dict) or replace them (a model).
        return init_settings, env_settings, dotenv_settings, _SectionSource(settings_cls), file_secret_settings

    @field_validator("nats_url")
    @classmethod
    def _nats_urls(cls, value: str | None) -> str | None:
        if value is not None:
            nats_server_list(value)
        return value

    def port(self, component: str) -> int:
        return self.port_base + PORT_OFFSETS[component]

    def database_url(self, service: str) -> str:
        url = getattr(self, f"{service}_database_url")
        return url or f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def service_url(self, service: str) -> str:
        """The service's first (or only) URL: ``SIFUND_<SERVICE>_URL`` may list every replica, comma-separated."""
        return self.service_urls(service)[0]

    def service_urls(self, service: str) -> list[str]:
        url = getattr(self, f"{service}_url")
        if not url:
            return [f"http://{self.host}:{self.port(service)}"]
        return [u.strip().rstrip("/") for u in url.split(",") if u.strip()]

    @property
    def console_session_key_file(self) -> Path:
        return self.console_session_key_path or self.data_dir / "keys" / "console_session.key"

    @property
    def private_key_file(self) -> Path:
        return self.jwt_private_key_path or self.data_dir / "keys" / "jwt_ed25519.pem"

    @property
    def public_key_file(self) -> Path:
        return self.jwt_public_key_path or self.data_dir / "keys" / "jwt_ed25519.pub.pem"

    @property
    def nats_server_url(self) -> str:
        return self.nats_url or f"nats://{self.host}:{self.port('nats')}"

    @property
    def nats_servers(self) -> list[str]:
        return nats_server_list(self.nats_server_url)

    @property
    def nats_monitor(self) -> str:
        return (self.nats_monitor_url or f"http://{self.host}:{self.port('nats_monitor')}").rstrip("/")


def nats_server_list(urls: str) -> list[str]:
    """``nats://a:4222, nats://b:4222`` → the list nats-py takes as ``servers``."""
    servers = [url.strip() for url in urls.split(",") if url.strip()]
    if not servers:
        raise ValueError(f"no NATS server URL in {urls!r}")
    return servers


class _SectionSource(PydanticBaseSettingsSource):
    """Each section's fields from ``<section.env_prefix><FIELD>`` (environment over ``.env``)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # noqa: ANN401
        return None, field_name, False  # unused: __call__ reads whole sections

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            section = field.annotation
            if not (isinstance(section, type) and issubclass(section, Section)):
                continue
            found: dict[str, Any] = {}
            found.update(DotEnvSettingsSource(section, env_file=self.config.get("env_file"),  # type: ignore[arg-type]
                                              env_prefix=section.env_prefix)())
            found.update(EnvSettingsSource(section, env_prefix=section.env_prefix)())  # type: ignore[arg-type]
            if found:
                values[name] = found
        return values


_active: Settings | None = None


def activate(settings: Settings) -> Settings:
    """Make ``settings`` the process's settings (what :func:`get_settings` returns from now on)."""
    global _active
    _active = settings
    return settings


def get_settings() -> Settings:
    """The process's settings: those of the app it serves (``create_service_app`` activates them), else the
    environment's, read once at the first call."""
    return _active if _active is not None else activate(Settings())


def app_settings(request: Request) -> Settings:
    """The settings of the app serving the request (the dependency behind ``SettingsDep``)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]
