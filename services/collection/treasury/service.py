"""Fund bank accounts and the FINANCE leg.

- **Registry.** One special (财政专户, finance's), income (收入户) and expenditure (支出户) account per fund (the
  agency's), with bank, opening approval and annual inspection due date. Special accounts are registered and
  operated by finance officers, income and expenditure accounts by accountants; both roles, cashiers and internal
  auditors read. An account closes only when its balance is zero.
- **Remittances and receipts.** Finance records the tax bureau's remittance to the treasury (its voucher number is
  its key) and the receipt of it into the special account of its fund. The receipt is due by the 10th Chinese
  working day after the remittance (000 二(二), workdays.py); a later one is recorded and marked ``late``. A receipt
  above the remittance's unreceived amount is refused (flagged when it comes from a bank statement).
- **Allocations.** Special → expenditure account of the same fund for a payroll: two transactions (out and in) in
  one database transaction.
- **Usage rules.** Every movement, whatever its path, is checked against rules.py. By hand (source ``manual``) a
  violation is refused with 409 ``USAGE_RULE_VIOLATION``; from a bank statement (source ``bank_statement``) it is
  recorded with status ``flagged`` and the violation text, also in the event.
- **Idempotency.** Every transaction carries a business key: the ``Idempotency-Key`` header for movements entered
  by hand (the allocation's in-leg stores ``<key>#in``), ``statement#<account id>#<bank line id>`` for statement
  lines. The same key with the same content returns the original (200, ``replayed``); with other content it is
  refused (409 ``IDEMPOTENCY_KEY_REUSED``). Client keys may not contain ``#``, which keeps them apart from the
  derived ones. The remittance's key is its voucher number (409 ``VOUCHER_REUSED`` for other content).
- **Balances.** Each account's balance moves in the transaction that records the movement (under a row lock);
  a movement entered by hand may not overdraw an account; a statement line is recorded as the bank reports it.
- Money is integer fen here and in events; yuan only at the API edge.
"""

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.collection.models import BankTransaction, FundBankAccount, TreasuryRemittance
from services.collection.treasury import rules
from services.collection.treasury.schemas import (
    AccountIn,
    AllocationIn,
    CloseIn,
    InspectionIn,
    InterestIn,
    ReceiptIn,
    RemittanceIn,
    StatementIn,
    TransactionIn,
)
from services.collection.treasury.workdays import Deadline, Lateness, remittance_lateness, treasury_deadline
from services.contracts.collection import BankAccountRegistered, BankTransactionRecorded, TreasuryRemitted
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import ROLES
from services.kernel.db import keep_writes
from services.kernel.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.kernel.outbox import record_event
from services.kernel.paging import SortKeys, oldest_first
from services.kernel.periods import month_has_ended, period_of

SOURCE = "collection"
ACCOUNT_ENTITY = "fund_bank_account"
REMITTANCE_ENTITY = "treasury_remittance"
KIND_ROLE = {"special": "finance_officer", "income": "accountant", "expenditure": "accountant"}
MAX_KEY_LENGTH = 160
DERIVED_KEY_SEPARATOR = "#"
IN_LEG_SUFFIX = "#in"
LOOKUP_CHUNK = 500



def _yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen)}"


def _chunks(values: Sequence, size: int = LOOKUP_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def act_for_kind(kind: str) -> None:
    """Object-level check: the special account is finance's, income and expenditure accounts are the agency's
    accountants'. The caller then acts in that role (events and audit entries name it)."""
    actor = context.current().actor
    role = KIND_ROLE[kind]
    if role not in actor.roles:
        raise Forbidden("FORBIDDEN", f"{rules.KIND_NAMES[kind]}的业务须由{ROLES[role]}（{role}）办理")
    if actor.role != role:
        context.set_actor(replace(actor, role=role))


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Invalid("IDEMPOTENCY_KEY_REQUIRED", "资金收付请求须带 Idempotency-Key 请求头（业务幂等键）")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or DERIVED_KEY_SEPARATOR in key:
        raise Invalid("INVALID_IDEMPOTENCY_KEY",
                      f"Idempotency-Key 须为不超过 {MAX_KEY_LENGTH} 个可打印字符，且不含 {DERIVED_KEY_SEPARATOR}")
    return key


def _not_future(day: date, what: str) -> None:
    if day > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"{what} {day} 晚于今天")


# -- accounts --------------------------------------------------------------------------------------------------------


def inspection_overdue(account: FundBankAccount, today: date | None = None) -> bool:
    return account.status == "open" and account.annual_inspection_due < (today or clock.china_today())


def get_account(session: Session, account_id: str, *, lock: bool = False) -> FundBankAccount:
    query = select(FundBankAccount).where(FundBankAccount.id == account_id)
    account = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if account is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "社保基金账户不存在")
    return account


