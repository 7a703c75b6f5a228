"""Late fees on arrears (滞纳金, 社会保险法 第八十六条): pure functions, ``Decimal`` and integer fen only.

The rule, as implemented here
-----------------------------
* **Principal** of an assessment line = its employer part + its individual part (fen). Whatever is unpaid after the
  line's due date is arrears (欠费).
* **Rate**: ``rate`` per day on the outstanding principal (*default* ``0.0005`` = 0.05 %, read from the approved
  parameters document when it sets one, see ``arrears.service.daily_rate``). A rate is a decimal string, never a float.
* **Days**: from the day after the due date up to and including the day the money is paid (or the as-of day of a
  report): ``days = (end − start).days`` with ``start`` = the due date. Due 2026-02-15, paid 2026-03-17 → 30 days.
* **Segments**: the outstanding principal only changes when a payment settles some of it, so the days between two
  such events form one *segment* with one principal. A segment's fee is ``principal × rate × days``, computed exactly
  in ``Decimal`` and rounded half-up to the fen **once per segment** (never per day). A payment on day *d* closes the
  segment ending on *d* (day *d* itself is charged on the principal before the payment); the next segment starts
  counting on *d + 1*. Principal 1 304.67 yuan, 30 days: 130 467 × 0.0005 × 30 = 1 957.005 fen → 1 957 fen = 19.57 yuan.
* **Settlement order** of a payment (``settle``): (1) the late fee is accrued up to the paid date; (2) the money
  settles the outstanding **principal first**; (3) then the **late fee** accrued and not yet paid; (4) anything left
  over is an **overpayment**, reported, never absorbed. For several lines at once (an employer-level payment,
  ``settle_many``) step 2 runs over every line before step 3 starts, in the order the lines are given.
* A fully paid principal accrues no further fee; an unpaid fee does not itself bear a fee.
* A back-dated payment (paid before the last date already charged on the line) adds no days: the fee already
  charged through that later date stands (``Segment.days == 0``); the payment's note says so.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from services.kernel.money import fen_to_yuan, round_fen

DEFAULT_DAILY_RATE = "0.0005"  # 0.05 % per day (社会保险法 第八十六条)


def parse_rate(value: str | Decimal) -> Decimal:
    """A daily rate as a fraction (``"0.0005"``). Floats are refused: they have lost digits already."""
    if isinstance(value, float):
        raise TypeError("a rate must be a decimal string, not a float")
    try:
        rate = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"rate {value!r} is not a decimal number") from None
    if not rate.is_finite() or rate < 0 or rate >= 1:
        raise ValueError(f"rate {value!r} must be a daily fraction in [0, 1)")
    return rate


def days_between(start: date, end: date) -> int:
    """Days charged after ``start`` up to and including ``end`` (0 when ``end`` is not after ``start``)."""
    return max(0, (end - start).days)


def segment_fee_exact(principal_fen: int, rate: Decimal, days: int) -> Decimal:
    return Decimal(principal_fen) * rate * days


def segment_fee(principal_fen: int, rate: Decimal, days: int) -> int:
    """``principal × rate × days`` in fen, rounded half-up once."""
    if days == 0 or principal_fen == 0:
        return 0  # nothing to charge (a payment on or before the due date, or the principal already paid)
    return round_fen(segment_fee_exact(principal_fen, rate, days))


def _yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen):,.2f}".replace(",", " ")


@dataclass(frozen=True)
class Segment:
    """Days ``start + 1 … end`` charged on ``principal_fen`` at ``rate``."""

    start: date  # the last day already charged (the due date for the first segment); counting starts the day after
    end: date  # the last day charged by this segment (paid date or as-of date)
    days: int
    principal_fen: int
    rate: Decimal
    fee_fen: int

    @property
    def exact_fen(self) -> Decimal:
        return segment_fee_exact(self.principal_fen, self.rate, self.days)

    def explain(self) -> str:
        """``1 304.67 元 × 0.0005 × 30 天 = 19.57005 元 → 19.57 元``."""
        if self.days == 0 or self.principal_fen == 0:
            return f"{self.start.isoformat()} 之后无新增计费天数或本金已缴清，滞纳金 0.00 元"
        exact_yuan = self.exact_fen / 100
        return (f"{self.start.isoformat()} 次日起至 {self.end.isoformat()}：{_yuan(self.principal_fen)} 元 × {self.rate}"
                f" × {self.days} 天 = {exact_yuan.normalize():f} 元 → {_yuan(self.fee_fen)} 元（四舍五入到分）")

    def as_dict(self) -> dict:
        return {"from": self.start.isoformat(), "through": self.end.isoformat(), "days": self.days,
                "principal_fen": self.principal_fen, "rate": str(self.rate), "exact_fen": str(self.exact_fen),
                "fee_fen": self.fee_fen, "explanation": self.explain()}


class LineState(NamedTuple):
    """What is known of one assessment line: assessed principal, what was paid, fee charged so far and through when.

    Immutable; a named tuple rather than a frozen dataclass: a tax batch builds two per line (loaded, then settled),
    and a frozen dataclass' ``__init__`` sets each of the six fields through ``object.__setattr__`` (~2.0 against
    ~0.7 µs a state). Change one with ``_replace``."""

    principal_fen: int
    due_date: date
    paid_principal_fen: int = 0
    fee_accrued_fen: int = 0
    fee_paid_fen: int = 0
    accrued_through: date | None = None  # last day charged; None: nothing yet (the due date)

    @property
    def charged_through(self) -> date:
        return max(self.due_date, self.accrued_through) if self.accrued_through else self.due_date

    @property
    def outstanding_principal_fen(self) -> int:
        return self.principal_fen - self.paid_principal_fen

    @property
    def outstanding_fee_fen(self) -> int:
        return self.fee_accrued_fen - self.fee_paid_fen

    @property
    def settled(self) -> bool:
        # The two outstanding amounts, written out: read for every candidate line of every tax line.
        return self.principal_fen <= self.paid_principal_fen and self.fee_accrued_fen <= self.fee_paid_fen


def accrue(state: LineState, until: date, rate: Decimal) -> tuple[Segment, LineState]:
    """Charge the days after the last charged day up to ``until`` on the outstanding principal."""
    start = state.charged_through
    days = days_between(start, until)
    principal = max(0, state.outstanding_principal_fen)
    fee = segment_fee(principal, rate, days)
    segment = Segment(start=start, end=max(start, until), days=days, principal_fen=principal, rate=rate, fee_fen=fee)
    return segment, LineState(principal_fen=state.principal_fen, due_date=state.due_date,
                              paid_principal_fen=state.paid_principal_fen, fee_accrued_fen=state.fee_accrued_fen + fee,
                              fee_paid_fen=state.fee_paid_fen, accrued_through=max(start, until))


@dataclass(frozen=True)
class Settlement:
    """How one payment settled one line (one ``LateFeeCharge`` row)."""

    segment: Segment
    principal_before_fen: int
    principal_paid_fen: int
    fee_accrued_fen: int  # by this segment
    fee_outstanding_before_fen: int  # after accruing this segment, before paying
    fee_paid_fen: int
    after: LineState


@dataclass(frozen=True)
class Allocation:
    settlements: list[Settlement]
    overpaid_fen: int

    @property
    def principal_paid_fen(self) -> int:
        return sum(s.principal_paid_fen for s in self.settlements)

    @property
    def fee_paid_fen(self) -> int:
        return sum(s.fee_paid_fen for s in self.settlements)


def settle_many(states: list[LineState], amount_fen: int, paid_date: date, rate: Decimal) -> Allocation:
    """Apply ``amount_fen`` paid on ``paid_date`` to ``states`` in the documented order: accrue every line to the paid
    date; principal of every line, in order; then late fee of every line, in order; the rest is overpaid."""
    if amount_fen < 0:
        raise ValueError("a payment cannot be negative")
    accrued = [accrue(s, paid_date, rate) for s in states]
    left = amount_fen
    principal_paid = []
    for _segment, state in accrued:
        paid = min(left, max(0, state.outstanding_principal_fen))
        principal_paid.append(paid)
        left -= paid
    fee_paid = []
    for (_segment, state), p in zip(accrued, principal_paid, strict=True):
        paid = min(left, max(0, state.outstanding_fee_fen))
        fee_paid.append(paid)
        left -= paid
    settlements = []
    for before, (segment, state), p, f in zip(states, accrued, principal_paid, fee_paid, strict=True):
        # Built directly rather than with dataclasses.replace: this runs once per line of every tax batch.
        after = LineState(principal_fen=state.principal_fen, due_date=state.due_date,
                          paid_principal_fen=state.paid_principal_fen + p, fee_accrued_fen=state.fee_accrued_fen,
                          fee_paid_fen=state.fee_paid_fen + f, accrued_through=state.accrued_through)
        settlements.append(Settlement(
            segment=segment, principal_before_fen=max(0, before.outstanding_principal_fen), principal_paid_fen=p,
            fee_accrued_fen=segment.fee_fen, fee_outstanding_before_fen=state.outstanding_fee_fen, fee_paid_fen=f,
            after=after))
    return Allocation(settlements=settlements, overpaid_fen=left)


class OnePayment(NamedTuple):
    """``settle``'s figures for one payment on one line, without its objects (see ``settle_one``)."""

    after: LineState
    start: date  # the segment's: the last day charged before this payment
    days: int
    principal_before_fen: int
    principal_paid_fen: int
    fee_accrued_fen: int  # by this payment's segment
    fee_outstanding_before_fen: int
    fee_paid_fen: int
    overpaid_fen: int


