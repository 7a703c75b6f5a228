"""Tax collection (征收, the TAX leg): payment batches from the tax bureau, checked line by line, matched to the
agency's assessment lines and settled, in one transaction per batch.

Per line, in this order (the first refusal wins):

1. **refused method** — cash, cash cheque, post-dated bill or securities (002 四): rejected
   ``REFUSED_PAYMENT_METHOD`` whatever else the line says, so that oversight always sees it (S17);
2. **shape** — the line itself (amounts as decimal strings with at most two places and not negative, USCC and
   citizen id check characters, period, dates, a payer): ``INVALID_*``, ``NEGATIVE_AMOUNT``, ``MISSING_*``;
   an unknown method: ``UNKNOWN_PAYMENT_METHOD``;
3. **idempotency** — the bureau's ``tax_line_id`` seen before (in an earlier batch or earlier in this one): the
   same content is a *duplicate* (counted, nothing changes), other content is rejected ``TAX_LINE_CONFLICT``;
4. **plausibility** — ``UNKNOWN_FUND`` (not in the fund catalogue of the parameters valid for the period),
   ``FUTURE_PERIOD``, ``PAID_DATE_IN_FUTURE``, ``EMPLOYER_DEREGISTERED`` (the payer's registry status);
5. **voucher** — a voucher number already used by another payer (here or earlier in this batch):
   ``DUPLICATE_VOUCHER``. One voucher may cover several lines of the same payer (one bank transfer for many
   persons or funds); the payer is the USCC, or the citizen id for a line without one;
6. **stored** — every other line is stored (``TaxPayment``) and matched:

   * *person-level* (``citizen_id`` given): the assessment line of (person, fund, period) that is not superseded,
     of the paying employer when a ``payer_uscc`` is given. It settles that line.
   * *employer-level* (``payer_uscc`` only): the employer's open lines of (fund, period) together. The rule is
     "by totals": the payment is matched when its principal (employer + individual amounts) covers the
     outstanding principal of all those lines; every line's principal is then settled in full, then their late
     fees, in line order. A smaller payment is **not** spread over persons (whose individual accounts would be
     credited is not ours to guess): it stays unmatched (``PARTIAL_EMPLOYER_PAYMENT``) for a reviewer.
   * *unmatched* — payer or person not in the registry, no assessment line, the line already settled, a
     partial employer-level payment, two candidate lines: stored with ``match_status = unmatched`` and a note,
     listed at ``GET /tax-payments/unmatched``, never dropped. A reviewer resolves one to an assessment line.

Settlement (``arrears.latefee``): the whole payment (employer + individual + late-fee amounts) settles the
outstanding principal first, then the late fee accrued up to the paid date; anything more is an overpayment, kept in
the payment's note. Each settled line gets one ``LateFeeCharge`` row. Lines of a batch are settled in paid-date
order so that the fee segments follow the calendar.

Events: ``collection.payments.collected.v1`` for the stored lines (matched and unmatched: the TAX leg is what the
bureau collected) in parts of at most 1 000 lines; ``collection.payments.rejected.v1`` for the rejected lines, at
most 1 000 a piece. One audit entry per batch keeps the counts and every rejected line.
"""

import hashlib
import json
from json.encoder import encode_basestring as _json_string
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.collection.arrears import latefee
from services.collection.arrears.parameters import ParameterSets, load_parameter_sets
from services.collection.arrears.states import chunks, load_states, one_of
from services.collection.models import (
    Assessment,
    AssessmentLine,
    LateFeeCharge,
    RegistryEmployer,
    RegistryPerson,
    TaxPayment,
    TaxPaymentBatch,
)
from services.collection.payments import bulk, settling
from services.collection.payments.schemas import (
    CSV_COLUMNS,
    MAX_LINES,
    REFUSED_METHODS,
    BatchDetail,
    BatchResult,
    BatchSummary,
    ChargeOut,
    CheckedLine,
    FundPeriodTotal,
    LineRef,
    MatchStatus,
    PaymentDetail,
    PaymentMethod,
    PaymentOut,
    BatchValues,
    Rejection,
    TaxPaymentLine,
    normalise_method,
    quick_line,
)
from services.contracts.collection import MAX_LINES as EVENT_MAX_LINES
from services.contracts.collection import PaymentsCollected, PaymentsRejected
from services.kernel import clock, context, metrics
from services.kernel.audit import append_audit
from services.kernel.collector import collector_paused
from services.kernel.errors import Conflict, Invalid, NotFound, TooLarge, field_reasons
from services.kernel.events import PayloadFields, new_event_id, new_event_ids
from services.kernel.models import AuditEntry
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.kernel.outbox import record_events
from services.kernel.paging import newest_first, oldest_first
from services.kernel.periods import period_of
from services.kernel.tabular import read_table

SOURCE = "collection"
_MATCHED, _UNMATCHED = MatchStatus.matched.value, MatchStatus.unmatched.value  # read once per line
ACCEPTED_METHODS = frozenset(m.value for m in PaymentMethod)
CLAUSE_002_4 = "社会保险费征缴部门不得接受以现金和现金支票、远期票据、有价证券等形式缴纳社会保险费（002 四）"


def today_in_china() -> date:
    return clock.china_today()


# -- line checks -----------------------------------------------------------------------------------------------------


class LineRejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _validation_reason(exc: ValidationError) -> tuple[str, str]:
    """The first error of a line as (code, Chinese message); identifier and money validators carry their own code."""
    reasons = field_reasons(exc, other="INVALID_LINE",
                            by_field={"period": ("INVALID_PERIOD", "费款所属期应为 YYYYMM 格式的有效月份")})
    return (reasons[0][0] if reasons else "INVALID_LINE"), "；".join(message for _, message in reasons)