def _account_of(session: Session, kind: str, fund: str) -> FundBankAccount:
    account = session.execute(
        select(FundBankAccount).where(FundBankAccount.kind == kind, FundBankAccount.fund == fund).with_for_update()
    ).scalar_one_or_none()
    if account is None:
        raise Conflict("ACCOUNT_NOT_REGISTERED", f"{fund} 尚未登记{rules.KIND_NAMES[kind]}")
    return account


def _same_account(account: FundBankAccount, body: AccountIn) -> bool:
    return (account.kind, account.fund, account.bank_name, account.account_no, account.opened_on,
            account.opening_approval_ref, account.annual_inspection_due) == (
        body.kind, body.fund, body.bank_name, body.account_no, body.opened_on, body.opening_approval_ref,
        body.annual_inspection_due)


def _registered(session: Session, body: AccountIn) -> FundBankAccount | None:
    """The same account registered before (a replay), None if there is none; 409 when the number or the fund's
    slot is taken by another one."""
    rows = session.execute(select(FundBankAccount).where(or_(
        FundBankAccount.account_no == body.account_no,
        and_(FundBankAccount.kind == body.kind, FundBankAccount.fund == body.fund),
    ))).scalars().all()
    for row in rows:
        if _same_account(row, body):
            return row
    for row in rows:
        if row.account_no == body.account_no:
            raise Conflict("ACCOUNT_NO_TAKEN", f"银行账号已登记为 {row.fund} {rules.KIND_NAMES[row.kind]}")
    for row in rows:
        raise Conflict("ACCOUNT_EXISTS", f"{row.fund} 已登记{rules.KIND_NAMES[row.kind]}（{row.bank_name}，"
                                         f"状态 {row.status}），每个险种每类账户只有一个")
    return None


def register_account(session: Session, body: AccountIn) -> tuple[FundBankAccount, bool]:
    act_for_kind(body.kind)
    _not_future(body.opened_on, "开户日期")
    found = _registered(session, body)
    if found is not None:
        return found, True
    account = FundBankAccount(
        id=new_event_id(), kind=body.kind, fund=body.fund, bank_name=body.bank_name, account_no=body.account_no,
        opened_on=body.opened_on, opening_approval_ref=body.opening_approval_ref,
        annual_inspection_due=body.annual_inspection_due, status="open", balance_fen=0, created_at=clock.utc_now(),
        created_by=context.actor_id(),
    )
    session.add(account)
    append_audit(session, action=f"{ACCOUNT_ENTITY}.registered", entity_type=ACCOUNT_ENTITY, entity_id=account.id,
                 detail={"kind": account.kind, "fund": account.fund, "bank_name": account.bank_name,
                         "account_no": account.account_no, "opened_on": account.opened_on,
                         "opening_approval_ref": account.opening_approval_ref,
                         "annual_inspection_due": account.annual_inspection_due})
    record_event(session, BankAccountRegistered(
        account_id=account.id, kind=account.kind, fund=account.fund, bank_name=account.bank_name,
        opened_on=account.opened_on, annual_inspection_due=account.annual_inspection_due,
    ), source=SOURCE, subject=account.id)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = _registered(session, body)
        if found is None:
            raise
        return found, True
    return account, False


def list_accounts(session: Session, *, kind: str | None = None, fund: str | None = None, status: str | None = None,
                  overdue: bool | None = None) -> list[FundBankAccount]:
    query = select(FundBankAccount).order_by(FundBankAccount.fund, FundBankAccount.kind)
    if kind:
        query = query.where(FundBankAccount.kind == kind)
    if fund:
        query = query.where(FundBankAccount.fund == fund)
    if status:
        query = query.where(FundBankAccount.status == status)
    today = clock.china_today()
    if overdue is True:
        query = query.where(FundBankAccount.status == "open", FundBankAccount.annual_inspection_due < today)
    elif overdue is False:
        query = query.where(or_(FundBankAccount.status != "open", FundBankAccount.annual_inspection_due >= today))
    return list(session.execute(query).scalars())


def close_account(session: Session, account_id: str, body: CloseIn) -> FundBankAccount:
    account = get_account(session, account_id, lock=True)
    act_for_kind(account.kind)
    if account.status == "closed":
        raise Conflict("ACCOUNT_CLOSED", "账户已销户")
    if account.balance_fen != 0:
        raise Conflict("ACCOUNT_NOT_EMPTY", f"账户余额 {_yuan(account.balance_fen)} 元，余额为零方可销户")
    account.status = "closed"
    session.add(account)
    append_audit(session, action=f"{ACCOUNT_ENTITY}.closed", entity_type=ACCOUNT_ENTITY, entity_id=account.id,
                 detail={"kind": account.kind, "fund": account.fund, "approval_ref": body.approval_ref},
                 reason=body.reason)
    session.flush()
    return account