def settle_one(state: LineState, amount_fen: int, paid_date: date, rate: Decimal) -> OnePayment:
    """``settle`` in plain integers: the same figures (``Settlement``'s and the overpaid fen) and the same state
    after, for the tax batch's common case of one payment settling one line (once per line of every batch: the
    segment, the intermediate state, the settlement and the allocation are not built)."""
    if amount_fen < 0:
        raise ValueError("a payment cannot be negative")
    through = state.accrued_through
    start = state.due_date if through is None or through < state.due_date else through
    days = (paid_date - start).days
    if days < 0:
        days = 0
    outstanding = state.principal_fen - state.paid_principal_fen
    principal_before = outstanding if outstanding > 0 else 0
    fee = segment_fee(principal_before, rate, days)
    fee_accrued = state.fee_accrued_fen + fee
    principal_paid = amount_fen if amount_fen < principal_before else principal_before
    left = amount_fen - principal_paid
    fee_outstanding = fee_accrued - state.fee_paid_fen
    fee_paid = min(left, fee_outstanding) if fee_outstanding > 0 else 0
    # Positional (LineState's field order): keywords cost a named tuple's __new__ twice as much, once per line.
    after = LineState(state.principal_fen, state.due_date, state.paid_principal_fen + principal_paid, fee_accrued,
                      state.fee_paid_fen + fee_paid, paid_date if paid_date > start else start)
    return OnePayment(after, start, days, principal_before, principal_paid, fee, fee_outstanding, fee_paid,
                      left - fee_paid)


