"""Event handlers that keep oversight's mirror of the registry and of partner data. Each runs inside the
consumer's transaction (``kernel.inbox``): the inbox makes a redelivered event a no-op, and the handlers are
idempotent on their own as well — every row is merged by its id or natural key, and the only counters (individual
account totals) move only when the posting's entry id is new.

Order tolerance. JetStream delivers a stream in order, but a failed event is retried after its successors were
applied, and imports and single events interleave. So:

- An event about an entity not yet mirrored (an update, a status change, a closed bank account, a suspended
  enrolment, …) creates a **placeholder** row with what the event says (``placeholder = True``). The registration,
  when it arrives, fills in the rest and never undoes what a later event set.
- **Field changes** are ordered by the producer's ``version``: an update whose version is not newer than the row's
  is stale and skipped (a registration is version 1).
- **Status changes** carry no version; they are ordered by event time: a status event older than the one that set
  the row's status (``status_changed_at`` / ``life_status_changed_at``) is skipped.
- A collected payment line is **held** or **posted** by the agency; a posting supersedes a hold whatever the
  order they arrive in, and a hold never undoes a posting.
- A **posting** (credit or debit) is an insert keyed by its entry id; the per person/year totals move only on a
  new entry id. The year's balance is the one reported by the latest posting in event time.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, case, null, or_, select
from sqlmodel import Session

from services.contracts.accounts import (
    AccountCredited,
    AccountDebited,
    AccountsCredited,
    BusinessRegistered,
    ContributionsHeld,
    ContributionsPosted,
    DuplicateEnrolmentFound,
    EmployerRegistered,
    EmployersImported,
    EmployerStatusChanged,
    EmployerUpdated,
    EnrolmentOpened,
    EnrolmentResumed,
    EnrolmentsImported,
    EnrolmentStopped,
    EnrolmentSuspended,
    EnrolmentTransferred,
    PersonBankAccountAdded,
    PersonBankAccountClosed,
    PersonCremated,
    PersonDied,
    PersonImprisoned,
    PersonLifeStatusChanged,
    PersonRegistered,
    PersonReleased,
    PersonsImported,
    PersonUpdated,
)
from services.contracts.codes import Fund
from services.kernel import clock
from services.kernel.bulk import (
    RowSet,
    dialect_insert,
    dialect_of,
    expire_cached,
    in_parameter,
    parameter_values,
)
from services.kernel.events import EventEnvelope
from services.kernel.mirror import execute_rows
from services.kernel.service_app import ConsumerSpec
from services.oversight.models import (
    MirroredAccountEntry,
    MirroredAccountYear,
    MirroredAgencyLine,
    MirroredBankAccount,
    MirroredBusinessRegistration,
    MirroredDuplicateEnrolment,
    MirroredEmployer,
    MirroredEnrolment,
    MirroredLifeEvent,
    MirroredPerson,
)

Row = dict[str, Any]


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _newer(envelope: EventEnvelope, last: datetime | None) -> bool:
    """Is this event at least as recent as the one that last set a status? (Status events carry no version.)"""
    return last is None or _aware(envelope.time) >= _aware(last)



def _stamp(row: Row, envelope: EventEnvelope, now: datetime) -> None:
    row["source_event_id"] = envelope.id
    row["updated_at"] = now


def _fill(row: Row, values: dict[str, Any], *, overwrite: bool) -> None:
    """Set ``values`` on ``row``; unless ``overwrite``, only where the row has nothing yet."""
    for key, value in values.items():
        if overwrite or row[key] is None:
            row[key] = value


def _get_or_placeholder(rows: RowSet, key: str, envelope: EventEnvelope, now: datetime, **required: Any) -> Row:
    row = rows.get(key)
    if row is None:
        row = rows.add({rows.key: key, "placeholder": True, "source_event_id": envelope.id, "received_at": now,
                        **required})
    return row


# -- employers -------------------------------------------------------------------------------------------------------

EMPLOYER_FIELDS = ("uscc", "name", "region", "unit_type", "industry_risk_class")


def _register_employers(session: Session, envelope: EventEnvelope,
                        employers: list[tuple[str, dict[str, Any], datetime | None]],
                        import_job_id: str | None = None) -> None:
    """``employers``: (employer id, fields, registered at), in the event's order."""
    now = clock.utc_now()
    rows = RowSet(session, MirroredEmployer, [employer_id for employer_id, _, _ in employers])
    for employer_id, values, registered_at in employers:
        row = rows.get(employer_id)
        if row is None:
            rows.add({"employer_id": employer_id, **values, "status": "active", "status_changed_at": envelope.time,
                      "registered_at": registered_at, "version": 1, "import_job_id": import_job_id,
                      "placeholder": False, "source_event_id": envelope.id, "received_at": now})
            continue
        # Known already: a repeat of the registration (same values) or a placeholder made by a later event, whose
        # fields are newer than these (version > 1) and stay.
        _fill(row, values, overwrite=row["version"] <= 1)
        _fill(row, {"registered_at": registered_at, "import_job_id": import_job_id}, overwrite=False)
        if _newer(envelope, row["status_changed_at"]) and row["status"] is None:
            row["status"], row["status_changed_at"] = "active", envelope.time
        row["version"] = max(row["version"], 1)
        row["placeholder"] = False
        _stamp(row, envelope, now)
    rows.write()


