"""Agency posting (到账确认/记账, the AGENCY leg): the lines collection reports collected
(``collection.payments.collected.v1``) are confirmed against the registry and posted, in one pass per event.

For each ``CollectedLine``:

1. **The line itself** must be postable: a known fund, a valid period not in the future, no negative amount.
2. **Person lines** (``person_id`` or ``citizen_id`` set): the person is found by ``person_id``, else by
   ``citizen_id``; an enrolment of the line's fund must cover the period — active, suspended, or stopped with an end
   period at or after it (the rule of the online verification, ``enrolments.service.verify_enrolment``); when the
   payer and the covering enrolment both name an employer they must agree; a person who died before the period
   (a month after the month of death, or a death without a date) is not posted.
   - pension funds (``PEN_EMP``, ``PEN_GOV`` and ``PEN_RES``, the one pension individual account a person holds):
     the individual part is credited to the individual account — an ``AccountEntry`` of type ``contribution``,
     key ``posting:{payment_id}``, period and year of the line, the balance moved once per person — the account
     opened on its first credit, reopened after a transfer out, never credited once settled (withdrawal); and the
     ``ContributionMonth`` is recorded;
   - ``UNEMP``, ``INJURY``: the ``ContributionMonth`` only (no individual account).
3. **Employer-level lines** (no person at all): nothing to credit. The payer must be a registered employer (by
   ``employer_id``, else ``payer_uscc``); the line is then posted as the employer's contribution: what is recorded is
   the line in ``accounts.contributions.posted`` (employer, fund, period, both parts, ``credited_fen`` 0, no entry,
   ``person_id`` None) and the batch's audit entry
   (its employer-level count and amounts). No registry row changes: the accounts schema keeps no per-employer
   contribution table. A pension line without a person but with an individual part is held instead: that money
   belongs in somebody's individual account.

A line that cannot be posted is **held** in ``posting_suspense`` with a reason code (``REASONS``), never dropped,
and reported in ``accounts.contributions.held``; posted lines are reported in ``accounts.contributions.posted``;
both in events of at most 1 000 lines. The credits are reported too, so oversight's mirror of individual accounts
stays complete: in ``accounts.account.credited.v2`` events of at most 1 000 entries (a posting is a bulk path; the
single-entry ledger postings keep v1).

**Idempotency.** An event is applied once (the consumer's inbox). A payment sent again in another event posts
nothing twice: its credit's key exists already (same content: skipped; other content: held as
``ALREADY_POSTED_DIFFERENTLY``), its contribution month is unique per (person, fund, period), a held payment is
re-checked (and posted if the registry was fixed meanwhile), a dismissed one stays dismissed. A non-pension line
posted before and sent again is reported as posted again (the AGENCY leg is keyed by payment id downstream).

**Batching.** One query for the persons of an event, one for their enrolments, one for employers, one for the
credit keys, one for the accounts, one for held lines — each binding its keys as one parameter, built once per
dialect; named tuples, not ORM objects, for the persons, enrolments and credits; Core ``executemany`` inserts for entries, contribution months, new accounts, their change history and new
suspense rows; one balance update statement (executemany, one row per person); the events in one outbox insert
(``record_events``); one audit entry per event whose detail carries a SHA-256 over the entries written (the entries
themselves record who and when). The lines were validated once, with the event; the lines of the events written are
plain dicts until the outbox validates each whole event (no model per line). Outcomes per line are kept only for
a retry, which answers with one.

Reviewers work the suspense list: retry one or all (after the registry was fixed, e.g. the person registered or
enrolled), or dismiss with a note.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache, partial
from typing import Any, NamedTuple

import msgspec

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.ledger import service as ledger
from services.accounts.models import (
    FUNDS,
    PENSION_FUNDS,
    AccountEntry,
    ChangeHistory,
    ContributionMonth,
    Employer,
    Enrolment,
    IndividualAccount,
    Person,
    PostingSuspense,
)
from services.contracts.accounts import (
    MAX_BATCH_ITEMS,
    ContributionsHeld,
    ContributionsPosted,
)
from services.contracts.collection import CollectedLine, PaymentsCollected
from services.kernel import clock, context, metrics
from services.kernel.audit import append_audit, append_audit_many
from services.kernel.bulk import dialect_of, in_parameter, insert_many, parameter_values, update_many
from services.kernel.db import KeyRead
from services.kernel.auth import ensure_in_region, region_covers
from services.kernel.errors import Conflict, NotFound
from services.kernel.keyset import keyed_select
from services.kernel.events import PayloadFields, new_event_id, new_event_ids
from services.kernel.outbox import record_events
from services.kernel.paging import oldest_first
from services.kernel.periods import period_of, validate_period

SOURCE = "accounts"
KEY_PREFIX = "posting:"
CREDITED_FUNDS = PENSION_FUNDS  # the individual part goes to the pension individual account
EVENT_LINES = MAX_BATCH_ITEMS  # lines per ContributionsPosted / ContributionsHeld event
RETRY_CHUNK = 1000  # held lines per savepoint when retrying all
# The entries' digest (``entries_sha256``): the bytes of ``audit.canonical_json`` for lists of strings and integers
# (no keys to sort), encoded in one C call.
_ENTRIES_JSON = msgspec.json.Encoder()

# Reason codes of held lines, with what a reviewer should do.
REASONS: dict[str, str] = {
    "UNKNOWN_FUND": "险种不在本统筹区目录中",
    "INVALID_PERIOD": "费款所属期无效",
    "PERIOD_IN_FUTURE": "费款所属期尚未到来",
    "NEGATIVE_AMOUNT": "金额为负（退费或冲正不在此记账）",
    "PERSON_NOT_FOUND": "本系统无此参保人员：请先办理人员登记后重试",
    "CITIZEN_ID_MISMATCH": "人员编号与公民身份号码不属于同一人",
    "NO_ENROLMENT": "该险种无覆盖该所属期的参保登记：请先办理参保登记后重试",
    "EMPLOYER_MISMATCH": "缴费单位与覆盖该所属期的参保登记单位不一致",
    "PERSON_DECEASED": "参保人员在所属期之前已死亡",
    "ACCOUNT_CLOSED": "个人账户已因死亡或结算支取而终止",
    "EMPLOYER_NOT_FOUND": "单位缴费记录的缴费单位未办理社会保险登记",
    "INDIVIDUAL_PART_WITHOUT_PERSON": "养老保险个人缴费部分未指明参保人员，无法记入个人账户",
    "ALREADY_POSTED_DIFFERENTLY": "该缴费记录已按不同内容记账",
}



def posting_key(payment_id: str) -> str:
    return f"{KEY_PREFIX}{payment_id}"


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


# -- what the pass works on ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Item:
    """One line to post: from an event, or a held line retried (``held`` is then its suspense row)."""

    line: CollectedLine
    batch_id: str
    held: PostingSuspense | None = None


@dataclass(slots=True)
class Outcome:
    status: str  # posted | held | already_posted | out_of_region
    reason_code: str | None = None
    entry_id: str | None = None
    region: str | None = None  # the person's, when out of the caller's area


@dataclass
class PostingResult:
    lines: int = 0
    posted: int = 0
    held: int = 0
    already_posted: int = 0
    skipped: int = 0  # dismissed (or already posted) suspense lines sent again, repeats inside one event
    out_of_region: int = 0
    employer_level: int = 0
    entries: int = 0
    accounts_opened: int = 0
    credited_fen: int = 0
    employer_fen: int = 0  # of the posted lines
    individual_fen: int = 0
    held_fen: int = 0
    held_by_reason: dict[str, int] = field(default_factory=dict)
    entries_sha256: str | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by payment id, when ``keeps_outcomes``
    keeps_outcomes: bool = False  # a retry reads them; a posting of thousands of lines does not

    def note(self, payment_id: str, outcome: Outcome) -> None:
        if self.keeps_outcomes:
            self.outcomes[payment_id] = outcome

    def add(self, other: "PostingResult") -> None:
        for name in ("lines", "posted", "held", "already_posted", "skipped", "out_of_region", "employer_level",
                     "entries", "accounts_opened", "credited_fen", "employer_fen", "individual_fen", "held_fen"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, n in other.held_by_reason.items():
            self.held_by_reason[code] = self.held_by_reason.get(code, 0) + n
        self.outcomes.update(other.outcomes)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("outcomes", "keeps_outcomes")}


# What the pass reads of a person, an enrolment and a credit: named tuples made from the rows, not ORM objects, and
# not the rows themselves (a Row's attribute costs ten times a named tuple's, and the pass reads several per line).


class PersonFacts(NamedTuple):
    id: str
    citizen_id: str
    region: str
    life_status: str
    death_date: date | None


class EnrolmentFacts(NamedTuple):
    person_id: str
    fund: str
    employer_id: str | None
    start_period: int
    end_period: int | None
    status: str


class EntryFacts(NamedTuple):
    id: str
    person_id: str
    entry_type: str
    amount_fen: int
    period: int | None
    idempotency_key: str


PERSON_FACTS = tuple(getattr(Person, name) for name in PersonFacts._fields)
ENROLMENT_FACTS = tuple(getattr(Enrolment, name) for name in EnrolmentFacts._fields)
ENTRY_FACTS = tuple(getattr(AccountEntry, name) for name in EntryFacts._fields)


def _facts(kind: type, rows: Iterable[Any]) -> Iterator[Any]:
    """Named tuples of rows that select exactly their fields (``PERSON_FACTS``, …), made in C: ``_make`` is a Python
    call per row, which only checks the length the query fixed."""
    return map(partial(tuple.__new__, kind), rows)


@dataclass(slots=True)
class _Decision:
    item: Item
    person: PersonFacts | None = None
    employer_id: str | None = None
    reason: str | None = None  # a reason code: held
    detail: str | None = None
    credit_fen: int = 0
    existing_entry: EntryFacts | None = None  # the credit was posted before (same content)

    def hold(self, code: str, detail: str | None = None) -> None:
        self.reason, self.detail = code, detail


# -- lookups (one query each for the whole pass) ---------------------------------------------------------------------
# Each binds its keys as one parameter (``keyset.keyed_select``, ``bulk.in_parameter``) and is built once per
# dialect: a thousand expanding parameters, rendered and named by SQLAlchemy for every event, cost more than the
# queries themselves. The rows are read at once, on SQLite by the driver (``KeyRead.all``: plain tuples, without
# SQLAlchemy's execution context and a Row per row, a fifth of the cost of the thousand enrolments of an event).


@lru_cache(maxsize=8)
def _persons_query(dialect: str, column: str) -> KeyRead:
    return KeyRead(keyed_select(dialect, Person, getattr(Person, column), "keys", *PERSON_FACTS))


@lru_cache(maxsize=4)
def _employers_query(dialect: str) -> KeyRead:
    return KeyRead(select(Employer.id, Employer.uscc).where(or_(in_parameter(dialect, Employer.id, "ids"),
                                                                in_parameter(dialect, Employer.uscc, "usccs"))))


@lru_cache(maxsize=4)
def _enrolments_query(dialect: str) -> KeyRead:
    return KeyRead(keyed_select(dialect, Enrolment, Enrolment.person_id, "ids", *ENROLMENT_FACTS))


@lru_cache(maxsize=4)
def _entries_query(dialect: str) -> KeyRead:
    return KeyRead(keyed_select(dialect, AccountEntry, AccountEntry.idempotency_key, "keys", *ENTRY_FACTS))


@lru_cache(maxsize=4)
def _accounts_query(dialect: str) -> KeyRead:
    return KeyRead(keyed_select(dialect, IndividualAccount, IndividualAccount.person_id, "ids",
                                IndividualAccount.person_id, IndividualAccount.balance_fen,
                                IndividualAccount.status).with_for_update())


@lru_cache(maxsize=4)
def _suspense_query(dialect: str) -> KeyRead:
    return KeyRead(keyed_select(dialect, PostingSuspense, PostingSuspense.payment_id, "ids", PostingSuspense.id))


def _persons(session: Session, lines: list[CollectedLine]) -> tuple[dict[str, PersonFacts], dict[str, PersonFacts]]:
    """The persons of the lines by id and by citizen id: those named by id, then by citizen id those of the lines
    whose person id is missing or unknown (a line's person is its id's, else its citizen id's: most lines carry
    both, and one lookup each is half the work of looking both up)."""
    by_id: dict[str, PersonFacts] = {}
    by_cid: dict[str, PersonFacts] = {}
    dialect = dialect_of(session)

    def find(column: str, keys: set[str]) -> None:
        if keys:
            rows = _persons_query(dialect, column).all(session, keys=parameter_values(dialect, keys))
            for person in _facts(PersonFacts, rows):
                by_id[person.id] = person
                by_cid[person.citizen_id] = person

    find("id", {ln.person_id for ln in lines if ln.person_id})
    find("citizen_id", {ln.citizen_id for ln in lines
                        if ln.citizen_id and ln.citizen_id not in by_cid and (ln.person_id or "") not in by_id})
    return by_id, by_cid


def _employers(session: Session, lines: list[CollectedLine]) -> tuple[set[str], dict[str, str]]:
    ids = {ln.employer_id for ln in lines if ln.employer_id}
    usccs = {ln.payer_uscc for ln in lines if ln.payer_uscc}
    if not ids and not usccs:
        return set(), {}
    dialect = dialect_of(session)
    rows = _employers_query(dialect).all(session, ids=parameter_values(dialect, ids),
                                         usccs=parameter_values(dialect, usccs))
    return {r[0] for r in rows}, {r[1]: r[0] for r in rows}


def _enrolments(session: Session, person_ids: set[str]) -> dict[tuple[str, str], list[EnrolmentFacts]]:
    found: dict[tuple[str, str], list[EnrolmentFacts]] = defaultdict(list)
    if not person_ids:
        return found
    dialect = dialect_of(session)
    rows = _enrolments_query(dialect).all(session, ids=parameter_values(dialect, person_ids))
    for enrolment in _facts(EnrolmentFacts, rows):
        found[enrolment[:2]].append(enrolment)  # (person_id, fund)
    return found


def covers(enrolment: Enrolment | EnrolmentFacts, period: int) -> bool:
    """The rule of the online verification: an enrolment covers the months from its start to its end; without an
    end it covers on unless stopped (a suspended one keeps covering until it is stopped)."""
    if enrolment.start_period > period:
        return False
    if enrolment.end_period is not None:
        return enrolment.end_period >= period
    return enrolment.status != "stopped"


_RANK = {"active": 0, "suspended": 1, "stopped": 2}


def covering_enrolment(enrolments: list[EnrolmentFacts], period: int,
                       employer_id: str | None) -> EnrolmentFacts | None:
    """The enrolment that covers ``period``: the payer's own if one covers it, else the best by status."""
    if len(enrolments) == 1:  # the usual case: one enrolment of the fund, so nothing to choose between
        return enrolments[0] if covers(enrolments[0], period) else None
    covering = [e for e in enrolments if covers(e, period)]
    if not covering:
        return None
    own = [e for e in covering if employer_id is not None and e.employer_id == employer_id]
    return min(own or covering, key=lambda e: (_RANK.get(e.status, 3), -e.start_period))