def record_inspection(session: Session, account_id: str, body: InspectionIn) -> FundBankAccount:
    account = get_account(session, account_id, lock=True)
    act_for_kind(account.kind)
    if account.status == "closed":
        raise Conflict("ACCOUNT_CLOSED", "账户已销户")
    _not_future(body.inspected_on, "年检日期")
    previous = account.annual_inspection_due
    account.annual_inspection_due = body.next_due
    session.add(account)
    append_audit(session, action=f"{ACCOUNT_ENTITY}.inspected", entity_type=ACCOUNT_ENTITY, entity_id=account.id,
                 detail={"inspected_on": body.inspected_on, "previous_due": previous, "next_due": body.next_due,
                         "reference": body.reference})
    session.flush()
    return account


# -- remittances -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemittanceState:
    remittance: TreasuryRemittance
    received_fen: int
    deadline: Deadline
    last_receipt_on: date | None = None

    @property
    def unreceived_fen(self) -> int:
        return self.remittance.amount_fen - self.received_fen

    @property
    def status(self) -> str:
        if self.unreceived_fen <= 0:
            return "received"
        if self.deadline.day is not None and clock.china_today() > self.deadline.day:
            return "overdue"
        return "open"

    def lateness(self) -> Lateness:
        return remittance_lateness(self.remittance.remitted_on, in_full=self.unreceived_fen <= 0,
                                   last_receipt_on=self.last_receipt_on, today=clock.china_today())


def _receipts(session: Session, remittance_ids: Sequence[str]) -> dict[str, tuple[int, date | None]]:
    """Money received into the special account against each remittance, accepted or flagged (it arrived), and the
    value date of its last receipt."""
    found: dict[str, tuple[int, date | None]] = {}
    for chunk in _chunks(list(remittance_ids)):
        rows = session.execute(
            select(BankTransaction.remittance_id, func.sum(BankTransaction.amount_fen),
                   func.max(BankTransaction.value_date))
            .where(BankTransaction.remittance_id.in_(chunk), BankTransaction.direction == "in")
            .group_by(BankTransaction.remittance_id)
        )
        found.update({rid: (int(fen or 0), last) for rid, fen, last in rows})
    return found


def _received_fen(session: Session, remittance_ids: Sequence[str]) -> dict[str, int]:
    return {rid: fen for rid, (fen, _) in _receipts(session, remittance_ids).items()}


def remittance_states(session: Session, remittances: Sequence[TreasuryRemittance]) -> list[RemittanceState]:
    receipts = _receipts(session, [r.id for r in remittances])
    return [RemittanceState(r, receipts.get(r.id, (0, None))[0], treasury_deadline(r.remitted_on),
                            receipts.get(r.id, (0, None))[1]) for r in remittances]


def get_remittance(session: Session, remittance_id: str, *, lock: bool = False) -> TreasuryRemittance:
    query = select(TreasuryRemittance).where(TreasuryRemittance.id == remittance_id)
    remittance = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if remittance is None:
        raise NotFound("REMITTANCE_NOT_FOUND", "国库缴款记录不存在")
    return remittance


def _remitted(session: Session, body: RemittanceIn, amount_fen: int) -> TreasuryRemittance | None:
    found = session.execute(
        select(TreasuryRemittance).where(TreasuryRemittance.voucher_no == body.voucher_no)
    ).scalar_one_or_none()
    if found is None:
        return None
    if (found.fund, found.period, found.amount_fen, found.remitted_on) != (body.fund, body.period, amount_fen,
                                                                          body.remitted_on):
        raise Conflict("VOUCHER_REUSED", f"缴款凭证 {body.voucher_no} 已登记为另一笔缴款（{found.fund} {found.period}，"
                                         f"{_yuan(found.amount_fen)} 元，{found.remitted_on}）")
    return found