def on_employer_registered(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EmployerRegistered)
    _register_employers(session, envelope, [(e.employer_id, {
        "uscc": e.uscc, "name": e.name, "region": e.region, "unit_type": e.unit_type,
        "industry_risk_class": e.industry_risk_class}, e.registered_at)])


def on_employers_imported(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EmployersImported)
    _register_employers(session, envelope, [
        (item.employer_id, {k: getattr(item, k) for k in EMPLOYER_FIELDS}, envelope.time) for item in e.employers],
        import_job_id=e.import_job_id)


def _apply_changes(row: Row, version: int, changes: dict[str, list], fields: Iterable[str]) -> None:
    """Apply ``{field: [before, after]}`` for the mirrored ``fields`` if ``version`` is newer than the row's."""
    if version <= row["version"]:
        return  # stale or repeated
    for field in fields:
        if field in changes:
            row[field] = changes[field][1]
    row["version"] = version


def on_employer_updated(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EmployerUpdated)
    now, rows = clock.utc_now(), RowSet(session, MirroredEmployer, [e.employer_id])
    row = _get_or_placeholder(rows, e.employer_id, envelope, now, version=0)
    _apply_changes(row, e.version, e.changes, ("name", "region", "unit_type", "industry_risk_class"))
    _stamp(row, envelope, now)
    rows.write()


def on_employer_status_changed(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EmployerStatusChanged)
    now, rows = clock.utc_now(), RowSet(session, MirroredEmployer, [e.employer_id])
    row = _get_or_placeholder(rows, e.employer_id, envelope, now, version=0)
    _fill(row, {"uscc": e.uscc}, overwrite=False)
    if _newer(envelope, row["status_changed_at"]):
        row.update(status=e.status, status_effective_date=e.effective_date, status_reason=e.reason,
                   status_changed_at=envelope.time)
    _stamp(row, envelope, now)
    rows.write()


# -- persons ---------------------------------------------------------------------------------------------------------

PERSON_FIELDS = ("citizen_id", "name", "sex", "birth_date", "region", "household_type")


def _register_persons(session: Session, envelope: EventEnvelope,
                      persons: list[tuple[str, dict[str, Any], datetime | None]],
                      import_job_id: str | None = None) -> None:
    """``persons``: (person id, fields, registered at), in the event's order."""
    now = clock.utc_now()
    rows = RowSet(session, MirroredPerson, [person_id for person_id, _, _ in persons])
    for person_id, values, registered_at in persons:
        row = rows.get(person_id)
        if row is None:
            rows.add({"person_id": person_id, **values, "life_status": "alive", "registered_at": registered_at,
                      "version": 1, "import_job_id": import_job_id, "placeholder": False,
                      "source_event_id": envelope.id, "received_at": now})
            continue
        _fill(row, values, overwrite=row["version"] <= 1)
        _fill(row, {"registered_at": registered_at, "import_job_id": import_job_id, "life_status": "alive"},
              overwrite=False)  # a life status that arrived first stays
        row["version"] = max(row["version"], 1)
        row["placeholder"] = False
        _stamp(row, envelope, now)
    rows.write()


def on_person_registered(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonRegistered)
    _register_persons(session, envelope, [(e.person_id, {k: getattr(e, k) for k in PERSON_FIELDS}, e.registered_at)])