def _content_hash(line: CheckedLine) -> str:
    """Over the normalised values: the same line sent as JSON or as CSV, with "1304.6" or "1304.60", or the method's
    Chinese label, is the same line. A JSON array keeps the fields apart whatever they contain. (Stored hashes are
    compared with those of lines sent again: the form of the text hashed must not change: the text is exactly
    ``json.dumps([...], ensure_ascii=False)`` of these strings, written without building an encoder per line.)"""
    tax_line_id, payer, citizen, fund, period, employer_fen, individual_fen, late_fee_fen, method, voucher, paid = line
    paid_on = _ISO_DAYS.get(paid)  # a batch's few paid dates, each written once
    if paid_on is None:
        paid_on = paid.isoformat()
        if len(_ISO_DAYS) < _ISO_DAYS_KEPT:
            _ISO_DAYS[paid] = paid_on
    body = (f'["{tax_line_id}", "{payer or ""}", "{citizen or ""}", "{fund}", "{period}", "{employer_fen}", '
            f'"{individual_fen}", "{late_fee_fen}", "{method}", "{voucher}", "{paid_on}"]')
    # Nearly always nothing to escape (only the quotes around the values, no backslash, no control character): the
    # values are quoted as they are; otherwise each one is escaped as json.dumps escapes it. (Control characters
    # are not printable; text that is not printable for another reason takes the exact path too.)
    if body.count('"') != _VALUE_QUOTES or "\\" in body or not body.isprintable():
        values = (tax_line_id, payer or "", citizen or "", fund, str(period), str(employer_fen), str(individual_fen),
                  str(late_fee_fen), method, voucher, paid_on)
        body = "[" + ", ".join(map(_json_string, values)) + "]"
    return hashlib.sha256(body.encode()).hexdigest()


_VALUE_QUOTES = 2 * 11  # the eleven values' own quotes
_ISO_DAYS: dict[date, str] = {}  # paid dates' ISO text (``date.isoformat`` costs ~0.3 us, a lookup a tenth)
_ISO_DAYS_KEPT = 4096


def _best_effort_amount(raw: dict[str, Any]) -> int | None:
    total = 0
    for key in ("employer_amount", "individual_amount", "late_fee_amount"):
        value = raw.get(key)
        if value in (None, ""):
            continue
        try:
            total += yuan_to_fen(str(value).strip()) if not isinstance(value, float) else yuan_to_fen(repr(value))
        except (ValueError, ArithmeticError, TypeError):
            return None
    return total


def _best_effort_period(value: Any) -> int | None:
    try:
        period = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return period if 100001 <= period <= 999912 else None


def _short(value: Any, length: int) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:length] if text else None


# -- CSV -------------------------------------------------------------------------------------------------------------


def read_csv_lines(data: bytes) -> list[tuple[int, Any]]:
    """The rows of an uploaded CSV (UTF-8 with or without BOM, or GBK) or .xlsx, as (row number, line) pairs.

    The header row names the columns (Chinese or the JSON field names, see ``CSV_COLUMNS``); a wrong column set is
    refused as a whole (422 ``IMPORT_COLUMNS_INVALID`` naming the missing columns). Reading stops one row past
    10 000 so that an oversized file is refused without reading it all."""
    table = read_table(data, CSV_COLUMNS)
    lines: list[tuple[int, Any]] = []
    for row_no, values, extra in table.rows():
        line: dict[str, Any] = {k: _cell(v) for k, v in values.items()}
        if extra:
            line["_extra_cells"] = [str(v) for v in extra]
        lines.append((row_no, line))
        if len(lines) > MAX_LINES:
            break
    return lines


