"""The written forms documents share: amounts in yuan with thousands separators, dates and months in Chinese."""

from datetime import date

from services.kernel.citations import SEEDS, check
from services.kernel.money import fen_to_yuan


def yuan(amount_fen: int) -> str:
    """``600000`` → ``6,000.00`` (exact: from integer fen through Decimal)."""
    return f"{fen_to_yuan(amount_fen):,}"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def chinese_period(period: int) -> str:
    """A month as the platform stores it (``202608``) → ``2026年8月``."""
    return f"{period // 100}年{period % 100}月"


def legal_basis(citation: str) -> str:
    """A seed citation in its code form (``001 第二十九条(四)``) as a document prints it: the instrument's title in
    《》 then the clause (``《赣州市社会保险基金监督办法（试行）（2020）》第二十九条(四)``)."""
    seed, _, clauses = check(citation).partition(" ")
    return f"《{SEEDS[seed]}》{clauses}"