def on_persons_imported(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonsImported)
    _register_persons(session, envelope, [
        (item.person_id, {k: getattr(item, k) for k in PERSON_FIELDS}, envelope.time) for item in e.persons],
        import_job_id=e.import_job_id)


def on_person_updated(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonUpdated)
    now, rows = clock.utc_now(), RowSet(session, MirroredPerson, [e.person_id])
    row = _get_or_placeholder(rows, e.person_id, envelope, now, version=0)
    changes = dict(e.changes)
    if "birth_date" in changes and isinstance(changes["birth_date"][1], str):
        changes["birth_date"] = [changes["birth_date"][0], datetime.fromisoformat(changes["birth_date"][1]).date()]
    _apply_changes(row, e.version, changes, PERSON_FIELDS)
    _stamp(row, envelope, now)
    rows.write()


def on_person_life_status_changed(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonLifeStatusChanged)
    now, rows = clock.utc_now(), RowSet(session, MirroredPerson, [e.person_id])
    row = _get_or_placeholder(rows, e.person_id, envelope, now, version=0)
    _fill(row, {"citizen_id": e.citizen_id}, overwrite=False)
    if _newer(envelope, row["life_status_changed_at"]):
        row.update(life_status=e.life_status, death_date=e.death_date, imprisoned_from=e.imprisoned_from,
                   imprisoned_until=e.imprisoned_until, life_status_source=e.source,
                   life_status_source_ref=e.source_ref, life_status_changed_at=envelope.time)
    _stamp(row, envelope, now)
    rows.write()


def on_bank_account_added(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonBankAccountAdded)
    now, rows = clock.utc_now(), RowSet(session, MirroredBankAccount, [e.bank_account_id])
    values = {"person_id": e.person_id, "kind": e.kind, "bank_name": e.bank_name, "account_no": e.account_no,
              "holder_name": e.holder_name}
    row = rows.get(e.bank_account_id)
    if row is None:
        rows.add({"bank_account_id": e.bank_account_id, **values, "status": "active",
                  "status_changed_at": envelope.time, "placeholder": False, "source_event_id": envelope.id,
                  "received_at": now})
    else:
        _fill(row, values, overwrite=True)  # the facts of an account never change; a placeholder lacks them
        row["placeholder"] = False
        _stamp(row, envelope, now)
    rows.write()


def on_bank_account_closed(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonBankAccountClosed)
    now, rows = clock.utc_now(), RowSet(session, MirroredBankAccount, [e.bank_account_id])
    row = _get_or_placeholder(rows, e.bank_account_id, envelope, now, person_id=e.person_id, status="closed")
    if _newer(envelope, row["status_changed_at"]):
        row.update(status="closed", closed_reason=e.reason, status_changed_at=envelope.time)
    _stamp(row, envelope, now)
    rows.write()


# -- enrolments ------------------------------------------------------------------------------------------------------


class _Enrolments:
    """The enrolments one event touches (read at once), placeholders for the ones not mirrored yet."""

    def __init__(self, session: Session, envelope: EventEnvelope, ids: Iterable[str]):
        self.envelope, self.now = envelope, clock.utc_now()
        self.rows = RowSet(session, MirroredEnrolment, ids)

    def __call__(self, enrolment_id: str, person_id: str, fund: str) -> Row:
        return _get_or_placeholder(self.rows, enrolment_id, self.envelope, self.now, person_id=person_id, fund=fund)

    def stamp(self, row: Row) -> None:
        _stamp(row, self.envelope, self.now)

    def write(self) -> None:
        self.rows.write()


def _set_status(row: Row, envelope: EventEnvelope, status: str, reason: str | None = None, **extra: Any) -> bool:
    if not _newer(envelope, row["status_changed_at"]):
        return False
    row.update(status=status, status_reason=reason, status_changed_at=envelope.time, **extra)
    return True


def _open_enrolment(enrolments: _Enrolments, *, enrolment_id: str, person_id: str, fund: str,
                    employer_id: str | None, start_period: int, transferred_from: str | None = None) -> None:
    row = enrolments(enrolment_id, person_id, fund)
    # The facts of the opening never change; a placeholder made by a later event lacks them.
    _fill(row, {"employer_id": employer_id, "start_period": start_period, "transferred_from": transferred_from},
          overwrite=False)
    row["placeholder"] = False
    _set_status(row, enrolments.envelope, "active")
    enrolments.stamp(row)