def _cell(value: Any) -> Any:
    """Excel hands numbers and dates over as Python values; a line reads the same as its CSV text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# -- the batch -------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Accepted:
    line_no: int
    line: CheckedLine
    digest: str
    payment_id: str
    employer_id: str | None  # the payer in the registry (None: no payer_uscc, or not registered)
    person_id: str | None  # the insured person in the registry (None: no citizen_id, or not registered)
    match_status: str = MatchStatus.unmatched.value
    assessment_line_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return self.line.total_fen

    @property
    def principal_fen(self) -> int:
        return self.line.employer_fen + self.line.individual_fen


@dataclass(slots=True)
class _OpenLine:
    """A candidate assessment line while the batch is being settled."""

    id: str
    assessment_id: str
    employer_id: str | None
    person_id: str
    fund: str
    period: int
    state: latefee.LineState
    key: Any  # the row's key for ``bulk.update_settled_lines`` (``bulk.row_key``)
    touched: bool = False


@dataclass
class _Rejected:
    line_no: int
    tax_line_id: str | None
    code: str
    message: str
    method: str | None = None
    payer_uscc: str | None = None
    fund: str | None = None
    period: int | None = None
    amount_fen: int | None = None


@collector_paused()  # its objects all live until it is written: see services/kernel/collector.py
def receive_batch(session: Session, raw_lines: list[tuple[int, Any]], *, source_format: str, region: str,
                  today: date | None = None) -> BatchResult:
    """Check, store, match and settle one batch; commit once. ``raw_lines`` are (line_no, object) pairs."""
    if len(raw_lines) > MAX_LINES:
        raise TooLarge("BATCH_TOO_LARGE", f"一个批次最多 {MAX_LINES} 条缴费明细，本批次 {len(raw_lines)} 条；请拆分后重新提交",
                       details={"max_lines": MAX_LINES, "lines": len(raw_lines)})
    if not raw_lines:
        raise Invalid("BATCH_EMPTY", "批次中没有缴费明细")
    today = today or today_in_china()
    current_period = period_of(today)
    actor = context.current().actor
    parameters = load_parameter_sets(session, region)

    rejected: list[_Rejected] = []
    valid: list[tuple[int, CheckedLine, str]] = []

    # 1-2: method and shape, line by line.
    seen = BatchValues()
    methods: dict[Any, str | None] = {}  # a batch's few methods, normalised once
    for line_no, raw in raw_lines:
        if not isinstance(raw, dict):
            rejected.append(_Rejected(line_no, None, "INVALID_LINE", "缴费明细应为对象"))
            continue
        raw_method = raw.get("method")
        if type(raw_method) is str:
            method = methods.get(raw_method) or methods.setdefault(raw_method, normalise_method(raw_method))
        else:
            method = normalise_method(raw_method)
        if method in REFUSED_METHODS:
            tax_line_id = _short(raw.get("tax_line_id"), 64)
            rejected.append(_Rejected(
                line_no, tax_line_id, "REFUSED_PAYMENT_METHOD",
                f"缴费方式“{REFUSED_METHODS[method]}”不予受理：{CLAUSE_002_4}", method=method,
                payer_uscc=_short(raw.get("payer_uscc"), 18), fund=_short(raw.get("fund"), 10),
                period=_best_effort_period(raw.get("period")), amount_fen=_best_effort_amount(raw)))
            continue
        try:
            line = quick_line(raw, seen) or CheckedLine.of(TaxPaymentLine.model_validate(raw))
        except ValidationError as exc:
            code, message = _validation_reason(exc)
            rejected.append(_Rejected(line_no, _short(raw.get("tax_line_id"), 64), code, message,
                                      method=_short(method, 30),
                                      payer_uscc=_short(raw.get("payer_uscc"), 18), fund=_short(raw.get("fund"), 10),
                                      period=_best_effort_period(raw.get("period")),
                                      amount_fen=_best_effort_amount(raw)))
            continue
        if line.method not in ACCEPTED_METHODS:
            rejected.append(_reject(line_no, line, "UNKNOWN_PAYMENT_METHOD",
                                    f"未知的缴费方式“{line.method}”；可接受：银行代扣（bank_withholding）、银行转账（bank_transfer）、"
                                    "网上缴费（online）、社会保障卡（ss_card）"))
            continue
        valid.append((line_no, line, _content_hash(line)))

    # One query per kind of lookup for the whole batch.
    existing = _existing_lines(session, {line.tax_line_id for _, line, _ in valid})
    employers = _employers_by_uscc(session, {line.payer_uscc for _, line, _ in valid if line.payer_uscc})
    persons = _persons_by_citizen_id(session, {line.citizen_id for _, line, _ in valid if line.citizen_id})
    voucher_payers = _voucher_payers(session, {line.voucher_no for _, line, _ in valid})

    accepted: list[_Accepted] = []
    duplicates: list[LineRef] = []
    seen_in_batch: dict[str, tuple[str, int]] = {}  # tax_line_id → (hash, line_no) of an accepted line

    # 3-5: idempotency, plausibility, voucher.
    funds_of: dict[int, frozenset[str]] = {}  # the fund catalogue of each of the batch's few periods
    for line_no, line, digest in valid:
        tax_line_id, payer_uscc, citizen_id, fund, period, _, _, _, _, voucher_no, paid_date = line  # read once
        earlier = existing.get(tax_line_id)
        if earlier is not None:
            if earlier[1] == digest:
                duplicates.append(LineRef(line_no=line_no, tax_line_id=line.tax_line_id, payment_id=earlier[0],
                                          note="DUPLICATE: 该税务明细已于此前批次接收，内容一致，未作变更"))
            else:
                rejected.append(_reject(line_no, line, "TAX_LINE_CONFLICT",
                                        f"税务明细编号 {line.tax_line_id} 已于批次 {earlier[2]} 接收，内容与本次不同；"
                                        "更正请使用新的明细编号并说明"))
            continue
        first = seen_in_batch.get(tax_line_id)
        if first is not None:
            if first[0] == digest:
                duplicates.append(LineRef(line_no=line_no, tax_line_id=line.tax_line_id,
                                          note=f"DUPLICATE: 与本批次第 {first[1]} 行重复，内容一致"))
            else:
                rejected.append(_reject(line_no, line, "TAX_LINE_CONFLICT",
                                        f"税务明细编号 {line.tax_line_id} 在本批次第 {first[1]} 行已出现，内容不同"))
            continue
        funds = funds_of.get(period)
        if funds is None:
            funds = funds_of[period] = parameters.funds(period)
        if fund not in funds:
            rejected.append(_reject(line_no, line, "UNKNOWN_FUND", f"未知险种“{line.fund}”"))
            continue
        if period > current_period:
            rejected.append(_reject(line_no, line, "FUTURE_PERIOD",
                                    f"费款所属期 {line.period} 晚于本月 {current_period}"))
            continue
        if paid_date > today:
            rejected.append(_reject(line_no, line, "PAID_DATE_IN_FUTURE",
                                    f"缴费日期 {line.paid_date.isoformat()} 晚于今天 {today.isoformat()}"))
            continue
        employer = employers.get(payer_uscc) if payer_uscc else None
        if employer is not None and employer.status == "deregistered":
            rejected.append(_reject(line_no, line, "EMPLOYER_DEREGISTERED",
                                    f"缴费单位 {line.payer_uscc}（{employer.name}）已注销社会保险登记，不能受理其缴费"))
            continue
        payer = payer_uscc or f"person:{citizen_id}"
        owner = voucher_payers.get(voucher_no)
        if owner is not None and owner != payer:
            rejected.append(_reject(line_no, line, "DUPLICATE_VOUCHER",
                                    f"票证号码 {line.voucher_no} 已被其他缴费人使用"))
            continue
        voucher_payers[voucher_no] = payer
        seen_in_batch[tax_line_id] = (digest, line_no)
        person = persons.get(citizen_id) if citizen_id else None
        accepted.append(_Accepted(line_no, line, digest, "",
                                  employer.employer_id if employer is not None else None,
                                  person.person_id if person is not None else None))
    # The payments' ids, minted at once in the lines' order (the clock's offset read once, not once a line).
    for a, payment_id in zip(accepted, new_event_ids(len(accepted)), strict=True):
        a.payment_id = payment_id

    # 6: match and settle.
    now = clock.utc_now()
    charges, line_updates = _match_and_settle(session, accepted, parameters, now)

    batch = TaxPaymentBatch(
        id=new_event_id(), received_at=now, received_by=actor.id, source_format=source_format,
        lines=len(raw_lines), accepted=len(accepted), duplicates=len(duplicates), rejected=len(rejected),
        matched=sum(1 for a in accepted if a.match_status == _MATCHED),
        unmatched=sum(1 for a in accepted if a.match_status == _UNMATCHED),
    )
    rejected.sort(key=lambda r: r.line_no)
    try:
        session.add(batch)
        session.flush()
        bulk.insert_tuples(session, TaxPayment.__table__, PAYMENT_COLUMNS, [_payment_row(a, batch.id) for a in accepted])
        bulk.insert_tuples(session, LateFeeCharge.__table__, CHARGE_COLUMNS, charges)
        bulk.update_settled_lines(session, AssessmentLine.__table__, line_updates)
        _emit(session, batch.id, accepted, rejected)
        append_audit(session, action="tax_payment_batch.receive", entity_type="tax_payment_batch", entity_id=batch.id,
                     detail={"source_format": source_format, "lines": batch.lines, "accepted": batch.accepted,
                             "duplicates": batch.duplicates, "rejected": batch.rejected, "matched": batch.matched,
                             "unmatched": batch.unmatched, "settled_assessment_lines": len(line_updates),
                             "rejections": [{"line_no": r.line_no, "tax_line_id": r.tax_line_id, "code": r.code,
                                             "message": r.message} for r in rejected]})
        session.flush()
    except IntegrityError:
        # A concurrent batch stored one of these tax line ids (or settled a line) first: nothing of this batch is
        # applied; posting it again answers the lines already stored as duplicates.
        session.rollback()
        raise Conflict("TAX_BATCH_CONCURRENT", "本批次与同时提交的另一批次包含相同的税务明细编号，已整体回滚；请重新提交本批次") from None
    metrics.count_tax_lines(session, accepted=len(accepted), duplicates=len(duplicates), rejected=rejected)
    return BatchResult(
        id=batch.id, received_at=batch.received_at, received_by=batch.received_by, source_format=source_format,
        lines=batch.lines, accepted=batch.accepted, duplicates=batch.duplicates, rejected=batch.rejected,
        matched=batch.matched, unmatched=batch.unmatched,
        rejections=[Rejection(line_no=r.line_no, tax_line_id=r.tax_line_id, code=r.code, message=r.message)
                    for r in rejected],
        unmatched_lines=[LineRef(line_no=a.line_no, tax_line_id=a.line.tax_line_id, payment_id=a.payment_id,
                                 note="；".join(a.notes) or None)
                         for a in accepted if a.match_status == _UNMATCHED],
        duplicate_lines=duplicates,
    )


def _reject(line_no: int, line: CheckedLine, code: str, message: str) -> _Rejected:
    return _Rejected(line_no, line.tax_line_id, code, message, method=line.method[:30], payer_uscc=line.payer_uscc,
                     fund=line.fund, period=line.period,
                     amount_fen=line.total_fen)


PAYMENT_COLUMNS = ("id", "tax_line_id", "content_hash", "batch_id", "payer_uscc", "employer_id", "citizen_id",
                   "person_id", "fund", "period", "employer_fen", "individual_fen", "late_fee_fen", "method",
                   "voucher_no", "paid_date", "match_status", "assessment_line_id", "match_note")


CHARGE_COLUMNS = ("assessment_line_id", "tax_payment_id", "days_late", "principal_before_fen", "principal_paid_fen",
                  "fee_accrued_fen", "fee_paid_fen", "computed_at")


def _payment_row(a: _Accepted, batch_id: str) -> tuple:
    """The ``TaxPayment`` row of an accepted line, in ``PAYMENT_COLUMNS``' order."""
    tax_line_id, payer, citizen, fund, period, employer_fen, individual_fen, late_fee_fen, method, voucher, paid = a.line
    return (a.payment_id, tax_line_id, a.digest, batch_id, payer, a.employer_id, citizen, a.person_id, fund, period,
            employer_fen, individual_fen, late_fee_fen, method, voucher, paid, a.match_status, a.assessment_line_id,
            "；".join(a.notes) or None)


