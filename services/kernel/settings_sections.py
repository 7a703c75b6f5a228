"""The sections of the one ``Settings`` (services/kernel/settings.py) that configure a single service's domain.

They are plain models: only ``Settings`` reads the environment. Each section names the prefix of its environment
variables (``env_prefix``), so that a figure keeps the name it is documented under, e.g.
``SIFUND_OVERSIGHT_RULES_LARGE_AMOUNT_THRESHOLD_FEN`` → ``settings.oversight_rules.large_amount_threshold_fen``.
Tests and embeddings pass overrides the same way as for any other setting:
``Settings(oversight_rules={"large_amount_threshold_fen": 1})``.

The sections are declared here, in the kernel, rather than in the services they configure: the kernel imports no
service (the import contracts), and one module listing every knob is what an operator reads. The figures are
*default* policy (DOMAIN.md: configuration per region and year, never constants buried in code).
"""

from datetime import time
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr


class Section(BaseModel):
    """A group of settings read from the environment variables ``<env_prefix><FIELD>``."""

    env_prefix: ClassVar[str]


class BenefitsUpkeepSettings(Section):
    """Figures of eligibility upkeep and recovery (benefits). The benefit parameters document of the region
    (``BenefitParameters``, owned by claims) is the place for them once it carries these keys."""

    env_prefix: ClassVar[str] = "SIFUND_BENEFITS_"

    # A beneficiary must prove being alive at least this often (001 第二十六条: at least once a year).
    survival_interval_months: int = Field(default=12, ge=1, le=24)
    # How long a survival notice gives before the benefit is suspended.
    survival_notice_days: int = Field(default=30, ge=1, le=365)
    # The deadline of a recovery notice (追回社会保险待遇告知书, 001 第二十九条(四): 责令限期退还).
    recovery_deadline_days: int = Field(default=30, ge=1, le=365)
    # Later regular payments may be offset within this many months after payment resumed (001 第二十九条(五):
    # 恢复发放后一年内定期待遇).
    offset_window_months: int = Field(default=12, ge=1, le=60)


class OversightCaseSettings(Section):
    """Case-workflow figures (oversight cases)."""

    env_prefix: ClassVar[str] = "SIFUND_OVERSIGHT_"

    # Days a unit has to verify and report (001 第二十九条 在规定时限内上报) when the opener names none.
    default_deadline_days: int = 30
    # An overdue case escalates again at most once per this many days.
    escalation_interval_days: int = 7
    # Class 4 and 5 cases qualify for the dishonesty list (001 第三十条) from this amount (fen); class 6 always.
    serious_amount_fen: int = 1_000_000
    # The unit cases are issued to when the opener names none (the pooling region's agency).
    default_unit: str = "社会保险经办机构"
    # Broken or rewound audit chains are issued to the agency's information department (信息数据部门).
    chain_unit: str = "社会保险经办机构信息数据部门"
    # RecoveryEscalated (001 第二十九条(五)): days the agency has to start the audit.
    recovery_case_deadline_days: int = 30


class OversightSchedulerSettings(Section):
    """When the oversight scheduler runs what, and as whom.

    The client credential (``CLIENT_ID`` / ``CLIENT_SECRET``) is a gateway system client with the
    ``oversight_officer`` role; ``sifund up`` provisions one on first start and passes it to the oversight process.
    Without it the jobs that call other services are recorded as ``skipped`` (and logged), never run with someone
    else's token.
    """

    env_prefix: ClassVar[str] = "SIFUND_OVERSIGHT_SCHEDULER_"

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


class JobSettings(Section):
    """Background jobs of every service (``services.kernel.jobs``)."""

    env_prefix: ClassVar[str] = "SIFUND_JOBS_"

    # A running job holds a lease on its row for this long, renewed with every chunk and by a heartbeat; a process
    # that dies mid-job frees it when the lease runs out, and another replica (or the restarted one) resumes it.
    lease_seconds: float = Field(default=60.0, gt=0)
    # How often the runner looks for jobs left unfinished (by a dead process) besides the ones submitted to it.
    poll_seconds: float = Field(default=5.0, gt=0)
    # On shutdown, how long the job in hand may take to finish its chunk before it is cancelled (it resumes later).
    stop_grace_seconds: float = Field(default=10.0, ge=0)
    # At most this many rows (lines) per chunk of any job; none: each kind's own size (1 000 import rows, 10 000 tax
    # lines). Smaller chunks mean shorter write transactions and finer progress, at the price of more commits.
    chunk_rows: int | None = Field(default=None, ge=1)


class OversightBudgetSettings(Section):
    """Budget-execution figures (oversight budget)."""

    env_prefix: ClassVar[str] = "SIFUND_OVERSIGHT_BUDGET_"

    # 002 三(一) 预警: warn when an item's execution rate deviates from the time progress (months / 12) by more than
    # this many percentage points, either way.
    warning_threshold_points: Decimal = Decimal(10)


class OversightRuleSettings(Section):
    """Thresholds of the suspicion rules (oversight rules)."""

    env_prefix: ClassVar[str] = "SIFUND_OVERSIGHT_RULES_"

    # S06 (001 第十八条): a single payment above this needs the extra review (大额复核). Benefits keeps its own figure
    # in its parameter sets, which oversight does not receive; the default is the same (50 000 yuan).
    large_amount_threshold_fen: int = 5_000_000
    # S08 (001 第二十二条): statutory retirement ages (国发〔1978〕104号): men; women in cadre / worker posts.
    statutory_age_male: int = 60
    statutory_age_female_cadre: int = 55
    statutory_age_female_worker: int = 50
    # S09 (001 第二十一条): a one-off back payment covering at least this many months, or at least this amount.
    back_payment_months: int = 36
    back_payment_amount_fen: int = 5_000_000
    # S04 (001 第二十六条, at least one survival certification a year): months after which it is overdue.
    survival_months: int = 12
    # S10 (003 三.6): the average base of the last ``recent`` months before retirement at least ``percent`` % of the
    # average of the ``earlier`` months before those, each window with at least ``min_months`` months assessed.
    base_rise_percent: int = 150
    base_rise_recent_months: int = 12
    base_rise_earlier_months: int = 36
    base_rise_min_months: int = 6
    # S11 (003 三.5): days after the market-regulation registration by which the employer must be registered.
    business_registration_days: int = 30
    # S20 (001 第十六条): years on a high-risk post.
    tenure_years: int = 5
    # S19: hours a life-status change citing partner data may precede the partner record's arrival (two streams).
    life_change_grace_hours: int = 24
    # S12–S16: months of reconciliation cells a sweep looks at by default — the months before ``as_of``'s month
    # (a month is reconciled once it is over: 每月对账).
    reconciliation_months: int = 1


class WhistleblowingSettings(Section):
    """The public intake's own per-IP limits (oversight whistleblowing)."""

    env_prefix: ClassVar[str] = "SIFUND_WHISTLEBLOWING_"

    # Public intake: a burst of this many reports per IP, refilled at this many per hour.
    intake_burst: int = 5
    intake_per_hour: int = 20
    # Public tracking look-ups (a guard against trying codes): burst and per hour, per IP.
    track_burst: int = 30
    track_per_hour: int = 300