def on_enrolment_opened(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EnrolmentOpened)
    enrolments = _Enrolments(session, envelope, [e.enrolment_id])
    _open_enrolment(enrolments, enrolment_id=e.enrolment_id, person_id=e.person_id, fund=e.fund,
                    employer_id=e.employer_id, start_period=e.start_period)
    enrolments.write()


def on_enrolment_transferred(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EnrolmentTransferred)
    enrolments = _Enrolments(session, envelope, [e.from_enrolment_id, e.to_enrolment_id])
    old = enrolments(e.from_enrolment_id, e.person_id, e.fund)
    _fill(old, {"employer_id": e.from_employer_id}, overwrite=False)
    _set_status(old, envelope, "stopped", "transferred", end_period=e.closed_period)
    old["transferred_to"] = e.to_enrolment_id
    enrolments.stamp(old)
    _open_enrolment(enrolments, enrolment_id=e.to_enrolment_id, person_id=e.person_id, fund=e.fund,
                    employer_id=e.to_employer_id, start_period=e.start_period, transferred_from=e.from_enrolment_id)
    enrolments.write()


def _enrolment_status(session: Session, envelope: EventEnvelope, e: Any, status: str, reason: str | None = None,
                      **extra: Any) -> None:
    enrolments = _Enrolments(session, envelope, [e.enrolment_id])
    row = enrolments(e.enrolment_id, e.person_id, e.fund)
    _set_status(row, envelope, status, reason, **extra)
    enrolments.stamp(row)
    enrolments.write()


def on_enrolment_suspended(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EnrolmentSuspended)
    _enrolment_status(session, envelope, e, "suspended", e.reason)


def on_enrolment_resumed(session: Session, envelope: EventEnvelope) -> None:
    _enrolment_status(session, envelope, envelope.payload_view(EnrolmentResumed), "active")


def on_enrolment_stopped(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EnrolmentStopped)
    _enrolment_status(session, envelope, e, "stopped", e.reason, end_period=e.end_period)