# -- lookups (one query per chunk of ids) ----------------------------------------------------------------------------


def _rows(session: Session, query: Any) -> list[Any]:
    """Plain rows of a Core query in the session's transaction, without the ORM's loading per row (nothing is
    pending before the lookups: there is nothing to flush), as named tuples: a payer, a person or an open line is
    read by name several times a line (here and in ``load_states``), and a ``Row``'s attribute costs some ten times
    a named tuple's."""
    result = session.connection().execute(query)
    return list(map(_row_type(tuple(result.keys()))._make, result.all()))  # one fetch: iterating fetches a row a call


@cache
def _row_type(names: tuple[str, ...]) -> type:
    return namedtuple("Row", names)


def _existing_lines(session: Session, ids: set[str]) -> dict[str, tuple[str, str, str]]:
    """tax_line_id → (payment id, content hash, batch id)."""
    out: dict[str, tuple[str, str, str]] = {}
    for part in chunks(sorted(ids)):
        for tax_line_id, payment_id, digest, batch_id in _rows(session,
            select(TaxPayment.tax_line_id, TaxPayment.id, TaxPayment.content_hash, TaxPayment.batch_id)
            .where(one_of(session, TaxPayment.tax_line_id, part))
        ):
            out[tax_line_id] = (payment_id, digest, batch_id)
    return out


def _employers_by_uscc(session: Session, usccs: set[str]) -> dict[str, Any]:
    """uscc → (employer_id, uscc, name, status) as a plain row (read on every line: no ORM object)."""
    out: dict[str, Any] = {}
    for part in chunks(sorted(usccs)):
        for row in _rows(session, select(RegistryEmployer.employer_id, RegistryEmployer.uscc, RegistryEmployer.name,
                                         RegistryEmployer.status).where(one_of(session, RegistryEmployer.uscc, part))):
            out[row.uscc] = row
    return out


