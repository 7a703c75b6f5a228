"""Declarations and assessments: an employer's monthly bases in, the collection plan (征缴计划) out.

One declaration → one assessment, in one transaction:

1. **the employer** is known to collection's registry mirror, in the caller's area and active (a deregistered or
   suspended employer is refused with 409); the period is not in the future (China time); no issued assessment
   exists for the employer and period yet (a correction goes through ``supersede``);
2. **the parameters** in force for the employer's region and the period (``parameters_for``), and the employer's
   work-injury floating factor for the period;
3. **every line** is checked — the person is known (by ``person_id`` or ``citizen_id``), named once, and enrolled
   with this employer for the period in at least one fund (an enrolment covers a month from its start to its end;
   a suspended one contributes nothing and is not assessed). A declaration with any bad line is refused as a whole
   (422 ``DECLARATION_REJECTED``, every bad line with its code and message in ``details``): an assessment is a
   complete collection plan, never a partial one. Nothing is stored;
4. **the base** is clamped to [floor, cap] of the parameters (the clamp is recorded on the declaration line);
5. **the lines**: one per person × enrolled fund, employer part = round_half_up(base × employer rate), individual
   part = round_half_up(base × individual rate), each rounded once (``kernel.money.percent_of_fen``). INJURY has an
   employer part only, at the class rate of the employer's risk class × its approved floating factor (the product
   is exact and recorded as the line's ``employer_rate``). Totals are sums of the rounded lines;
6. **issue**: the declaration, its lines, the assessment and its lines (Core inserts in chunks), an audit entry each
   for the declaration and the assessment, and ``AssessmentIssued`` in parts of at most 1 000 lines.

A correction (``supersede``) is a complete new declaration for the same employer and period: the old assessment,
its lines and its declaration become ``superseded`` (never edited otherwise), ``AssessmentSuperseded`` is published,
then the new ``AssessmentIssued`` (``supersedes_id`` set). What the tax bureau already collected on an old line is
carried to the new line of the same person and fund; a correction that drops a paid line is refused.
"""

from collections import defaultdict
from itertools import accumulate
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import HTTPException
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import CursorResult, or_, select, update
from sqlmodel import Session

from services.collection.assessments.schemas import COLUMNS, DeclarationLineIn, positive_base
from services.collection.models import (
    Assessment,
    AssessmentLine,
    Declaration,
    DeclarationLine,
    RegistryEmployer,
    RegistryEnrolment,
    RegistryPerson,
)
from services.collection.parameters.schemas import INJURY, WAGE_FUNDS
from services.collection.parameters.service import ONE, Parameters, injury_factors, parameters_for
from services.collection.payments import bulk, settling
from services.contracts.collection import MAX_LINES, AssessmentIssued, AssessmentSuperseded
from services.kernel import archives, clock, context
from services.kernel.audit import append_audit_many
from services.kernel.bulk import read as read_rows
from services.kernel.collector import collector_paused
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.errors import Conflict, DomainError, Invalid, NotFound, TooLarge
from services.kernel.events import PayloadFields, new_event_id, new_event_ids
from services.kernel.identifiers import validate_citizen_id
from services.kernel.keyset import in_parameter
from services.kernel.money import Yuan, checked_total_fen, fen_to_yuan, percent_of_fen, yuan_to_fen
from services.kernel.outbox import record_events
from services.kernel.paging import newest_first, oldest_first
from services.kernel.periods import add_months, period_of
from services.kernel.pii import reveal_citizen_id
from services.kernel.schemas import rate_text
from services.kernel.tabular import read_table

SOURCE = "collection"
CHUNK = 1000  # rows per Core insert and per IN (...) lookup
MAX_REPORTED = 1000  # rejected lines listed in the error details
MAX_FILE_BYTES = 32 * 1024 * 1024
ZERO = Decimal(0)
_YUAN = TypeAdapter(Yuan)


def china_period() -> int:
    return period_of(clock.china_today())


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- input lines -----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class InputLine:
    """A declaration line as received: valid (``base_fen`` set) or already refused (``code`` set)."""

    line_no: int
    person_id: str | None
    citizen_id: str | None
    base_fen: int | None = None
    name: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass
class Rejection:
    line_no: int
    person_id: str | None
    citizen_id: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line_no": self.line_no, "person_id": self.person_id,
                "citizen_id": reveal_citizen_id(self.citizen_id) if self.citizen_id else None,
                "code": self.code, "message": self.message}


def lines_from_request(lines: Iterable[DeclarationLineIn]) -> list[InputLine]:
    return [InputLine(i, line.person_id, line.citizen_id, yuan_to_fen(line.base)) for i, line in enumerate(lines, start=1)]


