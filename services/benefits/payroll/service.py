"""Monthly payroll and bank payments (DOMAIN.md, money-out flow 3–4).

**Run** (``compute_run``, agency clerk). One payroll per fund and month (``payroll_run`` is unique on both). The
month may not be after the current month (China time: 422 ``PERIOD_IN_FUTURE``). One query reads every ACTIVE
entitlement of the fund covering the month (``start_period ≤ period ≤ end_period``, no end = for life) with its
person and the person's active accounts; one line per entitlement, in chunked Core inserts:

- the amount is the entitlement's monthly amount, never entered by hand (004 第20项);
- the account is one of the person's own active accounts (``beneficiary_account.person_id`` = the person and the
  holder's name = the person's name; a bank account or a social security card, 000 二(三)): the entitlement's
  nominated account if it qualifies, else the most recently registered one (ids are time-ordered). Nothing is ever
  paid in cash or into someone else's account;
- a line that cannot be paid is ``withheld`` with its reason: no own active account (``NO_OWN_ACCOUNT``), only
  accounts in another name (``ACCOUNT_NOT_OWN``), the person unknown (``PERSON_NOT_FOUND``), a month after the
  recorded death (``DECEASED``) or during recorded imprisonment (``IMPRISONED``) — a safety net behind the
  eligibility package, which suspends the entitlement itself (001 第二十七条) — or a non-positive amount;
- the run's ``lines``/``total_fen`` are the count and sum of the payable (not withheld) lines: the figure approved,
  funded and paid (R5); lines held back later (below) stay part of it. Withheld lines are reported beside it. ``large_lines`` counts payable lines above the
  large-amount threshold (001 第十八条, *default* 50 000 yuan).

Running the same fund and month again returns the same run: while it is ``computed`` it is recomputed from the
current entitlements (line ids are derived from the run and the entitlement, so the same inputs give the same rows);
once approved it is frozen and returned unchanged.

**Approve** (agency approver, not the person who computed it: 403 ``SAME_PERSON_CANNOT_APPROVE``): the stored lines
must still add up to the run's total; ``PayrollApproved``. **Funding** (accountant): ``FundingRequested`` asks
finance to allocate the total from the special account to the expenditure account (recorded in collection's
treasury); asking twice returns the first request. The run stays ``approved`` (benefits does not learn the
allocation itself); ``paid`` once every payable line is paid.

**Bank files** (cashier; an approved run whose funding was requested): the first file holds every ``pending`` line,
in line-id order, in the format of bankfile.py; asking again returns it. ``PaymentsIssued`` in parts of ≤ 1 000
lines. Two things can have happened since approval and are applied when the file is made:

- a line whose entitlement has been suspended or ended, or whose person is now recorded dead or imprisoned for the
  month, is *held back* (``withheld`` with a ``HELD_…`` reason, shown as ``held_back``: never sent to the bank, its
  amount stays in the expenditure account) — eligibility suspends at once (001 第二十七条) and only finds overpayments among lines already sent;
- a recovery offset (recovery/service.py, ``payroll_offset``, only on ``pending`` lines) is deducted: the file pays
  the net amount; a line offset in full is ``paid`` without a bank line (a real recovery either way: the month's
  benefit was due and that part of it settled the debt, 001 第二十九条(五)). An offset against a line *held back*
  deducted nothing from any payment, so it recovered nothing: recovery's ``reverse_payroll_offsets`` reverses it in
  the same transaction (kept as ``reversed``, owed again on its notice, which reopens; audit entry and a reversal
  ``RecoveryRecorded``). Once every payable line has left ``pending`` the offsets are read again: one recorded
  meanwhile (PostgreSQL, against a line whose row lock the file's UPDATE waited for) makes it 409
  ``CONCURRENT_CHANGE`` with nothing kept, rather than an offset counted as recovered but not deducted.

So for R5: approved total = paid + returned + held back + offset. ``PayrollLinesRetained`` (in parts of ≤ 1 000
lines, in the same transaction as the file, or as the commit that finds nothing left to pay) tells oversight which
lines were held back (approved amount, ``HELD_…`` code) and which were offset (by how much, in full or not); a
partly offset line's bank-confirmed figure is the net the file paid. A re-issue sends what failed, already net: no
new offset, and the first one stands (the benefit was due; the bank returned only the net, which is paid again).

**Results** (bank system): the file's checksum must be echoed (422 ``BANK_FILE_CHECKSUM_MISMATCH``); lines not in the
file are refused as a whole (422 ``UNKNOWN_BANK_FILE_LINES``, naming them); a line already settled is a
no-op with the same result and 409 ``BANK_RESULT_CONFLICT`` with another. Paid → the payroll line is ``paid``;
failed → ``failed`` with the bank's reason, its amount returned to the expenditure account (the failed bank-file
lines are the record; ``returned_total`` per import and per file; ``PaymentsSettled`` carries each line).
**Re-issue** (cashier): the ``failed`` lines whose person now has another own active account (not one that failed)
go into a new file (sequence 2, 3, …) paid into that account; the others are listed and wait.

**Never paid twice.** Every status change of a payroll line is a guarded ``UPDATE … WHERE status = <expected>``
whose row count must equal the lines meant (else 409 ``CONCURRENT_CHANGE`` and nothing is kept): a line enters a
file only from ``pending`` (first file) or ``failed`` (re-issue) and is settled only from ``in_file``, so a paid line
can never enter a later file. All writes to a run happen under its row lock (``SELECT … FOR UPDATE``; on SQLite the
transaction's ``BEGIN IMMEDIATE``).
"""

import hashlib
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.benefits.models import (
    BankFile,
    BankFileLine,
    BeneficiaryAccount,
    BeneficiaryPerson,
    Entitlement,
    PayrollLine,
    PayrollRun,
    Recovery,
)
from services.benefits.payroll import bankfile
from services.benefits.payroll.schemas import ResultsIn
from services.benefits.recovery.service import RECORDED, offsets_for_lines, reverse_payroll_offsets
from services.contracts.benefits import (
    MAX_LINES,
    FundingRequested,
    PaymentsIssued,
    PaymentsSettled,
    PayrollApproved,
    PayrollLinesRetained,
)
from services.kernel import archives, clock, context, metrics
from services.kernel.audit import append_audit
from services.kernel.db import keep_writes
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import checked_total_fen, fen_to_yuan
from services.kernel.outbox import record_event
from services.kernel.periods import period_of