def settle(state: LineState, amount_fen: int, paid_date: date, rate: Decimal) -> tuple[Settlement, int]:
    """One payment on one line: (the settlement, the overpaid fen)."""
    allocation = settle_many([state], amount_fen, paid_date, rate)
    return allocation.settlements[0], allocation.overpaid_fen


@dataclass(frozen=True)
class Arrears:
    """A line's arrears as of a day: the fee charged by earlier payments and still unpaid, plus the open segment."""

    state: LineState  # as of the day, after the open segment
    open_segment: Segment
    principal_outstanding_fen: int
    fee_outstanding_fen: int  # earlier unpaid + open segment
    days_late: int  # days from the day after the due date to the as-of day (0 if not yet due)

    @property
    def total_fen(self) -> int:
        return self.principal_outstanding_fen + self.fee_outstanding_fen


def arrears_as_of(state: LineState, as_of: date, rate: Decimal) -> Arrears:
    """``state`` must only include payments made on or before ``as_of``."""
    segment, after = accrue(state, as_of, rate)
    return Arrears(state=after, open_segment=segment, principal_outstanding_fen=max(0, after.outstanding_principal_fen),
                   fee_outstanding_fen=max(0, after.outstanding_fee_fen),
                   days_late=days_between(state.due_date, as_of))
