"""Pension individual accounts (个人账户): a ledger of entries, the balance a cache of their sum.

- An account opens on its first credit (a contribution or a transfer in).
- Every entry carries a business idempotency key (unique in the table). Posting the same key again with the same
  content returns the original entry and posts nothing; with different content it is refused
  (409 IDEMPOTENCY_KEY_REUSED). Keys beginning ``interest:`` belong to the interest run.
- The balance never goes negative (409 INSUFFICIENT_BALANCE); it is updated in the transaction that adds the entry,
  under a row lock, and ``rederive_balance`` recomputes it from the entries.
- A withdrawal (death or settlement) takes the whole balance and closes the account for good; a transfer out that
  empties the account closes it until the person's money comes back (a transfer in or a new contribution).
- Contributions also record the contribution month (``ContributionMonth``) the verification API counts.
- Amounts are integer fen here and in events; yuan only at the API edge.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Engine, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.history import record_change
from services.accounts.ledger import interest as interest_rule
from services.accounts.ledger.schemas import (
    ContributionPosting,
    TransferInPosting,
    TransferOutPosting,
    WithdrawalPosting,
)
from services.accounts.models import (
    AccountEntry,
    ContributionMonth,
    Enrolment,
    IndividualAccount,
    InterestRate,
    Person,
)
from services.contracts.accounts import MAX_BATCH_ITEMS, AccountCredited, AccountDebited, AccountsCredited
from services.kernel import clock, context
from services.kernel.audit import append_audit, append_audit_many
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.bulk import update_many
from services.kernel.db import unit_of_work
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import PayloadFields, new_event_id
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.kernel.outbox import record_event, record_events
from services.kernel.paging import oldest_first
from services.kernel.periods import period_of

SOURCE = "accounts"
ENTITY = "individual_account"
CREDITS = ("contribution", "interest", "transfer_in")
DEBITS = ("transfer_out", "withdrawal")
INTEREST_KEY_PREFIX = "interest:"
MAX_KEY_LENGTH = 200
INTEREST_BATCH_SIZE = 1000

T = TypeVar("T")



def _yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen)}"


# -- the posting machinery -------------------------------------------------------------------------------------------


@dataclass
class Posting:
    entry: AccountEntry
    balance_fen: int
    account_status: str
    replayed: bool


@dataclass(frozen=True)
class Intent:
    """What a request asks to post; compared field by field with the stored entry when its key comes again.
    ``amount_fen`` is None when the request leaves it to the ledger (the whole balance)."""

    person_id: str
    entry_type: str
    amount_fen: int | None
    period: int | None
    reference: str | None
    reason: str | None
    key: str

    def matches(self, entry: AccountEntry) -> bool:
        if (entry.person_id, entry.entry_type, entry.reference, entry.reason) != (
            self.person_id, self.entry_type, self.reference, self.reason
        ):
            return False
        if self.amount_fen is not None and entry.amount_fen != self.amount_fen:
            return False
        return self.entry_type != "contribution" or entry.period == self.period


# Keys the system itself uses; a hand posting may not take one (it would pose as that automatic credit).
RESERVED_KEY_PREFIXES = {INTEREST_KEY_PREFIX: "年度计息", "posting:": "征缴到账记账"}


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Invalid("IDEMPOTENCY_KEY_REQUIRED", "记账请求须带 Idempotency-Key 请求头（业务幂等键）")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Invalid("INVALID_IDEMPOTENCY_KEY", f"Idempotency-Key 须为不超过 {MAX_KEY_LENGTH} 个可打印字符")
    for prefix, used_by in RESERVED_KEY_PREFIXES.items():
        if key.startswith(prefix):
            raise Invalid("IDEMPOTENCY_KEY_RESERVED", f"以 {prefix} 开头的幂等键由{used_by}使用")
    return key


def _entry_by_key(session: Session, key: str) -> AccountEntry | None:
    return session.execute(select(AccountEntry).where(AccountEntry.idempotency_key == key)).scalar_one_or_none()


def _person(session: Session, person_id: str) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("PERSON_NOT_FOUND", "参保人员不存在")
    ensure_in_region(context.current().actor, person.region)
    return person


def _replay(session: Session, intent: Intent) -> Posting | None:
    """The original posting when the key was used before with the same content; 409 when with other content."""
    entry = _entry_by_key(session, intent.key)
    if entry is None:
        return None
    _person(session, entry.person_id)
    if not intent.matches(entry):
        raise Conflict("IDEMPOTENCY_KEY_REUSED",
                       f"幂等键 {intent.key} 已用于另一笔内容不同的记账（{entry.entry_type}，{_yuan(entry.amount_fen)} 元）")
    account = session.get(IndividualAccount, entry.person_id)
    return Posting(entry, account.balance_fen, account.status, replayed=True)


def _posting(session: Session, intent: Intent, post: Callable[[], Posting]) -> Posting:
    """Replay or post once. A concurrent request with the same key (or a concurrent first credit that opened the
    account) loses on a unique constraint: it is rolled back and answered as a replay, or tried once more."""
    replayed = _replay(session, intent)
    if replayed is not None:
        return replayed
    for attempt in (1, 2):
        try:
            posting = post()
            session.flush()
            return posting
        except IntegrityError:
            session.rollback()
            replayed = _replay(session, intent)
            if replayed is not None:
                return replayed
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _locked_account(session: Session, person_id: str) -> IndividualAccount | None:
    return session.execute(
        select(IndividualAccount).where(IndividualAccount.person_id == person_id).with_for_update()
    ).scalar_one_or_none()


def _last_entry_type(session: Session, person_id: str) -> str | None:
    return session.execute(
        select(AccountEntry.entry_type).where(AccountEntry.person_id == person_id)
        .order_by(AccountEntry.posted_at.desc(), AccountEntry.id.desc()).limit(1)
    ).scalar_one_or_none()


def _account_for_credit(session: Session, person: Person) -> IndividualAccount:
    """The account to credit: opened on the first credit, reopened when money comes back after a transfer out."""
    account = _locked_account(session, person.id)
    if account is None:
        account = IndividualAccount(person_id=person.id, balance_fen=0, status="open", opened_at=clock.utc_now())
        session.add(account)
        session.flush()  # before its first entry references it
        record_change(session, entity_type=ENTITY, entity_id=person.id, version=1, action="open",
                      changes={"status": [None, "open"], "balance_fen": [None, 0]})
    elif account.status == "closed":
        if _last_entry_type(session, person.id) != "transfer_out":
            raise Conflict("ACCOUNT_CLOSED", "个人账户已因死亡或结算支取而终止，不能再记账")
        _set_status(session, account, "open", action="reopen", reason="转出后重新记账")
    return account


def _account_for_debit(session: Session, person: Person) -> IndividualAccount:
    account = _locked_account(session, person.id)
    if account is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "该人员尚无个人账户")
    if account.status == "closed":
        raise Conflict("ACCOUNT_CLOSED", "个人账户已终止")
    return account


def _set_status(session: Session, account: IndividualAccount, status: str, *, action: str, reason: str) -> None:
    changes = {"status": [account.status, status]}
    account.status = status
    account.version += 1
    account.updated_at = clock.utc_now()
    session.add(account)
    record_change(session, entity_type=ENTITY, entity_id=account.person_id, version=account.version, action=action,
                  changes=changes, reason=reason)


def _apply(session: Session, account: IndividualAccount, *, entry_type: str, amount_fen: int, year: int,
           period: int | None, key: str, reference: str | None, reason: str | None) -> AccountEntry:
    """Add one entry and move the cached balance with it; refuse to go below zero."""
    balance = account.balance_fen + amount_fen
    if balance < 0:
        raise Conflict("INSUFFICIENT_BALANCE",
                       f"个人账户余额不足：余额 {_yuan(account.balance_fen)} 元，需支出 {_yuan(-amount_fen)} 元")
    now = clock.utc_now()
    entry = AccountEntry(
        id=new_event_id(), person_id=account.person_id, entry_type=entry_type, amount_fen=amount_fen, year=year,
        period=period, idempotency_key=key, reference=reference, reason=reason, posted_at=now,
        posted_by=context.actor_id(),
    )
    session.add(entry)
    account.balance_fen = balance
    account.version += 1
    account.updated_at = now
    session.add(account)
    append_audit(session, action=f"{ENTITY}.{entry_type}", entity_type=ENTITY, entity_id=account.person_id,
                 detail={"entry_id": entry.id, "amount_fen": amount_fen, "balance_fen": balance, "year": year,
                         "period": period, "idempotency_key": key, "reference": reference})
    if entry_type in CREDITS:
        payload: Any = AccountCredited(person_id=account.person_id, entry_id=entry.id, entry_type=entry_type,
                                       amount_fen=amount_fen, balance_fen=balance, year=year, period=period,
                                       idempotency_key=key)
    else:
        payload = AccountDebited(person_id=account.person_id, entry_id=entry.id, entry_type=entry_type,
                                 amount_fen=-amount_fen, balance_fen=balance, year=year, idempotency_key=key)
    record_event(session, payload, source=SOURCE, subject=account.person_id)
    return entry


def _value_date() -> tuple[int, int]:
    """(year, period) of a movement that is not a contribution: the China-time month it is posted in."""
    today = clock.china_today()
    return today.year, period_of(today)


# -- postings --------------------------------------------------------------------------------------------------------


def contribution_reason(fund: str, employer_id: str | None) -> str:
    return f"{fund} 个人缴费记账" + (f"（单位 {employer_id}）" if employer_id else "")


def post_contribution(session: Session, person_id: str, posting: ContributionPosting, key: str | None) -> Posting:
    key = check_key(key)
    if posting.period > period_of(clock.china_today()):
        raise Invalid("PERIOD_IN_FUTURE", f"费款所属期 {posting.period} 尚未到来")
    amount = yuan_to_fen(posting.amount)
    intent = Intent(person_id, "contribution", amount, posting.period, posting.reference,
                    contribution_reason(posting.fund, posting.employer_id), key)

    def post() -> Posting:
        person = _person(session, person_id)
        account = _account_for_credit(session, person)
        entry = _apply(session, account, entry_type="contribution", amount_fen=amount, year=posting.period // 100,
                       period=posting.period, key=key, reference=intent.reference, reason=intent.reason)
        record_contribution_month(session, person.id, posting.fund, posting.period, posting.employer_id)
        return Posting(entry, account.balance_fen, account.status, replayed=False)

    return _posting(session, intent, post)


def record_contribution_month(session: Session, person_id: str, fund: str, period: int,
                              employer_id: str | None) -> None:
    """One row per (person, fund, period), whatever the number of postings for the month."""
    exists = session.execute(
        select(ContributionMonth.id).where(ContributionMonth.person_id == person_id, ContributionMonth.fund == fund,
                                           ContributionMonth.period == period)
    ).first()
    if exists:
        return
    if employer_id is None:  # the employer of the enrolment that covers the month, if any
        employer_id = session.execute(
            select(Enrolment.employer_id).where(
                Enrolment.person_id == person_id, Enrolment.fund == fund, Enrolment.start_period <= period,
                or_(Enrolment.end_period.is_(None), Enrolment.end_period >= period),
            ).order_by(Enrolment.start_period.desc()).limit(1)
        ).scalar_one_or_none()
    session.add(ContributionMonth(person_id=person_id, fund=fund, period=period, employer_id=employer_id,
                                  source="posting", recorded_at=clock.utc_now()))


def _transfer_reason(direction: str, region: str | None, note: str | None) -> str:
    text = f"{direction} {region}" if region else direction
    return f"{text}：{note}" if note else text


def post_transfer_in(session: Session, person_id: str, posting: TransferInPosting, key: str | None) -> Posting:
    key = check_key(key)
    amount = yuan_to_fen(posting.amount)
    intent = Intent(person_id, "transfer_in", amount, None, posting.document_ref,
                    _transfer_reason("转入自", posting.from_region, posting.note), key)

    def post() -> Posting:
        person = _person(session, person_id)
        account = _account_for_credit(session, person)
        year, period = _value_date()
        entry = _apply(session, account, entry_type="transfer_in", amount_fen=amount, year=year, period=period,
                       key=key, reference=intent.reference, reason=intent.reason)
        return Posting(entry, account.balance_fen, account.status, replayed=False)

    return _posting(session, intent, post)


def post_transfer_out(session: Session, person_id: str, posting: TransferOutPosting, key: str | None) -> Posting:
    key = check_key(key)
    amount = yuan_to_fen(posting.amount) if posting.amount is not None else None
    intent = Intent(person_id, "transfer_out", -amount if amount is not None else None, None, posting.document_ref,
                    _transfer_reason("转出至", posting.to_region, posting.note), key)

    def post() -> Posting:
        person = _person(session, person_id)
        account = _account_for_debit(session, person)
        taken = amount if amount is not None else account.balance_fen
        year, period = _value_date()
        entry = _apply(session, account, entry_type="transfer_out", amount_fen=-taken, year=year, period=period,
                       key=key, reference=intent.reference, reason=intent.reason)
        if account.balance_fen == 0:
            _set_status(session, account, "closed", action="close", reason=intent.reason)
        return Posting(entry, account.balance_fen, account.status, replayed=False)

    return _posting(session, intent, post)


WITHDRAWAL_REASONS = {"death": "死亡支取", "settlement": "结算支取"}


def post_withdrawal(session: Session, person_id: str, posting: WithdrawalPosting, key: str | None) -> Posting:
    key = check_key(key)
    reason = WITHDRAWAL_REASONS[posting.reason] + (f"：{posting.note}" if posting.note else "")
    intent = Intent(person_id, "withdrawal", None, None, posting.reference, reason, key)

    def post() -> Posting:
        person = _person(session, person_id)
        if posting.reason == "death" and person.life_status != "deceased":
            raise Conflict("PERSON_NOT_DECEASED", "参保人员未登记死亡，不能办理死亡支取")
        account = _account_for_debit(session, person)
        year, period = _value_date()
        entry = _apply(session, account, entry_type="withdrawal", amount_fen=-account.balance_fen, year=year,
                       period=period, key=key, reference=intent.reference, reason=intent.reason)
        _set_status(session, account, "closed", action="close", reason=reason)
        return Posting(entry, account.balance_fen, account.status, replayed=False)

    return _posting(session, intent, post)


# -- reading ---------------------------------------------------------------------------------------------------------


def get_account(session: Session, person_id: str) -> IndividualAccount:
    _person(session, person_id)
    account = session.get(IndividualAccount, person_id)
    if account is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "该人员尚无个人账户")
    return account


def list_entries(session: Session, person_id: str, *, entry_type: str | None = None, year: int | None = None,
                 after: str | None = None, limit: int = 100) -> tuple[list[AccountEntry], str | None]:
    get_account(session, person_id)
    query = select(AccountEntry).where(AccountEntry.person_id == person_id)
    if entry_type:
        query = query.where(AccountEntry.entry_type == entry_type)
    if year is not None:
        query = query.where(AccountEntry.year == year)
    return oldest_first(session, query, AccountEntry.id, after=after, limit=limit)


def rederive_balance(session: Session, person_id: str) -> int:
    """The balance recomputed from the entries (the cached ``balance_fen`` must equal it)."""
    return session.execute(
        select(func.coalesce(func.sum(AccountEntry.amount_fen), 0)).where(AccountEntry.person_id == person_id)
    ).scalar_one()


@dataclass(frozen=True)
class BalanceCheck:
    person_id: str
    cached_fen: int
    derived_fen: int
    entries: int

    @property
    def consistent(self) -> bool:
        return self.cached_fen == self.derived_fen


def verify_account(session: Session, person_id: str) -> BalanceCheck:
    account = get_account(session, person_id)
    count = session.execute(
        select(func.count()).select_from(AccountEntry).where(AccountEntry.person_id == person_id)
    ).scalar_one()
    return BalanceCheck(person_id, account.balance_fen, rederive_balance(session, person_id), count)


@dataclass(frozen=True)
class YearStatement:
    account: IndividualAccount
    year: int
    rate: str | None
    opening_fen: int
    entries: list[AccountEntry]
    credits_fen: int
    debits_fen: int
    interest_fen: int

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + self.credits_fen - self.debits_fen


def statement(session: Session, person_id: str, year: int) -> YearStatement:
    """Opening balance (entries of earlier years), the year's entries, closing balance."""
    account = get_account(session, person_id)
    opening = session.execute(
        select(func.coalesce(func.sum(AccountEntry.amount_fen), 0))
        .where(AccountEntry.person_id == person_id, AccountEntry.year < year)
    ).scalar_one()
    entries = list(session.execute(
        select(AccountEntry).where(AccountEntry.person_id == person_id, AccountEntry.year == year)
        .order_by(AccountEntry.posted_at, AccountEntry.id)
    ).scalars())
    rate = session.get(InterestRate, year)
    return YearStatement(
        account=account, year=year, rate=rate.rate if rate else None, opening_fen=opening, entries=entries,
        credits_fen=sum(e.amount_fen for e in entries if e.amount_fen > 0),
        debits_fen=-sum(e.amount_fen for e in entries if e.amount_fen < 0),
        interest_fen=sum(e.amount_fen for e in entries if e.entry_type == "interest"),
    )