def record_remittance(session: Session, body: RemittanceIn) -> tuple[TreasuryRemittance, bool]:
    _not_future(body.remitted_on, "缴库日期")
    amount = yuan_to_fen(body.amount)
    found = _remitted(session, body, amount)
    if found is not None:
        return found, True
    remittance = TreasuryRemittance(
        id=new_event_id(), fund=body.fund, period=body.period, amount_fen=amount, remitted_on=body.remitted_on,
        voucher_no=body.voucher_no, recorded_at=clock.utc_now(), recorded_by=context.actor_id(),
    )
    session.add(remittance)
    append_audit(session, action=f"{REMITTANCE_ENTITY}.recorded", entity_type=REMITTANCE_ENTITY,
                 entity_id=remittance.id,
                 detail={"fund": remittance.fund, "period": remittance.period, "amount_fen": amount,
                         "remitted_on": remittance.remitted_on, "voucher_no": remittance.voucher_no})
    record_event(session, TreasuryRemitted(
        remittance_id=remittance.id, fund=remittance.fund, period=remittance.period, amount_fen=amount,
        remitted_on=remittance.remitted_on, voucher_no=remittance.voucher_no,
    ), source=SOURCE, subject=remittance.id)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = _remitted(session, body, amount)
        if found is None:
            raise
        return found, True
    return remittance, False


REMITTANCE_SORT = SortKeys(TreasuryRemittance.id, descending_by_default=False,
                           remitted_on=TreasuryRemittance.remitted_on, fund=TreasuryRemittance.fund,
                           period=TreasuryRemittance.period, amount=TreasuryRemittance.amount_fen,
                           voucher_no=TreasuryRemittance.voucher_no, recorded_at=TreasuryRemittance.recorded_at)


def list_remittances(session: Session, *, fund: str | None = None, period: int | None = None,
                     outstanding: bool | None = None, after: str | None = None, limit: int = 100,
                     sort: str | None = None) -> tuple[list[RemittanceState], str | None]:
    received = (
        select(BankTransaction.remittance_id.label("rid"), func.sum(BankTransaction.amount_fen).label("fen"))
        .where(BankTransaction.remittance_id.is_not(None), BankTransaction.direction == "in")
        .group_by(BankTransaction.remittance_id).subquery()
    )
    query = select(TreasuryRemittance).outerjoin(received, received.c.rid == TreasuryRemittance.id)
    if fund:
        query = query.where(TreasuryRemittance.fund == fund)
    if period is not None:
        query = query.where(TreasuryRemittance.period == period)
    if outstanding is True:
        query = query.where(func.coalesce(received.c.fen, 0) < TreasuryRemittance.amount_fen)
    elif outstanding is False:
        query = query.where(func.coalesce(received.c.fen, 0) >= TreasuryRemittance.amount_fen)
    page, next_cursor = REMITTANCE_SORT.page(session, query, sort=sort, after=after, limit=limit)
    return remittance_states(session, page), next_cursor


# -- transactions: one core for every path ---------------------------------------------------------------------------


@dataclass
class Draft:
    """A movement about to be recorded; compared field by field with the stored row when its key comes again."""

    account: FundBankAccount
    direction: str
    amount_fen: int
    counterparty: str
    counterparty_account: FundBankAccount | None
    purpose: str
    remittance: TreasuryRemittance | None
    reference: str | None
    value_date: date
    source: str  # manual | bank_statement
    key: str
    notes: list[str] = field(default_factory=list)  # statement facts that make the line suspicious on their own

    @property
    def counterparty_fund(self) -> str | None:
        if self.counterparty_account is not None:
            return self.counterparty_account.fund
        if self.remittance is not None:
            return self.remittance.fund
        if self.counterparty == "interest":
            return self.account.fund
        return None

    @property
    def signed_fen(self) -> int:
        return self.amount_fen if self.direction == "in" else -self.amount_fen

    def movement(self) -> rules.Movement:
        return rules.Movement(
            account_kind=self.account.kind, account_fund=self.account.fund, direction=self.direction,
            counterparty=self.counterparty, counterparty_fund=self.counterparty_fund, purpose=self.purpose,
            has_reference=bool(self.reference), has_remittance=self.remittance is not None,
        )

    def matches(self, row: BankTransaction) -> bool:
        return (row.account_id, row.direction, row.amount_fen, row.counterparty, row.counterparty_account_id,
                row.purpose, row.remittance_id, row.reference, row.value_date, row.source) == (
            self.account.id, self.direction, self.amount_fen, self.counterparty,
            self.counterparty_account.id if self.counterparty_account else None, self.purpose,
            self.remittance.id if self.remittance else None, self.reference, self.value_date, self.source)


@dataclass
class Evaluation:
    violations: list[rules.Violation]
    problems: list[DomainError]  # not usage rules: a closed account, an over-receipt, an overdraft …
    notes: list[str]

    @property
    def clean(self) -> bool:
        return not (self.violations or self.problems or self.notes)

    def text(self) -> str:
        return "；".join([v.text for v in self.violations] + [p.message for p in self.problems] + self.notes)


