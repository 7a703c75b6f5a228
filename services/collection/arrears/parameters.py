"""What payments and arrears read from the approved parameter sets: the daily late-fee rate and the fund catalogue.

The parameters package owns the document's schema; this module only *reads* an approved document and falls back to
the defaults when a set, or the key, is not there:

* late-fee rate: ``late_fee_daily_rate`` (also accepted: ``late_fee.daily_rate``, ``arrears.late_fee_daily_rate``)
  of the set valid for the month of the day in question; else ``"0.0005"`` (0.05 % a day, 社会保险法 第八十六条).
* funds: the five funds of DOMAIN.md (Funds in scope), plus any fund the set valid for the period rates (the keys
  of ``rates``, or of a ``funds`` mapping / list should the document grow one): a region can add a fund, never lose
  one of the five.
"""

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from services.collection.arrears.latefee import DEFAULT_DAILY_RATE, parse_rate
from services.collection.models import ContributionParameters
from services.contracts.codes import Fund
from services.kernel.periods import period_of

DEFAULT_FUNDS: frozenset[str] = frozenset(Fund)  # a region's parameters may add funds


def _dig(document: dict[str, Any], *path: str) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _funds_of(document: dict[str, Any]) -> frozenset[str] | None:
    codes: set[str] = set()
    for key in ("rates", "funds"):
        codes |= _codes(document.get(key)) or set()
    return frozenset(codes) or None


def _codes(funds: Any) -> set[str] | None:
    if isinstance(funds, dict) and funds:
        return {str(k).upper() for k in funds}
    if isinstance(funds, list) and funds:
        codes = set()
        for item in funds:
            if isinstance(item, str):
                codes.add(item.upper())
            elif isinstance(item, dict) and (item.get("fund") or item.get("code")):
                codes.add(str(item.get("fund") or item.get("code")).upper())
        return codes or None
    return None


@dataclass
class ParameterSets:
    """The approved sets of the region, oldest first, read once per request."""

    sets: list[tuple[int, str, dict[str, Any]]]  # (valid_from, id, document)
    fallback_rate: str = DEFAULT_DAILY_RATE
    _rates: dict[int, tuple[Decimal, str]] = field(default_factory=dict)
    _funds: dict[int, frozenset[str]] = field(default_factory=dict)

    def for_period(self, period: int) -> tuple[str, dict[str, Any]] | None:
        found = None
        for valid_from, set_id, document in self.sets:
            if valid_from <= period:
                found = (set_id, document)
            else:
                break
        return found

    def daily_rate(self, on: date) -> tuple[Decimal, str]:
        """(rate, where it came from) for a day."""
        period = period_of(on)
        if period not in self._rates:
            rate, source = parse_rate(self.fallback_rate), "default"
            found = self.for_period(period)
            if found is not None:
                set_id, document = found
                for path in (("late_fee_daily_rate",), ("late_fee", "daily_rate"), ("arrears", "late_fee_daily_rate")):
                    value = _dig(document, *path)
                    if value is not None and not isinstance(value, float):
                        try:
                            rate, source = parse_rate(value), f"parameters:{set_id}"
                        except (TypeError, ValueError):
                            continue
                        break
            self._rates[period] = (rate, source)
        return self._rates[period]

    def funds(self, period: int) -> frozenset[str]:
        if period not in self._funds:
            found = self.for_period(period)
            funds = _funds_of(found[1]) if found is not None else None
            self._funds[period] = DEFAULT_FUNDS | funds if funds else DEFAULT_FUNDS
        return self._funds[period]


def load_parameter_sets(session: Session, region: str) -> ParameterSets:
    rows = session.execute(
        select(ContributionParameters.valid_from, ContributionParameters.id, ContributionParameters.document)
        .where(ContributionParameters.region == region, ContributionParameters.status == "approved")
        .order_by(ContributionParameters.valid_from, ContributionParameters.decided_at)
    ).all()
    sets = []
    for valid_from, set_id, text in rows:
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if isinstance(document, dict):
            sets.append((valid_from, set_id, document))
    return ParameterSets(sets=sets, fallback_rate=DEFAULT_DAILY_RATE)