def _persons_by_citizen_id(session: Session, citizen_ids: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in chunks(sorted(citizen_ids)):
        for row in _rows(session, select(RegistryPerson.person_id, RegistryPerson.citizen_id)
                         .where(one_of(session, RegistryPerson.citizen_id, part))):
            out[row.citizen_id] = row
    return out


def _voucher_payers(session: Session, vouchers: set[str]) -> dict[str, str]:
    """voucher_no → the payer it belongs to (USCC, or ``person:<citizen id>``)."""
    out: dict[str, str] = {}
    for part in chunks(sorted(vouchers)):
        for voucher, uscc, citizen_id in _rows(session,
            select(TaxPayment.voucher_no, TaxPayment.payer_uscc, TaxPayment.citizen_id)
            .where(one_of(session, TaxPayment.voucher_no, part))
        ):
            out.setdefault(voucher, uscc or f"person:{citizen_id}")
    return out


def _open_lines(session: Session, accepted: list[_Accepted], *, person_ids: set[str], employer_ids: set[str],
                periods: set[int], parameters: ParameterSets) -> dict[str, _OpenLine]:
    """Assessment lines that payments of this batch may settle: not superseded, of the batch's persons (person-level
    lines) or employers (employer-level lines) and periods, read under the settlement locks (``settling``: two
    batches settling one line queue up): the payments' (period, person, fund) keys, or the whole periods when an
    employer-level payment settles lines of persons not known before they are read."""
    table = AssessmentLine.__table__.c
    assessment = Assessment.__table__.c
    columns = (table.id, table.assessment_id, table.employer_id, table.person_id, table.fund, table.period,
               table.employer_fen, table.individual_fen, table.due_date, table.paid_principal_fen,
               table.paid_late_fee_fen, bulk.row_key(session, AssessmentLine.__table__))
    rows: dict[str, Any] = {}
    if not periods:
        return {}
    if employer_ids:
        settling.lock_periods(session, periods)
    else:
        settling.lock_lines(session, ((a.line.period, a.person_id, a.line.fund) for a in accepted
                                      if a.person_id is not None))
    for key_column, keys in ((table.person_id, person_ids), (table.employer_id, employer_ids)):
        for part in chunks(sorted(keys)):
            query = (
                select(*columns).join(Assessment.__table__, assessment.id == table.assessment_id)
                .where(one_of(session, key_column, part), table.period.in_(sorted(periods)), table.status != "superseded",
                       assessment.status != "superseded")
            )
            for row in _rows(session, query):
                rows[row.id] = row
    states = load_states(session, list(rows.values()), rate_on=lambda day: parameters.daily_rate(day)[0]).states
    # Rows unpacked by position (``columns``' order): a Row's attribute access costs more, once per line.
    return {
        line_id: _OpenLine(line_id, assessment_id, employer_id, person_id, fund, period, states[line_id], key)
        for line_id, assessment_id, employer_id, person_id, fund, period, _, _, _, _, _, key in rows.values()
    }


# -- matching and settlement -----------------------------------------------------------------------------------------


def _yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen)}"


def _match_and_settle(session: Session, accepted: list[_Accepted], parameters: ParameterSets,
                      now: datetime) -> tuple[list[tuple], list[bulk.SettledLine]]:
    """The batch's ``LateFeeCharge`` rows (tuples in ``CHARGE_COLUMNS``' order, in settling order) and the settled
    assessment lines' new figures."""
    person_ids = {a.person_id for a in accepted if a.person_id is not None}
    employer_ids = {a.employer_id for a in accepted if a.employer_id is not None and a.line.citizen_id is None}
    lines = _open_lines(session, accepted, person_ids=person_ids, employer_ids=employer_ids,
                        periods={a.line.period for a in accepted}, parameters=parameters)
    # A person's candidate lines: their order does not matter (one open line is settled, several are ambiguous).
    by_person: dict[tuple[str, str, int], list[_OpenLine]] = {}
    for line in lines.values():
        key = (line.person_id, line.fund, line.period)
        same = by_person.get(key)
        if same is None:
            by_person[key] = [line]
        else:
            same.append(line)
    # An employer's lines are settled together in (person, line) order; only employer-level payments read them.
    by_employer: dict[tuple[str, str, int], list[_OpenLine]] = defaultdict(list)
    if employer_ids:
        for line in sorted(sorted(lines.values(), key=_line_id), key=_person_id):  # stable: by person, then id
            if line.employer_id is not None:
                by_employer[(line.employer_id, line.fund, line.period)].append(line)

    charges: list[tuple] = []
    rates: dict[date, tuple[Decimal, str]] = {}  # a batch's few paid dates
    # In paid-date order, then line order (stable sorts on the lines' own fields: no key tuple a line).
    for a in sorted(sorted(accepted, key=_line_no), key=_paid_date):
        targets = _targets(a, by_person, by_employer)
        if not targets:
            continue
        paid_date = a.line.paid_date
        rate_and_source = rates.get(paid_date)
        if rate_and_source is None:
            rate_and_source = rates[paid_date] = parameters.daily_rate(paid_date)
        rate, rate_source = rate_and_source
        if len(targets) == 1:
            charges.append(_settle_line(a, targets[0], rate, rate_source, now))
            continue
        allocation = latefee.settle_many([t.state for t in targets], a.total_fen, a.line.paid_date, rate)
        for target, settlement in zip(targets, allocation.settlements, strict=True):
            if settlement.principal_paid_fen == 0 and settlement.fee_paid_fen == 0:
                continue  # an employer-level payment that did not reach this line's fee: nothing to record
            target.state = settlement.after
            target.touched = True
            charges.append((target.id, a.payment_id, settlement.segment.days, settlement.principal_before_fen,
                            settlement.principal_paid_fen, settlement.fee_accrued_fen, settlement.fee_paid_fen, now))
            if _backdated(a.line.paid_date, settlement.segment.start, target.state.due_date):
                a.notes.append(f"BACKDATED: 缴费日期早于该核定明细已计滞纳金的截止日 {settlement.segment.start.isoformat()}，"
                               "未另计天数")
        a.match_status = _MATCHED
        a.notes.append(f"EMPLOYER_LEVEL: 按单位汇总匹配，结清核定 {targets[0].assessment_id} 中 {len(targets)} 条明细的本金")
        fee_due = sum(s.fee_outstanding_before_fen for s in allocation.settlements)
        if allocation.fee_paid_fen < fee_due:
            a.notes.append(f"LATE_FEE_OUTSTANDING: 滞纳金尚欠 {_yuan(fee_due - allocation.fee_paid_fen)} 元"
                           f"（日费率 {rate}，{rate_source}）")
        if allocation.overpaid_fen:
            a.notes.append(f"OVERPAID: 多缴 {_yuan(allocation.overpaid_fen)} 元，待核实退还或抵缴")

    updates = [
        bulk.SettledLine(state.paid_principal_fen, state.fee_paid_fen, "paid" if state.settled else "open", line.key)
        for line in lines.values() if line.touched for state in (line.state,)
    ]
    return charges, updates


