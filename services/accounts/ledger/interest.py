"""Yearly interest of pension individual accounts (个人账户记账利息), pure arithmetic, no float anywhere.

The rule
========
The rate r of year Y is the 记账利率 announced for Y (``InterestRate``, a decimal string such as ``"0.0262"``).
Interest is credited once per account and year, as of 31 December Y, and is

    I(Y) = B₀ × r  +  Σ aᵢ × r × (12 − mᵢ) / 12

- B₀ is the balance at 1 January Y: the sum of every entry whose ``year`` is before Y (so it already includes the
  interest credited for Y − 1).
- the aᵢ are the signed amounts of the year's other entries (``year`` = Y, every type except interest):
  contributions (+), transfers in (+), transfers out (−).
- mᵢ is the month (1–12) of the entry's ``period``. For a contribution that is its 费款所属期; for the other entry
  types the ledger stores the value month (the China-time month it was posted) in ``period``. Money of month m is
  taken to arrive at the end of that month and earns interest for the 12 − m months left: a January contribution
  earns 11/12 of a year, a December one earns nothing until next year, when it is part of B₀.

Exactness
=========
Everything is computed in ``Decimal`` on the exact numerator ``12 × B₀ × r + Σ aᵢ × r × (12 − mᵢ)`` (products of
integers and a finite decimal: exact), divided by 12 once, then rounded half-up to the fen once per account with
``kernel.money.round_fen``. The quotient by 12 is computed with 60 significant digits: it is either exact (a
terminating decimal) or has an infinitely repeating tail of 3s or 6s, which can never lie on the .5 boundary, so
the half-up rounding of the truncated quotient is the rounding of the exact value.

A negative result (possible only when money of a later month was booked before an earlier debit) is credited as 0:
interest never debits an account. Accounts closed by a withdrawal or a whole-balance transfer out are not in the
run; interest for a part year up to such a debit is not computed here.
"""

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation, localcontext

from pydantic_core import PydanticCustomError

from services.kernel.money import round_fen

MONTHS = 12
MAX_RATE_PLACES = 8


def parse_rate(value: object) -> Decimal:
    """A yearly rate as a decimal string, 0 ≤ r < 1, at most eight decimal places. Floats are refused: a float has
    already lost the exact rate before we see it; so are numbers of any kind — the rate is announced as text."""
    if isinstance(value, float):
        raise PydanticCustomError("INVALID_RATE", "利率须以字符串表示（如 \"0.0262\"），不接受浮点数")
    if not isinstance(value, str):
        raise PydanticCustomError("INVALID_RATE", "利率须以字符串表示（如 \"0.0262\"）")
    try:
        rate = Decimal(value.strip())
    except InvalidOperation:
        raise PydanticCustomError("INVALID_RATE", "利率格式错误") from None
    if not rate.is_finite() or rate < 0 or rate >= 1:
        raise PydanticCustomError("INVALID_RATE", "利率应为不小于 0 且小于 1 的小数（如 0.0262 表示 2.62%）")
    if -rate.as_tuple().exponent > MAX_RATE_PLACES:
        raise PydanticCustomError("INVALID_RATE", f"利率最多保留 {MAX_RATE_PLACES} 位小数")
    return rate


def rate_text(rate: Decimal) -> str:
    """Canonical text of a rate for the table: fixed notation, no exponent, trailing zeros kept as given."""
    return format(rate, "f")


def months_earning(period: int) -> int:
    month = period % 100
    if not 1 <= month <= MONTHS:
        raise ValueError(f"invalid period {period}")
    return MONTHS - month


def yearly_interest_fen(*, rate: Decimal, opening_balance_fen: int, movements: Iterable[tuple[int, int]]) -> int:
    """Interest of one account for one year, in fen. ``movements`` are (signed amount in fen, period YYYYMM) of the
    year's non-interest entries."""
    if isinstance(rate, float) or not isinstance(rate, Decimal):
        raise TypeError("rate must be a Decimal")
    with localcontext() as ctx:
        ctx.prec = 60
        numerator = Decimal(opening_balance_fen) * MONTHS * rate
        for amount_fen, period in movements:
            numerator += Decimal(amount_fen) * rate * months_earning(period)
        interest = round_fen(numerator / MONTHS)
    return max(0, interest)