# -- deciding ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _valid_period(period: int) -> bool:
    """``validate_period``'s answer, once per period (an event's lines share a handful)."""
    try:
        validate_period(period)
    except ValueError:
        return False
    return True


def _check_line(d: _Decision, this_month: int) -> bool:
    """Whether the line can be posted at all; else ``d`` holds the first reason. The usual line passes the four
    cheap comparisons and builds no reason."""
    line = d.item.line
    if line.fund not in FUNDS:
        d.hold("UNKNOWN_FUND", f"险种 {line.fund} 不在目录中（{'、'.join(FUNDS)}）")
    elif not _valid_period(line.period):
        d.hold("INVALID_PERIOD", f"费款所属期 {line.period} 不是有效月份")
    elif line.period > this_month:
        d.hold("PERIOD_IN_FUTURE", f"费款所属期 {line.period} 晚于本月 {this_month}")
    elif line.employer_fen < 0 or line.individual_fen < 0 or line.late_fee_fen < 0:
        d.hold("NEGATIVE_AMOUNT")
    else:
        return True
    return False


def _decide(d: _Decision, by_id: dict[str, PersonFacts], by_cid: dict[str, PersonFacts], employer_ids: set[str],
            employer_by_uscc: dict[str, str], enrolments: dict[tuple[str, str], list[EnrolmentFacts]]) -> None:
    line = d.item.line
    payer = line.employer_id if line.employer_id in employer_ids else employer_by_uscc.get(line.payer_uscc or "")
    d.employer_id = payer
    if line.person_id is None and line.citizen_id is None:  # an employer-level line
        if payer is None:
            d.hold("EMPLOYER_NOT_FOUND", f"缴费单位（{line.employer_id or line.payer_uscc or '未注明'}）未在本系统登记")
        elif line.fund in CREDITED_FUNDS and line.individual_fen > 0:
            d.hold("INDIVIDUAL_PART_WITHOUT_PERSON")
        return
    person = by_id.get(line.person_id or "") or by_cid.get(line.citizen_id or "")
    if person is None:
        d.hold("PERSON_NOT_FOUND")
        return
    d.person = person
    if line.citizen_id and person.citizen_id != line.citizen_id:
        d.hold("CITIZEN_ID_MISMATCH", f"人员编号 {person.id} 登记的公民身份号码与缴费记录不一致")
        return
    if person.life_status == "deceased":
        if person.death_date is None:
            d.hold("PERSON_DECEASED", "参保人员已登记死亡，死亡日期未知")
            return
        if line.period > period_of(person.death_date):
            d.hold("PERSON_DECEASED", f"死亡日期 {person.death_date.isoformat()} 早于所属期 {line.period}")
            return
    enrolment = covering_enrolment(enrolments.get((person.id, line.fund), []), line.period, payer)
    if enrolment is None:
        d.hold("NO_ENROLMENT", f"无 {line.fund} 覆盖所属期 {line.period} 的参保登记")
        return
    if payer is not None and enrolment.employer_id is not None and enrolment.employer_id != payer:
        d.hold("EMPLOYER_MISMATCH", f"所属期 {line.period} 的参保登记单位为 {enrolment.employer_id}，缴费单位为 {payer}")
        return
    d.employer_id = payer or enrolment.employer_id
    if line.fund in CREDITED_FUNDS:
        d.credit_fen = line.individual_fen