def _evaluate(session: Session, draft: Draft) -> Evaluation:
    account, problems = draft.account, []
    if account.status != "open":
        problems.append(Conflict("ACCOUNT_CLOSED", f"{rules.KIND_NAMES[account.kind]}已销户，不能记录收付"))
    if draft.counterparty_account is not None and draft.counterparty_account.id == account.id:
        problems.append(Invalid("SAME_ACCOUNT", "对方账户不能是本账户"))
    violations = rules.check(draft.movement())
    remittance = draft.remittance
    if remittance is not None:
        if draft.value_date < remittance.remitted_on:
            problems.append(Invalid("RECEIPT_BEFORE_REMITTANCE",
                                    f"到账日期 {draft.value_date} 早于缴库日期 {remittance.remitted_on}"))
        received = _received_fen(session, [remittance.id]).get(remittance.id, 0)
        unreceived = remittance.amount_fen - int(received)
        if draft.amount_fen > unreceived:
            problems.append(Conflict("OVER_RECEIPT", f"到账金额 {_yuan(draft.amount_fen)} 元超过缴款凭证 "
                                                     f"{remittance.voucher_no} 未到账金额 {_yuan(unreceived)} 元"))
    if draft.source == "manual" and draft.direction == "out" and account.balance_fen < draft.amount_fen:
        problems.append(Conflict("INSUFFICIENT_BALANCE", f"账户余额 {_yuan(account.balance_fen)} 元，"
                                                         f"不足支付 {_yuan(draft.amount_fen)} 元"))
    return Evaluation(violations, problems, list(draft.notes))


def refusal(evaluation: Evaluation) -> DomainError:
    """What a hand-entered movement gets: a closed account first, then the usage rules, then the rest."""
    closed = [p for p in evaluation.problems if p.code in ("ACCOUNT_CLOSED", "SAME_ACCOUNT")]
    if closed:
        return closed[0]
    if evaluation.violations:
        return Conflict("USAGE_RULE_VIOLATION", "；".join(v.text for v in evaluation.violations),
                        details={"violations": [v.as_dict() for v in evaluation.violations]})
    return evaluation.problems[0]


def _write(session: Session, draft: Draft, evaluation: Evaluation, *, audit: bool = True) -> BankTransaction:
    account = draft.account
    status = "accepted" if evaluation.clean else "flagged"
    violation = None if evaluation.clean else evaluation.text()
    account.balance_fen += draft.signed_fen
    session.add(account)
    row = BankTransaction(
        id=new_event_id(), idempotency_key=draft.key, account_id=account.id, fund=account.fund,
        direction=draft.direction, amount_fen=draft.amount_fen, counterparty=draft.counterparty,
        counterparty_account_id=draft.counterparty_account.id if draft.counterparty_account else None,
        counterparty_fund=draft.counterparty_fund, purpose=draft.purpose,
        remittance_id=draft.remittance.id if draft.remittance else None, reference=draft.reference,
        value_date=draft.value_date, source=draft.source, status=status, violation=violation,
        recorded_at=clock.utc_now(),
        recorded_by=context.actor_id(),
    )
    session.add(row)
    if audit:
        append_audit(session, action=f"bank_transaction.{status}", entity_type=ACCOUNT_ENTITY, entity_id=account.id,
                     detail={"transaction_id": row.id, "direction": row.direction, "amount_fen": row.amount_fen,
                             "counterparty": row.counterparty, "counterparty_fund": row.counterparty_fund,
                             "purpose": row.purpose, "remittance_id": row.remittance_id, "reference": row.reference,
                             "value_date": row.value_date, "balance_fen": account.balance_fen,
                             "idempotency_key": row.idempotency_key, "violation": violation})
    deadline = treasury_deadline(draft.remittance.remitted_on).day if draft.remittance else None
    record_event(session, BankTransactionRecorded(
        deadline=deadline, late=None if deadline is None else row.value_date > deadline,
        transaction_id=row.id, account_id=account.id, account_kind=account.kind, fund=account.fund,
        direction=row.direction, amount_fen=row.amount_fen, counterparty=row.counterparty,
        counterparty_fund=row.counterparty_fund, purpose=row.purpose, remittance_id=row.remittance_id,
        period=draft.remittance.period if draft.remittance else None, value_date=row.value_date, source=row.source,
        status=status, violation=violation,
    ), source=SOURCE, subject=account.id)
    return row


def _by_keys(session: Session, keys: Sequence[str]) -> dict[str, BankTransaction]:
    found: dict[str, BankTransaction] = {}
    for chunk in _chunks(list(keys)):
        found.update((row.idempotency_key, row) for row in session.execute(
            select(BankTransaction).where(BankTransaction.idempotency_key.in_(chunk))).scalars())
    return found


@dataclass
class Recording:
    transactions: list[BankTransaction]
    replayed: bool