# -- interest --------------------------------------------------------------------------------------------------------


def list_interest_rates(session: Session) -> list[InterestRate]:
    return list(session.execute(select(InterestRate).order_by(InterestRate.year)).scalars())


def set_interest_rate(session: Session, year: int, rate: Decimal) -> InterestRate:
    """Set (or correct) the 记账利率 of a year; refused once interest of that year has been credited."""
    text = interest_rule.rate_text(rate)
    row = session.get(InterestRate, year)
    if row is not None and Decimal(row.rate) == rate:
        return row
    credited = session.execute(
        select(AccountEntry.id).where(AccountEntry.entry_type == "interest", AccountEntry.year == year).limit(1)
    ).first()
    if credited:
        raise Conflict("INTEREST_ALREADY_CREDITED", f"{year} 年利息已记入个人账户，不能再修改该年记账利率")
    before = row.rate if row else None
    if row is None:
        row = InterestRate(year=year, rate=text, set_at=clock.utc_now(), set_by=context.actor_id())
    else:
        row.rate, row.set_at, row.set_by = text, clock.utc_now(), context.actor_id()
    session.add(row)
    append_audit(session, action="interest_rate.set", entity_type="interest_rate", entity_id=str(year),
                 detail={"year": year, "rate": [before, text]})
    session.flush()
    return row