def _check_keys(session: Session, decisions: list[_Decision]) -> None:
    """A credit whose key exists was posted before: the same content is skipped, other content is held."""
    wanted = {posting_key(d.item.line.payment_id): d for d in decisions if d.reason is None and d.credit_fen > 0}
    if not wanted:
        return
    dialect = dialect_of(session)
    rows = _entries_query(dialect).all(session, keys=parameter_values(dialect, wanted))
    for entry in _facts(EntryFacts, rows):
        d = wanted[entry.idempotency_key]
        line = d.item.line
        if (entry.person_id, entry.entry_type, entry.amount_fen, entry.period) == (
            d.person.id, "contribution", d.credit_fen, line.period
        ):
            d.existing_entry = entry
        else:
            d.hold("ALREADY_POSTED_DIFFERENTLY",
                   f"幂等键 {entry.idempotency_key} 已记账：{entry.amount_fen} 分，所属期 {entry.period}")


def _accounts(session: Session, decisions: list[_Decision]) -> tuple[dict[str, int], set[str]]:
    """The balances of the accounts to credit (rows locked), and the persons whose account must be opened. A settled
    account (closed by a withdrawal) holds its lines; one closed by a transfer out is reopened (the ledger's rule)."""
    person_ids = sorted({d.person.id for d in decisions if d.reason is None and d.credit_fen > 0
                         and d.existing_entry is None})
    balances: dict[str, int] = {}
    closed: list[str] = []
    if person_ids:
        dialect = dialect_of(session)
        for person_id, balance_fen, status in _accounts_query(dialect).all(session,
                                                                           ids=parameter_values(dialect, person_ids)):
            balances[person_id] = balance_fen
            if status == "closed":
                closed.append(person_id)
    settled = set()
    for person_id in closed:
        if ledger._last_entry_type(session, person_id) == "transfer_out":  # noqa: SLF001 - the ledger's rule
            account = session.get(IndividualAccount, person_id, populate_existing=True)
            ledger._set_status(session, account, "open", action="reopen", reason="转出后重新记账")  # noqa: SLF001
        else:
            settled.add(person_id)
    for d in decisions:
        if d.reason is None and d.person is not None and d.person.id in settled and d.credit_fen > 0 \
                and d.existing_entry is None:
            d.hold("ACCOUNT_CLOSED")
    return balances, {p for p in person_ids if p not in balances}