_line_no = attrgetter("line_no")
_paid_date = attrgetter("line.paid_date")
_line_id = attrgetter("id")
_person_id = attrgetter("person_id")


def _backdated(paid_date: date, charged_through: date, due_date: date) -> bool:
    """Is the payment dated before days a late fee was already charged for (a later payment of the line charged
    through ``charged_through``)? Those days are not charged again. A payment before the due date is not backdated:
    nothing was charged yet."""
    return due_date < charged_through and paid_date < charged_through


def _settle_line(a: _Accepted, target: _OpenLine, rate: Decimal, rate_source: str, now: datetime) -> tuple:
    """A payment that settles one line (person-level, or an employer with one open line): ``settle_many``'s outcome
    for one line (``latefee.settle_one``), the same charge row and notes. Returns the charge row."""
    paid_date = a.line.paid_date
    paid = latefee.settle_one(target.state, a.line.total_fen, paid_date, rate)
    target.state = paid.after
    target.touched = True
    start = paid.start
    if paid_date < start and target.state.due_date < start:  # ``_backdated``, written out: once a line
        a.notes.append(f"BACKDATED: 缴费日期早于该核定明细已计滞纳金的截止日 {start.isoformat()}，未另计天数")
    a.match_status = _MATCHED
    a.assessment_line_id = target.id
    if paid.fee_paid_fen < paid.fee_outstanding_before_fen:
        a.notes.append(f"LATE_FEE_OUTSTANDING: 滞纳金尚欠 {_yuan(paid.fee_outstanding_before_fen - paid.fee_paid_fen)} 元"
                       f"（日费率 {rate}，{rate_source}）")
    if paid.overpaid_fen:
        a.notes.append(f"OVERPAID: 多缴 {_yuan(paid.overpaid_fen)} 元，待核实退还或抵缴")
    return (target.id, a.payment_id, paid.days, paid.principal_before_fen, paid.principal_paid_fen, paid.fee_accrued_fen,
            paid.fee_paid_fen, now)




def _outstanding(line: _OpenLine) -> bool:
    return not line.state.settled


def _targets(a: _Accepted, by_person: dict, by_employer: dict) -> list[_OpenLine]:
    """The lines this payment settles ([] = unmatched, with a note on ``a``)."""
    line = a.line
    if line.payer_uscc and a.employer_id is None:
        a.notes.append(f"PAYER_NOT_REGISTERED: 缴费单位 {line.payer_uscc} 未在本统筹区办理社会保险登记")
        return []
    if line.citizen_id is not None:
        if a.person_id is None:
            a.notes.append("PERSON_NOT_REGISTERED: 本系统无此公民身份号码的参保人员")
            return []
        candidates = by_person.get((a.person_id, line.fund, line.period), [])
        if len(candidates) == 1:  # nearly always: the one line of (person, fund, period), checked without lists
            only = candidates[0]
            if a.employer_id is not None and only.employer_id != a.employer_id:
                candidates = []
            elif not only.state.settled:
                return candidates
        if a.employer_id is not None:
            candidates = [c for c in candidates if c.employer_id == a.employer_id]
        if not candidates:
            a.notes.append(f"NO_ASSESSMENT_LINE: 无该人员 {line.fund} 险种 {line.period} 期的核定明细")
            return []
        open_ = [c for c in candidates if _outstanding(c)]
        if not open_:
            a.notes.append("ALREADY_SETTLED: 对应核定明细已结清（本金及滞纳金），疑为重复缴费")
            return []
        if len(open_) > 1:
            a.notes.append(f"AMBIGUOUS: 该人员 {line.fund} 险种 {line.period} 期有 {len(open_)} 条未结清核定明细（不同单位），"
                           "请复核指定")
            return []
        return open_
    candidates = by_employer.get((a.employer_id, line.fund, line.period), [])
    if not candidates:
        a.notes.append(f"NO_ASSESSMENT: 该单位无 {line.fund} 险种 {line.period} 期的核定明细")
        return []
    open_ = [c for c in candidates if _outstanding(c)]
    if not open_:
        a.notes.append("ALREADY_SETTLED: 该单位该期核定已结清，疑为重复缴费")
        return []
    owed = sum(max(0, c.state.outstanding_principal_fen) for c in open_)
    if a.principal_fen < owed:
        a.notes.append(f"PARTIAL_EMPLOYER_PAYMENT: 单位汇总缴费本金 {_yuan(a.principal_fen)} 元少于应缴本金 {_yuan(owed)} 元，"
                       "无法确定分配到哪些人员，请复核指定或按人员明细重报")
        return []
    return open_


# -- events ----------------------------------------------------------------------------------------------------------


def _emit(session: Session, batch_id: str, accepted: list[_Accepted], rejected: list[_Rejected]) -> None:
    # The lines were checked on the way in and their fen computed once; the event's lines go to the contract as
    # plain dicts, validated once by the outbox (``PayloadFields``: one pydantic pass per event, not three).
    collected = [_collected_line(a) for a in sorted(accepted, key=lambda x: x.line_no)]
    parts = (len(collected) + EVENT_MAX_LINES - 1) // EVENT_MAX_LINES
    events: list[tuple[Any, str]] = [
        (PayloadFields(PaymentsCollected, {"batch_id": batch_id, "part": index, "parts": parts, "lines": part}),
         batch_id)
        for index, part in enumerate(chunks(collected, EVENT_MAX_LINES), start=1)
    ]
    ordered = sorted(rejected, key=lambda r: r.line_no)
    events += [
        (PaymentsRejected(batch_id=batch_id, lines=[
            {"tax_line_id": r.tax_line_id, "line_no": r.line_no, "code": r.code, "message": r.message,
             "method": r.method, "payer_uscc": r.payer_uscc, "fund": r.fund, "period": r.period,
             "amount_fen": r.amount_fen} for r in part]), batch_id)
        for part in chunks(ordered, EVENT_MAX_LINES)
    ]
    record_events(session, events, source=SOURCE)


