"""The scheduled sweep (``POST /rules/sweeps``, or ``run_sweep`` from code): the rules that need a view over everyone.

What it runs (each rule one set-based query over oversight's tables, never a loop over persons):

- S01, S02, S05: paid periods joined with death / imprisonment windows and with employed enrolments — catches the
  facts that arrived in the other order (a death reported after the payment, an import of past employment);
- S03: every reported overlap and every active two-scheme overlap in the mirror;
- S04: beneficiaries whose last paid month is more than 12 months after their last survival certification;
- S11: business registrations older than 30 days with no employer;
- S12–S16: the reconciliation cells of the months swept (default: the month before ``as_of``); S13 and S15 are
  month-end rules and judge only the months swept that have ended (``registry.judgeable``), the others listed in
  the rule's ``months_not_ended``;
- S18 (roles) and S20: from the gateway's tenure report and conflict rules, pulled by the endpoint and passed in
  ``SweepInputs`` (skipped, and said so, when they could not be read);
- S19: life-status changes citing partner data no partner record backs; and, when accounts' audit entries for
  corrections could be read, changes citing a correction not approved by another person.

Each rule runs and commits in its own transaction (on SQLite every transaction holds the write lock, so a sweep does
not keep the consumers out for its whole length), and a failing rule is recorded as ``error`` without undoing the
others. A finding goes through ``open_case`` (idempotent on rule and fact), so sweeping twice opens nothing new and
counts an occurrence on each case found again; the details carry no sweep-day fields, so an unchanged fact found
again tomorrow only counts (no new occurrence row, history or audit entry). Every run is logged in ``rule_sweep`` with per-rule counts.
"""

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from services.kernel import context
from services.kernel.audit import canonical_json
from services.kernel.db import unit_of_work
from services.kernel.events import new_event_id
from services.kernel.periods import month_has_ended
from services.oversight.rules import funds, payments, registry_data, staff
from services.oversight.rules.models import RuleSweep
from services.oversight.rules.registry import (
    RULES,
    Finding,
    judgeable,
    judging_day,
    raise_findings,
)
from services.kernel import clock

SWEPT = ("S01", "S02", "S03", "S04", "S05", "S11", "S12", "S13", "S14", "S15", "S16", "S18", "S19", "S20")


@dataclass
class SweepInputs:
    """What the sweep cannot read from oversight's own tables. ``None``: not available (the reason in ``notes``)."""

    tenure_rows: list[dict[str, Any]] | None = None  # gateway long-tenure report rows (years=1)
    conflict_rules: list[dict[str, Any]] | None = None  # gateway conflict rules (default rules when None)
    correction_entries: list[dict[str, Any]] | None = None  # accounts audit entries, life_status_correction
    months: list[int] | None = None  # reconciliation months (default: funds.default_months(as_of))
    notes: dict[str, str] = field(default_factory=dict)


Step = Callable[[Session], dict[str, list[Finding]]]


def _steps(as_of: date, inputs: SweepInputs, months: list[int]) -> list[tuple[tuple[str, ...], Step, str | None]]:
    """(rule ids, the function finding them, a note when skipped)."""
    def s03(session: Session) -> dict[str, list[Finding]]:
        return {"S03": registry_data.find_s03_reported(session) + registry_data.find_s03_enrolled(session)}

    def s19(session: Session) -> dict[str, list[Finding]]:
        found = registry_data.find_s19_unbacked_exchange(session, as_of)
        if inputs.correction_entries is not None:
            highest = registry_data.record_corrections(session, inputs.correction_entries)
            registry_data.move_correction_cursor(session, highest)
            found += registry_data.find_s19_unapproved_correction(session)
        return {"S19": found}

    tenure_missing = None if inputs.tenure_rows is not None else \
        f"未能读取网关任职报告：{inputs.notes.get('tenure', '未提供')}"
    return [
        (("S01",), lambda s: {"S01": payments.find_s01(s)}, None),
        (("S02",), lambda s: {"S02": payments.find_s02(s)}, None),
        (("S03",), s03, None),
        (("S04",), lambda s: {"S04": payments.find_s04(s)}, None),
        (("S05",), lambda s: {"S05": payments.find_s05(s)}, None),
        (("S11",), lambda s: {"S11": registry_data.find_s11(s, as_of)}, None),
        (funds.FUND_RULES, lambda s: funds.find_fund_rules(s, months, as_of), None),
        (("S18",), lambda s: {"S18": staff.find_s18_roles(inputs.tenure_rows or [], inputs.conflict_rules)},
         tenure_missing),
        (("S19",), s19, None),
        (("S20",), lambda s: {"S20": staff.find_s20(inputs.tenure_rows or [], as_of)}, tenure_missing),
    ]