# -- the pass ---------------------------------------------------------------------------------------------------------


def post_items(session: Session, items: list[Item], *, source_event_id: str,
               in_scope: Callable[[PersonFacts], bool] | None = None, keeps_outcomes: bool = False) -> PostingResult:
    """Decide and post ``items`` inside the caller's transaction (no commit). ``in_scope`` (retries by staff) leaves
    lines of persons outside the caller's area untouched (outcome ``out_of_region``)."""
    result = PostingResult(lines=len(items), keeps_outcomes=keeps_outcomes)
    now = clock.utc_now()
    this_month = period_of(clock.china_today())
    decisions = [_Decision(item) for item in items]
    lines = [d.item.line for d in decisions if _check_line(d, this_month)]
    by_id, by_cid = _persons(session, lines)
    employer_ids, employer_by_uscc = _employers(session, lines)
    enrolments = _enrolments(session, set(by_id))
    for d in decisions:
        if d.reason is None:
            _decide(d, by_id, by_cid, employer_ids, employer_by_uscc, enrolments)
    if in_scope is not None:
        kept = []
        for d in decisions:
            if d.person is not None and not in_scope(d.person):
                result.out_of_region += 1
                result.note(d.item.line.payment_id, Outcome("out_of_region", region=d.person.region))
            else:
                kept.append(d)
        decisions = kept
    _check_keys(session, decisions)
    accounts, to_open = _accounts(session, decisions)

    actor = context.actor_id()
    entries: list[dict[str, Any]] = []
    credited: dict[str, list[dict[str, Any]]] = defaultdict(list)  # CreditedEntry fields, by batch
    balances: dict[str, list[int]] = {}  # person → [balance before, delta, entries]
    months: dict[tuple[str, str, int], dict[str, Any]] = {}
    posted: dict[str, list[dict[str, Any]]] = defaultdict(list)  # PostedLine fields, by batch
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)  # HeldLine fields, by batch
    new_holds: list[dict[str, Any]] = []
    opened: list[str] = []
    reasons: dict[tuple[str, str | None], str] = {}  # an entry's reason, per fund and employer
    # The ids of the entries to write, made at once (the clock's offset read once, not per entry).
    entry_ids = iter(new_event_ids(sum(1 for d in decisions
                                       if d.reason is None and d.existing_entry is None and d.credit_fen > 0)))

    for d in decisions:
        line, item = d.item.line, d.item
        pid = line.payment_id
        if d.reason is not None:
            _hold(d, now, source_event_id, new_holds, held, result)
            continue
        entry_id = None
        if d.existing_entry is not None:
            entry_id = d.existing_entry.id
            if item.held is None:  # posted before, sent again: nothing to do
                result.already_posted += 1
                result.note(pid, Outcome("already_posted", entry_id=entry_id))
                continue
        elif d.credit_fen > 0:
            person_id = d.person.id
            if person_id in to_open and person_id not in balances:
                opened.append(person_id)
            state = balances.setdefault(person_id, [accounts.get(person_id, 0), 0, 0])
            state[1] += d.credit_fen
            state[2] += 1
            entry_id = next(entry_ids)
            key = KEY_PREFIX + pid  # posting_key
            reason = reasons.get((line.fund, d.employer_id))
            if reason is None:
                reason = reasons[(line.fund, d.employer_id)] = ledger.contribution_reason(line.fund, d.employer_id)
            period = line.period
            entries.append({
                "id": entry_id, "person_id": person_id, "entry_type": "contribution", "amount_fen": d.credit_fen,
                "year": period // 100, "period": period, "idempotency_key": key, "reference": pid,
                "reason": reason, "posted_at": now, "posted_by": actor,
            })
            credited[item.batch_id].append({
                "person_id": person_id, "entry_id": entry_id, "entry_type": "contribution", "amount_fen": d.credit_fen,
                "balance_fen": state[0] + state[1], "year": period // 100, "period": period,
                "idempotency_key": key})
            result.entries += 1
            result.credited_fen += d.credit_fen
        if d.person is not None:
            months.setdefault((d.person.id, line.fund, line.period), {
                "person_id": d.person.id, "fund": line.fund, "period": line.period, "employer_id": d.employer_id,
                "source": "posting", "recorded_at": now,
            })
        else:
            result.employer_level += 1
        posted[item.batch_id].append({
            "payment_id": pid, "person_id": d.person.id if d.person else None, "employer_id": d.employer_id,
            "fund": line.fund, "period": line.period, "employer_fen": line.employer_fen,
            "individual_fen": line.individual_fen, "credited_fen": d.credit_fen, "entry_id": entry_id})
        if item.held is not None:
            item.held.person_id = d.person.id if d.person else item.held.person_id
            _resolve(item.held, "posted", now=now, entry_id=entry_id)
        result.posted += 1
        result.employer_fen += line.employer_fen
        result.individual_fen += line.individual_fen
        if result.keeps_outcomes:
            result.outcomes[pid] = Outcome("posted", entry_id=entry_id)

    _write(session, now=now, actor=actor, opened=opened, entries=entries, balances=balances,
           months=list(months.values()), new_holds=new_holds)
    result.accounts_opened = len(opened)
    if entries:
        result.entries_sha256 = hashlib.sha256(_ENTRIES_JSON.encode(
            [[e["id"], e["person_id"], e["amount_fen"], e["period"], e["idempotency_key"]] for e in entries]
        )).hexdigest()
    record_events(session, _events(credited, posted, held), source=SOURCE)
    metrics.count_after_commit(session, metrics.POSTINGS, result.posted, outcome="posted")
    metrics.count_after_commit(session, metrics.POSTINGS, result.held, outcome="held")
    return result