def on_enrolments_imported(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(EnrolmentsImported)
    enrolments = _Enrolments(session, envelope, [item.enrolment_id for item in e.enrolments])
    for item in e.enrolments:
        row = enrolments(item.enrolment_id, item.person_id, item.fund)
        _fill(row, {"employer_id": item.employer_id, "start_period": item.start_period,
                    "import_job_id": e.import_job_id}, overwrite=False)
        row["placeholder"] = False
        if _set_status(row, envelope, item.status):
            row["end_period"] = item.end_period
        enrolments.stamp(row)
    enrolments.write()


def on_duplicate_enrolment_found(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(DuplicateEnrolmentFound)
    funds = ",".join(sorted(e.funds))
    key = (e.person_id, funds, e.overlap_from)
    rows = RowSet(session, MirroredDuplicateEnrolment, [key], key=("person_id", "funds", "overlap_from"))
    row = rows.get(key)
    if row is None:
        rows.add({"id": envelope.id, "person_id": e.person_id, "citizen_id": e.citizen_id, "funds": funds,
                  "overlap_from": e.overlap_from, "overlap_to": e.overlap_to, "import_job_id": e.import_job_id,
                  "source_event_id": envelope.id, "received_at": clock.utc_now()})
    else:
        row.update(overlap_to=e.overlap_to, source_event_id=envelope.id)
    rows.write()


# -- individual accounts ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _account_year_upsert(dialect: str, table: Table) -> Any:
    """Add an event's new postings to their person × year cells in one statement: totals add up; the balance is
    the one of the latest posting in event time (an event older than the one that set it leaves it)."""
    stmt = dialect_insert(dialect, table)
    new = stmt.excluded
    latest = or_(table.c.balance_at.is_(None), new.balance_at >= table.c.balance_at)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={
        "credited_fen": table.c.credited_fen + new.credited_fen,
        "debited_fen": table.c.debited_fen + new.debited_fen,
        "entries": table.c.entries + new.entries,
        "balance_fen": case((latest, new.balance_fen), else_=table.c.balance_fen),
        "balance_at": case((latest, new.balance_at), else_=table.c.balance_at),
        "updated_at": new.updated_at,
    })


def _post(session: Session, envelope: EventEnvelope, postings: Iterable[Any], *, sign: int = 1) -> None:
    """Record the postings (credits, or debits with ``sign`` -1) whose entry id is new, and move their person ×
    year totals once per cell: ``INSERT … ON CONFLICT DO NOTHING RETURNING`` tells which entries are new."""
    now = clock.utc_now()
    entries: dict[str, Row] = {}
    for p in postings:
        entries.setdefault(p.entry_id, {
            "entry_id": p.entry_id, "person_id": p.person_id, "entry_type": p.entry_type,
            "amount_fen": sign * p.amount_fen, "balance_fen": p.balance_fen, "year": p.year,
            "period": getattr(p, "period", None), "idempotency_key": p.idempotency_key, "posted_at": envelope.time,
            "source_event_id": envelope.id, "received_at": now})
    if not entries:
        return
    new = _new_entries(session, [entries[k] for k in sorted(entries)])
    cells: dict[str, Row] = {}
    for entry_id, entry in entries.items():  # the event's order: the cell's balance is its last posting's
        if entry_id not in new:
            continue  # counted already
        key = f"{entry['person_id']}:{entry['year']}"
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = {"id": key, "person_id": entry["person_id"], "year": entry["year"], "credited_fen": 0,
                                 "debited_fen": 0, "entries": 0, "balance_at": envelope.time, "updated_at": now}
        fen = entry["amount_fen"]
        if fen >= 0:
            cell["credited_fen"] += fen
        else:
            cell["debited_fen"] -= fen
        cell["entries"] += 1
        cell["balance_fen"] = entry["balance_fen"]
    if cells:
        table = MirroredAccountYear.__table__
        execute_rows(session, _account_year_upsert(dialect_of(session), table), [cells[k] for k in sorted(cells)])
        expire_cached(session, MirroredAccountYear, ((k,) for k in cells))


@lru_cache(maxsize=2)
def _entry_insert(dialect: str) -> Any:
    """An entry's ``INSERT … ON CONFLICT (entry_id) DO NOTHING`` (``RETURNING`` the ids inserted but on SQLite), built
    once per dialect."""
    E = MirroredAccountEntry  # noqa: N806
    insert = dialect_insert(dialect, E.__table__).on_conflict_do_nothing(index_elements=["entry_id"])
    return insert if dialect == "sqlite" else insert.returning(E.entry_id)


# The entry ids an event names that the mirror has, bound as one parameter (a JSON array), not one per id.
_KNOWN_ENTRIES = select(MirroredAccountEntry.entry_id).where(
    in_parameter("sqlite", MirroredAccountEntry.entry_id, "ids"))


def _new_entries(session: Session, rows: list[Row]) -> set[str]:
    """Insert the entries not mirrored yet; returns their ids. PostgreSQL: ``INSERT … ON CONFLICT DO NOTHING
    RETURNING`` (concurrent replicas each learn which rows were theirs). SQLite (one writer, which this transaction
    is): the known ids are read first and only the others inserted, at the driver."""
    dialect = dialect_of(session)
    insert = _entry_insert(dialect)
    if dialect != "sqlite":
        return set(session.connection().execute(insert, rows).scalars())
    known = set(session.connection().execute(_KNOWN_ENTRIES, {
        "ids": parameter_values("sqlite", [row["entry_id"] for row in rows])}).scalars())
    fresh = [row for row in rows if row["entry_id"] not in known]
    execute_rows(session, insert, fresh)
    return {row["entry_id"] for row in fresh}


def on_account_credited(session: Session, envelope: EventEnvelope) -> None:
    _post(session, envelope, [envelope.payload_view(AccountCredited)])


def on_accounts_credited(session: Session, envelope: EventEnvelope) -> None:
    _post(session, envelope, envelope.payload_view(AccountsCredited).entries)


def on_account_debited(session: Session, envelope: EventEnvelope) -> None:
    _post(session, envelope, [envelope.payload_view(AccountDebited)], sign=-1)


# -- the AGENCY leg: collected lines posted or held ------------------------------------------------------------------

POSTED_COLUMNS = ("status", "person_id", "employer_id", "fund", "period", "employer_fen", "individual_fen",
                  "credited_fen", "held_fen", "entry_id", "source_batch_id")
POSTED_CLEARS = ("reason_code", "reason")  # a posting clears a hold's reason
HELD_COLUMNS = ("status", "person_id", "citizen_id", "fund", "period", "held_fen", "reason_code", "reason",
                "source_batch_id")

# A fund as the plain text it stands for. The sqlite3 driver binds a str subclass (the views' ``Fund`` members) or
# None through its adaptation protocol, ~0.3-0.4 µs each a row more than a str: a posted line's fund goes as text, and
# the reason a posting always clears is ``NULL`` in the statement, not a bound None.
FUND_TEXT: dict[str, str] = {fund: fund.value for fund in Fund}


@lru_cache(maxsize=8)
def _agency_upsert(dialect: str, table: Table, columns: tuple[str, ...], held: bool,
                   clears: tuple[str, ...] = ()) -> Any:
    """A line already mirrored gets ``columns`` (and the event's stamp) and ``clears`` set to NULL (a new row leaves
    them NULL); a hold never overwrites a posting."""
    stmt = dialect_insert(dialect, table)
    new = stmt.excluded
    updates: dict[str, Any] = {c: new[c] for c in (*columns, "source_event_id")}
    updates.update((c, null()) for c in clears)
    updates["updated_at"] = new.received_at  # the time of this event's arrival
    return stmt.on_conflict_do_update(index_elements=["payment_id"], set_=updates,
                                      where=table.c.status != "posted" if held else None)


def _agency_lines(session: Session, lines: dict[str, Row], columns: tuple[str, ...], *, held: bool,
                  clears: tuple[str, ...] = ()) -> None:
    """``lines``: rows by payment id, each naming the columns its kind sets and the event's stamp (one dict per line,
    no defaults merged in). A column left out has no Python-side default: a new row takes the table's (NULL, the
    amounts' 0), an existing one keeps its value unless the kind's upsert sets it (a posting clears a hold's reason;
    a hold never writes a posting's amounts)."""
    if not lines:
        return
    table = MirroredAgencyLine.__table__
    execute_rows(session, _agency_upsert(dialect_of(session), table, columns, held, clears),
                 [lines[k] for k in sorted(lines)])
    expire_cached(session, MirroredAgencyLine, ((k,) for k in lines))


def on_contributions_posted(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(ContributionsPosted)
    event, now, batch = envelope.id, clock.utc_now(), e.source_batch_id
    lines = {line.payment_id: {  # a line twice in the event: the later one stands, as it would one at a time
        "source_event_id": event, "received_at": now, "payment_id": line.payment_id, "status": "posted",
        "person_id": line.person_id, "employer_id": line.employer_id, "fund": FUND_TEXT[line.fund],
        "period": line.period, "employer_fen": line.employer_fen, "individual_fen": line.individual_fen,
        "credited_fen": line.credited_fen, "held_fen": 0, "entry_id": line.entry_id, "source_batch_id": batch}
        for line in e.lines}
    _agency_lines(session, lines, POSTED_COLUMNS, held=False, clears=POSTED_CLEARS)


def on_contributions_held(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(ContributionsHeld)
    event, now, batch = envelope.id, clock.utc_now(), e.source_batch_id
    lines = {line.payment_id: {
        "source_event_id": event, "received_at": now, "payment_id": line.payment_id, "status": "held",
        "person_id": line.person_id, "citizen_id": line.citizen_id, "fund": line.fund, "period": line.period,
        "held_fen": line.amount_fen, "reason_code": line.reason_code, "reason": line.reason, "source_batch_id": batch}
        for line in e.lines}
    _agency_lines(session, lines, HELD_COLUMNS, held=True)


# -- partner data (stream EXCHANGE) ----------------------------------------------------------------------------------


def _life_event(session: Session, envelope: EventEnvelope, *, kind: str, person_id: str, citizen_id: str,
                event_date: Any, until_date: Any, source: str, record_id: str) -> None:
    key = (kind, person_id, source, record_id)
    rows = RowSet(session, MirroredLifeEvent, [key], key=("kind", "person_id", "source", "record_id"))
    row = rows.get(key)
    if row is None:
        rows.add({"id": envelope.id, "kind": kind, "person_id": person_id, "citizen_id": citizen_id,
                  "event_date": event_date, "until_date": until_date, "source": source, "record_id": record_id,
                  "source_event_id": envelope.id, "received_at": clock.utc_now()})
    else:  # the same line reported again: the latest word stands
        row.update(event_date=event_date, until_date=until_date, source_event_id=envelope.id)
    rows.write()


def on_person_died(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonDied)
    _life_event(session, envelope, kind="died", person_id=e.person_id, citizen_id=e.citizen_id,
                event_date=e.death_date, until_date=None, source=e.source, record_id=e.record_id)


def on_person_cremated(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonCremated)
    _life_event(session, envelope, kind="cremated", person_id=e.person_id, citizen_id=e.citizen_id,
                event_date=e.cremation_date, until_date=None, source=e.source, record_id=e.record_id)


def on_person_imprisoned(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonImprisoned)
    _life_event(session, envelope, kind="imprisoned", person_id=e.person_id, citizen_id=e.citizen_id,
                event_date=e.imprisoned_from, until_date=e.imprisoned_until, source=e.source, record_id=e.record_id)


def on_person_released(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonReleased)
    _life_event(session, envelope, kind="released", person_id=e.person_id, citizen_id=e.citizen_id,
                event_date=e.released_on, until_date=None, source=e.source, record_id=e.record_id)


def on_business_registered(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(BusinessRegistered)
    key = (e.uscc, e.source, e.record_id)
    now, rows = clock.utc_now(), RowSet(session, MirroredBusinessRegistration, [key], key=("uscc", "source", "record_id"))
    row = rows.get(key)
    if row is None:
        rows.add({"id": envelope.id, "uscc": e.uscc, "name": e.name, "registered_on": e.registered_on,
                  "employer_id": e.employer_id, "source": e.source, "record_id": e.record_id,
                  "source_event_id": envelope.id, "received_at": now})
    else:
        # Sent again (a reviewer matched it after the employer registered): keep the employer id once known.
        row.update(name=e.name, registered_on=e.registered_on, employer_id=e.employer_id or row["employer_id"])
        _stamp(row, envelope, now)
    rows.write()


# -- the consumers ---------------------------------------------------------------------------------------------------

Handler = Callable[[Session, EventEnvelope], None]

ACCOUNTS_HANDLERS: dict[str, Handler] = {
    EmployerRegistered.event_type: on_employer_registered,
    EmployerUpdated.event_type: on_employer_updated,
    EmployerStatusChanged.event_type: on_employer_status_changed,
    EmployersImported.event_type: on_employers_imported,
    PersonRegistered.event_type: on_person_registered,
    PersonUpdated.event_type: on_person_updated,
    PersonsImported.event_type: on_persons_imported,
    PersonBankAccountAdded.event_type: on_bank_account_added,
    PersonBankAccountClosed.event_type: on_bank_account_closed,
    PersonLifeStatusChanged.event_type: on_person_life_status_changed,
    EnrolmentOpened.event_type: on_enrolment_opened,
    EnrolmentTransferred.event_type: on_enrolment_transferred,
    EnrolmentSuspended.event_type: on_enrolment_suspended,
    EnrolmentResumed.event_type: on_enrolment_resumed,
    EnrolmentStopped.event_type: on_enrolment_stopped,
    EnrolmentsImported.event_type: on_enrolments_imported,
    DuplicateEnrolmentFound.event_type: on_duplicate_enrolment_found,
    AccountCredited.event_type: on_account_credited,
    AccountsCredited.event_type: on_accounts_credited,
    AccountDebited.event_type: on_account_debited,
    **dict.fromkeys(ContributionsPosted.versions(), on_contributions_posted),
    ContributionsHeld.event_type: on_contributions_held,
}

EXCHANGE_HANDLERS: dict[str, Handler] = {
    PersonDied.event_type: on_person_died,
    PersonCremated.event_type: on_person_cremated,
    PersonImprisoned.event_type: on_person_imprisoned,
    PersonReleased.event_type: on_person_released,
    BusinessRegistered.event_type: on_business_registered,
}


# Every accounts.* and exchange.* type is handled; tests/test_event_catalogue.py fails on a new type without a handler
# (a type nobody expected would otherwise be dead-lettered at run time).
ACCOUNTS_CONSUMER = ConsumerSpec(stream="ACCOUNTS", handlers=ACCOUNTS_HANDLERS)
EXCHANGE_CONSUMER = ConsumerSpec(stream="EXCHANGE", handlers=EXCHANGE_HANDLERS)