def _replay(session: Session, drafts: Sequence[Draft]) -> Recording | None:
    stored = _by_keys(session, [d.key for d in drafts])
    if not stored:
        return None
    rows = [stored.get(d.key) for d in drafts]
    if all(row is not None and d.matches(row) for d, row in zip(drafts, rows, strict=True)):
        return Recording(rows, replayed=True)  # type: ignore[arg-type]
    row = next(r for r in rows if r is not None)
    raise Conflict("IDEMPOTENCY_KEY_REUSED",
                   f"幂等键 {drafts[0].key} 已用于另一笔内容不同的收付（{rules.DIRECTION_NAMES[row.direction]} "
                   f"{_yuan(row.amount_fen)} 元，{row.value_date}）")


def _record_by_hand(session: Session, drafts: Sequence[Draft]) -> Recording:
    """Record movements entered by hand, all or nothing. A violation refuses the whole request; the refusal itself is
    kept in the audit chain."""
    replayed = _replay(session, drafts)
    if replayed is not None:
        return replayed
    written = []
    for draft in drafts:
        evaluation = _evaluate(session, draft)
        if not evaluation.clean:
            error = refusal(evaluation)
            _audit_refusal(session, draft, error)
            raise keep_writes(error)  # the refusal's audit entry stands
        written.append(_write(session, draft, evaluation))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        replayed = _replay(session, drafts)
        if replayed is None:
            raise
        return replayed
    return Recording(written, replayed=False)


def _audit_refusal(session: Session, draft: Draft, error: DomainError) -> None:
    account_id, kind, fund = draft.account.id, draft.account.kind, draft.account.fund
    detail = {"kind": kind, "fund": fund, "direction": draft.direction, "amount_fen": draft.amount_fen,
              "counterparty": draft.counterparty, "counterparty_fund": draft.counterparty_fund,
              "purpose": draft.purpose, "reference": draft.reference, "value_date": draft.value_date,
              "idempotency_key": draft.key, "code": error.code}
    session.rollback()
    append_audit(session, action="bank_transaction.refused", entity_type=ACCOUNT_ENTITY, entity_id=account_id,
                 detail=detail, reason=error.message)


def record_receipt(session: Session, body: ReceiptIn, key: str | None) -> Recording:
    key = check_key(key)
    _not_future(body.value_date, "到账日期")
    # Lock order everywhere: account(s) first, then the remittance.
    special = _account_of(session, "special", get_remittance(session, body.remittance_id).fund)
    act_for_kind(special.kind)
    remittance = get_remittance(session, body.remittance_id, lock=True)
    return _record_by_hand(session, [Draft(
        account=special, direction="in", amount_fen=yuan_to_fen(body.amount), counterparty="treasury",
        counterparty_account=None, purpose="receipt", remittance=remittance, reference=body.reference,
        value_date=body.value_date, source="manual", key=key,
    )])


def record_interest(session: Session, account_id: str, body: InterestIn, key: str | None) -> Recording:
    key = check_key(key)
    _not_future(body.value_date, "结息日期")
    account = get_account(session, account_id, lock=True)
    act_for_kind(account.kind)
    return _record_by_hand(session, [Draft(
        account=account, direction="in", amount_fen=yuan_to_fen(body.amount), counterparty="interest",
        counterparty_account=None, purpose="interest", remittance=None, reference=body.reference,
        value_date=body.value_date, source="manual", key=key,
    )])


def record_allocation(session: Session, body: AllocationIn, key: str | None) -> Recording:
    """财政拨付: the out-leg on the special account and the in-leg on the expenditure account, one transaction."""
    key = check_key(key)
    _not_future(body.value_date, "拨付日期")
    special = _account_of(session, "special", body.fund)
    expenditure = _account_of(session, "expenditure", body.fund)
    act_for_kind(special.kind)
    amount = yuan_to_fen(body.amount)
    common = {"amount_fen": amount, "purpose": "allocation", "remittance": None,
              "reference": body.payroll_reference, "value_date": body.value_date, "source": "manual"}
    return _record_by_hand(session, [
        Draft(account=special, direction="out", counterparty="expenditure", counterparty_account=expenditure,
              key=key, **common),
        Draft(account=expenditure, direction="in", counterparty="special", counterparty_account=special,
              key=key + IN_LEG_SUFFIX, **common),
    ])