def _reason(exc: Exception, default_code: str, default_message: str) -> tuple[str, str]:
    """The stable code and message of a refused cell (pydantic errors carry them; anything else gets the default)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        kind = first.get("type", "")
        return (kind if kind.isupper() else default_code), first.get("msg", default_message)
    if isinstance(exc, PydanticCustomError):
        return (exc.type if exc.type.isupper() else default_code), exc.message()
    return default_code, default_message


def _base_from_cell(value: Any) -> int:
    """A base cell: text ("5432.10", "5,432.10") or an Excel number (read through its shortest decimal text)."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, float):
        value = repr(value)  # Excel keeps numbers as doubles: repr gives back the 5432.1 the clerk typed
    text = str(value).strip().replace(",", "").replace("，", "")
    return yuan_to_fen(positive_base(_YUAN.validate_python(text)))


def lines_from_file(data: bytes) -> tuple[list[InputLine], str]:
    """The rows of an uploaded CSV (UTF-8/GBK) or .xlsx file, each with its refusal if a cell is bad; and the file
    format (csv | xlsx). Row numbers are those the clerk sees in Excel."""
    if len(data) > MAX_FILE_BYTES:
        raise TooLarge("IMPORT_FILE_TOO_LARGE", f"申报文件不能超过 {MAX_FILE_BYTES // (1024 * 1024)} MB")
    table = read_table(data, COLUMNS)
    out: list[InputLine] = []
    for row_no, values, extra in table.rows():
        person_id = str(values["person_id"]).strip() if "person_id" in values else None
        citizen_id = str(values["citizen_id"]).strip().upper() if "citizen_id" in values else None
        line = InputLine(line_no=row_no, person_id=person_id, citizen_id=citizen_id,
                         name=str(values["name"]).strip() if "name" in values else None)
        out.append(line)
        if extra:
            line.code, line.message = "ROW_MALFORMED", f"该行有 {len(extra)} 个超出表头的单元格"
        elif person_id is None and citizen_id is None:
            line.code, line.message = "PERSON_REQUIRED", "须填写人员编号或公民身份号码"
        elif "base" not in values:
            line.code, line.message = "BASE_REQUIRED", "缺少缴费基数"
        else:
            try:
                if citizen_id is not None:
                    line.citizen_id = validate_citizen_id(citizen_id)
            except ValueError as exc:
                line.code, line.message = _reason(exc, "INVALID_CITIZEN_ID", "公民身份号码格式错误")
                continue
            try:
                line.base_fen = _base_from_cell(values["base"])
            except (ValueError, InvalidOperation, TypeError) as exc:
                line.code, line.message = _reason(exc, "INVALID_AMOUNT", f"缴费基数格式错误：{values['base']}")
    if not out:
        raise Invalid("IMPORT_FILE_EMPTY", "申报文件没有数据行")
    return out, table.file_format


# -- checks ----------------------------------------------------------------------------------------------------------

EMPLOYER_STATES = {"suspended": ("EMPLOYER_SUSPENDED", "已暂停"), "deregistered": ("EMPLOYER_DEREGISTERED", "已注销")}


def _registry_employers(session: Session, employer_ids: set[str]) -> dict[str, RegistryEmployer]:
    """The employers named, locked FOR UPDATE (PostgreSQL) so that two declarations of one employer queue up."""
    out: dict[str, RegistryEmployer] = {}
    for chunk in _chunks(sorted(employer_ids)):
        query = select(RegistryEmployer).where(RegistryEmployer.employer_id.in_(chunk)).with_for_update()
        out.update((e.employer_id, e) for e in session.execute(query).scalars())
    return out