def _events(credited: dict[str, list[dict[str, Any]]], posted: dict[str, list[dict[str, Any]]],
            held: dict[str, list[dict[str, Any]]]) -> list[tuple[PayloadFields, str]]:
    """The pass's events, each about its collection batch, at most ``EVENT_LINES`` items each: credits, then posted
    lines, then held lines. The items stay plain dicts: the outbox validates each whole event once
    (``PayloadFields``), several times cheaper than a model per line, and half the cost of a built payload (which
    the envelope dumps and validates again)."""
    events: list[tuple[PayloadFields, str]] = []
    for batch_id, credits in credited.items():
        events += ledger.credited_events(credits, subject=batch_id)
    for batch_id, posted_lines in posted.items():
        events += [(PayloadFields(ContributionsPosted, {"source_batch_id": batch_id, "lines": chunk}), batch_id)
                   for chunk in _chunks(posted_lines, EVENT_LINES)]
    for batch_id, held_lines in held.items():
        events += [(PayloadFields(ContributionsHeld, {"source_batch_id": batch_id, "lines": chunk}), batch_id)
                   for chunk in _chunks(held_lines, EVENT_LINES)]
    return events


def _hold(d: _Decision, now: datetime, source_event_id: str, new_holds: list[dict[str, Any]],
          held: dict[str, list[dict[str, Any]]], result: PostingResult) -> None:
    line, item = d.item.line, d.item
    reason = REASONS[d.reason] + (f"（{d.detail}）" if d.detail else "")
    person_id = d.person.id if d.person else line.person_id
    row = item.held
    report = True
    if row is None:
        new_holds.append({
            "id": new_event_id(), "payment_id": line.payment_id, "batch_id": item.batch_id,
            "source_event_id": source_event_id, "citizen_id": line.citizen_id, "person_id": person_id,
            "employer_id": d.employer_id or line.employer_id, "fund": line.fund, "period": line.period,
            "employer_fen": line.employer_fen, "individual_fen": line.individual_fen,
            "late_fee_fen": line.late_fee_fen, "line": _line_json(line), "reason_code": d.reason,
            "reason": reason, "status": "held", "attempts": 0, "held_at": now,
        })
    else:  # tried again: still held; reported again only when the reason changed
        report = (row.reason_code, row.reason) != (d.reason, reason)
        row.reason_code, row.reason, row.person_id = d.reason, reason, person_id
        row.attempts += 1
        row.last_attempt_at = now
    if report:
        held[item.batch_id].append({
            "payment_id": line.payment_id, "fund": line.fund, "period": line.period, "citizen_id": line.citizen_id,
            "person_id": person_id, "amount_fen": line.employer_fen + line.individual_fen, "reason_code": d.reason,
            "reason": reason})
    result.held += 1
    result.held_fen += line.employer_fen + line.individual_fen
    result.held_by_reason[d.reason] = result.held_by_reason.get(d.reason, 0) + 1
    result.note(line.payment_id, Outcome("held", reason_code=d.reason))