def record_transaction(session: Session, body: TransactionIn, key: str | None) -> Recording:
    """Any other movement entered by hand on one account (income → special transfers, contributions into the income
    account, benefit payments and returns on the expenditure account …): one leg, recorded by the account's keeper."""
    key = check_key(key)
    if body.purpose == "allocation":
        raise Invalid("USE_ALLOCATIONS", "财政拨付须通过 POST /treasury/allocations 同时记录专户支出和支出户收入")
    _not_future(body.value_date, "交易日期")
    account = get_account(session, body.account_id, lock=True)
    act_for_kind(account.kind)
    counterparty_account = None
    if body.counterparty_account_id is not None:
        counterparty_account = session.get(FundBankAccount, body.counterparty_account_id)
        if counterparty_account is None:
            raise Invalid("COUNTERPARTY_NOT_FOUND", "对方社保基金账户不存在")
        if counterparty_account.kind != body.counterparty:
            raise Invalid("COUNTERPARTY_MISMATCH", f"对方账户是{rules.KIND_NAMES[counterparty_account.kind]}，"
                                                   f"不是{rules.COUNTERPARTY_NAMES[body.counterparty]}")
    remittance = get_remittance(session, body.remittance_id, lock=True) if body.remittance_id else None
    return _record_by_hand(session, [Draft(
        account=account, direction=body.direction, amount_fen=yuan_to_fen(body.amount),
        counterparty=body.counterparty, counterparty_account=counterparty_account, purpose=body.purpose,
        remittance=remittance, reference=body.reference, value_date=body.value_date, source="manual", key=key,
    )])


# -- bank statements -------------------------------------------------------------------------------------------------


@dataclass
class StatementResult:
    account: FundBankAccount
    transactions: list[BankTransaction]
    recorded: int
    replayed: int
    flagged: int


def statement_key(account_id: str, bank_line_id: str) -> str:
    return f"statement{DERIVED_KEY_SEPARATOR}{account_id}{DERIVED_KEY_SEPARATOR}{bank_line_id}"


def import_statement(session: Session, body: StatementIn) -> StatementResult:
    """Lines of a bank statement: movements that already happened. Each is checked like any other movement; one
    that breaks a rule (or over-receives a remittance, names an unregistered fund account or remittance, hits a
    closed account) is recorded with status ``flagged`` and the reason. Each line's key is the bank's line id, so
    importing the same statement again records nothing twice; a line id seen before with other content refuses
    the whole import. One transaction, one audit entry for the statement, one event per line."""
    account = get_account(session, body.account_id, lock=True)
    act_for_kind(account.kind)
    for number, line in enumerate(body.lines, start=1):
        _not_future(line.value_date, f"第 {number} 行交易日期")
    numbers = sorted({line.counterparty_account_no for line in body.lines if line.counterparty_account_no})
    registry: dict[str, FundBankAccount] = {}
    for chunk in _chunks(numbers):
        registry.update((a.account_no, a) for a in session.execute(
            select(FundBankAccount).where(FundBankAccount.account_no.in_(chunk))).scalars())
    vouchers = sorted({line.remittance_voucher_no for line in body.lines if line.remittance_voucher_no})
    remittances: dict[str, TreasuryRemittance] = {}
    for chunk in _chunks(vouchers):
        remittances.update((r.voucher_no, r) for r in session.execute(
            select(TreasuryRemittance).where(TreasuryRemittance.voucher_no.in_(chunk)).with_for_update()).scalars())
    stored = _by_keys(session, [statement_key(account.id, line.bank_line_id) for line in body.lines])

    transactions, recorded, replayed, flagged = [], 0, 0, 0
    for number, line in enumerate(body.lines, start=1):
        notes: list[str] = []
        counterparty, counterparty_account = line.counterparty, None
        if line.counterparty_account_no:
            counterparty_account = registry.get(line.counterparty_account_no)
            if counterparty_account is not None:
                counterparty = counterparty_account.kind  # the registry knows better than the classification
            elif counterparty in rules.FUND_ACCOUNT_KINDS:
                notes.append(f"对方账号 {line.counterparty_account_no} 不是已登记的社保基金账户")
                counterparty = "other"
        remittance = None
        if line.remittance_voucher_no:
            remittance = remittances.get(line.remittance_voucher_no)
            if remittance is None:
                notes.append(f"国库缴款凭证 {line.remittance_voucher_no} 未登记")
        draft = Draft(
            account=account, direction=line.direction, amount_fen=yuan_to_fen(line.amount), counterparty=counterparty,
            counterparty_account=counterparty_account, purpose=line.purpose, remittance=remittance,
            reference=line.reference, value_date=line.value_date, source="bank_statement",
            key=statement_key(account.id, line.bank_line_id), notes=notes,
        )
        previous = stored.get(draft.key)
        if previous is not None:
            if not draft.matches(previous):
                session.rollback()
                raise Conflict("IDEMPOTENCY_KEY_REUSED", f"第 {number} 行流水号 {line.bank_line_id} 已导入过，内容不同")
            transactions.append(previous)
            replayed += 1
            continue
        evaluation = _evaluate(session, draft)
        row = _write(session, draft, evaluation, audit=False)
        transactions.append(row)
        recorded += 1
        flagged += row.status == "flagged"
    if recorded:
        append_audit(session, action="bank_statement.imported", entity_type=ACCOUNT_ENTITY, entity_id=account.id,
                     detail={"statement_ref": body.statement_ref, "lines": len(body.lines), "recorded": recorded,
                             "replayed": replayed, "flagged": flagged, "balance_fen": account.balance_fen,
                             "flagged_transactions": [t.id for t in transactions if t.status == "flagged"][:1000]})
        session.flush()
    else:
        session.rollback()
    return StatementResult(account, transactions, recorded, replayed, flagged)