def _employer_in_area(employers: dict[str, RegistryEmployer], employer_id: str) -> RegistryEmployer:
    employer = employers.get(employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在（征缴系统尚未收到该单位的登记信息）")
    ensure_in_region(context.current().actor, employer.region)
    return employer


def _check_employer_active(employer: RegistryEmployer) -> None:
    if employer.status != "active":
        code, label = EMPLOYER_STATES.get(employer.status, ("EMPLOYER_NOT_ACTIVE", employer.status))
        raise Conflict(code, f"用人单位{label}，不能申报缴费基数")


def _check_period(period: int) -> None:
    current = china_period()
    if period > current:
        raise Invalid("PERIOD_IN_FUTURE", f"费款所属期 {period} 晚于本月（{current}），不能预先申报")


def _issued_for(session: Session, employer_ids: set[str], period: int) -> dict[str, str]:
    """employer id → the id of its issued assessment for the period, for those that have one."""
    out: dict[str, str] = {}
    for chunk in _chunks(sorted(employer_ids)):
        rows = session.execute(select(Assessment.employer_id, Assessment.id).where(
            Assessment.employer_id.in_(chunk), Assessment.period == period, Assessment.status == "issued"))
        out.update((employer_id, assessment_id) for employer_id, assessment_id in rows)
    return out


def due_date_of(period: int, due_day: int) -> date:
    following = add_months(period, 1)
    return date(following // 100, following % 100, due_day)


# The states of an enrolment that oblige contributions for the months from its start to its end: active or stopped
# ones cover their months; a suspended one contributes nothing.
OBLIGED = frozenset({"active", "stopped"})


@dataclass
class Rates:
    """The rate of each fund and side for this employer and period, as exact decimals and as recorded text."""

    by_fund: dict[str, tuple[Decimal, Decimal]]
    floor_fen: int
    cap_fen: int
    due: date
    injury_factor: Decimal
    injury_adjustment_id: str | None

    def text(self, fund: str) -> tuple[str, str]:
        employer, individual = self.by_fund[fund]
        return rate_text(employer), rate_text(individual)


def rates_for(employer: RegistryEmployer, period: int, params: Parameters,
              injury: tuple[Decimal, str | None]) -> Rates:
    """``injury``: the employer's floating factor for the period and its adjustment's id (``injury_factors``)."""
    doc = params.document
    by_fund = {fund: (doc.rates[fund].employer, doc.rates[fund].individual) for fund in WAGE_FUNDS}
    factor, adjustment_id = injury
    try:
        class_rate = doc.injury_rate(employer.industry_risk_class)
    except ValueError:
        raise Invalid("UNKNOWN_RISK_CLASS",
                      f"单位的行业风险类别 {employer.industry_risk_class} 在费率方案中没有基准费率") from None
    by_fund[INJURY] = (class_rate * factor, ZERO)
    return Rates(by_fund=by_fund, floor_fen=doc.floor_fen, cap_fen=doc.cap_fen, due=due_date_of(period, doc.due_day),
                 injury_factor=factor, injury_adjustment_id=adjustment_id)


# -- resolving the lines ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Resolved:
    """An accepted line: the person, the declared and clamped base, and the funds to assess."""

    line_no: int
    person_id: str
    declared_base_fen: int
    base_fen: int
    clamp: str | None
    funds: list[str]


@dataclass
class Checked:
    accepted: list[Resolved] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _driver_rows(result: CursorResult) -> list[tuple]:
    """All the rows of a read whose columns have no result processor (text, integers), as the driver's own tuples:
    a ``Row`` each cost as much as fetching it (a month's page of 5 000 lines, a batch's enrolments)."""
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _persons(session: Session, *, ids: set[str], citizen_ids: set[str]) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(person_id → row, citizen_id → row) of the persons named: a Core read per kind of key, the keys bound as one
    parameter (not a thousand expanding parameters each, nor ORM rows)."""
    p = RegistryPerson.__table__.c
    dialect = session.get_bind().dialect.name
    by_id: dict[str, tuple] = {}
    by_citizen: dict[str, tuple] = {}
    for column, keys in ((p.person_id, ids), (p.citizen_id, citizen_ids)):
        if not keys:
            continue
        query = select(p.person_id, p.citizen_id, p.name).where(
            in_parameter(dialect, column, values=sorted(keys)))
        for person in _driver_rows(read_rows(session, query, {})):
            by_id[person[0]] = person
            if column is p.citizen_id:
                by_citizen[person[1]] = person
    return by_id, by_citizen


Enrolments = dict[str, list[tuple[str, int, int | None, str]]]  # person_id → [(fund, start, end, status)]


def _enrolments(session: Session, employer_ids: set[str], period: int) -> dict[str, Enrolments]:
    """employer_id → its ``Enrolments`` that cover ``period`` (from their start to their end: those ``check_lines``
    looks at; an employer's past staff and ended enrolments are not read), in one Core read."""
    out: dict[str, Enrolments] = {e: defaultdict(list) for e in employer_ids}
    if not employer_ids:
        return out
    e = RegistryEnrolment.__table__.c
    query = select(e.employer_id, e.person_id, e.fund, e.start_period, e.end_period, e.status).where(
        in_parameter(session.get_bind().dialect.name, e.employer_id, values=sorted(employer_ids)),
        e.start_period <= period, or_(e.end_period.is_(None), e.end_period >= period))
    for employer_id, person_id, fund, start, end, status in _driver_rows(read_rows(session, query, {})):
        out[employer_id][person_id].append((fund, start, end, status))
    return out


@dataclass
class Known:
    """What the checks of a set of declarations of one period read, in a few set queries (not a dozen per
    employer): the employers, their issued assessments and floating factors, the persons named and the employers'
    enrolments; the parameter sets in force, by region, as they are met."""

    employers: dict[str, RegistryEmployer]
    issued: dict[str, str]
    injury: dict[str, tuple[Decimal, str | None]]
    persons_by_id: dict[str, tuple]
    persons_by_citizen: dict[str, tuple]
    enrolments: dict[str, Enrolments]
    in_force: dict[str, Parameters] = field(default_factory=dict)

    @classmethod
    def read(cls, session: Session, period: int, declarations: list[tuple[str, list[InputLine]]]) -> "Known":
        employers = _registry_employers(session, {employer_id for employer_id, _ in declarations})
        found = set(employers)
        lines = [ln for _, declared in declarations for ln in declared if ln.code is None]
        by_id, by_citizen = _persons(session, ids={ln.person_id for ln in lines if ln.person_id},
                                     citizen_ids={ln.citizen_id for ln in lines if ln.citizen_id})
        return cls(employers, _issued_for(session, found, period), injury_factors(session, found, period), by_id,
                   by_citizen, _enrolments(session, found, period))

    def parameters(self, session: Session, region: str, period: int) -> Parameters:
        if region not in self.in_force:
            self.in_force[region] = parameters_for(session, region, period)
        return self.in_force[region]


def check_lines(known: Known, employer: RegistryEmployer, period: int, lines: list[InputLine],
                rates: Rates) -> Checked:
    result = Checked()

    def refuse(line: InputLine, code: str, message: str, person_id: str | None = None) -> None:
        result.rejected.append(Rejection(line.line_no, person_id or line.person_id, line.citizen_id, code, message))

    persons_by_id, persons_by_citizen, by_fund = known.persons_by_id, known.persons_by_citizen, rates.by_fund
    enrolments = known.enrolments[employer.employer_id]
    seen: dict[str, int] = {}
    for line in lines:
        if line.code is not None:
            refuse(line, line.code, line.message or line.code)
            continue
        person = persons_by_id.get(line.person_id) if line.person_id else persons_by_citizen.get(line.citizen_id)
        if person is None:
            named = f"人员编号 {line.person_id}" if line.person_id else "该公民身份号码"
            refuse(line, "PERSON_NOT_FOUND", f"{named} 未在社会保险登记中找到")
            continue
        person_id, citizen_id, name = person
        if line.person_id and line.citizen_id and citizen_id != line.citizen_id:
            refuse(line, "PERSON_MISMATCH", "人员编号与公民身份号码不是同一人")
            continue
        if line.name and line.name != name:
            refuse(line, "NAME_MISMATCH", f"姓名与登记信息不符（登记为 {name}）", person_id)
            continue
        if person_id in seen:
            refuse(line, "DUPLICATE_PERSON", f"同一人员在本次申报中出现两次（另见第 {seen[person_id]} 行）", person_id)
            continue
        seen[person_id] = line.line_no
        funds: list[str] = []
        suspended = False
        unconfigured: list[str] = []
        for fund, start, end, status in enrolments.get(person_id, ()):
            if start > period or (end is not None and period > end):
                continue  # not this month's
            if status not in OBLIGED:
                suspended = suspended or status == "suspended"
                continue
            if fund in funds:
                continue
            if fund not in by_fund:
                unconfigured.append(fund)
            funds.append(fund)
        if unconfigured:
            refuse(line, "FUND_NOT_CONFIGURED",
                   f"险种 {'、'.join(unconfigured)} 在适用的费率方案中没有费率，不能核定", person_id)
            continue
        if not funds:
            if suspended:
                refuse(line, "ENROLMENT_SUSPENDED", f"该人员在本单位的参保登记已暂停，{period} 不能核定缴费", person_id)
            else:
                refuse(line, "NOT_ENROLLED", f"该人员 {period} 未在本单位参保", person_id)
            continue
        declared = line.base_fen
        assert declared is not None
        base, clamp = declared, None
        if declared < rates.floor_fen:
            base, clamp = rates.floor_fen, "floor"
        elif declared > rates.cap_fen:
            base, clamp = rates.cap_fen, "cap"
        result.accepted.append(Resolved(line.line_no, person_id, declared, base, clamp,
                                        sorted(funds, key=_FUND_ORDER.get)))
    return result


_FUND_ORDER = {f: i for i, f in enumerate((*WAGE_FUNDS, INJURY))}


def _refuse(rejected: list[Rejection], total: int) -> DomainError:
    rejected.sort(key=lambda r: r.line_no)
    return Invalid(
        "DECLARATION_REJECTED",
        f"申报共 {total} 行，其中 {len(rejected)} 行不能核定（见 details）；整份申报未受理，请更正后重新申报",
        details={"lines": total, "rejected": len(rejected),
                 "reasons": [r.as_dict() for r in rejected[:MAX_REPORTED]]},
    )


# -- issuing ---------------------------------------------------------------------------------------------------------


_EXACT_DIGITS = 10 ** 28  # Decimal's default precision: a product below it is exact


def exact_ratio(rate: Decimal) -> tuple[int, int, int, Decimal]:
    """A rate as ``portion_fen`` computes with it: numerator and denominator of its exact value, the largest base
    whose product with it ``Decimal`` still computes exactly, and the rate itself."""
    sign, digits, exponent = rate.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    if sign or not isinstance(exponent, int):
        return -1, 1, -1, rate  # never met (rates are not negative): percent_of_fen decides
    numerator, denominator = (coefficient, 10 ** -exponent) if exponent <= 0 else (coefficient * 10 ** exponent, 1)
    return numerator, denominator, (_EXACT_DIGITS - 1) // max(numerator, 1), rate


def portion_fen(base_fen: int, ratio: tuple[int, int, int, Decimal]) -> int:
    """``percent_of_fen(base_fen, rate)`` (half-up, once) in integers, for the three lines of every person of a
    month: base × n / d rounded half-up is ⌊(2·base·n + d) / 2d⌋ for a base that is not negative and whose product
    with the rate ``Decimal`` computes exactly; anything else goes through ``percent_of_fen``."""
    numerator, denominator, largest_base, rate = ratio
    if not 0 <= base_fen <= largest_base:
        return percent_of_fen(base_fen, rate)
    return (2 * base_fen * numerator + denominator) // (2 * denominator)



@dataclass
class Issued:
    declaration: Declaration
    assessment: Assessment
    clamped: dict[str, int]
    superseded: Assessment | None = None


DECLARATION_LINE_COLUMNS = ("declaration_id", "person_id", "declared_base_fen", "base_fen", "clamp")
LINE_COLUMNS = ("id", "assessment_id", "employer_id", "person_id", "fund", "period", "base_fen", "employer_rate",
                "individual_rate", "employer_fen", "individual_fen", "due_date", "status", "paid_principal_fen",
                "paid_late_fee_fen")


@dataclass
class Planned:
    """A declaration checked and assessed, its rows and event lines ready to be written with the others."""

    issued: Issued
    rates: Rates
    source: str
    declaration_rows: list[tuple]  # in DECLARATION_LINE_COLUMNS' order
    line_rows: list[tuple]  # in LINE_COLUMNS' order
    event_lines: list[dict[str, Any]]


def _paid_so_far(session: Session, assessment_id: str) -> dict[tuple[str, str], tuple[int, int]]:
    rows = session.execute(
        select(AssessmentLine.person_id, AssessmentLine.fund, AssessmentLine.paid_principal_fen,
               AssessmentLine.paid_late_fee_fen)
        .where(AssessmentLine.assessment_id == assessment_id,
               (AssessmentLine.paid_principal_fen > 0) | (AssessmentLine.paid_late_fee_fen > 0))
    )
    return {(p, f): (principal, fee) for p, f, principal, fee in rows}


def _plan(session: Session, known: Known, employer_id: str, period: int, lines: list[InputLine], *, source: str,
          old: Assessment | None = None, reason: str | None = None) -> Planned:
    """Check and assess one declaration (nothing written); refusals are raised. ``old``: the assessment a
    correction supersedes (checked by the caller)."""
    employer = _employer_in_area(known.employers, employer_id)
    _check_employer_active(employer)
    _check_period(period)
    if old is None and employer_id in known.issued:
        existing = known.issued[employer_id]
        raise Conflict("ASSESSMENT_EXISTS",
                       f"该单位 {period} 已有核定单（{existing}）；更正请通过 POST /assessments/{existing}/supersede")
    params = known.parameters(session, employer.region, period)
    rates = rates_for(employer, period, params, known.injury.get(employer_id, (ONE, None)))
    checked = check_lines(known, employer, period, lines, rates)
    if checked.rejected:
        raise _refuse(checked.rejected, len(lines))
    paid = _paid_so_far(session, old.id) if old is not None else {}

    now, actor = clock.utc_now(), context.actor_id()
    declaration = Declaration(id=new_event_id(), employer_id=employer_id, period=period, status="assessed",
                              source=source, lines=len(checked.accepted), submitted_at=now, submitted_by=actor)
    assessment_id = new_event_id()
    declaration_rows: list[tuple] = []
    line_rows: list[tuple] = []
    event_lines: list[dict[str, Any]] = []
    employer_total = individual_total = 0
    # The lines' one due date as the driver takes it (SQLite: its text), bound once rather than on every line.
    due = bulk.bound_value(session, AssessmentLine.__table__, "due_date", rates.due)
    # Per fund: the two exact ratios and the rates' recorded text, looked up once per line.
    by_fund = {fund: (exact_ratio(employer), exact_ratio(individual), *rates.text(fund))
               for fund, (employer, individual) in rates.by_fund.items()}
    declaration_id = declaration.id
    line_ids = iter(new_event_ids(sum(len(line.funds) for line in checked.accepted)))
    for line in checked.accepted:
        person_id, base, declared, clamp = line.person_id, line.base_fen, line.declared_base_fen, line.clamp
        declaration_rows.append((declaration_id, person_id, declared, base, clamp))
        for fund in line.funds:
            employer_ratio, individual_ratio, text_employer, text_individual = by_fund[fund]
            employer_fen = portion_fen(base, employer_ratio)
            individual_fen = portion_fen(base, individual_ratio)
            employer_total += employer_fen
            individual_total += individual_fen
            if paid:  # a correction carries what was collected on the old line
                paid_principal, paid_fee = paid.pop((person_id, fund), (0, 0))
                status = "paid" if paid_principal and paid_principal >= employer_fen + individual_fen else "open"
            else:
                paid_principal = paid_fee = 0
                status = "open"
            line_id = next(line_ids)
            line_rows.append((line_id, assessment_id, employer_id, person_id, fund, period, base, text_employer,
                              text_individual, employer_fen, individual_fen, due, status, paid_principal, paid_fee))
            # Plain dicts: validated once per part, by the outbox (``PayloadFields``), not as a model each.
            event_lines.append({
                "line_id": line_id, "person_id": person_id, "fund": fund, "declared_base_fen": declared,
                "base_fen": base, "clamp": clamp, "employer_fen": employer_fen, "individual_fen": individual_fen})
    if paid:
        dropped = ", ".join(f"{p}/{f}" for p, f in sorted(paid)[:20])
        raise Conflict("PAID_LINE_DROPPED",
                       f"原核定单中已有缴款的 {len(paid)} 条明细在更正申报中不存在（{dropped}），须先办理退费或保留这些人员")

    # 100 000 lines of capped bases may in theory exceed a 64-bit column: refuse rather than overflow on insert.
    employer_total, individual_total = checked_total_fen([employer_total]), checked_total_fen([individual_total])
    assessment = Assessment(
        id=assessment_id, declaration_id=declaration.id, employer_id=employer_id, period=period,
        parameters_id=params.id, status="issued", supersedes_id=old.id if old else None, due_date=rates.due,
        lines=len(line_rows), employer_total_fen=employer_total, individual_total_fen=individual_total,
        issued_at=now, issued_by=actor, reason=reason,
    )
    clamped = {"floor": sum(1 for ln in checked.accepted if ln.clamp == "floor"),
               "cap": sum(1 for ln in checked.accepted if ln.clamp == "cap")}
    known.issued[employer_id] = assessment_id  # the same employer again in a batch: a repeat
    return Planned(Issued(declaration, assessment, clamped, old), rates, source, declaration_rows, line_rows,
                   event_lines)


def _write(session: Session, planned: list[Planned]) -> None:
    """The planned declarations and assessments, their lines, audit entries, events and dossier filings, each kind
    in one bulk write (a correction's old assessment is marked superseded first)."""
    for p in planned:
        old, assessment_id = p.issued.superseded, p.issued.assessment.id
        if old is None:
            continue
        old.status, old.superseded_by_id = "superseded", assessment_id
        session.add(old)
        session.execute(update(AssessmentLine).where(AssessmentLine.assessment_id == old.id)
                        .values(status="superseded"))
        if old.declaration_id:
            session.execute(update(Declaration).where(Declaration.id == old.declaration_id)
                            .values(status="superseded"))
        session.flush()  # the old one stops being the issued one before the new one is (one issued per month)
    # Parents first, as Core rows (the objects are answered, not loaded back).
    for table, rows in ((Declaration.__table__, [_row(p.issued.declaration) for p in planned]),
                        (Assessment.__table__, [_row(p.issued.assessment) for p in planned])):
        bulk.insert_rows(session, table, rows)
    for table, names, tuples, prebound in (
        (DeclarationLine.__table__, DECLARATION_LINE_COLUMNS, [row for p in planned for row in p.declaration_rows], ()),
        (AssessmentLine.__table__, LINE_COLUMNS, [row for p in planned for row in p.line_rows], ("due_date",)),
    ):
        for chunk in _chunks(tuples):
            bulk.insert_tuples(session, table, names, chunk, prebound=prebound)

    audit: list[dict[str, Any]] = []
    events: list[tuple[Any, str]] = []
    for p in planned:
        entries, issued_events = _audit_and_events(p)
        audit += entries
        events += issued_events
    append_audit_many(session, audit)
    record_events(session, events, source=SOURCE)
    # Each assessment.issue entry is its declaration's last one: their positions, in the order appended.
    positions = archives.latest_positions(session, len(audit))
    ends = list(accumulate(2 + (p.issued.superseded is not None) for p in planned))
    archives.file_items(session, [_filing(p, positions[end - 1]) for p, end in zip(planned, ends, strict=True)])
    session.flush()


def _row(obj: Any) -> dict[str, Any]:
    return {c.name: getattr(obj, c.name) for c in type(obj).__table__.c}


def _audit_and_events(p: Planned) -> tuple[list[dict[str, Any]], list[tuple[Any, str]]]:
    declaration, assessment, old = p.issued.declaration, p.issued.assessment, p.issued.superseded
    employer_id, period, assessment_id = assessment.employer_id, assessment.period, assessment.id
    employer_total, individual_total = assessment.employer_total_fen, assessment.individual_total_fen
    audit = [{"action": "declaration.submit", "entity_type": "declaration", "entity_id": declaration.id,
              "detail": {"employer_id": employer_id, "period": period, "source": p.source,
                         "lines": declaration.lines, "clamped": p.issued.clamped}}]
    events: list[tuple[Any, str]] = []
    if old is not None:
        audit.append({"action": "assessment.supersede", "entity_type": "assessment", "entity_id": old.id,
                      "detail": {"superseded_by_id": assessment_id, "employer_id": employer_id, "period": period},
                      "reason": assessment.reason})
        events.append((AssessmentSuperseded(assessment_id=old.id, superseded_by_id=assessment_id,
                                            employer_id=employer_id, period=period, reason=assessment.reason or ""),
                       old.id))
    audit.append({"action": "assessment.issue", "entity_type": "assessment", "entity_id": assessment_id,
                  "detail": {"declaration_id": declaration.id, "employer_id": employer_id, "period": period,
                             "parameters_id": assessment.parameters_id,
                             "injury_factor": rate_text(p.rates.injury_factor),
                             "injury_adjustment_id": p.rates.injury_adjustment_id, "lines": assessment.lines,
                             "employer_total_fen": employer_total, "individual_total_fen": individual_total,
                             "due_date": p.rates.due.isoformat(), "supersedes_id": assessment.supersedes_id},
                  "reason": assessment.reason})
    parts = max(1, -(-len(p.event_lines) // MAX_LINES))
    # Validated once, by the outbox (``PayloadFields``), with the lines as plain dicts.
    events += [(PayloadFields(AssessmentIssued, {
        "assessment_id": assessment_id, "employer_id": employer_id, "period": period, "due_date": p.rates.due,
        "supersedes_id": assessment.supersedes_id, "part": part, "parts": parts, "employer_total_fen": employer_total,
        "individual_total_fen": individual_total, "lines": chunk,
    }), assessment_id) for part, chunk in enumerate(_chunks(p.event_lines, MAX_LINES), start=1)]
    return audit, events


def _filing(p: Planned, issued: tuple[int, str]) -> Any:
    """The assessment's item for its employer's dossier; ``issued``: the position of its assessment.issue entry."""
    assessment = p.issued.assessment
    period = assessment.period
    return archives.act(
        archives.EMPLOYER, assessment.employer_id, "assessment", assessment.id,
        f"{period // 100} 年 {period % 100} 月缴费核定",
        f"核定 {assessment.lines} 条，单位缴费 {fen_to_yuan(assessment.employer_total_fen)} 元，"
        f"个人缴费 {fen_to_yuan(assessment.individual_total_fen)} 元"
        f"{'（更正 ' + assessment.supersedes_id + '）' if assessment.supersedes_id else ''}",
        audit=issued, references={"assessment_id": assessment.id, "declaration_id": p.issued.declaration.id})


def issue(session: Session, employer_id: str, period: int, lines: list[InputLine], *, source: str,
          supersede_id: str | None = None, reason: str | None = None) -> Issued:
    """Check, assess and issue (or, with ``supersede_id``, correct) in one transaction; see the module docstring."""
    known = Known.read(session, period, [(employer_id, lines)])
    _employer_in_area(known.employers, employer_id)
    old: Assessment | None = None
    if supersede_id is not None:
        old = session.execute(select(Assessment).where(Assessment.id == supersede_id).with_for_update()
                              ).scalar_one_or_none()
        if old is None or old.employer_id != employer_id:
            raise NotFound("ASSESSMENT_NOT_FOUND", "核定单不存在")
        if old.status != "issued":
            raise Conflict("ASSESSMENT_NOT_ISSUED", f"核定单已被更正（{old.superseded_by_id}），只能更正现行的核定单")
        if period != old.period:
            raise Invalid("PERIOD_MISMATCH", f"更正申报的费款所属期须与原核定单一致（{old.period}）")
        # The old lines' paid figures are carried over and the lines closed: no batch settles them meanwhile.
        settling.lock_periods(session, [period])
    planned = _plan(session, known, employer_id, period, lines, source=source, old=old, reason=reason)
    _write(session, [planned])
    return planned.issued


@dataclass
class Outcome:
    """One declaration of a batch: issued, or refused with the error a single declaration would have met."""

    employer_id: str
    issued: Issued | None = None
    refusal: DomainError | None = None


@collector_paused()  # a batch's objects all live until it is written: see services/kernel/collector.py
def issue_many(session: Session, period: int, declarations: list[tuple[str, list[InputLine]]], *,
               source: str) -> list[Outcome]:
    """Each employer's declaration checked and assessed as ``issue`` does, then every accepted one issued at once
    in the caller's transaction; a refused one is reported with the error it would have met alone and nothing of it
    is written (an agency's month of declarations: one request, a few set reads and bulk writes, one commit and one
    relay wake-up for many employers)."""
    known = Known.read(session, period, declarations)
    outcomes: list[Outcome] = []
    planned: list[Planned] = []
    for employer_id, lines in declarations:
        try:
            plan = _plan(session, known, employer_id, period, lines, source=source)
        except DomainError as exc:
            outcomes.append(Outcome(employer_id, refusal=exc))
        except HTTPException as exc:  # the region check's 403 OUT_OF_REGION
            detail = exc.detail if isinstance(exc.detail, dict) else {"code": "FORBIDDEN", "message": str(exc.detail)}
            outcomes.append(Outcome(employer_id, refusal=DomainError(detail["code"], detail["message"],
                                                                     status=exc.status_code)))
        else:
            planned.append(plan)
            outcomes.append(Outcome(employer_id, issued=plan.issued))
    if planned:
        _write(session, planned)
    return outcomes


def supersede(session: Session, assessment_id: str, lines: list[InputLine], *, period: int | None, reason: str,
              source: str) -> Issued:
    old = session.get(Assessment, assessment_id)
    if old is None or old.employer_id is None:
        raise NotFound("ASSESSMENT_NOT_FOUND", "核定单不存在")
    return issue(session, old.employer_id, period if period is not None else old.period, lines, source=source,
                 supersede_id=assessment_id, reason=reason)


# -- reading ---------------------------------------------------------------------------------------------------------


def get_assessment(session: Session, assessment_id: str) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound("ASSESSMENT_NOT_FOUND", "核定单不存在")
    if assessment.employer_id is not None:
        region = session.execute(select(RegistryEmployer.region)
                                 .where(RegistryEmployer.employer_id == assessment.employer_id)).scalar_one_or_none()
        if region is not None:
            ensure_in_region(context.current().actor, region)
    return assessment


def assessment_lines(session: Session, assessment_id: str, *, after: str | None, limit: int,
                     fund: str | None = None, person_id: str | None = None) -> tuple[list[Any], str | None]:
    """A page of the lines by line id, as plain rows with the columns of ``AssessmentLine`` (the tax bureau's client
    reads every line of every assessment: no ORM object per line)."""
    c = AssessmentLine.__table__.c
    query = select(AssessmentLine.__table__).where(c.assessment_id == assessment_id)
    if fund:
        query = query.where(c.fund == fund)
    if person_id:
        query = query.where(c.person_id == person_id)
    if after:
        query = query.where(c.id > after)
    session.flush()
    rows = session.connection().execute(query.order_by(c.id).limit(limit + 1)).all()
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].id


PERIOD_LINE_COLUMNS = ("id", "assessment_id", "employer_id", "person_id", "fund", "base_fen", "employer_fen",
                       "individual_fen", "status")


def period_lines(session: Session, period: int, *, employer_id: str | None, after: str | None,
                 limit: int) -> tuple[list[Any], str | None]:
    """A page of the lines of a month's issued assessments of employers in the caller's area, by assessment then line
    id, as plain rows (the tax bureau's client reads a month's collection plan in a few requests, not two per
    employer). The cursor is ``<assessment id>.<line id>`` of the page's last line."""
    line, assessment = AssessmentLine.__table__.c, Assessment.__table__.c
    query = (
        select(*(line[name] for name in PERIOD_LINE_COLUMNS))
        .join(Assessment.__table__, assessment.id == line.assessment_id)
        .join(RegistryEmployer.__table__, RegistryEmployer.__table__.c.employer_id == assessment.employer_id)
        .where(assessment.period == period, assessment.status == "issued",
               region_filter(RegistryEmployer.__table__.c.region))
    )
    if employer_id:
        query = query.where(assessment.employer_id == employer_id)
    if after:
        after_assessment, _, after_line = after.partition(".")
        if not after_line:
            raise Invalid("INVALID_CURSOR", "分页游标无效，请使用上一页返回的 next_cursor")
        # The bound on assessment.id alone lets the index start at the cursor (with only the OR, every page would
        # join and skip all the lines before it: a month read in pages would cost pages × lines).
        query = query.where(assessment.id >= after_assessment,
                            (assessment.id > after_assessment) | (line.id > after_line))
    rows = _driver_rows(session.connection().execute(query.order_by(assessment.id, line.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], f"{last[1]}.{last[0]}"


def list_assessments(session: Session, *, employer_id: str | None, period: int | None, status: str | None,
                     after: str | None, limit: int) -> tuple[list[Assessment], str | None]:
    """Assessments of employers in the caller's area, newest first (by id)."""
    query = (
        select(Assessment)
        .join(RegistryEmployer, RegistryEmployer.employer_id == Assessment.employer_id)
        .where(region_filter(RegistryEmployer.region))
    )
    if employer_id:
        query = query.where(Assessment.employer_id == employer_id)
    if period:
        query = query.where(Assessment.period == period)
    if status:
        query = query.where(Assessment.status == status)
    return newest_first(session, query, Assessment.id, after=after, limit=limit)


def get_declaration(session: Session, declaration_id: str) -> Declaration:
    declaration = session.get(Declaration, declaration_id)
    if declaration is None:
        raise NotFound("DECLARATION_NOT_FOUND", "申报不存在")
    employer = session.get(RegistryEmployer, declaration.employer_id)
    if employer is not None:
        ensure_in_region(context.current().actor, employer.region)
    return declaration


def declaration_lines(session: Session, declaration_id: str, *, after: int | None,
                      limit: int) -> tuple[list[DeclarationLine], int | None]:
    query = select(DeclarationLine).where(DeclarationLine.declaration_id == declaration_id)
    return oldest_first(session, query, DeclarationLine.id, after=after, limit=limit)
