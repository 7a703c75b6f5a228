"""What a supervisor watches, read from oversight's own books at scrape time (``services.kernel.metrics``): cases
by rule and severity (opened, open, overdue), audit chains found broken, major incidents past their deadline, and
the reconciliation cells of recent months (and of the latest the ledger holds) by check and status — closed months marked, since a cell that is still
not matched after the month was closed is what an alert is for."""

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import case, func, or_, select
from sqlmodel import Session

from services.kernel import clock, metrics
from services.kernel.periods import add_months, period_of
from services.oversight.cases.models import Case
from services.oversight.cases.workflow import OPEN_STATUSES
from services.oversight.chains.models import ChainCheckpoint
from services.oversight.incidents.models import MajorIncident
from services.oversight.ledger.models import LedgerFundMonthOut, LedgerFundPeriod, LedgerFundPeriodAgency
from services.oversight.reconciliation.cells import compute_cells
from services.oversight.reconciliation.models import ReconciliationClose

# The reconciliation months a scrape computes: this month and the one before it, and the last closed months (each
# month costs one aggregate row per cell: tens of thousands for R2 in a large city, hence the refresh interval).
RECENT_MONTHS = 2
BROKEN_CHAIN = ("broken", "rewound")


@metrics.register_database_probe("oversight")
def case_figures(session: Session) -> Iterator[Metric]:
    today = clock.china_today()
    opened = GaugeMetricFamily("sifund_oversight_cases_opened", "Cases ever opened, by rule and severity",
                               labels=["rule", "severity"])
    open_ = GaugeMetricFamily("sifund_oversight_open_cases", "Cases not closed or dismissed, by rule and severity",
                              labels=["rule", "severity"])
    overdue = GaugeMetricFamily("sifund_oversight_overdue_cases", "Open cases past their current deadline, by rule "
                                "and severity", labels=["rule", "severity"])
    is_open = Case.status.in_(OPEN_STATUSES)
    rows = session.execute(
        select(Case.rule_id, Case.severity, func.count(),
               func.sum(case((is_open, 1), else_=0)),
               func.sum(case((is_open & (Case.current_deadline < today), 1), else_=0)))
        .group_by(Case.rule_id, Case.severity)).all()
    for rule, severity, total, still_open, late in rows:
        opened.add_metric([rule, severity], total)
        open_.add_metric([rule, severity], still_open or 0)
        overdue.add_metric([rule, severity], late or 0)
    yield from (opened, open_, overdue)


@metrics.register_database_probe("oversight")
def chain_figures(session: Session) -> Iterator[Metric]:
    broken = GaugeMetricFamily("sifund_audit_chain_broken", "1 when oversight's last check found the component's "
                               "audit hash chain broken or rewound", labels=["component"])
    checked = GaugeMetricFamily("sifund_audit_chain_last_checked_timestamp_seconds", "When oversight last checked "
                                "the component's audit chain (Unix time)", labels=["component"])
    for point in session.execute(select(ChainCheckpoint)).scalars():
        broken.add_metric([point.component], 1.0 if point.last_status in BROKEN_CHAIN else 0.0)
        if point.last_checked_at is not None:
            checked.add_metric([point.component], _timestamp(point.last_checked_at))
    yield from (broken, checked)


@metrics.register_database_probe("oversight")
def incident_figures(session: Session) -> Iterator[Metric]:
    """Major incidents (重大事件, 5 working days to report) whose due day has passed without both reports."""
    today = clock.china_today()
    late = session.execute(
        select(func.count()).select_from(MajorIncident)
        .where(MajorIncident.major.is_(True), MajorIncident.due_on < today,
               or_(MajorIncident.same_level_reported_on.is_(None), MajorIncident.provincial_reported_on.is_(None)))
    ).scalar_one()
    family = GaugeMetricFamily("sifund_major_incidents_overdue", "Major incidents not reported at both levels by "
                               "their 5-working-day deadline")
    family.add_metric([], late)
    yield family


@metrics.register_database_probe("oversight")
def reconciliation_figures(session: Session) -> Iterator[Metric]:
    today = clock.china_today()
    this_month = period_of(today)
    closed = {row.month: row.unmatched for row in session.execute(select(ReconciliationClose)).scalars()}
    # The latest contribution period and money-out month the ledger has heard of count as recent too (a city
    # reconciles a period weeks after it, and a replayed or test clock may sit far from the data).
    latest = {session.execute(select(func.max(LedgerFundPeriod.period))).scalar_one(),
              session.execute(select(func.max(LedgerFundPeriodAgency.period))).scalar_one(),
              session.execute(select(func.max(LedgerFundMonthOut.month))).scalar_one()} - {None}
    months = sorted({add_months(this_month, -k) for k in range(RECENT_MONTHS)} | latest
                    | set(sorted(closed)[-RECENT_MONTHS:]))
    cells = GaugeMetricFamily("sifund_reconciliation_cells", "Reconciliation cells of recent months as the ledger "
                              "stands now, by check and status (closed: the month was closed)",
                              labels=["month", "check", "status", "closed"])
    unmatched = GaugeMetricFamily("sifund_reconciliation_unmatched_cells", "Cells not matched, by month "
                                  "(closed: the month was closed)", labels=["month", "closed"])
    for month in months:
        counts: dict[tuple[str, str], int] = {}
        for check, check_cells in compute_cells(session, month, as_of=today).items():
            for cell in check_cells:
                counts[(check, cell.status)] = counts.get((check, cell.status), 0) + 1
        is_closed = "true" if month in closed else "false"
        for (check, status), count in sorted(counts.items()):
            cells.add_metric([str(month), check, status, is_closed], count)
        unmatched.add_metric([str(month), is_closed],
                             sum(count for (_check, status), count in counts.items() if status != "matched"))
    at_close = GaugeMetricFamily("sifund_reconciliation_unmatched_at_close", "Cells not matched when the month "
                                 "was closed (frozen at the close)", labels=["month"])
    for month, count in sorted(closed.items())[-RECENT_MONTHS:]:
        at_close.add_metric([str(month)], count)
    yield from (cells, unmatched, at_close)


def _timestamp(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