def _line_json(line: CollectedLine) -> str:
    """The held line as the model writes it (a line of an event read through ``payload_view`` is a struct with the
    model's fields and values: the model is built for the few lines held, not for every line posted)."""
    if not isinstance(line, CollectedLine):
        line = CollectedLine.model_validate(line, from_attributes=True)
    return line.model_dump_json()


def _resolve(row: PostingSuspense, status: str, *, now: datetime, entry_id: str | None = None,
             note: str | None = None) -> None:
    row.status = status
    row.resolved_at = now
    row.resolved_by = context.actor_id()
    row.entry_id = entry_id
    if note is not None:
        row.note = note
    if status == "posted":
        row.attempts += 1
        row.last_attempt_at = now


def _write(session: Session, *, now: datetime, actor: str, opened: list[str], entries: list[dict[str, Any]],
           balances: dict[str, list[int]], months: list[dict[str, Any]], new_holds: list[dict[str, Any]]) -> None:
    session.flush()  # reopened accounts, suspense rows tried again: before the Core statements below
    ctx = context.current()
    if opened:
        # Opened with its credits of the pass: the row the insert and the balance update below would leave (balance
        # 0 + credits, version 1 + one per credit), one statement instead of two per new account.
        insert_many(session, IndividualAccount, [
            {"person_id": p, "balance_fen": balances[p][1], "status": "open", "opened_at": now,
             "version": 1 + balances[p][2], "updated_at": now} for p in opened])
        changes = json.dumps({"balance_fen": [None, 0], "status": [None, "open"]}, ensure_ascii=False,
                             sort_keys=True)
        insert_many(session, ChangeHistory, [
            {"entity_type": ledger.ENTITY, "entity_id": p, "version": 1, "action": "open", "changes": changes,
             "reason": "首次记账开户", "changed_at": now, "changed_by": actor, "request_id": ctx.request_id}
            for p in opened])
    insert_many(session, AccountEntry, entries)
    if balances:
        new = set(opened)
        update_many(session, IndividualAccount, [
            {"person_id": p, "balance_fen": s[1], "version": s[2], "updated_at": now} for p, s in balances.items()
            if p not in new], key="person_id", add=("balance_fen", "version"), overwrite=("updated_at",))
        # An account object the session holds (a reopened one, one read earlier) must not keep the old balance.
        for loaded in list(session.identity_map.values()):
            if isinstance(loaded, IndividualAccount) and loaded.person_id in balances:
                session.expire(loaded)
    insert_many(session, ContributionMonth, months, conflict_ignored_on=("person_id", "fund", "period"))
    insert_many(session, PostingSuspense, new_holds)