def run_sweep(engine: Engine, *, as_of: date, inputs: SweepInputs | None = None, rules: list[str] | None = None,
              actor: context.Actor | None = None) -> RuleSweep:
    """Run the sweep for ``as_of`` (the selected ``rules``, default every swept rule); returns the logged run."""
    inputs = inputs or SweepInputs()
    actor = actor or context.Actor(id="system:oversight-rules", role="system")
    selected = set(rules or SWEPT)
    unknown = selected - set(SWEPT)
    if unknown:
        raise ValueError(f"not swept: {sorted(unknown)}")
    months = sorted(set(inputs.months or funds.default_months(as_of)))
    summary: dict[str, Any] = {"rules": {}, "months": months, "inputs": dict(inputs.notes)}
    if "S19" in selected:
        summary["inputs"]["corrections"] = ("read" if inputs.correction_entries is not None
                                            else f"not read: {inputs.notes.get('corrections', '未提供')}")
    with context.trace(actor=actor), unit_of_work(engine) as session:
        run = RuleSweep(id=new_event_id(), as_of=as_of, started_at=clock.utc_now(), started_by=actor.id, status="running",
                        summary=canonical_json(summary))
        session.add(run)
        session.flush()
    status = "done"
    for rule_ids, step, skipped in _steps(as_of, inputs, months):
        chosen = [r for r in rule_ids if r in selected]
        if not chosen:
            continue
        if skipped:
            for rule_id in chosen:
                summary["rules"][rule_id] = {"status": "skipped", "note": skipped}
            status = "partial"
            continue
        started = time.perf_counter()
        with context.trace(actor=actor, causation_id=run.id), unit_of_work(engine) as session:
            try:
                found = step(session)
                counts = {rule_id: raise_findings(session, rule_id, judgeable(rule_id, found.get(rule_id, []), as_of))
                          for rule_id in chosen}
                session.flush()
            except Exception as exc:  # noqa: BLE001 - one rule's failure must not undo the others
                session.rollback()
                status = "partial"
                for rule_id in chosen:
                    summary["rules"][rule_id] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:500],
                                                 "trace": traceback.format_exc(limit=3)[-1000:]}
                continue
        seconds = round(time.perf_counter() - started, 3)
        for rule_id in chosen:
            summary["rules"][rule_id] = {"status": "ok", **counts[rule_id].as_dict(), "seconds": seconds,
                                         **_not_ended(rule_id, months, as_of)}
    with context.trace(actor=actor), unit_of_work(engine) as session:
        run = session.get(RuleSweep, run.id)
        run.status, run.finished_at, run.summary = status, clock.utc_now(), canonical_json(summary)
        session.add(run)
        session.flush()
    return run


def _not_ended(rule_id: str, months: list[int], as_of: date) -> dict[str, Any]:
    """For a month-end rule, the months swept it did not judge because they have not ended."""
    if not RULES[rule_id].month_end:
        return {}
    day = judging_day(as_of)
    waiting = [m for m in months if not month_has_ended(m, day)]
    return {"months_not_ended": waiting, "note": "月份尚未结束，月末规则不予判断"} if waiting else {}


def swept_rules() -> list[str]:
    return [r for r in SWEPT if r in RULES]