def interest_key(year: int, person_id: str) -> str:
    return f"{INTEREST_KEY_PREFIX}{year}:{person_id}"


@dataclass
class InterestRun:
    year: int
    rate: str
    accounts: int = 0
    credited: int = 0
    already_credited: int = 0
    zero_interest: int = 0
    skipped_later_interest: int = 0
    total_fen: int = 0
    batches: int = 0


def run_interest(engine: Engine, year: int, *, batch_size: int | None = None) -> InterestRun:
    """Credit the interest of ``year`` to every open account of the caller's area, ``batch_size`` accounts per
    transaction. Each credit's key is ``interest:{year}:{person_id}``: running again (or resuming after a crash)
    credits only the accounts not yet credited. Accounts already credited for a later year are left alone (their
    later interest was computed without this year's)."""
    if year >= clock.china_today().year:
        raise Conflict("YEAR_NOT_ENDED", f"{year} 年尚未结束，不能计息")
    with Session(engine) as session:
        rate_row = session.get(InterestRate, year)
        if rate_row is None:
            raise Conflict("INTEREST_RATE_NOT_SET", f"尚未设置 {year} 年的记账利率")
    rate = Decimal(rate_row.rate)
    batch_size = batch_size or INTEREST_BATCH_SIZE
    in_area = region_filter(Person.region)
    run = InterestRun(year=year, rate=rate_row.rate)
    after = ""
    while True:
        with unit_of_work(engine) as session:
            ids = list(session.execute(
                select(IndividualAccount.person_id)
                .join(Person, Person.id == IndividualAccount.person_id)
                .where(IndividualAccount.status == "open", IndividualAccount.person_id > after,
                       in_area)
                .order_by(IndividualAccount.person_id).limit(batch_size)
            ).scalars())
            if not ids:
                return run
            tally = _retrying(session, lambda: _interest_batch(session, ids, year, rate, run.rate))  # noqa: B023
            for name in ("accounts", "credited", "already_credited", "zero_interest", "skipped_later_interest",
                         "total_fen"):
                setattr(run, name, getattr(run, name) + getattr(tally, name))
            run.batches += 1
            after = ids[-1]