def _collected_line(a: _Accepted) -> dict[str, Any]:
    """An accepted line as a ``PaymentsCollected`` line."""
    tax_line_id, payer, citizen, fund, period, employer_fen, individual_fen, late_fee_fen, method, voucher, paid = a.line
    return {"payment_id": a.payment_id, "tax_line_id": tax_line_id, "payer_uscc": payer, "employer_id": a.employer_id,
            "person_id": a.person_id, "citizen_id": citizen, "fund": fund, "period": period,
            "employer_fen": employer_fen, "individual_fen": individual_fen, "late_fee_fen": late_fee_fen,
            "method": method, "voucher_no": voucher, "paid_date": paid, "assessment_line_id": a.assessment_line_id,
            "match_status": a.match_status}


# -- reading ---------------------------------------------------------------------------------------------------------


def _is_tax_system() -> bool:
    return context.current().actor.role == "tax_system"


def _summary(batch: TaxPaymentBatch) -> dict[str, Any]:
    return {"id": batch.id, "received_at": batch.received_at, "received_by": batch.received_by,
            "source_format": batch.source_format, "lines": batch.lines, "accepted": batch.accepted,
            "duplicates": batch.duplicates, "rejected": batch.rejected, "matched": batch.matched,
            "unmatched": batch.unmatched}


def get_batch(session: Session, batch_id: str) -> TaxPaymentBatch:
    batch = session.get(TaxPaymentBatch, batch_id)
    # The tax bureau's client sees its own batches; another client's is answered as if it did not exist.
    if batch is None or (_is_tax_system() and batch.received_by != context.actor_id()):
        raise NotFound("TAX_BATCH_NOT_FOUND", "缴费批次不存在")
    return batch


def batch_detail(session: Session, batch_id: str) -> BatchDetail:
    batch = get_batch(session, batch_id)
    totals = [
        FundPeriodTotal(fund=fund, period=period, lines=n, employer_amount=fen_to_yuan(int(e or 0)),
                        individual_amount=fen_to_yuan(int(i or 0)), late_fee_amount=fen_to_yuan(int(f or 0)))
        for fund, period, n, e, i, f in session.execute(
            select(TaxPayment.fund, TaxPayment.period, func.count(), func.sum(TaxPayment.employer_fen),
                   func.sum(TaxPayment.individual_fen), func.sum(TaxPayment.late_fee_fen))
            .where(TaxPayment.batch_id == batch.id).group_by(TaxPayment.fund, TaxPayment.period)
            .order_by(TaxPayment.fund, TaxPayment.period)
        ).all()
    ]
    entry = session.execute(
        select(AuditEntry.detail).where(AuditEntry.entity_type == "tax_payment_batch", AuditEntry.entity_id == batch.id,
                                        AuditEntry.action == "tax_payment_batch.receive")
    ).scalar_one_or_none()
    rejections = [Rejection(**r) for r in json.loads(entry).get("rejections", [])] if entry else []
    open_unmatched = session.execute(
        select(func.count()).select_from(TaxPayment)
        .where(TaxPayment.batch_id == batch.id, TaxPayment.match_status == MatchStatus.unmatched.value)
    ).scalar_one()
    return BatchDetail(**_summary(batch), totals=totals, rejections=rejections, open_unmatched=open_unmatched)


def list_batches(session: Session, *, after: str | None, limit: int) -> tuple[list[BatchSummary], str | None]:
    query = select(TaxPaymentBatch)
    if _is_tax_system():
        query = query.where(TaxPaymentBatch.received_by == context.actor_id())
    rows, next_cursor = newest_first(session, query, TaxPaymentBatch.id, after=after, limit=limit)
    return [BatchSummary(**_summary(b)) for b in rows], next_cursor


def payment_out(p: TaxPayment) -> PaymentOut:
    return PaymentOut(
        id=p.id, tax_line_id=p.tax_line_id, batch_id=p.batch_id, payer_uscc=p.payer_uscc, employer_id=p.employer_id,
        citizen_id=p.citizen_id, person_id=p.person_id, fund=p.fund, period=p.period,
        employer_amount=fen_to_yuan(p.employer_fen), individual_amount=fen_to_yuan(p.individual_fen),
        late_fee_amount=fen_to_yuan(p.late_fee_fen), method=p.method, voucher_no=p.voucher_no, paid_date=p.paid_date,
        match_status=p.match_status, assessment_line_id=p.assessment_line_id, match_note=p.match_note)


def _charge_out(c: LateFeeCharge) -> ChargeOut:
    return ChargeOut(assessment_line_id=c.assessment_line_id, tax_payment_id=c.tax_payment_id, days_late=c.days_late,
                     principal_before=fen_to_yuan(c.principal_before_fen),
                     principal_paid=fen_to_yuan(c.principal_paid_fen), fee_accrued=fen_to_yuan(c.fee_accrued_fen),
                     fee_paid=fen_to_yuan(c.fee_paid_fen), computed_at=c.computed_at)


def _load_payment(session: Session, payment_id: str, *, for_update: bool = False) -> TaxPayment:
    query = select(TaxPayment).where(TaxPayment.id == payment_id)
    if for_update:
        query = query.with_for_update()
    payment = session.execute(query).scalar_one_or_none()
    if payment is None:
        raise NotFound("TAX_PAYMENT_NOT_FOUND", "缴费明细不存在")
    if _is_tax_system():
        get_batch(session, payment.batch_id)  # the bureau's client reads the lines of its own batches
    return payment


def get_payment(session: Session, payment_id: str) -> PaymentDetail:
    payment = _load_payment(session, payment_id)
    return PaymentDetail(**payment_out(payment).model_dump(), charges=[_charge_out(c) for c in _charges_of(session, payment)])