# -- the consumer's entry point ---------------------------------------------------------------------------------------


def post_collected(session: Session, payload: PaymentsCollected, *, event_id: str) -> PostingResult:
    """Post one ``collection.payments.collected`` event inside the consumer's transaction (no commit)."""
    suspense = _suspense_by_payment(session, {line.payment_id for line in payload.lines})
    seen: set[str] = set()
    items = []
    repeats = resolved = 0
    batch_id = payload.batch_id
    for line in payload.lines:
        payment_id = line.payment_id
        if payment_id in seen:  # one payment line twice in one event: it is the same payment
            repeats += 1
            continue
        seen.add(payment_id)
        row = suspense.get(payment_id) if suspense else None
        if row is not None and row.status != "held":  # dismissed by a reviewer, or posted already
            resolved += 1
            continue
        items.append(Item(line, batch_id, row))
    result = post_items(session, items, source_event_id=event_id)
    result.lines += repeats + resolved
    result.skipped += repeats + resolved
    # The entry ``append_audit`` would write, inserted at once (Core): not an ORM object for the next read's flush.
    append_audit_many(session, [{"action": "contributions.post", "entity_type": "payment_batch",
                                 "entity_id": payload.batch_id, "detail": {
                                     "event_id": event_id, "part": payload.part, "parts": payload.parts,
                                     **result.summary()}}])
    return result


def _suspense_by_payment(session: Session, payment_ids: set[str]) -> dict[str, PostingSuspense]:
    if not payment_ids:
        return {}
    dialect = dialect_of(session)
    # The keys are many and their rows few or none (a payment sent again): their ids first, a Core read; then the
    # rows as ORM objects (a held line tried again is updated through the session).
    found = [row[0] for row in _suspense_query(dialect).all(session, ids=parameter_values(dialect, payment_ids))]
    if not found:
        return {}
    rows = session.execute(select(PostingSuspense).where(PostingSuspense.id.in_(found))).scalars()
    return {row.payment_id: row for row in rows}


# -- the suspense list ------------------------------------------------------------------------------------------------


def _item(row: PostingSuspense) -> Item:
    return Item(line=CollectedLine.model_validate_json(row.line, extra="ignore"), batch_id=row.batch_id, held=row)


def _in_actor_area(person: PersonFacts) -> bool:
    return region_covers(context.current().actor.region, person.region)


def get_line(session: Session, suspense_id: str) -> PostingSuspense:
    row = session.get(PostingSuspense, suspense_id)
    if row is None:
        raise NotFound("SUSPENSE_LINE_NOT_FOUND", "暂挂记录不存在")
    return row