SOURCE = "benefits"
RUN_ENTITY = "payroll_run"
FILE_ENTITY = "bank_file"
INSERT_CHUNK = 5000  # rows per Core insert
ID_CHUNK = 900  # ids per IN (…)
DEFAULT_LARGE_AMOUNT_FEN = 5_000_000  # *default* 50 000 yuan (001 第十八条)

WITHHELD = "withheld"
UNFINISHED_STATUSES = ("pending", "in_file", "failed")

REASONS = {
    "PERSON_NOT_FOUND": "待遇领取人不在人员登记中",
    "NO_OWN_ACCOUNT": "本人名下没有有效的银行账户或社会保障卡（不支付现金，不支付到他人账户）",
    "ACCOUNT_NOT_OWN": "有效账户的户名与本人姓名不符，不得支付到他人账户",
    "DECEASED": "人员已死亡，死亡次月起停发",
    "IMPRISONED": "人员服刑期间停发",
    "NON_POSITIVE_AMOUNT": "月待遇金额不是正数",
    "NO_CORRECTED_ACCOUNT": "本人名下尚无更正后的有效账户（原账户支付失败）",
    # held back when the bank file is made (after approval): the prefix keeps them apart from lines withheld at
    # computation, because they are part of the approved total
    "HELD_SUSPENDED": "审批后待遇已暂停，本月停发",
    "HELD_ENDED": "审批后待遇已终止，本月不再发放",
    "HELD_NO_ENTITLEMENT": "待遇记录不存在",
    "HELD_DECEASED": "审批后获知人员已死亡，死亡次月起停发",
    "HELD_IMPRISONED": "审批后获知人员服刑，服刑期间停发",
}
HELD_PREFIX = "HELD_"
HELD_BACK = "held_back"  # reported as its own status: withheld after approval

L = PayrollLine.__table__.c
F = BankFileLine.__table__.c


def china_period() -> int:
    return period_of(clock.china_today())



def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def reason_text(code: str) -> str:
    return f"{code} {REASONS[code]}"


def line_id(run_id: str, entitlement_id: str) -> str:
    """The same run and entitlement always give the same line id (a recomputation is deterministic): the name-based
    UUID (version 5) of the entitlement id in the run id's namespace, ``uuid.uuid5(UUID(run_id), entitlement_id)``."""
    return _line_id(uuid.UUID(run_id).bytes, entitlement_id)