def _retrying(session: Session, work: Callable[[], T]) -> T:
    """A batch that loses a race with a concurrent run of the same year is rolled back and done again: the keys
    the other run committed are then skipped."""
    try:
        result = work()
        session.flush()
        return result
    except IntegrityError:
        session.rollback()
        result = work()
        session.flush()
        return result


def _interest_batch(session: Session, person_ids: list[str], year: int, rate: Decimal, rate_text: str) -> InterestRun:
    """One transaction's worth of accounts; returns its tally (added to the run once the batch has committed). The
    credits are written as a set: one insert of the entries, one balance update statement, the audit entries under
    one lock of the chain head, the credits reported in ``accounts.account.credited.v2`` events of at most 1 000."""
    tally = InterestRun(year=year, rate=rate_text)
    accounts = session.execute(
        select(IndividualAccount.person_id, IndividualAccount.balance_fen)
        .where(IndividualAccount.person_id.in_(person_ids), IndividualAccount.status == "open")
        .order_by(IndividualAccount.person_id).with_for_update()
    ).all()
    keys = {interest_key(year, person_id): person_id for person_id, _ in accounts}
    done = set(session.execute(
        select(AccountEntry.idempotency_key).where(AccountEntry.idempotency_key.in_(list(keys)))
    ).scalars())
    later = set(session.execute(
        select(AccountEntry.person_id).where(AccountEntry.person_id.in_(person_ids),
                                             AccountEntry.entry_type == "interest", AccountEntry.year > year)
    ).scalars())
    opening: dict[str, int] = dict(session.execute(
        select(AccountEntry.person_id, func.sum(AccountEntry.amount_fen))
        .where(AccountEntry.person_id.in_(person_ids), AccountEntry.year < year)
        .group_by(AccountEntry.person_id)
    ).all())
    movements: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for person_id, amount_fen, period in session.execute(
        select(AccountEntry.person_id, AccountEntry.amount_fen, AccountEntry.period)
        .where(AccountEntry.person_id.in_(person_ids), AccountEntry.year == year,
               AccountEntry.entry_type != "interest")
    ):
        movements[person_id].append((amount_fen, period if period is not None else year * 100 + 12))
    credits: list[tuple[str, int, int]] = []  # (person, amount, balance before)
    for person_id, balance_fen in accounts:
        tally.accounts += 1
        key = interest_key(year, person_id)
        if key in done:
            tally.already_credited += 1
            continue
        if person_id in later:
            tally.skipped_later_interest += 1
            continue
        amount = interest_rule.yearly_interest_fen(
            rate=rate, opening_balance_fen=opening.get(person_id, 0), movements=movements.get(person_id, ()),
        )
        if amount == 0:
            tally.zero_interest += 1
            continue
        credits.append((person_id, amount, balance_fen))
        tally.credited += 1
        tally.total_fen += amount
    _credit_interest(session, credits, year, f"{year} 年度记账利率 {rate_text}")
    return tally


