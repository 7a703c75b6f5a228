"""Tax collection (征收, the TAX leg): what the tax bureau's system posts, and what it gets back.

A batch is checked in two layers. The envelope (``lines``, 1 to 10 000) is checked as a whole: more than 10 000
lines is refused with 413 ``BATCH_TOO_LARGE`` and nothing is applied. Each line is then checked on its own; a bad
line is rejected with a stable code and a Chinese message, reported in the response and in a
``collection.payments.rejected.v1`` event, and the good lines are applied — all in one transaction.

Per-line rejection codes: ``REFUSED_PAYMENT_METHOD`` (cash, cash cheque, post-dated bill, securities: 002 四),
``UNKNOWN_PAYMENT_METHOD``, ``INVALID_AMOUNT`` (float, more than two decimals, not a number), ``NEGATIVE_AMOUNT``,
``ZERO_AMOUNT``, ``INVALID_USCC``, ``INVALID_CITIZEN_ID``, ``INVALID_PERIOD``, ``INVALID_DATE``, ``MISSING_FIELD``,
``MISSING_PAYER`` (neither payer_uscc nor citizen_id), ``UNKNOWN_FIELD``, ``INVALID_LINE``, ``CSV_ROW_SHAPE``,
``UNKNOWN_FUND``, ``FUTURE_PERIOD``, ``PAID_DATE_IN_FUTURE``, ``EMPLOYER_DEREGISTERED``, ``TAX_LINE_CONFLICT`` (the
bureau's line id was received before with other content), ``DUPLICATE_VOUCHER`` (the voucher number belongs to
another payer).
"""

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import validate_citizen_id, validate_uscc
from services.kernel.money import MAX_FEN, NonNegativeYuan, Yuan, parse_yuan, yuan_to_fen
from services.kernel.periods import Period, _period_input, validate_period
from services.kernel.pii import CitizenIdOut
from services.kernel.strict import RequestModel, iso_date
from services.kernel.tabular import Column

MAX_LINES = 10_000


class PaymentMethod(StrEnum):
    """Accepted ways of paying (002 四): bank withholding, bank transfer, online, social security card."""

    bank_withholding = "bank_withholding"  # 银行代扣
    bank_transfer = "bank_transfer"  # 银行转账
    online = "online"  # 网上缴费
    ss_card = "ss_card"  # 社会保障卡


# 002 四: 社会保险费征缴部门不得接受参保的用人单位以现金和现金支票、远期票据、有价证券等形式缴纳社会保险费。
REFUSED_METHODS: dict[str, str] = {
    "cash": "现金",
    "cash_cheque": "现金支票",
    "post_dated_bill": "远期票据",
    "securities": "有价证券",
}
METHOD_LABELS: dict[str, str] = {
    "bank_withholding": "银行代扣", "bank_transfer": "银行转账", "online": "网上缴费", "ss_card": "社会保障卡",
    **REFUSED_METHODS,
}
# The bureau's export may carry the Chinese label instead of the code.
METHOD_ALIASES: dict[str, str] = {label: code for code, label in METHOD_LABELS.items()} | {
    "社保卡": "ss_card", "网银": "online", "转账": "bank_transfer", "代扣": "bank_withholding",
}