def _held(session: Session, suspense_id: str) -> PostingSuspense:
    row = session.execute(
        select(PostingSuspense).where(PostingSuspense.id == suspense_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("SUSPENSE_LINE_NOT_FOUND", "暂挂记录不存在")
    if row.status != "held":
        raise Conflict("SUSPENSE_LINE_RESOLVED", f"该暂挂记录已处理（{row.status}），不能再操作")
    return row


def list_lines(session: Session, *, status: str | None, reason_code: str | None, fund: str | None,
               period: int | None, batch_id: str | None, citizen_id: str | None, after: str | None,
               limit: int) -> tuple[list[PostingSuspense], str | None]:
    """Cursor-paginated by id (time-ordered); ``status`` defaults to held."""
    query = select(PostingSuspense).where(PostingSuspense.status == (status or "held"))
    if reason_code:
        query = query.where(PostingSuspense.reason_code == reason_code)
    if fund:
        query = query.where(PostingSuspense.fund == fund)
    if period is not None:
        query = query.where(PostingSuspense.period == period)
    if batch_id:
        query = query.where(PostingSuspense.batch_id == batch_id)
    if citizen_id:
        query = query.where(PostingSuspense.citizen_id == citizen_id)
    return oldest_first(session, query, PostingSuspense.id, after=after, limit=limit)


def summary(session: Session) -> list[dict[str, Any]]:
    """Lines and amounts by status and reason code."""
    rows = session.execute(
        select(PostingSuspense.status, PostingSuspense.reason_code, func.count(),
               func.coalesce(func.sum(PostingSuspense.employer_fen + PostingSuspense.individual_fen), 0))
        .group_by(PostingSuspense.status, PostingSuspense.reason_code)
        .order_by(PostingSuspense.status, PostingSuspense.reason_code)
    ).all()
    return [{"status": s, "reason_code": r, "lines": n, "amount_fen": int(a)} for s, r, n, a in rows]


def retry_line(session: Session, suspense_id: str, *, note: str | None) -> tuple[PostingSuspense, Outcome]:
    """Check a held line against the registry again and post it if it can be posted now; commits. When the same
    payment was posted concurrently (its key or its suspense row taken), the line is answered as it stands now."""
    try:
        return _retry_line(session, suspense_id, note=note)
    except IntegrityError:
        session.rollback()
        _held(session, suspense_id)  # 409 SUSPENSE_LINE_RESOLVED when the concurrent work resolved it
        raise


def _retry_line(session: Session, suspense_id: str, *, note: str | None) -> tuple[PostingSuspense, Outcome]:
    row = _held(session, suspense_id)
    result = post_items(session, [_item(row)], source_event_id=row.source_event_id, in_scope=_in_actor_area,
                        keeps_outcomes=True)
    outcome = result.outcomes[row.payment_id]
    if outcome.status == "out_of_region":
        session.rollback()
        ensure_in_region(context.current().actor, outcome.region or "")
    if note is not None and outcome.status == "posted":
        row.note = note
    append_audit(session, action="posting_suspense.retry", entity_type="posting_suspense", entity_id=row.id,
                 detail={"payment_id": row.payment_id, "outcome": outcome.status, "reason_code": outcome.reason_code,
                         "entry_id": outcome.entry_id}, reason=note)
    session.flush()
    return row, outcome


def retry_all(session: Session, *, reason_code: str | None, batch_id: str | None,
              note: str | None) -> PostingResult:
    """Every held line (of a reason, of a batch), ``RETRY_CHUNK`` lines per savepoint, in id order; lines of
    persons outside the caller's area are left held. The chunks share the request's transaction."""
    total = PostingResult()
    after = ""
    lost_race = False
    while True:
        query = select(PostingSuspense).where(PostingSuspense.status == "held", PostingSuspense.id > after)
        if reason_code:
            query = query.where(PostingSuspense.reason_code == reason_code)
        if batch_id:
            query = query.where(PostingSuspense.batch_id == batch_id)
        rows = list(session.execute(query.order_by(PostingSuspense.id).limit(RETRY_CHUNK).with_for_update()).scalars())
        if not rows:
            return total
        first_id, last_id = rows[0].id, rows[-1].id
        try:
            # One savepoint per chunk: a lost race undoes this chunk only, not the chunks before it.
            with session.begin_nested():
                result = post_items(session, [_item(r) for r in rows], source_event_id=rows[0].source_event_id,
                                    in_scope=_in_actor_area)
                if note is not None:
                    for row in rows:
                        if row.status == "posted":
                            row.note = note
                append_audit(session, action="posting_suspense.retry_all", entity_type="posting_suspense",
                             entity_id=first_id, detail={"reason_code": reason_code, "batch_id": batch_id,
                                                         "first_id": first_id, "last_id": last_id,
                                                         **result.summary()}, reason=note)
        except IntegrityError:
            # A payment of the chunk was posted concurrently: the chunk is read and tried once more, without it.
            if lost_race:
                raise
            lost_race = True
            continue
        lost_race = False
        total.add(result)
        total.outcomes.clear()
        after = last_id


def dismiss_line(session: Session, suspense_id: str, *, note: str) -> PostingSuspense:
    """Close a held line without posting it, with the reviewer's note."""
    row = _held(session, suspense_id)
    if row.person_id:
        person = session.get(Person, row.person_id)
        if person is not None:
            ensure_in_region(context.current().actor, person.region)
    _resolve(row, "dismissed", now=clock.utc_now(), note=note)
    session.add(row)
    append_audit(session, action="posting_suspense.dismiss", entity_type="posting_suspense", entity_id=row.id,
                 detail={"payment_id": row.payment_id, "reason_code": row.reason_code, "fund": row.fund,
                         "period": row.period, "amount_fen": row.employer_fen + row.individual_fen}, reason=note)
    session.flush()
    return row