def _charges_of(session: Session, payment: TaxPayment) -> list[LateFeeCharge]:
    """The charges a payment wrote, in order. ``late_fee_charge`` is indexed by line, not by payment (a batch would
    keep a second index a charge), so the payment's line finds them: a charge is written only when a payment
    settles a line (a batch's match, a reviewer's resolve, which both set ``match_status`` in the same transaction),
    so an unmatched payment has none; a payment of one line (person-level, an employer's only open line, a resolve)
    names it in ``assessment_line_id`` and charged it alone. Only an employer-level payment of several lines
    (``assessment_line_id`` empty) is looked up by payment id, reading the whole table."""
    if payment.match_status == _UNMATCHED:
        return []
    query = select(LateFeeCharge).where(LateFeeCharge.tax_payment_id == payment.id)
    if payment.assessment_line_id is not None:
        query = query.where(LateFeeCharge.assessment_line_id == payment.assessment_line_id)
    return list(session.execute(query.order_by(LateFeeCharge.id)).scalars())


def list_unmatched(session: Session, *, fund: str | None, period: int | None, employer_id: str | None,
                   batch_id: str | None, after: str | None, limit: int) -> tuple[list[PaymentOut], str | None]:
    """Payments still unmatched, oldest first, cursor-paginated by payment id (time-ordered UUIDv7)."""
    query = select(TaxPayment).where(TaxPayment.match_status == MatchStatus.unmatched.value)
    if fund:
        query = query.where(TaxPayment.fund == fund.strip().upper())
    if period:
        query = query.where(TaxPayment.period == period)
    if employer_id:
        query = query.where(TaxPayment.employer_id == employer_id)
    if batch_id:
        query = query.where(TaxPayment.batch_id == batch_id)
    rows, next_cursor = oldest_first(session, query, TaxPayment.id, after=after, limit=limit)
    return [payment_out(p) for p in rows], next_cursor


# -- review ----------------------------------------------------------------------------------------------------------


def resolve_payment(session: Session, payment_id: str, *, assessment_line_id: str, note: str, region: str) -> PaymentDetail:
    """A reviewer points an unmatched payment at the assessment line it pays; it is settled like a matched line
    (principal first, then late fee to the paid date). The line must be of the same fund (no cross-fund use,
    000 二(一)), not superseded, and not yet settled."""
    payment = _load_payment(session, payment_id, for_update=True)
    if payment.match_status != MatchStatus.unmatched.value:
        raise Conflict("PAYMENT_NOT_UNMATCHED", f"缴费明细状态为 {payment.match_status}，只有未匹配的明细可以复核指定",
                       details={"match_status": payment.match_status})
    key = session.execute(select(AssessmentLine.period, AssessmentLine.person_id, AssessmentLine.fund)
                          .where(AssessmentLine.id == assessment_line_id)).first()
    settling.lock_lines(session, [] if key is None else [tuple(key)])
    row = session.execute(
        select(AssessmentLine, Assessment.status).join(Assessment, Assessment.id == AssessmentLine.assessment_id)
        .where(AssessmentLine.id == assessment_line_id).execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFound("ASSESSMENT_LINE_NOT_FOUND", "核定明细不存在")
    line, assessment_status = row
    if line.status == "superseded" or assessment_status == "superseded":
        raise Conflict("ASSESSMENT_LINE_SUPERSEDED", "该核定明细已被更正核定取代，请指定现行核定明细")
    if line.fund != payment.fund:
        raise Conflict("FUND_MISMATCH", f"缴费险种 {payment.fund} 与核定明细险种 {line.fund} 不一致；各险种分别核算，不得混用（000 二(一)）")
    parameters = load_parameter_sets(session, region)
    state = load_states(session, [line], rate_on=lambda day: parameters.daily_rate(day)[0]).states[line.id]
    if state.settled:
        raise Conflict("ASSESSMENT_LINE_SETTLED", "该核定明细已结清本金及滞纳金")
    rate, rate_source = parameters.daily_rate(payment.paid_date)
    total = payment.employer_fen + payment.individual_fen + payment.late_fee_fen
    settlement, overpaid = latefee.settle(state, total, payment.paid_date, rate)
    now = clock.utc_now()
    session.add(LateFeeCharge(
        assessment_line_id=line.id, tax_payment_id=payment.id, days_late=settlement.segment.days,
        principal_before_fen=settlement.principal_before_fen, principal_paid_fen=settlement.principal_paid_fen,
        fee_accrued_fen=settlement.fee_accrued_fen, fee_paid_fen=settlement.fee_paid_fen, computed_at=now))
    line.paid_principal_fen = settlement.after.paid_principal_fen
    line.paid_late_fee_fen = settlement.after.fee_paid_fen
    line.status = "paid" if settlement.after.settled else "open"
    session.add(line)
    actor = context.current().actor
    notes = [payment.match_note] if payment.match_note else []
    notes.append(f"RESOLVED: {actor.id} 于 {now.date().isoformat()} 复核指定核定明细 {line.id}：{note.strip()}")
    if settlement.fee_paid_fen < settlement.fee_outstanding_before_fen:
        notes.append(f"LATE_FEE_OUTSTANDING: 滞纳金尚欠 {_yuan(settlement.fee_outstanding_before_fen - settlement.fee_paid_fen)} 元"
                     f"（日费率 {rate}，{rate_source}）")
    if overpaid:
        notes.append(f"OVERPAID: 多缴 {_yuan(overpaid)} 元，待核实退还或抵缴")
    before = {"match_status": payment.match_status, "assessment_line_id": payment.assessment_line_id}
    payment.match_status = MatchStatus.resolved.value
    payment.assessment_line_id = line.id
    payment.match_note = "；".join(notes)
    session.add(payment)
    append_audit(session, action="tax_payment.resolve", entity_type="tax_payment", entity_id=payment.id,
                 detail={"before": before, "after": {"match_status": payment.match_status,
                                                     "assessment_line_id": line.id},
                         "principal_paid_fen": settlement.principal_paid_fen,
                         "fee_accrued_fen": settlement.fee_accrued_fen, "fee_paid_fen": settlement.fee_paid_fen,
                         "days_late": settlement.segment.days, "rate": str(rate), "overpaid_fen": overpaid},
                 reason=note.strip())
    session.flush()
    return get_payment(session, payment.id)