def normalise_method(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return METHOD_ALIASES.get(text, text.lower())


# -- identifiers, fast for 10 000 lines ------------------------------------------------------------------------------
# The kernel's citizen id check needs no birth-place table (birth-place codes are historical), so it is used as is;
# USCCs are cached, a batch carrying few distinct payers.


def fast_citizen_id(value: str) -> str:
    return validate_citizen_id(value)  # no table lookup: the kernel's check is fast enough for a batch


@lru_cache(maxsize=65_536)
def _cached_uscc(value: str) -> str:
    return validate_uscc(value)


def fast_uscc(value: str) -> str:
    return _cached_uscc(value)  # a batch carries few distinct payers; an error is not cached and raised again


def _strip_upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


FastCitizenId = Annotated[str, BeforeValidator(_strip_upper), AfterValidator(fast_citizen_id)]
FastUSCC = Annotated[str, BeforeValidator(_strip_upper), AfterValidator(fast_uscc)]


class TaxPaymentLine(RequestModel):
    """One payment line as the tax bureau reports it. Amounts are yuan as decimal strings (``"1304.67"``); JSON
    numbers with a fraction (floats) are refused. A line for a person carries ``citizen_id``; an employer-level line
    (the employer's whole fund × period) carries ``payer_uscc`` only."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    tax_line_id: str = Field(min_length=1, max_length=64, description="the tax bureau's own line id (idempotency key)")
    payer_uscc: FastUSCC | None = Field(default=None, description="统一社会信用代码 of the paying employer")
    citizen_id: FastCitizenId | None = Field(default=None, description="公民身份号码, for person-level lines")
    fund: str = Field(min_length=1, max_length=10, description="PEN_EMP, PEN_GOV, PEN_RES, UNEMP, INJURY, …")
    period: Period = Field(description="费款所属期 YYYYMM")
    employer_amount: NonNegativeYuan = Field(description="单位缴费, yuan")
    individual_amount: NonNegativeYuan = Field(description="个人缴费, yuan")
    late_fee_amount: NonNegativeYuan = Field(default=Decimal("0.00"), description="滞纳金, yuan")
    method: str = Field(min_length=1, max_length=30, description="bank_withholding | bank_transfer | online | ss_card")
    voucher_no: str = Field(min_length=1, max_length=64, description="票证号码 (完税凭证号)")
    paid_date: date = Field(description="缴费日期 YYYY-MM-DD")

    @field_validator("fund")
    @classmethod
    def _fund(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        return normalise_method(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _payer_and_amount(self) -> "TaxPaymentLine":
        if self.payer_uscc is None and self.citizen_id is None:
            raise PydanticCustomError("MISSING_PAYER", "缺少缴费单位统一社会信用代码或公民身份号码")
        if self.employer_amount + self.individual_amount + self.late_fee_amount == 0:
            raise PydanticCustomError("ZERO_AMOUNT", "缴费金额合计为零")
        return self


class CheckedLine(NamedTuple):
    """A line that passed ``TaxPaymentLine``: its normalised values, as the service reads them (the three amounts in
    fen, converted once: the hash, the stored row and the event all read fen). A named tuple: built 10 000 times a
    batch, where a frozen dataclass's ``__init__`` sets each of its eleven fields through ``object.__setattr__``."""

    tax_line_id: str
    payer_uscc: str | None
    citizen_id: str | None
    fund: str
    period: int
    employer_fen: int
    individual_fen: int
    late_fee_fen: int
    method: str
    voucher_no: str
    paid_date: date

    @classmethod
    def of(cls, line: TaxPaymentLine) -> "CheckedLine":
        return cls(line.tax_line_id, line.payer_uscc, line.citizen_id, line.fund, line.period,
                   yuan_to_fen(line.employer_amount), yuan_to_fen(line.individual_amount),
                   yuan_to_fen(line.late_fee_amount), line.method, line.voucher_no, line.paid_date)

    @property
    def total_fen(self) -> int:
        return self.employer_fen + self.individual_fen + self.late_fee_fen


# -- the plain line, checked without the model -----------------------------------------------------------------------
# A batch is 10 000 lines, nearly all written the same plain way (ASCII text, amounts as decimal strings, a JSON
# period, an ISO date). For such a line ``quick_line`` applies the same checks as ``TaxPaymentLine`` (the same
# functions: identifier check characters, ``parse_yuan``, ``validate_period``, ``iso_date``) without pydantic's
# per-field machinery, and gives the same values. Anything else — a refusal, non-ASCII or unprintable text, a
# missing or unknown field, a None — is left to ``TaxPaymentLine`` itself, so that every refusal keeps its code and
# message and every unusual form its normalisation (tests/collection/test_tax_payments.py compares the two).

_FIELDS = frozenset(TaxPaymentLine.model_fields)
_REQUIRED = frozenset(name for name, f in TaxPaymentLine.model_fields.items() if f.is_required())
_NO_LATE_FEE = TaxPaymentLine.model_fields["late_fee_amount"].default
_NO_LATE_FEE_FEN = yuan_to_fen(_NO_LATE_FEE)
# Text that ``_plain`` gives back unchanged (ASCII printable, no surrounding blanks): checked by one regex match.
_BARE_TEXT = re.compile(r"[!-~](?:[ -~]*[!-~])?")
# An amount as the bureau writes it: digits and at most two places (what ``parse_yuan`` reads exactly, as fen).
_BARE_YUAN = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?")


class _NotPlain(Exception):
    pass


def _plain(value: Any, max_length: int) -> str:
    """ASCII printable text, stripped, of 1 to ``max_length`` characters (what the edge's text check and
    ``str_strip_whitespace`` leave of it); otherwise not a plain line."""
    if type(value) is str and len(value) <= max_length and _BARE_TEXT.fullmatch(value):
        return value
    if type(value) is not str or not value.isascii() or not value.isprintable():
        raise _NotPlain
    text = value.strip()
    if not 0 < len(text) <= max_length:
        raise _NotPlain
    return text


def _plain_fen(value: Any) -> int:
    """A non-negative amount in fen: digits with at most two places read directly as fen; any other form through
    ``parse_yuan`` (the model's check), as before."""
    if type(value) is str and (bare := _BARE_YUAN.fullmatch(value)) is not None:
        whole, cents = bare.groups()
        fen = int(whole) * 100 + (int(cents) * (10 if len(cents) == 1 else 1) if cents else 0)
        if fen <= MAX_FEN:
            return fen
    amount = parse_yuan(value)
    if amount < 0:
        raise _NotPlain
    return yuan_to_fen(amount)


def _plain_period(value: Any) -> int:
    if type(value) is not int and type(value) is not str:
        raise _NotPlain
    return validate_period(_period_input(value))


def _citizen(value: Any) -> str:
    return fast_citizen_id(_plain(value, 64).upper())


@lru_cache(maxsize=4096)
def _cached_date(value: str) -> date:
    day = iso_date(value)  # a batch carries few distinct paid dates; an error is not cached
    assert isinstance(day, date)
    return day


def _plain_date(value: Any) -> date:
    if type(value) is not str:
        raise _NotPlain
    return _cached_date(value)


def _payer(value: Any) -> str:
    return fast_uscc(_plain(value, 64).upper())


def _fund(value: Any) -> str:
    return _plain(value, 10).upper()


def _method(value: Any) -> str:
    return normalise_method(_plain(value, 30))  # type: ignore[return-value]  # text in: text out


def _voucher(value: Any) -> str:
    return _plain(value, 64)


class BatchValues:
    """The checked values of a batch's repeated cells (payers, funds, periods, methods, vouchers, dates: a batch of
    10 000 lines carries a few of each), each checked once. Only text and integer cells are remembered, by value
    and type alike (never ``1`` for ``1.0``); a refused value is not remembered and is refused again."""

    __slots__ = ("payer", "citizen", "fund", "period", "amount", "method", "voucher", "day", "shared")

    def __init__(self) -> None:
        # The cells a payer's lines share (payer, fund, period, method, voucher, paid date, late fee), checked
        # together: one lookup a line instead of seven (a batch carries about a thousand such groups).
        self.shared: dict[tuple, tuple] = {}
        self.payer: dict[Any, str] = {}
        self.citizen: dict[Any, str] = {}  # a person's lines of several funds come together
        self.amount: dict[Any, int] = {}  # amounts repeat: the same base and rate, and "0.00" late fees
        self.fund: dict[Any, str] = {}
        self.period: dict[Any, int] = {}
        self.method: dict[Any, str] = {}
        self.voucher: dict[Any, str] = {}
        self.day: dict[Any, date] = {}


def _once(seen: dict[Any, Any], value: Any, check: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int:  # text and integers never compare equal to one another (nor to True)
        known = seen.get(value, _UNSEEN)
        if known is _UNSEEN:
            known = seen[value] = check(value)
        return known
    return check(value)


_UNSEEN = object()


def quick_line(raw: dict[str, Any], seen: BatchValues | None = None) -> CheckedLine | None:
    """``raw`` checked as ``TaxPaymentLine`` would check it, when it is a plain line; None: validate it with the
    model (a refusal, or a form this shortcut does not handle). ``seen``: the batch's values checked so far."""
    keys = raw.keys()
    if keys != _FIELDS and not (_REQUIRED <= keys and keys <= _FIELDS):  # nearly always: every field, once
        return None
    if seen is None:
        seen = BatchValues()
    try:
        shared = (raw.get("payer_uscc"), raw["fund"], raw["period"], raw["method"], raw["voucher_no"],
                  raw["paid_date"], raw.get("late_fee_amount", _NO_LATE_FEE_CELL))
        if _REMEMBERED_KINDS.issuperset(map(type, shared)):  # equal such tuples are the same cells (see ``_once``)
            known = seen.shared.get(shared)
            if known is None:
                known = seen.shared[shared] = _shared_cells(shared, seen)
        else:
            known = _shared_cells(shared, seen)
        payer, fund, period, method, voucher, day, late_fee = known
        # ``_once`` and ``_plain`` written out for text met before and bare text (nearly every cell): no call a cell.
        citizen = raw.get("citizen_id")
        if citizen is not None:
            citizen = seen.citizen.get(citizen) if type(citizen) is str else None
            if citizen is None:
                citizen = _once(seen.citizen, raw["citizen_id"], _citizen)
        elif payer is None:
            return None
        tax_line_id = raw["tax_line_id"]
        if type(tax_line_id) is not str or len(tax_line_id) > 64 or not _BARE_TEXT.fullmatch(tax_line_id):
            tax_line_id = _plain(tax_line_id, 64)
        amounts = seen.amount
        employer_fen = raw["employer_amount"]
        employer_fen = amounts.get(employer_fen) if type(employer_fen) is str else None
        if employer_fen is None:
            employer_fen = _once(amounts, raw["employer_amount"], _plain_fen)
        individual_fen = raw["individual_amount"]
        individual_fen = amounts.get(individual_fen) if type(individual_fen) is str else None
        if individual_fen is None:
            individual_fen = _once(amounts, raw["individual_amount"], _plain_fen)
    except (_NotPlain, ValueError, TypeError, ArithmeticError, PydanticCustomError):
        return None
    if employer_fen + individual_fen + late_fee == 0:  # ``total_fen``, before the line is built
        return None
    return CheckedLine(tax_line_id, payer, citizen, fund, period, employer_fen, individual_fen, late_fee, method,
                       voucher, day)


class _Absent:
    """An absent late fee in a line's shared cells (unlike an explicit ``None``, which the model refuses)."""

    __slots__ = ()


_NO_LATE_FEE_CELL = _Absent()
# Cells whose equal values are the same cell: text, integers (never equal to text; ``bool`` is not among them),
# None and the absent late fee (each equal only to itself).
_REMEMBERED_KINDS = frozenset({str, int, type(None), _Absent})


def _shared_cells(shared: tuple, seen: BatchValues) -> tuple:
    """The checked payer (None: none given), fund, period, method, voucher, paid date and late fee (fen) of a line's
    shared cells, each as ``quick_line`` checks it; a refusal raises and is not remembered."""
    payer, fund, period, method, voucher, day, late_fee = shared
    return (_once(seen.payer, payer, _payer) if payer is not None else None, _once(seen.fund, fund, _fund),
            _once(seen.period, period, _plain_period), _once(seen.method, method, _method),
            _once(seen.voucher, voucher, _voucher), _once(seen.day, day, _plain_date),
            _NO_LATE_FEE_FEN if late_fee is _NO_LATE_FEE_CELL else _once(seen.amount, late_fee, _plain_fen))


class TaxPaymentBatchIn(RequestModel):
    """Up to 10 000 lines (more: 413 ``BATCH_TOO_LARGE``, nothing applied). Each line is checked on its own."""

    lines: list[Any] = Field(min_length=1, description="TaxPaymentLine objects, at most 10 000")


# -- answers ---------------------------------------------------------------------------------------------------------


class MatchStatus(StrEnum):
    matched = "matched"  # settled an assessment line (or, employer-level, all of an employer's fund × period)
    unmatched = "unmatched"  # kept for a reviewer: no assessment line found, payer not registered, partial, …
    resolved = "resolved"  # matched later by a reviewer


class Rejection(BaseModel):
    line_no: int = Field(description="1-based line of the JSON array, or the row number in the CSV file")
    tax_line_id: str | None
    code: str
    message: str


class LineRef(BaseModel):
    line_no: int
    tax_line_id: str
    payment_id: str | None = None
    note: str | None = None


class BatchResult(BaseModel):
    id: str
    received_at: datetime
    received_by: str
    source_format: str
    lines: int = Field(description="lines received = accepted + duplicates + rejected")
    accepted: int = Field(description="new payment lines stored (matched + unmatched)")
    duplicates: int = Field(description="lines already received with the same content: nothing changed")
    rejected: int
    matched: int
    unmatched: int
    rejections: list[Rejection] = Field(description="every rejected line with its code and reason")
    unmatched_lines: list[LineRef] = Field(default_factory=list, description="stored, kept for review")
    duplicate_lines: list[LineRef] = Field(default_factory=list)


class FundPeriodTotal(BaseModel):
    fund: str
    period: int
    lines: int
    employer_amount: Yuan
    individual_amount: Yuan
    late_fee_amount: Yuan


class BatchSummary(BaseModel):
    id: str
    received_at: datetime
    received_by: str
    source_format: str
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    matched: int
    unmatched: int


class BatchDetail(BatchSummary):
    totals: list[FundPeriodTotal] = Field(description="the accepted lines of this batch per fund × period (TAX leg)")
    rejections: list[Rejection]
    open_unmatched: int = Field(description="lines of this batch still unmatched now")


class BatchPage(BaseModel):
    items: list[BatchSummary]
    next_cursor: str | None


class PaymentOut(BaseModel):
    id: str
    tax_line_id: str
    batch_id: str
    payer_uscc: str | None
    employer_id: str | None
    citizen_id: CitizenIdOut | None
    person_id: str | None
    fund: str
    period: int
    employer_amount: Yuan
    individual_amount: Yuan
    late_fee_amount: Yuan
    method: str
    voucher_no: str
    paid_date: date
    match_status: MatchStatus
    assessment_line_id: str | None
    match_note: str | None


class ChargeOut(BaseModel):
    """One ``LateFeeCharge``: how a payment settled an assessment line (principal first, then late fee)."""

    assessment_line_id: str
    tax_payment_id: str
    days_late: int = Field(description="days of this charge segment (since the due date or the previous payment)")
    principal_before: Yuan
    principal_paid: Yuan
    fee_accrued: Yuan
    fee_paid: Yuan
    computed_at: datetime


class PaymentDetail(PaymentOut):
    charges: list[ChargeOut]


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")


class ResolveRequest(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    assessment_line_id: str = Field(min_length=1, max_length=36)
    note: str = Field(min_length=1, max_length=2000, description="why this line is the right one")


# -- CSV -------------------------------------------------------------------------------------------------------------

CSV_COLUMNS: tuple[Column, ...] = (
    Column("tax_line_id", "税务明细编号", ("明细编号", "税务流水号"), required=True),
    Column("payer_uscc", "统一社会信用代码", ("缴费单位统一社会信用代码", "单位统一社会信用代码", "uscc")),
    Column("citizen_id", "公民身份号码", ("身份证号码", "社会保障号码")),
    Column("fund", "险种", ("险种代码",), required=True),
    Column("period", "费款所属期", ("所属期",), required=True),
    Column("employer_amount", "单位缴费金额", ("单位缴费",), required=True),
    Column("individual_amount", "个人缴费金额", ("个人缴费",), required=True),
    Column("late_fee_amount", "滞纳金", ("滞纳金金额",)),
    Column("method", "缴费方式", (), required=True),
    Column("voucher_no", "票证号码", ("完税凭证号", "凭证号"), required=True),
    Column("paid_date", "缴费日期", ("入库日期",), required=True),
)
CSV_DOC = "\n".join(
    f"- `{c.header}` / `{c.field}`{'（必填）' if c.required else ''}" for c in CSV_COLUMNS
)