def _credit_interest(session: Session, credits: list[tuple[str, int, int]], year: int, reference: str) -> None:
    """The interest entries of a batch, what ``_apply`` writes for one credit, written as sets."""
    if not credits:
        return
    now = clock.utc_now()
    actor = context.actor_id()
    entries, audit, credited = [], [], []
    for person_id, amount, before in credits:
        entry_id, key, balance = new_event_id(), interest_key(year, person_id), before + amount
        entries.append({"id": entry_id, "person_id": person_id, "entry_type": "interest", "amount_fen": amount,
                        "year": year, "period": None, "idempotency_key": key, "reference": reference,
                        "reason": None, "posted_at": now, "posted_by": actor})
        audit.append({"action": f"{ENTITY}.interest", "entity_type": ENTITY, "entity_id": person_id,
                      "detail": {"entry_id": entry_id, "amount_fen": amount, "balance_fen": balance, "year": year,
                                 "period": None, "idempotency_key": key, "reference": reference}})
        credited.append({"person_id": person_id, "entry_id": entry_id, "entry_type": "interest",
                         "amount_fen": amount, "balance_fen": balance, "year": year, "period": None,
                         "idempotency_key": key})
    session.execute(insert(AccountEntry.__table__), entries)
    update_many(session, IndividualAccount, [
        {"person_id": person_id, "balance_fen": amount, "version": 1, "updated_at": now}
        for person_id, amount, _ in credits], key="person_id", add=("balance_fen", "version"), overwrite=("updated_at",))
    credited_ids = {person_id for person_id, _, _ in credits}
    for loaded in list(session.identity_map.values()):  # no account object may keep its old balance
        if isinstance(loaded, IndividualAccount) and loaded.person_id in credited_ids:
            session.expire(loaded)
    append_audit_many(session, audit)
    record_events(session, credited_events(credited, subject=f"{INTEREST_KEY_PREFIX}{year}"), source=SOURCE)


def credited_events(credits: list[dict[str, Any]], *, subject: str) -> list[tuple[PayloadFields, str]]:
    """Credits in bulk as ``accounts.account.credited.v2`` events of at most ``MAX_BATCH_ITEMS`` entries (the
    fields of ``CreditedEntry``, as dicts: each event is validated once, by the outbox, not each entry)."""
    return [(PayloadFields(AccountsCredited, {"entries": credits[i:i + MAX_BATCH_ITEMS]}), subject)
            for i in range(0, len(credits), MAX_BATCH_ITEMS)]
