"""Small helpers shared by the rule modules: months as integers, chunked ``IN`` lists, mirror lookups, upserts."""

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from services.contracts import codes
from services.contracts.codes import Fund
from services.oversight.ledger.handlers import bump  # noqa: F401 - one upsert helper for the oversight service
from services.kernel.locks import lock_keys
from services.oversight.models import MirroredEmployer, MirroredPerson

CHUNK = 500  # ids per IN list
PENSION_FUNDS = codes.PENSION_FUNDS
INDEX_FUNDS = codes.WAGE_PENSION_FUNDS  # wage-based pension funds: their base is the pension's contribution index
UNEMPLOYMENT_FUND = Fund.UNEMP
EMPLOYED_FUNDS = (Fund.PEN_EMP, Fund.UNEMP)  # an employer's enrolment in these means the person is employed (S05)


def insert_for(session: Session, model: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` for the session's database (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    return {"postgresql": pg_insert, "sqlite": sqlite_insert}[dialect](model.__table__)


def lock_persons(session: Session, person_ids: Iterable[str]) -> None:
    """Serialise rule checks per person across consumers (PostgreSQL; SQLite's BEGIN IMMEDIATE already does).

    The two halves of a fact may arrive on two streams at once — a payment on BENEFITS, a death on ACCOUNTS — and
    under READ COMMITTED each consumer's check would miss the other's uncommitted half. Both sides take this
    transaction-level advisory lock (keys in one order) before checking: the second waits for the first to commit
    and then sees its rows."""
    lock_keys(session, "oversight.rules", person_ids)


def month_index(period: int) -> int:
    """``YYYYMM`` → months since year 0, so that "N months later" is integer arithmetic."""
    year, month = divmod(period, 100)
    return year * 12 + month - 1


def index_of(day: date) -> int:
    return day.year * 12 + day.month - 1


def period_from_index(index: int) -> int:
    return (index // 12) * 100 + index % 12 + 1


def period_start(period: int) -> date:
    return date(period // 100, period % 100, 1)


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def account_key(account_no: str) -> str:
    return hashlib.sha256(account_no.strip().encode()).hexdigest()


def same_name(a: str | None, b: str | None) -> bool:
    """Names compared without whitespace (full-width included) and case (pinyin)."""
    def norm(value: str) -> str:
        return "".join(value.split()).replace("\u3000", "").replace("·", "").replace("•", "").casefold()
    return norm(a or "") == norm(b or "")


@dataclass(frozen=True)
class PersonInfo:
    person_id: str
    name: str | None
    sex: str | None
    birth_date: date | None
    region: str | None


def persons(session: Session, person_ids: Iterable[str]) -> dict[str, PersonInfo]:
    found: dict[str, PersonInfo] = {}
    for chunk in chunks(sorted(set(person_ids))):
        rows = session.execute(
            select(MirroredPerson.person_id, MirroredPerson.name, MirroredPerson.sex, MirroredPerson.birth_date,
                   MirroredPerson.region).where(MirroredPerson.person_id.in_(chunk)))
        for row in rows:
            found[row[0]] = PersonInfo(*row)
    return found


def regions_of(session: Session, person_ids: Iterable[str]) -> dict[str, str | None]:
    return {pid: info.region for pid, info in persons(session, person_ids).items()}


def employers_by_uscc(session: Session, usccs: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """uscc → (employer_id, region) for the employers oversight's mirror knows."""
    found: dict[str, tuple[str, str | None]] = {}
    for chunk in chunks(sorted(set(usccs))):
        rows = session.execute(select(MirroredEmployer.uscc, MirroredEmployer.employer_id, MirroredEmployer.region)
                               .where(MirroredEmployer.uscc.in_(chunk)))
        for uscc, employer_id, region in rows:
            found[uscc] = (employer_id, region)
    return found


def restrict(query: Any, column: Any, ids: Sequence[str] | None) -> Iterator[Any]:
    """The query for every row (``ids`` None) or for ``ids`` in chunks."""
    if ids is None:
        yield query
        return
    for chunk in chunks(sorted(set(ids))):
        yield query.where(column.in_(chunk))


def yuan(fen: int | None) -> str:
    return f"{(fen or 0) / 100:,.2f}"