def _line_id(namespace: bytes, entitlement_id: str) -> str:
    # uuid.uuid5 without building two UUID objects per line (a third of the run's time at 300 000 lines).
    digest = bytearray(hashlib.sha1(namespace + entitlement_id.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- the account rule ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    bank_account_id: str
    account_no: str
    holder_name: str


def _same_name(a: str, b: str) -> bool:
    return "".join(a.split()) == "".join(b.split())


def choose_account(person_name: str, nominated: str | None, candidates: Sequence[Candidate], *,
                   excluded_ids: frozenset[str] = frozenset(),
                   excluded_numbers: frozenset[str] = frozenset()) -> tuple[Candidate | None, str | None]:
    """The person's own active account to pay into, or (None, reason code). ``candidates`` are the person's active
    accounts; a re-issue excludes the accounts that already failed."""
    usable = [c for c in candidates if c.bank_account_id not in excluded_ids and c.account_no not in excluded_numbers]
    own = [c for c in usable if _same_name(c.holder_name, person_name)]
    if not own:
        return None, ("ACCOUNT_NOT_OWN" if usable else "NO_OWN_ACCOUNT")
    for c in own:
        if c.bank_account_id == nominated:
            return c, None
    return max(own, key=lambda c: c.bank_account_id), None


def _excluded_by_life(period: int, death_date: date | None, imprisoned_from: date | None,
                      imprisoned_until: date | None) -> str | None:
    if death_date is not None and period > period_of(death_date):
        return "DECEASED"
    if imprisoned_from is not None and period_of(imprisoned_from) <= period and (
            imprisoned_until is None or period <= period_of(imprisoned_until)):
        return "IMPRISONED"
    return None


# -- reading ---------------------------------------------------------------------------------------------------------


def get_run(session: Session, run_id: str, *, lock: bool = False) -> PayrollRun:
    query = select(PayrollRun).where(PayrollRun.id == run_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    run = session.execute(query).scalar_one_or_none()
    if run is None:
        raise NotFound("PAYROLL_RUN_NOT_FOUND", "发放批次不存在")
    return run


def get_file(session: Session, file_id: str, *, lock: bool = False) -> BankFile:
    query = select(BankFile).where(BankFile.id == file_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = session.execute(query).scalar_one_or_none()
    if found is None:
        raise NotFound("BANK_FILE_NOT_FOUND", "银行代发文件不存在")
    return found


def _run_by_key(session: Session, fund: str, period: int, *, lock: bool) -> PayrollRun | None:
    query = select(PayrollRun).where(PayrollRun.fund == fund, PayrollRun.period == period)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.execute(query).scalar_one_or_none()


def list_runs(session: Session, *, fund: str | None, period: int | None, limit: int,
              funding: str | None = None) -> list[PayrollRun]:
    """``funding``: ``requested`` (funds asked of finance) or ``awaiting`` (approved, not asked yet)."""
    query = select(PayrollRun).order_by(PayrollRun.period.desc(), PayrollRun.fund).limit(limit)
    if funding == "requested":
        query = query.where(PayrollRun.funding_requested_at.is_not(None))
    elif funding == "awaiting":
        query = query.where(PayrollRun.approved_at.is_not(None), PayrollRun.funding_requested_at.is_(None))
    if fund:
        query = query.where(PayrollRun.fund == fund)
    if period:
        query = query.where(PayrollRun.period == period)
    return list(session.execute(query).scalars())


def _held_back_line() -> Any:
    return and_(L.status == WITHHELD, L.failure_reason.startswith(HELD_PREFIX, autoescape=True))


def status_totals(session: Session, run_id: str) -> dict[str, tuple[int, int]]:
    """Lines and amounts per status; lines withheld after approval count as ``held_back``."""
    totals = {status: (int(n), int(total)) for status, n, total in session.execute(
        select(L.status, func.count(), func.coalesce(func.sum(L.amount_fen), 0))
        .where(L.run_id == run_id).group_by(L.status)
    )}
    if WITHHELD in totals:
        n, total = session.execute(
            select(func.count(), func.coalesce(func.sum(L.amount_fen), 0))
            .where(L.run_id == run_id, _held_back_line())
        ).one()
        if n:
            totals[HELD_BACK] = (int(n), int(total))
            rest = (totals[WITHHELD][0] - int(n), totals[WITHHELD][1] - int(total))
            if rest[0]:
                totals[WITHHELD] = rest
            else:
                del totals[WITHHELD]
    return totals


def bank_file_count(session: Session, run_id: str) -> int:
    return session.execute(select(func.count()).select_from(BankFile).where(BankFile.run_id == run_id)).scalar_one()


def _payable_sum(session: Session, run_id: str) -> tuple[int, int]:
    n, total = session.execute(
        select(func.count(), func.coalesce(func.sum(L.amount_fen), 0))
        .where(L.run_id == run_id, or_(L.status != WITHHELD, _held_back_line()))
    ).one()
    return int(n), int(total)


def list_lines(session: Session, run_id: str, *, status: str | None, after: str | None,
               limit: int) -> tuple[list[Any], str | None]:
    get_run(session, run_id)
    A = BeneficiaryAccount.__table__.c
    query = (select(L.id, L.entitlement_id, L.person_id, L.period, L.amount_fen, L.bank_account_id, A.account_no,
                    L.status, L.failure_reason)
             .select_from(PayrollLine.__table__.outerjoin(BeneficiaryAccount.__table__,
                                                          A.bank_account_id == L.bank_account_id))
             .where(L.run_id == run_id).order_by(L.id).limit(limit + 1))
    if status:
        query = query.where(L.status == status)
    if after:
        query = query.where(L.id > after)
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)


@dataclass
class FileSummary:
    file: BankFile
    paid: tuple[int, int] = (0, 0)
    failed: tuple[int, int] = (0, 0)
    awaiting: int = 0
    offset_fen: int = 0


def file_summary(session: Session, file: BankFile) -> FileSummary:
    summary = FileSummary(file=file)
    for result, n, total in session.execute(
        select(F.result, func.count(), func.coalesce(func.sum(F.amount_fen), 0))
        .where(F.file_id == file.id).group_by(F.result)
    ):
        if result == "paid":
            summary.paid = (int(n), int(total))
        elif result == "failed":
            summary.failed = (int(n), int(total))
        else:
            summary.awaiting += int(n)
    summary.offset_fen = int(session.execute(
        select(func.coalesce(func.sum(L.amount_fen - F.amount_fen), 0))
        .select_from(BankFileLine.__table__.join(PayrollLine.__table__, L.id == F.payroll_line_id))
        .where(F.file_id == file.id)
    ).scalar_one())
    return summary


def files_of_run(session: Session, run_id: str) -> list[BankFile]:
    get_run(session, run_id)
    return list(session.execute(select(BankFile).where(BankFile.run_id == run_id)
                                .order_by(BankFile.sequence)).scalars())


# -- computing a run -------------------------------------------------------------------------------------------------


@dataclass
class Computed:
    run: PayrollRun
    created: bool
    recomputed: bool
    frozen: bool


def large_amount_threshold_fen() -> int:
    """*default* 50 000 yuan (001 第十八条); to come from the region's approved benefit parameters once they carry
    it."""
    return DEFAULT_LARGE_AMOUNT_FEN


def compute_lines(session: Session, run_id: str, fund: str, period: int) -> list[dict[str, Any]]:
    """One query for the entitlements, their persons and the persons' active accounts; one row dict per line."""
    E = Entitlement.__table__.c
    P = BeneficiaryPerson.__table__.c
    A = BeneficiaryAccount.__table__.c
    source = (Entitlement.__table__
              .outerjoin(BeneficiaryPerson.__table__, P.person_id == E.person_id)
              .outerjoin(BeneficiaryAccount.__table__, and_(A.person_id == E.person_id, A.status == "active")))
    rows = session.execute(
        select(E.id, E.person_id, E.monthly_amount_fen, E.bank_account_id, P.person_id.label("known"), P.name,
               P.death_date, P.imprisoned_from, P.imprisoned_until, A.bank_account_id.label("account_id"),
               A.account_no, A.holder_name)
        .select_from(source)
        .where(E.fund == fund, E.status == "active", E.start_period <= period,
               or_(E.end_period.is_(None), E.end_period >= period))
        .order_by(E.id)
    ).all()
    namespace = uuid.UUID(run_id).bytes
    lines: list[dict[str, Any]] = []
    for entitlement_id, group in itertools.groupby(rows, key=lambda r: r[0]):
        group = list(group)
        first = group[0]
        account, reason = None, None
        if first.monthly_amount_fen <= 0:
            reason = "NON_POSITIVE_AMOUNT"
        elif first.known is None:
            reason = "PERSON_NOT_FOUND"
        else:
            reason = _excluded_by_life(period, first.death_date, first.imprisoned_from, first.imprisoned_until)
            if reason is None:
                candidates = [Candidate(r.account_id, r.account_no, r.holder_name) for r in group
                              if r.account_id is not None]
                account, reason = choose_account(first.name, first.bank_account_id, candidates)
        lines.append({
            "id": _line_id(namespace, entitlement_id), "run_id": run_id, "entitlement_id": entitlement_id,
            "person_id": first.person_id, "period": period, "amount_fen": first.monthly_amount_fen,
            "bank_account_id": account.bank_account_id if account else None,
            "status": "pending" if reason is None else WITHHELD,
            "failure_reason": reason_text(reason) if reason else None,
        })
    return lines


def compute_run(session: Session, fund: str, period: int) -> Computed:
    current = china_period()
    if period > current:
        raise Invalid("PERIOD_IN_FUTURE", f"发放月份 {period} 晚于本月（{current}），不能预先计算待遇发放")
    for attempt in (1, 2):
        run = _run_by_key(session, fund, period, lock=True)
        if run is not None and run.status != "computed":
            return Computed(run=run, created=False, recomputed=False, frozen=True)
        try:
            return _compute_into(session, run, fund, period)
        except IntegrityError:
            # PostgreSQL: a concurrent first run of the same fund and month won the unique index; use it.
            session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _compute_into(session: Session, run: PayrollRun | None, fund: str, period: int) -> Computed:
    now, actor = clock.utc_now(), context.actor_id()
    created = run is None
    if created:
        run = PayrollRun(id=new_event_id(), fund=fund, period=period, status="computed", lines=0, total_fen=0,
                         large_lines=0, computed_at=now, computed_by=actor)
        session.add(run)
        session.flush()
    else:
        session.execute(delete(PayrollLine.__table__).where(L.run_id == run.id))
    lines = compute_lines(session, run.id, fund, period)
    for chunk in _chunks(lines, INSERT_CHUNK):
        session.execute(insert(PayrollLine.__table__), chunk)
    payable = [ln for ln in lines if ln["status"] != WITHHELD]
    threshold = large_amount_threshold_fen()
    previous = (run.lines, run.total_fen)
    run.lines = len(payable)
    run.total_fen = checked_total_fen(ln["amount_fen"] for ln in payable)  # a run has no line limit
    run.large_lines = sum(1 for ln in payable if ln["amount_fen"] > threshold)
    run.computed_at, run.computed_by = now, actor
    session.add(run)
    withheld = len(lines) - len(payable)
    append_audit(session, action="payroll.compute" if created else "payroll.recompute", entity_type=RUN_ENTITY,
                 entity_id=run.id,
                 detail={"fund": fund, "period": period, "lines": run.lines, "total_fen": run.total_fen,
                         "withheld_lines": withheld, "large_lines": run.large_lines,
                         **({} if created else {"previous_lines": previous[0], "previous_total_fen": previous[1]})})
    session.flush()
    return Computed(run=run, created=created, recomputed=not created, frozen=False)


# -- approval and funding --------------------------------------------------------------------------------------------


def approve(session: Session, run_id: str) -> PayrollRun:
    run = get_run(session, run_id, lock=True)
    if run.status != "computed":
        raise Conflict("PAYROLL_ALREADY_APPROVED", f"发放批次已审批（{run.approved_by}），不能再次审批")
    actor = context.actor_id()
    if actor == run.computed_by:
        raise Forbidden("SAME_PERSON_CANNOT_APPROVE", "计算发放批次的经办人不能审批本批次，须由另一人审批")
    lines, total = _payable_sum(session, run.id)
    if (lines, total) != (run.lines, run.total_fen):
        raise Conflict("PAYROLL_TOTAL_MISMATCH",
                       f"发放明细合计（{lines} 条，{total} 分）与批次合计（{run.lines} 条，{run.total_fen} 分）不符，须重新计算")
    run.status, run.approved_at, run.approved_by = "approved", clock.utc_now(), actor
    session.add(run)
    record_event(session, PayrollApproved(run_id=run.id, fund=run.fund, period=run.period, lines=run.lines,
                                          total_fen=run.total_fen, approved_by=actor),
                 source=SOURCE, subject=run.id)
    entry = append_audit(session, action="payroll.approve", entity_type=RUN_ENTITY, entity_id=run.id,
                         detail={"fund": run.fund, "period": run.period, "lines": run.lines,
                                 "total_fen": run.total_fen, "computed_by": run.computed_by})
    session.flush()
    _file_lines(session, run, entry)
    return run


def _file_lines(session: Session, run: PayrollRun, entry: Any) -> None:
    """Each payable line of the approved run into its beneficiary's dossier (待遇支付明细), in bulk: one query, the
    items batched into events by the archive's sink."""
    rows = session.execute(select(L.id, L.person_id, L.amount_fen, L.entitlement_id).where(
        L.run_id == run.id, or_(L.status != WITHHELD, _held_back_line())))
    title = f"{run.period // 100} 年 {run.period % 100} 月 {run.fund} 待遇发放"
    archives.file_items(session, [archives.act(
        archives.PERSON, person_id, "payroll_line", line_id, title,
        f"核定发放 {fen_to_yuan(amount_fen)} 元（批次 {run.id} 经 {run.approved_by} 审批）", audit=entry,
        references={"run_id": run.id, "entitlement_id": entitlement_id, "amount_fen": amount_fen})
        for line_id, person_id, amount_fen, entitlement_id in rows])


def _require_approved(run: PayrollRun) -> None:
    if run.status == "computed":
        raise Conflict("PAYROLL_NOT_APPROVED", "发放批次尚未审批")


def request_funding(session: Session, run_id: str) -> tuple[PayrollRun, bool]:
    """(run, replayed): the first request publishes FundingRequested; a repeated one returns the run unchanged."""
    run = get_run(session, run_id, lock=True)
    _require_approved(run)
    if run.funding_requested_at is not None:
        return run, True
    run.funding_requested_at = clock.utc_now()
    session.add(run)
    record_event(session, FundingRequested(run_id=run.id, fund=run.fund, period=run.period, amount_fen=run.total_fen),
                 source=SOURCE, subject=run.id)
    append_audit(session, action="payroll.request_funding", entity_type=RUN_ENTITY, entity_id=run.id,
                 detail={"fund": run.fund, "period": run.period, "amount_fen": run.total_fen})
    session.flush()
    return run, False


# -- bank files ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payment:
    payroll_line_id: str
    person_id: str
    bank_account_id: str
    account_no: str
    holder_name: str
    amount_fen: int


def _move_lines(session: Session, ids: Sequence[str], from_status: str, to_status: str,
                **values: Any) -> None:
    """The guard against paying twice: every line must still be in ``from_status``."""
    moved = 0
    for chunk in _chunks(ids, ID_CHUNK):
        moved += session.execute(
            update(PayrollLine.__table__).where(L.id.in_(chunk), L.status == from_status)
            .values(status=to_status, **values)
        ).rowcount
    if moved != len(ids):
        raise Conflict("CONCURRENT_CHANGE",
                       f"{len(ids) - moved} 条发放明细的状态已不是 {from_status}（可能已被其他操作处理），未作任何变更")


def _write_file(session: Session, run: PayrollRun, sequence: int, payments: Sequence[Payment]) -> BankFile:
    file_id = new_event_id()
    rendered = bankfile.render_payment_file(
        file_id=file_id, run_id=run.id, fund=run.fund, period=run.period, sequence=sequence,
        lines=[bankfile.PaymentLine(line_no=n, account_no=p.account_no, holder_name=p.holder_name,
                                    amount_fen=p.amount_fen, payroll_line_id=p.payroll_line_id)
               for n, p in enumerate(payments, start=1)],
    )
    now, actor = clock.utc_now(), context.actor_id()
    file = BankFile(id=file_id, run_id=run.id, sequence=sequence, lines=rendered.lines, total_fen=rendered.total_fen,
                    checksum=rendered.checksum, content=rendered.content, status="issued", created_at=now,
                    created_by=actor)
    session.add(file)
    session.flush()
    rows = [{"id": new_event_id(), "file_id": file_id, "line_no": n, "payroll_line_id": p.payroll_line_id,
             "account_no": p.account_no, "holder_name": p.holder_name, "amount_fen": p.amount_fen}
            for n, p in enumerate(payments, start=1)]
    for chunk in _chunks(rows, INSERT_CHUNK):
        session.execute(insert(BankFileLine.__table__), chunk)
    parts = max(1, -(-len(payments) // MAX_LINES))
    for part, chunk in enumerate(_chunks(payments, MAX_LINES), start=1):
        record_event(session, PaymentsIssued(
            file_id=file_id, run_id=run.id, fund=run.fund, period=run.period, sequence=sequence, part=part,
            parts=parts, file_total_fen=rendered.total_fen,
            lines=[{"payroll_line_id": p.payroll_line_id, "person_id": p.person_id,
                    "bank_account_id": p.bank_account_id, "account_no": p.account_no, "holder_name": p.holder_name,
                    "amount_fen": p.amount_fen, "period": run.period} for p in chunk],
        ), source=SOURCE, subject=file_id)
    append_audit(session, action="payroll.bank_file", entity_type=FILE_ENTITY, entity_id=file_id,
                 detail={"run_id": run.id, "sequence": sequence, "lines": rendered.lines,
                         "total_fen": rendered.total_fen, "checksum": rendered.checksum})
    return file


def _held_back(period: int, row: Any) -> str | None:
    """Why a line approved earlier may not be paid now: its entitlement was suspended or ended since (a death or an
    imprisonment reported after approval, an overdue survival certification…), or the person's life status now
    excludes the month (001 第二十七条: suspended at once)."""
    if row.entitlement_status is None:
        return "HELD_NO_ENTITLEMENT"
    if row.entitlement_status == "suspended":
        return "HELD_SUSPENDED"
    if row.entitlement_status != "active" and (row.end_period is None or row.end_period < period):
        return "HELD_ENDED"
    life = _excluded_by_life(period, row.death_date, row.imprisoned_from, row.imprisoned_until)
    return HELD_PREFIX + life if life else None


def _offsets(session: Session, run_id: str, line_ids: Sequence[str]) -> dict[str, int]:
    """What recovery offset against these pending lines (recovery/service.py ``payroll_offset``): deducted from the
    amount paid. Offsets are taken only from pending lines, so the deduction is fixed once a line is in a file. One
    query finds the run's lines named by an offset (few); recovery's ``offsets_for_lines`` answers for those."""
    R = Recovery.__table__.c
    named = set(session.execute(
        select(L.id).distinct()
        .select_from(Recovery.__table__.join(PayrollLine.__table__, L.id == R.reference))
        .where(R.method == "payroll_offset", R.status == RECORDED, L.run_id == run_id)
    ).scalars())
    wanted = [i for i in line_ids if i in named]
    found: dict[str, int] = {}
    for chunk in _chunks(wanted, ID_CHUNK):
        found.update(offsets_for_lines(session, list(chunk)))
    return found


def _settle_run_if_done(session: Session, run: PayrollRun) -> None:
    unfinished = session.execute(select(func.count()).select_from(PayrollLine)
                                 .where(L.run_id == run.id, L.status.in_(UNFINISHED_STATUSES))).scalar_one()
    if unfinished == 0 and run.status == "approved":
        run.status = "paid"
        session.add(run)


def _record_retained(session: Session, run: PayrollRun, file_id: str | None, held_rows: Sequence[tuple[Any, str]],
                     offset_rows: Sequence[tuple[Any, int]]) -> None:
    """``PayrollLinesRetained``: the part of the approved total the first file does not pay (held back, offset), so
    that R5 balances (approved = paid + returned + held back + offset). Parts of ≤ 1 000 lines, held back first."""
    if not held_rows and not offset_rows:
        return
    items: list[tuple[str, dict[str, Any]]] = [
        ("held_back", {"payroll_line_id": r.id, "person_id": r.person_id, "amount_fen": r.amount_fen,
                       "reason": code}) for r, code in held_rows]
    items += [("offsets", {"payroll_line_id": r.id, "person_id": r.person_id, "amount_fen": r.amount_fen,
                           "offset_fen": fen, "fully_offset": fen >= r.amount_fen}) for r, fen in offset_rows]
    totals = {"held_back_lines": len(held_rows), "held_back_fen": sum(r.amount_fen for r, _ in held_rows),
              "offset_lines": len(offset_rows), "offset_fen": sum(fen for _, fen in offset_rows)}
    parts = -(-len(items) // MAX_LINES)
    for part, chunk in enumerate(_chunks(items, MAX_LINES), start=1):
        record_event(session, PayrollLinesRetained(
            run_id=run.id, fund=run.fund, period=run.period, file_id=file_id, part=part, parts=parts, **totals,
            held_back=[line for kind, line in chunk if kind == "held_back"],
            offsets=[line for kind, line in chunk if kind == "offsets"],
        ), source=SOURCE, subject=run.id)


@dataclass
class Issued:
    file: BankFile | None
    replayed: bool
    held_back: list[dict[str, str]] = field(default_factory=list)
    offset_fen: int = 0
    fully_offset: int = 0


def issue_bank_file(session: Session, run_id: str) -> Issued:
    """The run's first file, with every pending line still payable, net of recovery offsets."""
    run = get_run(session, run_id, lock=True)
    _require_approved(run)
    if run.funding_requested_at is None:
        raise Conflict("FUNDING_NOT_REQUESTED", "尚未向财政申请拨付本批次资金，不能生成银行代发文件")
    first = session.execute(select(BankFile).where(BankFile.run_id == run.id, BankFile.sequence == 1)) \
        .scalar_one_or_none()
    if first is not None:
        return Issued(file=first, replayed=True)
    A = BeneficiaryAccount.__table__.c
    E = Entitlement.__table__.c
    P = BeneficiaryPerson.__table__.c
    rows = session.execute(
        select(L.id, L.person_id, L.amount_fen, L.bank_account_id, A.account_no, A.holder_name,
               A.person_id.label("holder_id"), E.status.label("entitlement_status"), E.end_period, P.death_date,
               P.imprisoned_from, P.imprisoned_until)
        .select_from(PayrollLine.__table__
                     .outerjoin(BeneficiaryAccount.__table__, A.bank_account_id == L.bank_account_id)
                     .outerjoin(Entitlement.__table__, E.id == L.entitlement_id)
                     .outerjoin(BeneficiaryPerson.__table__, P.person_id == L.person_id))
        .where(L.run_id == run.id, L.status == "pending").order_by(L.id)
    ).all()
    if not rows:
        raise Conflict("NOTHING_TO_PAY", "本批次没有待发放的明细")
    foreign = [r.id for r in rows if r.account_no is None or r.holder_id != r.person_id]
    if foreign:
        raise Conflict("NOT_OWN_ACCOUNT", f"{len(foreign)} 条明细的收款账户不是领取人本人的账户，不能发放",
                       details={"payroll_line_ids": foreign[:100]})
    held: list[dict[str, str]] = []
    held_rows: list[tuple[Any, str]] = []
    payable = []
    for r in rows:
        reason = _held_back(run.period, r)
        if reason is None:
            payable.append(r)
        else:
            held.append({"payroll_line_id": r.id, "person_id": r.person_id, "reason": reason_text(reason)})
            held_rows.append((r, reason))
    held_reasons = {h["payroll_line_id"]: h["reason"] for h in held}
    # An offset against a line held back deducted nothing from any payment: reversed, owed again on its notice.
    # Before the lines are touched, so that notices are locked before lines, as recovery records an offset.
    reversed_offsets = reverse_payroll_offsets(session, held_reasons)
    offsets = {k: v for k, v in _offsets(session, run.id, [r.id for r in payable]).items() if v > 0}
    payments, fully_offset = [], []
    for r in payable:
        net = r.amount_fen - offsets.get(r.id, 0)
        if net > 0:
            payments.append(Payment(r.id, r.person_id, r.bank_account_id, r.account_no, r.holder_name, net))
        else:
            fully_offset.append(r.id)
    if held:
        _move_lines(session, [h["payroll_line_id"] for h in held], "pending", WITHHELD)
        session.execute(
            update(PayrollLine.__table__).where(L.id == bindparam("line_id"))
            .values(failure_reason=bindparam("reason")),
            [{"line_id": h["payroll_line_id"], "reason": h["reason"]} for h in held],
        )
        # PostgreSQL: an offset committed against a held line after the reading above (the UPDATE waited for the
        # line's row lock) is seen now, and reversed too; from here on the line is no longer pending and refuses one.
        reversed_offsets += reverse_payroll_offsets(session, held_reasons)
    _move_lines(session, fully_offset, "pending", "paid")
    if payments:
        # Held-back and fully offset lines have left ``pending`` above, so what is still pending is exactly the
        # file: one guarded UPDATE for the run instead of one per chunk of ids, with the same count check.
        moved = session.execute(update(PayrollLine.__table__).where(L.run_id == run.id, L.status == "pending")
                                .values(status="in_file")).rowcount
        if moved != len(payments):
            raise Conflict("CONCURRENT_CHANGE",
                           f"待发放明细数（{moved}）与制盘明细数（{len(payments)}）不符，未作任何变更")
    # Every payable line has now left ``pending`` (its row lock waited for an offset being recorded against it, which
    # is seen now): the deductions must be the ones computed, or an offset would count as recovered while the file
    # pays the line in full.
    if {k: v for k, v in _offsets(session, run.id, [r.id for r in payable]).items() if v > 0} != offsets:
        raise Conflict("CONCURRENT_CHANGE", "制盘期间有追回款抵扣登记到本批次明细，未作任何变更，请重新制盘")
    offset_fen = sum(offsets.values())
    if held or fully_offset:
        append_audit(session, action="payroll.hold_back", entity_type=RUN_ENTITY, entity_id=run.id,
                     detail={"held_back_lines": len(held),
                             "held_back_fen": sum(r.amount_fen for r, _ in held_rows),
                             "fully_offset_lines": len(fully_offset), "offset_fen": offset_fen,
                             "reversed_offsets": [{"recovery_id": x.id, "notice_id": x.notice_id,
                                                   "payroll_line_id": x.reference, "amount_fen": x.amount_fen}
                                                  for x in reversed_offsets[:1000]],
                             "reversed_offset_fen": sum(x.amount_fen for x in reversed_offsets)})
    offset_rows = [(r, offsets[r.id]) for r in payable if r.id in offsets]
    if not payments:
        _settle_run_if_done(session, run)
        _record_retained(session, run, None, held_rows, offset_rows)  # kept: the refusal below keeps its writes
        raise keep_writes(Conflict("NOTHING_TO_PAY", f"本批次没有可发放的明细（{len(held)} 条已停发，{len(fully_offset)} 条已全额抵扣追回款）",
                                   details={"held_back": held[:100]}))  # the hold-backs and offsets stand
    file = _write_file(session, run, 1, payments)
    _record_retained(session, run, file.id, held_rows, offset_rows)
    session.flush()
    return Issued(file=file, replayed=False, held_back=held, offset_fen=offset_fen, fully_offset=len(fully_offset))


@dataclass
class ReissueOutcome:
    file: BankFile
    not_reissued: list[dict[str, str]] = field(default_factory=list)


def reissue(session: Session, run_id: str) -> ReissueOutcome:
    """A new file with the failed lines whose person now has another own active account (the amount is what failed,
    i.e. net of any recovery offset); lines whose entitlement or person may no longer be paid wait as well."""
    run = get_run(session, run_id, lock=True)
    _require_approved(run)
    E = Entitlement.__table__.c
    P = BeneficiaryPerson.__table__.c
    A = BeneficiaryAccount.__table__.c
    failed = session.execute(
        select(L.id, L.person_id, L.bank_account_id, E.bank_account_id.label("nominated"),
               E.status.label("entitlement_status"), E.end_period, P.person_id.label("known"), P.name, P.death_date,
               P.imprisoned_from, P.imprisoned_until)
        .select_from(PayrollLine.__table__
                     .outerjoin(Entitlement.__table__, E.id == L.entitlement_id)
                     .outerjoin(BeneficiaryPerson.__table__, P.person_id == L.person_id))
        .where(L.run_id == run.id, L.status == "failed").order_by(L.id)
    ).all()
    if not failed:
        raise Conflict("NOTHING_TO_REISSUE", "本批次没有支付失败待重发的明细")
    accounts: dict[str, list[Candidate]] = {}
    for chunk in _chunks(sorted({r.person_id for r in failed}), ID_CHUNK):
        for r in session.execute(select(A.person_id, A.bank_account_id, A.account_no, A.holder_name)
                                 .where(A.person_id.in_(chunk), A.status == "active")):
            accounts.setdefault(r.person_id, []).append(Candidate(r.bank_account_id, r.account_no, r.holder_name))
    failed_numbers: dict[str, set[str]] = {}
    failed_amount: dict[str, int] = {}
    for chunk in _chunks([r.id for r in failed], ID_CHUNK):
        for payroll_line_id, account_no, amount_fen in session.execute(
            select(F.payroll_line_id, F.account_no, F.amount_fen)
            .where(F.payroll_line_id.in_(chunk), F.result == "failed")
        ):
            failed_numbers.setdefault(payroll_line_id, set()).add(account_no)
            failed_amount[payroll_line_id] = amount_fen
    payments: list[Payment] = []
    waiting: list[dict[str, str]] = []
    for r in failed:
        account = None
        reason = "PERSON_NOT_FOUND" if r.known is None else _held_back(run.period, r)
        if reason is None:
            account, reason = choose_account(
                r.name, r.nominated, accounts.get(r.person_id, []),
                excluded_ids=frozenset({r.bank_account_id} - {None}),
                excluded_numbers=frozenset(failed_numbers.get(r.id, ())))
            if account is None and reason == "NO_OWN_ACCOUNT":
                reason = "NO_CORRECTED_ACCOUNT"
        if account is None:
            waiting.append({"payroll_line_id": r.id, "person_id": r.person_id, "reason": reason_text(reason)})
        else:
            payments.append(Payment(r.id, r.person_id, account.bank_account_id, account.account_no,
                                    account.holder_name, failed_amount[r.id]))
    if not payments:
        raise Conflict("NO_CORRECTED_ACCOUNT", f"{len(waiting)} 条支付失败的明细均无更正后的本人有效账户（或已停发），暂不能重发",
                       details={"not_reissued": waiting[:100]})
    _move_lines(session, [p.payroll_line_id for p in payments], "failed", "in_file", failure_reason=None)
    session.execute(
        update(PayrollLine.__table__).where(L.id == bindparam("line_id")).values(bank_account_id=bindparam("account")),
        [{"line_id": p.payroll_line_id, "account": p.bank_account_id} for p in payments],
    )
    sequence = session.execute(select(func.max(BankFile.sequence)).where(BankFile.run_id == run.id)).scalar_one()
    file = _write_file(session, run, (sequence or 0) + 1, payments)
    session.flush()
    return ReissueOutcome(file=file, not_reissued=waiting)


# -- bank results ----------------------------------------------------------------------------------------------------


@dataclass
class Applied:
    file: BankFile
    run: PayrollRun
    applied: int
    unchanged: int
    paid: tuple[int, int]
    failed: tuple[int, int]
    # per_line only: the lines set aside, each {"line_no", "payroll_line_id", "code", "message"}
    rejected: list[dict[str, Any]] = field(default_factory=list)


def check_result_file(file: BankFile, declared_file_id: str | None, checksum: str) -> None:
    """The result file is this payment file's: the file id it declares and the checksum it echoes."""
    if declared_file_id is not None and declared_file_id != file.id:
        raise Invalid("BANK_FILE_MISMATCH", f"回盘文件声明的文件编号 {declared_file_id} 与本文件不符")
    if checksum.lower() != file.checksum:
        raise Invalid("BANK_FILE_CHECKSUM_MISMATCH", "回盘文件的校验值与代发文件不符，未作任何处理")


@dataclass
class _Results:
    """The lines being applied, and those set aside (``per_line``) or refusing the whole file (otherwise)."""

    lines: list[Any]
    per_line: bool
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def drop(self, bad: list[Any], refusal: Callable[[], Exception], code: str,
             message: Callable[[Any], str]) -> None:
        if not bad:
            return
        if not self.per_line:
            raise refusal()
        self.rejected += [{"line_no": ln.line_no, "payroll_line_id": ln.payroll_line_id, "code": code,
                           "message": message(ln)} for ln in bad]
        gone = {id(ln) for ln in bad}
        self.lines = [ln for ln in self.lines if id(ln) not in gone]


def import_results(session: Session, file_id: str, body: ResultsIn, *, declared_file_id: str | None = None,
                   per_line: bool = False, audit: dict[str, Any] | None = None) -> Applied:
    """The bank's results applied to a payment file. The bank's system posts a file all or nothing: a repeated line
    number, a line not in the file or a line already settled otherwise refuses it whole. ``per_line`` (a file
    uploaded by staff, applied in parts): those lines are set aside in ``Applied.rejected`` with their reason and
    the others applied. ``audit``: more of who and how, for the audit entry (an upload's job and file)."""
    file = get_file(session, file_id)
    run = get_run(session, file.run_id, lock=True)  # lock order: the run, then its file
    file = get_file(session, file_id, lock=True)
    check_result_file(file, declared_file_id, body.checksum)
    results = _Results(list(body.lines), per_line)
    counts = Counter(ln.line_no for ln in results.lines)
    duplicates = sorted(n for n, c in counts.items() if c > 1)
    results.drop([ln for ln in results.lines if counts[ln.line_no] > 1], lambda: Invalid(
        "DUPLICATE_RESULT_LINES", f"回盘文件中序号重复：{duplicates[:20]}", details={"line_nos": duplicates[:100]}),
        "DUPLICATE_RESULT_LINES", lambda ln: f"序号 {ln.line_no} 在回盘文件中重复")
    stored = {
        r.line_no: r for r in session.execute(
            select(F.id, F.line_no, F.payroll_line_id, F.amount_fen, F.result, L.person_id)
            .select_from(BankFileLine.__table__.join(PayrollLine.__table__, L.id == F.payroll_line_id))
            .where(F.file_id == file.id)
        )
    }
    unknown = [ln for ln in results.lines
               if ln.line_no not in stored or stored[ln.line_no].payroll_line_id != ln.payroll_line_id]
    results.drop(unknown, lambda: Invalid(
        "UNKNOWN_BANK_FILE_LINES", f"回盘文件中有 {len(unknown)} 行不属于本代发文件（"
        + "、".join(f"{u.line_no}/{u.payroll_line_id}" for u in unknown[:10]) + "），未作任何处理",
        details={"unknown": [{"line_no": u.line_no, "payroll_line_id": u.payroll_line_id} for u in unknown[:1000]],
                 "count": len(unknown)}),
        "UNKNOWN_BANK_FILE_LINES", lambda ln: "该行不属于本代发文件（序号与发放明细编号不符）")
    conflicts = [ln for ln in results.lines if stored[ln.line_no].result not in (None, ln.result)]
    results.drop(conflicts, lambda: Conflict(
        "BANK_RESULT_CONFLICT", f"{len(conflicts)} 行已有不同的结果："
        + "、".join(f"{c.line_no}（已记录 {stored[c.line_no].result}，本次 {c.result}）" for c in conflicts[:10])
        + "，未作任何处理",
        details={"conflicts": [{"line_no": c.line_no, "payroll_line_id": c.payroll_line_id,
                                "recorded": stored[c.line_no].result, "received": c.result} for c in conflicts[:1000]],
                 "count": len(conflicts)}),
        "BANK_RESULT_CONFLICT", lambda ln: f"该行已记录为 {stored[ln.line_no].result}，本次为 {ln.result}")
    rejected = results.rejected
    new = [ln for ln in results.lines if stored[ln.line_no].result is None]
    unchanged = len(results.lines) - len(new)
    paid = [ln for ln in new if ln.result == "paid"]
    failed = [ln for ln in new if ln.result == "failed"]
    totals = (sum(stored[ln.line_no].amount_fen for ln in paid), sum(stored[ln.line_no].amount_fen for ln in failed))
    if not new:
        return Applied(file=file, run=run, applied=0, unchanged=unchanged, paid=(0, 0), failed=(0, 0),
                       rejected=rejected)

    now = clock.utc_now()
    _move_lines(session, [ln.payroll_line_id for ln in paid], "in_file", "paid", failure_reason=None)
    _move_lines(session, [ln.payroll_line_id for ln in failed], "in_file", "failed")
    if failed:
        session.execute(
            update(PayrollLine.__table__).where(L.id == bindparam("line_id"))
            .values(failure_reason=bindparam("reason")),
            [{"line_id": ln.payroll_line_id, "reason": ln.reason.strip()[:200]} for ln in failed],
        )
    session.execute(
        update(BankFileLine.__table__).where(F.id == bindparam("file_line_id"), F.result.is_(None))
        .values(result=bindparam("result_value"), result_reason=bindparam("reason"), result_at=now),
        [{"file_line_id": stored[ln.line_no].id, "result_value": ln.result,
          "reason": ln.reason.strip()[:200] if ln.result == "failed" and ln.reason else None} for ln in new],
    )
    awaiting = session.execute(select(func.count()).select_from(BankFileLine)
                               .where(F.file_id == file.id, F.result.is_(None))).scalar_one()
    if awaiting == 0:
        file.status = "settled"
        session.add(file)
    _settle_run_if_done(session, run)
    parts = max(1, -(-len(new) // MAX_LINES))
    for part, chunk in enumerate(_chunks(new, MAX_LINES), start=1):
        record_event(session, PaymentsSettled(
            file_id=file.id, run_id=run.id, fund=run.fund, period=run.period, part=part, parts=parts,
            lines=[{"payroll_line_id": ln.payroll_line_id, "person_id": stored[ln.line_no].person_id,
                    "amount_fen": stored[ln.line_no].amount_fen, "period": run.period, "result": ln.result,
                    "reason": ln.reason.strip()[:200] if ln.result == "failed" and ln.reason else None}
                   for ln in chunk],
        ), source=SOURCE, subject=file.id)
    append_audit(session, action="payroll.bank_results", entity_type=FILE_ENTITY, entity_id=file.id,
                 detail={"run_id": run.id, "applied": len(new), "unchanged": unchanged, "paid_lines": len(paid),
                         "paid_fen": totals[0], "failed_lines": len(failed), "returned_fen": totals[1],
                         "file_status": file.status, "run_status": run.status, "rejected_lines": len(rejected),
                         **(audit or {})})
    session.flush()
    metrics.count_after_commit(session, metrics.PAYROLL_LINES, len(paid), outcome="paid")
    metrics.count_after_commit(session, metrics.PAYROLL_LINES, len(failed), outcome="failed")
    return Applied(file=file, run=run, applied=len(new), unchanged=unchanged, paid=(len(paid), totals[0]),
                   failed=(len(failed), totals[1]), rejected=rejected)


# -- verification ----------------------------------------------------------------------------------------------------


@dataclass
class Verification:
    run: PayrollRun
    lines: int
    total_fen: int
    not_matching: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(session: Session, run_id: str) -> Verification:
    """Recompute the run's total from its lines, check every line against its entitlement, and every bank file's
    checksum, count and total against its content."""
    run = get_run(session, run_id)
    lines, total = _payable_sum(session, run.id)
    problems: list[str] = []
    if (lines, total) != (run.lines, run.total_fen):
        problems.append(f"payable lines add up to {lines} lines / {total} fen, the run says {run.lines} / "
                        f"{run.total_fen}")
    E = Entitlement.__table__.c
    not_matching = session.execute(
        select(func.count())
        .select_from(PayrollLine.__table__.outerjoin(Entitlement.__table__, E.id == L.entitlement_id))
        .where(L.run_id == run.id, or_(E.id.is_(None), E.fund != run.fund, E.monthly_amount_fen != L.amount_fen,
                                       L.period != run.period))
    ).scalar_one()
    if not_matching and run.status == "computed":
        # After approval the lines are frozen while an entitlement may legitimately change (an adjustment, an end):
        # the count is reported, the totals and files decide.
        problems.append(f"{not_matching} lines differ from their entitlement's monthly amount or fund")
    for file in session.execute(select(BankFile).where(BankFile.run_id == run.id)
                                .order_by(BankFile.sequence)).scalars():
        try:
            parsed = bankfile.parse_payment_file(file.content)
        except ValueError as exc:
            problems.append(f"bank file {file.sequence}: {exc}")
            continue
        line_sum = session.execute(select(func.count(), func.coalesce(func.sum(F.amount_fen), 0))
                                   .where(F.file_id == file.id)).one()
        if (parsed.checksum, len(parsed.lines), parsed.total_fen) != (file.checksum, file.lines, file.total_fen) \
                or tuple(line_sum) != (file.lines, file.total_fen):
            problems.append(f"bank file {file.sequence}: content, lines and record disagree")
    return Verification(run=run, lines=lines, total_fen=total, not_matching=not_matching, problems=problems)