# -- reading ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionView:
    row: BankTransaction
    account_kind: str
    period: int | None
    deadline: date | None
    late: bool | None


def views(session: Session, rows: Sequence[BankTransaction]) -> list[TransactionView]:
    """Rows with their account kind and, for receipts, the remittance's period and the 10-working-day deadline."""
    account_ids = sorted({r.account_id for r in rows})
    kinds: dict[str, str] = {}
    for chunk in _chunks(account_ids):
        kinds.update(session.execute(
            select(FundBankAccount.id, FundBankAccount.kind).where(FundBankAccount.id.in_(chunk))).all())
    remittance_ids = sorted({r.remittance_id for r in rows if r.remittance_id})
    remittances: dict[str, TreasuryRemittance] = {}
    for chunk in _chunks(remittance_ids):
        remittances.update((r.id, r) for r in session.execute(
            select(TreasuryRemittance).where(TreasuryRemittance.id.in_(chunk))).scalars())
    result = []
    for row in rows:
        remittance = remittances.get(row.remittance_id) if row.remittance_id else None
        deadline = treasury_deadline(remittance.remitted_on).day if remittance else None
        late = None if deadline is None else row.value_date > deadline
        result.append(TransactionView(row, kinds[row.account_id], remittance.period if remittance else None,
                                      deadline, late))
    return result


def get_transaction(session: Session, transaction_id: str) -> BankTransaction:
    row = session.get(BankTransaction, transaction_id)
    if row is None:
        raise NotFound("TRANSACTION_NOT_FOUND", "收付记录不存在")
    return row


def list_transactions(session: Session, *, account_id: str | None = None, fund: str | None = None,
                      status: str | None = None, source: str | None = None, from_date: date | None = None,
                      to_date: date | None = None, after: str | None = None,
                      limit: int = 100) -> tuple[list[BankTransaction], str | None]:
    query = select(BankTransaction)
    for column, value in ((BankTransaction.account_id, account_id), (BankTransaction.fund, fund),
                          (BankTransaction.status, status), (BankTransaction.source, source)):
        if value:
            query = query.where(column == value)
    if from_date:
        query = query.where(BankTransaction.value_date >= from_date)
    if to_date:
        query = query.where(BankTransaction.value_date <= to_date)
    return oldest_first(session, query, BankTransaction.id, after=after, limit=limit)


@dataclass(frozen=True)
class MonthEnd:
    month: int
    month_end: date
    checked: int
    non_zero: list[tuple[FundBankAccount, int]]


def previous_month() -> int:
    first = clock.china_today().replace(day=1)
    return period_of(first - timedelta(days=1))


def month_end_check(session: Session, month: int) -> MonthEnd:
    """R4 / S13: each income account's balance at the end of ``month`` (the sum of its movements with a value date
    up to that day, flagged ones included: they happened) must be zero (收入户月末无余额, 000 二(四)1)."""
    if not month_has_ended(month, clock.china_today()):
        raise Invalid("MONTH_NOT_OVER", f"{month} 月尚未结束，月末余额尚无从检查")
    year, number = divmod(month, 100)
    last_day = date(year, number, calendar.monthrange(year, number)[1])
    accounts = list(session.execute(
        select(FundBankAccount).where(FundBankAccount.kind == "income", FundBankAccount.opened_on <= last_day)
        .order_by(FundBankAccount.fund)
    ).scalars())
    signed = case((BankTransaction.direction == "in", BankTransaction.amount_fen), else_=-BankTransaction.amount_fen)
    closing: dict[str, int] = {}
    for chunk in _chunks([a.id for a in accounts]):
        closing.update(session.execute(
            select(BankTransaction.account_id, func.sum(signed))
            .where(BankTransaction.account_id.in_(chunk), BankTransaction.value_date <= last_day)
            .group_by(BankTransaction.account_id)
        ).all())
    non_zero = [(a, int(closing[a.id])) for a in accounts if int(closing.get(a.id) or 0) != 0]
    return MonthEnd(month, last_day, len(accounts), non_zero)
