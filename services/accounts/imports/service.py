"""Bulk import of employers, persons and enrolments: legacy registries migrated from CSV or Excel.

The whole path is batched. Rows are read one at a time and handled in chunks of ``CHUNK_ROWS`` (= the 1 000-item
event limit):

1. **row checks, no database**: the row model (kernel ``CitizenId``/``USCC``/``RegionCode``/``BankCard``/``Period``
   types), the caller's region (``OUT_OF_REGION``), ``derive_and_check`` for persons, the period and status of an
   enrolment, and duplicates within the file (``DUPLICATE_IN_FILE``, naming the first row);
2. **chunk checks, a few queries per chunk, never one per row**: duplicates against the database, the persons and
   employers an enrolment refers to, the enrolment rules (``rules.check_new_enrolment``) against the person's active
   enrolments in the database and those accepted earlier in the file, overlapping pension history
   (``rules.pension_overlaps``);
3. **store**: SQLAlchemy Core ``insert()`` executemany, one ``*Imported`` event per chunk through the outbox, one
   audit entry per chunk.

``per_row`` commits each chunk (good rows stored, bad rows reported, memory bounded). ``all_or_nothing`` runs steps
1–2 over the whole file first; any bad row and the job is ``rejected`` with every bad row reported and nothing stored,
otherwise everything is stored in one transaction. A unique-constraint race with a concurrent writer makes a chunk
(or the whole all-or-nothing job) check again, so the losing rows are reported, not lost.

Overlapping pension periods in imported history are not refused: the enrolment is stored, one
``DuplicateEnrolmentFound`` event per overlap goes to oversight (S03), and the overlap is listed in the job report.
Until the schema has a place for such findings they are kept in ``import_rejection`` under the code
``DUPLICATE_ENROLMENT`` and are never counted or listed as rejections.
"""

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from types import SimpleNamespace
from typing import Any, cast

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.enrolments.rules import check_new_enrolment, pension_overlaps
from services.accounts.imports.schemas import (
    COLUMNS,
    ROW_MODELS,
    EmployerRow,
    EnrolmentRow,
    ImportKind,
    ImportMode,
    PersonRow,
)
from services.accounts.models import (
    PENSION_FUNDS,
    Employer,
    Enrolment,
    ImportJob,
    ImportRejection,
    Person,
    fund_group,
)
from services.accounts.persons.identity import derive_and_check
from services.contracts.accounts import (
    MAX_BATCH_ITEMS,
    DuplicateEnrolmentFound,
    EmployersImported,
    EmployerStatusChanged,
    EnrolmentsImported,
    PersonsImported,
)
from services.kernel import archives, clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import region_covers
from services.kernel.bulk import insert_many
from services.kernel.db import unit_of_work
from services.kernel.errors import DomainError, Invalid, NotFound, TooLarge
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from services.kernel.outbox import record_event
from services.kernel.paging import SortKeys
from services.kernel.periods import period_of
from services.kernel.tabular import Table, empty_file, read_table

log = structlog.get_logger(__name__)

SOURCE = "accounts"
CHUNK_ROWS = MAX_BATCH_ITEMS
MAX_ATTEMPTS = 3  # a chunk that loses a unique-constraint race is checked again, then its losers are reported
OVERLAP_CODE = "DUPLICATE_ENROLMENT"  # a finding kept with the rejections table, not a rejection
MAX_FILE_BYTES = 64 * 1024 * 1024


class RowRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Candidate:
    """A row that passed the row checks, waiting for the chunk checks."""

    row_no: int
    row: Any  # the row model
    values: dict[str, Any]
    extra: list[Any]


@dataclass
class Rejection:
    row_no: int
    code: str
    message: str
    raw: dict[str, Any] | None


@dataclass
class Overlap:
    row_no: int
    person_id: str
    citizen_id: str
    funds: list[str]
    overlap_from: int
    overlap_to: int | None
    other_enrolment_id: str


@dataclass
class ChunkResult:
    """What one chunk stores: rows per table, event items, rejections, overlaps, and state for later chunks."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    # The event items as plain dicts: each event is validated once as a whole (Importer.events), not per item.
    items: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)
    extra_events: list[tuple[BaseModel, str]] = field(default_factory=list)  # (payload, subject)
    new_enrolments: list["EnrolmentFacts"] = field(default_factory=list)
    first_row: int = 0
    last_row: int = 0


# -- messages --------------------------------------------------------------------------------------------------------

_GENERIC = {
    "string_too_long": "{label}过长（最多 {max_length} 个字符）",
    "string_too_short": "{label}不能为空",
    "string_pattern_mismatch": "{label}格式错误",
    "int_parsing": "{label}应为整数",
    "int_from_float": "{label}应为整数",
    "int_type": "{label}应为整数",
    "greater_than_equal": "{label}不能小于 {ge}",
    "less_than_equal": "{label}不能大于 {le}",
    "string_type": "{label}应为文本",
    "date_type": "{label}应为日期",
}


def refusal_from(exc: ValidationError, labels: dict[str, str]) -> RowRefused:
    """The first problem's stable code; every problem in the Chinese message."""
    codes, messages = [], []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error.get("loc") else ""
        label = labels.get(name, name)
        kind = error["type"]
        if kind.isupper():  # kernel identifier and period types: the code is the type
            codes.append(kind)
            message = error["msg"]
            messages.append(message if label in message else f"{label}：{message}")
        elif kind == "missing":
            codes.append("REQUIRED_FIELD_MISSING")
            messages.append(f"缺少必填项：{label}")
        else:
            codes.append("INVALID_VALUE")
            template = _GENERIC.get(kind, "{label}的值无效")
            messages.append(template.format(label=label, **(error.get("ctx") or {})))
    return RowRefused(codes[0], "；".join(messages))


def _out_of_region(region: str) -> RowRefused:
    actor_region = context.current().actor.region
    return RowRefused("OUT_OF_REGION", f"无权导入行政区划 {region} 的数据（本人所属 {actor_region or '未知'}）")


def _in_region(region: str) -> bool:
    return region_covers(context.current().actor.region, region)


# -- the importers: one per kind -------------------------------------------------------------------------------------


class Importer:
    """Row checks (``prepare``), chunk checks (``check``), storing (``store``) for one kind of row."""

    kind: ImportKind
    table: Any  # the SQLAlchemy table rows go into
    entity: str

    def __init__(self, job_id: str, actor_id: str, now: datetime):
        self.job_id = job_id
        self.actor_id = actor_id
        self.now = now
        self.labels = {c.field: c.header for c in COLUMNS[self.kind]}
        self.model = ROW_MODELS[self.kind]

    def parse(self, values: dict[str, Any]) -> Any:
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            raise refusal_from(exc, self.labels) from None

    def prepare(self, row: Any) -> Any:
        """Checks needing no database; returns the row's key for duplicates within the file."""
        raise NotImplementedError

    def duplicate_message(self, first_row_no: int) -> str:
        return f"与第 {first_row_no} 行重复"

    def check(self, session: Session, candidates: list[Candidate], result: ChunkResult) -> None:
        raise NotImplementedError

    def accept(self, result: ChunkResult) -> None:
        """A chunk's rows are now part of the job (stored, or to be stored): later chunks must see them."""

    def events(self, items: list[dict[str, Any]]) -> BaseModel:
        raise NotImplementedError

    def store(self, session: Session, result: ChunkResult) -> None:
        insert_many(session, self.table, result.rows)

    def archive_items(self, result: ChunkResult, entry: AuditEntry) -> list[archives.ArchiveItem]:
        """The chunk's registrations, each into the dossier of the one registered (归档, in bulk)."""
        return [archives.act(self.entity, row["id"], f"{self.entity}_registration", row["id"],
                             f"{ARCHIVE_TITLES[self.entity]}（历史数据导入）",
                             f"导入登记 {row['name']}（导入批次 {self.job_id}）", audit=entry,
                             references={"import_job_id": self.job_id},
                             registration=(row.get("citizen_id") or row["uscc"], row["name"], row["region"]))
                for row in result.rows]


ARCHIVE_TITLES = {"employer": "参保单位登记", "person": "参保人员登记"}


class EmployerImporter(Importer):
    kind = ImportKind.employers
    table = Employer.__table__
    entity = "employer"

    def prepare(self, row: EmployerRow) -> Any:
        if not _in_region(row.region):
            raise _out_of_region(row.region)
        return row.uscc

    def duplicate_message(self, first_row_no: int) -> str:
        return f"统一社会信用代码与第 {first_row_no} 行重复"

    def check(self, session: Session, candidates: list[Candidate], result: ChunkResult) -> None:
        usccs = [c.row.uscc for c in candidates]
        existing = set(session.execute(select(Employer.uscc).where(Employer.uscc.in_(usccs))).scalars())
        for c in candidates:
            row: EmployerRow = c.row
            if row.uscc in existing:
                result.rejections.append(Rejection(c.row_no, "EMPLOYER_ALREADY_REGISTERED", "统一社会信用代码已登记，不能重复登记", None))
                continue
            employer_id = new_event_id()
            name = row.name.strip()
            result.rows.append({
                "id": employer_id, "uscc": row.uscc, "name": name, "region": row.region,
                "unit_type": row.unit_type, "industry_risk_class": row.industry_risk_class,
                "contact_name": row.contact_name, "contact_phone": row.contact_phone, "address": row.address,
                "bank_name": row.bank_name, "bank_account_no": row.bank_account_no, "status": row.status,
                "registered_at": self.now, "registered_by": self.actor_id, "updated_at": None, "version": 1,
            })
            result.ids.append(employer_id)
            result.items.append(dict(employer_id=employer_id, uscc=row.uscc, name=name, region=row.region,
                                     unit_type=row.unit_type, industry_risk_class=row.industry_risk_class))
            if row.status != "active":
                # EmployersImported carries no status: tell consumers that this employer is not active.
                result.extra_events.append((EmployerStatusChanged(
                    employer_id=employer_id, uscc=row.uscc, status=row.status, previous_status="active",
                    effective_date=self.now.date(), reason=f"历史数据迁移导入（导入批次 {self.job_id}）",
                ), employer_id))

    def events(self, items: list[dict[str, Any]]) -> BaseModel:
        return EmployersImported.model_validate({"import_job_id": self.job_id, "employers": items})


class PersonImporter(Importer):
    kind = ImportKind.persons
    table = Person.__table__
    entity = "person"

    def prepare(self, row: PersonRow) -> Any:
        if not _in_region(row.region):
            raise _out_of_region(row.region)
        try:
            row.sex, row.birth_date = derive_and_check(row.citizen_id, declared_sex=row.sex,
                                                       declared_birth_date=row.birth_date, today=self.now.date())
        except DomainError as exc:
            raise RowRefused(exc.code, exc.message) from None
        return row.citizen_id

    def duplicate_message(self, first_row_no: int) -> str:
        return f"公民身份号码与第 {first_row_no} 行重复"

    def check(self, session: Session, candidates: list[Candidate], result: ChunkResult) -> None:
        ids = [c.row.citizen_id for c in candidates]
        existing = set(session.execute(select(Person.citizen_id).where(Person.citizen_id.in_(ids))).scalars())
        for c in candidates:
            row: PersonRow = c.row
            if row.citizen_id in existing:
                result.rejections.append(Rejection(c.row_no, "PERSON_ALREADY_REGISTERED", "公民身份号码已登记，不能重复登记", None))
                continue
            person_id = new_event_id()
            name = row.name.strip()
            nationality = row.nationality.upper()
            result.rows.append({
                "id": person_id, "citizen_id": row.citizen_id, "name": name, "sex": row.sex,
                "birth_date": row.birth_date, "nationality": nationality, "phone": row.phone,
                "address": row.address, "household_type": row.household_type, "region": row.region,
                "life_status": "alive", "death_date": None, "imprisoned_from": None, "imprisoned_until": None,
                "registered_at": self.now, "registered_by": self.actor_id, "updated_at": None, "version": 1,
            })
            result.ids.append(person_id)
            result.items.append(dict(person_id=person_id, citizen_id=row.citizen_id, name=name, sex=row.sex,
                                     birth_date=row.birth_date, region=row.region, household_type=row.household_type))

    def events(self, items: list[dict[str, Any]]) -> BaseModel:
        return PersonsImported.model_validate({"import_job_id": self.job_id, "persons": items})


@dataclass(slots=True)
class EnrolmentFacts:
    """What the enrolment rules read of an enrolment (in the database or accepted earlier in the file)."""

    id: str
    person_id: str
    fund: str
    fund_group: str
    employer_id: str | None
    start_period: int
    end_period: int | None
    status: str


ENROLMENT_FACTS = tuple(getattr(Enrolment, name) for name in EnrolmentFacts.__slots__)
PERSON_FACTS = (Person.id, Person.citizen_id, Person.region, Person.life_status, Person.death_date)
EMPLOYER_FACTS = (Employer.id, Employer.uscc, Employer.region, Employer.status)

# Stand-ins for checking a history row with the enrolment rules (see EnrolmentImporter.check).
_ALIVE = SimpleNamespace(life_status="alive")
_HISTORIC_EMPLOYER = SimpleNamespace(status="active")


class EnrolmentImporter(Importer):
    kind = ImportKind.enrolments
    table = Enrolment.__table__
    entity = "enrolment"

    def __init__(self, job_id: str, actor_id: str, now: datetime):
        super().__init__(job_id, actor_id, now)
        # Enrolments this job has accepted so far, by person: the database does not show them yet in
        # all_or_nothing mode (and shows them in per_row mode; merged by id).
        self.accepted: dict[str, list[EnrolmentFacts]] = {}

    def prepare(self, row: EnrolmentRow) -> Any:
        if row.status is None:
            row.status = "stopped" if row.end_period is not None else "active"
        if row.status == "stopped" and row.end_period is None:
            raise RowRefused("END_PERIOD_REQUIRED", "终止缴费的参保记录须填写参保终止年月")
        if row.status != "stopped" and row.end_period is not None:
            raise RowRefused("ENROLMENT_STATUS_INVALID", "填写了参保终止年月的记录，参保状态应为终止缴费")
        if row.end_period is not None and row.end_period < row.start_period:
            raise RowRefused("PERIOD_RANGE_INVALID", "参保终止年月早于参保开始年月")
        return (row.citizen_id, row.fund, row.start_period)

    def duplicate_message(self, first_row_no: int) -> str:
        return f"同一人员、险种和参保开始年月的记录与第 {first_row_no} 行重复"

    def check(self, session: Session, candidates: list[Candidate], result: ChunkResult) -> None:
        # Plain rows and EnrolmentFacts, not ORM objects: the rules read attributes only, and building a validated
        # model per enrolment cost more than every check of the row together.
        citizen_ids = {c.row.citizen_id for c in candidates}
        persons = {p.citizen_id: p for p in
                   session.execute(select(*PERSON_FACTS).where(Person.citizen_id.in_(citizen_ids)))}
        usccs = {c.row.uscc for c in candidates if c.row.uscc}
        employers = {e.uscc: e for e in
                     session.execute(select(*EMPLOYER_FACTS).where(Employer.uscc.in_(usccs)))} if usccs else {}
        person_ids = {p.id for p in persons.values()}
        known: dict[str, dict[str, EnrolmentFacts]] = {}
        for e in session.execute(select(*ENROLMENT_FACTS).where(Enrolment.person_id.in_(person_ids))):
            known.setdefault(e.person_id, {})[e.id] = EnrolmentFacts(*e)
        for person_id, rows in self.accepted.items():
            if person_id in known or person_id in person_ids:
                target = known.setdefault(person_id, {})
                for e in rows:
                    target.setdefault(e.id, e)

        for c in candidates:
            row: EnrolmentRow = c.row
            try:
                person = persons.get(row.citizen_id)
                if person is None:
                    raise RowRefused("PERSON_NOT_FOUND", "该公民身份号码的人员尚未登记，请先导入参保人员")
                employer = None
                if row.uscc:
                    employer = employers.get(row.uscc)
                    if employer is None:
                        raise RowRefused("EMPLOYER_NOT_FOUND", "该统一社会信用代码的单位尚未登记，请先导入用人单位")
                # As at the counter: the caller must cover the person's district and the employer's.
                for region in (person.region, employer.region if employer is not None else None):
                    if region is not None and not _in_region(region):
                        raise _out_of_region(region)
                theirs = known.setdefault(person.id, {})
                for e in theirs.values():
                    if e.fund == row.fund and e.start_period == row.start_period:
                        raise RowRefused("ENROLMENT_ALREADY_EXISTS",
                                         f"该人员险种 {row.fund} 自 {row.start_period} 起的参保记录已存在")
                if row.status == "stopped":
                    # History: whether the employer is active *now* does not matter for a period that has ended,
                    # nor does a death after it; the fund and employer-or-not rules do.
                    check_new_enrolment(person=cast(Person, _ALIVE), fund=row.fund,
                                        employer=cast(Employer, _HISTORIC_EMPLOYER) if employer else None, active=())
                    if (person.life_status == "deceased" and person.death_date is not None
                            and row.start_period > period_of(person.death_date)):
                        raise RowRefused("PERSON_DECEASED", "参保开始年月晚于该人员的死亡日期")
                else:
                    # The rules look at the person's open enrolments (in the database and earlier in the file).
                    check_new_enrolment(person=person, fund=row.fund, employer=employer, active=list(theirs.values()))
                if row.fund not in PENSION_FUNDS:
                    # One enrolment per fund at a time: overlapping periods of the same fund are refused (pension
                    # overlaps are different: stored and reported, below).
                    for e in theirs.values():
                        if e.fund_group == fund_group(row.fund) and _overlap(e, row.start_period, row.end_period):
                            until = e.end_period if e.end_period is not None else "至今"
                            raise RowRefused("ENROLMENT_PERIOD_OVERLAP",
                                             f"参保期间与该人员险种 {e.fund} 的另一参保记录（{e.start_period}–{until}）重叠")
            except RowRefused as exc:
                result.rejections.append(Rejection(c.row_no, exc.code, exc.message, None))
                continue
            except DomainError as exc:
                result.rejections.append(Rejection(c.row_no, exc.code, exc.message, None))
                continue

            values = {
                "id": new_event_id(), "person_id": person.id, "fund": row.fund, "fund_group": fund_group(row.fund),
                "employer_id": employer.id if employer is not None else None,
                "start_period": row.start_period, "end_period": row.end_period, "status": row.status,
                "stop_reason": (row.stop_reason or "历史数据迁移导入") if row.status == "stopped" else None,
                "transferred_from": None, "created_at": self.now, "created_by": self.actor_id,
                "updated_at": None, "version": 1,
            }
            enrolment = EnrolmentFacts(*(values[name] for name in EnrolmentFacts.__slots__))
            if row.fund in PENSION_FUNDS:
                for other in theirs.values():
                    if other.fund not in PENSION_FUNDS:
                        continue
                    for found in pension_overlaps([other, enrolment]):
                        result.overlaps.append(Overlap(c.row_no, person.id, person.citizen_id, list(found.funds),
                                                       found.overlap_from, found.overlap_to, other.id))
            theirs[enrolment.id] = enrolment
            result.rows.append(values)
            result.ids.append(enrolment.id)
            result.new_enrolments.append(enrolment)
            result.items.append(dict(
                enrolment_id=enrolment.id, person_id=person.id, fund=row.fund, employer_id=values["employer_id"],
                start_period=row.start_period, end_period=row.end_period, status=row.status))
        for o in result.overlaps:
            result.extra_events.append((DuplicateEnrolmentFound(
                person_id=o.person_id, citizen_id=o.citizen_id, funds=o.funds, overlap_from=o.overlap_from,
                overlap_to=o.overlap_to, import_job_id=self.job_id), o.person_id))

    def accept(self, result: ChunkResult) -> None:
        for e in result.new_enrolments:
            self.accepted.setdefault(e.person_id, []).append(e)

    def events(self, items: list[dict[str, Any]]) -> BaseModel:
        return EnrolmentsImported.model_validate({"import_job_id": self.job_id, "enrolments": items})

    def archive_items(self, result: ChunkResult, entry: AuditEntry) -> list[archives.ArchiveItem]:
        """A person's enrolments of the chunk as one item in their dossier (one 参保登记 covers the funds it
        names); into an employer's, one item per chunk naming how many of its staff were enrolled (an employer's
        增员 is one filing, not one per person)."""
        by_person: dict[str, list[dict[str, Any]]] = {}
        for row in result.rows:
            by_person.setdefault(row["person_id"], []).append(row)
        items = [archives.act(
            archives.PERSON, person_id, "enrolment", rows[0]["id"], "参保登记（历史数据导入）",
            "参保登记：" + "、".join(f"{r['fund']} {r['start_period']} 起（{r['status']}）" for r in rows), audit=entry,
            references={"enrolment_ids": ",".join(r["id"] for r in rows), "import_job_id": self.job_id})
            for person_id, rows in by_person.items()]
        staff = Counter(row["employer_id"] for row in result.rows if row["employer_id"])
        items += [archives.act(archives.EMPLOYER, employer_id, "enrolment", f"{self.job_id}/{result.first_row}",
                               "参保人员增加（历史数据导入）",
                               f"导入参保登记 {n} 条（第 {result.first_row}–{result.last_row} 行）", audit=entry,
                               references={"import_job_id": self.job_id}) for employer_id, n in staff.items()]
        return items


def _overlap(e: EnrolmentFacts, start: int, end: int | None) -> bool:
    return start <= (e.end_period if e.end_period is not None else 999912) and e.start_period <= (end or 999912)


IMPORTERS: dict[ImportKind, type[Importer]] = {
    ImportKind.employers: EmployerImporter,
    ImportKind.persons: PersonImporter,
    ImportKind.enrolments: EnrolmentImporter,
}


# -- the job ---------------------------------------------------------------------------------------------------------


@dataclass
class PreparedChunk:
    """A chunk after the row checks."""

    number: int
    candidates: list[Candidate]
    rejections: list[Rejection]
    first_row: int
    last_row: int


def row_key(key: Any) -> bytes:
    """A row's key for duplicates within the file as 16 bytes: a city's file has millions of rows, and the key itself
    (a tuple of strings) would cost some 250 bytes a row for the whole run; two different keys share a digest with
    odds of about 1e-25 in ten million rows."""
    return hashlib.blake2b(repr(key).encode(), digest_size=16).digest()


class ImportRun:
    def __init__(self, engine: Engine, kind: ImportKind, mode: ImportMode, table: Table, job: ImportJob,
                 chunk_rows: int = CHUNK_ROWS):
        self.engine = engine
        self.chunk_rows = chunk_rows
        self.kind = kind
        self.mode = mode
        self.table = table
        self.job = job
        self.importer = IMPORTERS[kind](job.id, job.created_by, job.created_at)
        self.seen: dict[bytes, int] = {}  # row_key → first row number, for duplicates within the file
        self.total = 0  # data rows read
        self.accepted = 0
        self.rejected = 0
        self.overlaps = 0

    # -- step 1 ------------------------------------------------------------------------------------------------------

    def chunks(self, rows: Iterator[tuple[int, dict[str, Any], list[Any]]], number: int = 0,
               ) -> Iterator[PreparedChunk]:
        while batch := list(islice(rows, self.chunk_rows)):
            number += 1
            self.total += len(batch)
            candidates, rejections = [], []
            for row_no, values, extra in batch:
                try:
                    if extra:
                        raise RowRefused("ROW_MALFORMED", f"该行的单元格多于表头（多出 {len(extra)} 个）")
                    row = self.importer.parse(values)
                    key = row_key(self.importer.prepare(row))
                    first = self.seen.get(key)
                    if first is not None:
                        raise RowRefused("DUPLICATE_IN_FILE", self.importer.duplicate_message(first))
                    self.seen[key] = row_no
                except RowRefused as exc:
                    rejections.append(Rejection(row_no, exc.code, exc.message, self.table.raw(values, extra)))
                    continue
                candidates.append(Candidate(row_no, row, values, extra))
            yield PreparedChunk(number, candidates, rejections, batch[0][0], batch[-1][0])

    # -- step 2 ------------------------------------------------------------------------------------------------------

    def check(self, session: Session, chunk: PreparedChunk) -> ChunkResult:
        result = ChunkResult(first_row=chunk.first_row, last_row=chunk.last_row)
        if chunk.candidates:
            self.importer.check(session, chunk.candidates, result)
        by_row = {c.row_no: c for c in chunk.candidates}
        for r in result.rejections:  # rows refused by the chunk checks: keep them as uploaded
            c = by_row[r.row_no]
            r.raw = self.table.raw(c.values, c.extra)
        result.rejections = sorted(chunk.rejections + result.rejections, key=lambda r: r.row_no)
        return result

    # -- step 3 ------------------------------------------------------------------------------------------------------

    def store(self, session: Session, result: ChunkResult, chunk_no: int) -> None:
        self.importer.store(session, result)
        for start in range(0, len(result.items), MAX_BATCH_ITEMS):
            record_event(session, self.importer.events(result.items[start:start + MAX_BATCH_ITEMS]),
                         source=SOURCE, subject=self.job.id)
        for payload, subject in result.extra_events:
            record_event(session, cast(Any, payload), source=SOURCE, subject=subject)
        if result.overlaps:
            self.write_overlaps(session, result.overlaps)
        if result.ids:
            entry = append_audit(session, action=f"import.{self.kind.value}.stored", entity_type="import_job",
                         entity_id=self.job.id,
                         detail={"kind": self.kind.value, "chunk": chunk_no,
                                 "rows": [result.first_row, result.last_row],
                                 "accepted": len(result.ids), "rejected": len(result.rejections),
                                 "overlaps": len(result.overlaps), f"{self.importer.entity}_ids": result.ids})
            archives.file_items(session, self.importer.archive_items(result, entry))

    def write_rejections(self, session: Session, rejections: Sequence[Rejection]) -> None:
        for start in range(0, len(rejections), CHUNK_ROWS):
            session.execute(insert(ImportRejection.__table__), [
                {"job_id": self.job.id, "row_no": r.row_no, "code": r.code, "message": r.message,
                 "raw": json.dumps(r.raw, ensure_ascii=False) if r.raw is not None else None}
                for r in rejections[start:start + CHUNK_ROWS]
            ])

    def write_overlaps(self, session: Session, overlaps: Sequence[Overlap]) -> None:
        session.execute(insert(ImportRejection.__table__), [
            {"job_id": self.job.id, "row_no": o.row_no, "code": OVERLAP_CODE, "message": overlap_message(o),
             "raw": json.dumps({"person_id": o.person_id, "funds": o.funds, "overlap_from": o.overlap_from,
                                "overlap_to": o.overlap_to, "other_enrolment_id": o.other_enrolment_id},
                               ensure_ascii=False)}
            for o in overlaps
        ])

    def update_job(self, session: Session, **values: Any) -> None:
        values.setdefault("accepted_rows", self.accepted)
        values.setdefault("rejected_rows", self.rejected)
        values.setdefault("total_rows", self.total)
        session.execute(update(ImportJob.__table__).where(ImportJob.__table__.c.id == self.job.id).values(**values))
        for name, value in values.items():
            setattr(self.job, name, value)

    # -- the modes ---------------------------------------------------------------------------------------------------

    def per_row(self, rows: Iterator[tuple[int, dict[str, Any], list[Any]]]) -> None:
        for chunk in self.chunks(rows):
            for attempt in range(1, MAX_ATTEMPTS + 1):
                with unit_of_work(self.engine) as session:
                    try:
                        result = self.check(session, chunk)
                        self.store(session, result, chunk.number)
                        self.write_rejections(session, result.rejections)
                        accepted, rejected = self.accepted + len(result.ids), self.rejected + len(result.rejections)
                        self.update_job(session, accepted_rows=accepted, rejected_rows=rejected)
                        session.flush()
                    except IntegrityError:
                        session.rollback()
                        if attempt == MAX_ATTEMPTS:
                            raise
                        log.info("import.chunk_retry", job_id=self.job.id, chunk=chunk.number, attempt=attempt)
                        continue
                self.accepted, self.rejected = accepted, rejected
                self.overlaps += len(result.overlaps)
                self.importer.accept(result)
                break
        with unit_of_work(self.engine) as session:
            self.finish(session, "completed")
            session.flush()

    def all_or_nothing(self, read_rows: Any) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            results: list[ChunkResult] = []
            rejections: list[Rejection] = []
            for chunk in self.chunks(read_rows()):
                with unit_of_work(self.engine) as session:
                    result = self.check(session, chunk)
                    session.rollback()  # read only
                self.importer.accept(result)
                rejections.extend(result.rejections)
                results.append(result)
            accepted = sum(len(r.ids) for r in results)
            with unit_of_work(self.engine) as session:
                if rejections:
                    self.accepted, self.rejected = 0, len(rejections)
                    self.write_rejections(session, rejections)
                    self.finish(session, "rejected", would_accept=accepted)
                    session.flush()
                    return
                try:
                    for number, result in enumerate(results, start=1):
                        self.store(session, result, number)
                    self.accepted, self.rejected = accepted, 0
                    self.overlaps = sum(len(r.overlaps) for r in results)
                    self.finish(session, "completed")
                    session.flush()
                    return
                except IntegrityError:
                    session.rollback()
                    self.accepted = self.overlaps = 0
                    if attempt == MAX_ATTEMPTS:
                        raise
                    log.info("import.job_retry", job_id=self.job.id, attempt=attempt)
                    self.restart()

    def restart(self) -> None:
        self.seen.clear()
        self.total = 0
        self.importer = IMPORTERS[self.kind](self.job.id, self.job.created_by, self.job.created_at)

    def finish(self, session: Session, status: str, **detail: Any) -> None:
        finished = clock.utc_now()
        self.update_job(session, status=status, finished_at=finished)
        append_audit(session, action=f"import.{status}", entity_type="import_job", entity_id=self.job.id,
                     detail={"kind": self.kind.value, "mode": self.mode.value, "filename": self.job.filename,
                             "total": self.total, "accepted": self.accepted,
                             "rejected": self.rejected, "overlaps": self.overlaps, **detail})


def overlap_message(o: Overlap) -> str:
    until = f"{o.overlap_to}" if o.overlap_to is not None else "至今"
    return (f"养老保险参保期间重叠（{'、'.join(o.funds)}，{o.overlap_from}–{until}）：记录已导入，"
            f"已作为重复参保疑点上报（S03）")


# -- entry points ----------------------------------------------------------------------------------------------------


def run_import(engine: Engine, *, kind: ImportKind | str, data: bytes, filename: str,
               mode: ImportMode | str = ImportMode.per_row) -> tuple[ImportJob, int]:
    """Import one file for the current actor; returns the finished job and how many overlaps it reported.

    File-level problems (columns, encoding, empty, format) raise ``ImportFileError`` (422) before any job exists.
    """
    kind, mode = ImportKind(kind), ImportMode(mode)
    if len(data) > MAX_FILE_BYTES:
        raise TooLarge("IMPORT_FILE_TOO_LARGE", f"导入文件不能超过 {MAX_FILE_BYTES // (1024 * 1024)} MB，请分批导入")
    columns = COLUMNS[kind]
    table = read_table(data, columns)
    rows = table.rows()
    first = next(rows, None)
    if first is None:
        raise empty_file("导入文件只有表头，没有数据行")

    def all_rows() -> Iterator[tuple[int, dict[str, Any], list[Any]]]:
        yield first
        yield from rows

    actor = context.current().actor
    job = ImportJob(
        id=new_event_id(), kind=kind.value, filename=(filename or "upload")[:200], file_format=table.file_format,
        encoding=table.encoding, mode=mode.value, status="running", created_at=clock.utc_now(),
        created_by=actor.id,
    )
    with unit_of_work(engine) as session:
        session.add(job)
        append_audit(session, action="import.started", entity_type="import_job", entity_id=job.id,
                     detail={"kind": kind.value, "mode": mode.value, "filename": job.filename,
                             "format": table.file_format, "encoding": table.encoding})
        session.flush()
    run = ImportRun(engine, kind, mode, table, job)
    try:
        if mode is ImportMode.per_row:
            run.per_row(all_rows())
        else:
            # Read twice only if a race forces a second pass; the first pass reads the table already open.
            passes = iter([all_rows])

            def read_rows() -> Iterator[tuple[int, dict[str, Any], list[Any]]]:
                reader = next(passes, None)
                return reader() if reader is not None else read_table(data, columns).rows()

            run.all_or_nothing(read_rows)
    except Exception:
        log.exception("import.failed", job_id=job.id, kind=kind.value)
        with unit_of_work(engine) as session:
            run.update_job(session, status="failed", finished_at=clock.utc_now())
            session.flush()
        raise
    log.info("import.finished", job_id=job.id, kind=kind.value, mode=mode.value, status=job.status,
             accepted=job.accepted_rows, rejected=job.rejected_rows, overlaps=run.overlaps)
    return job, run.overlaps


def _visible(job: ImportJob | None) -> ImportJob:
    """A clerk sees the jobs they ran; internal control sees every job."""
    actor = context.current().actor
    if job is None or (actor.role != "internal_auditor" and job.created_by != actor.id):
        raise NotFound("IMPORT_JOB_NOT_FOUND", "导入任务不存在")
    return job


def get_job(session: Session, job_id: str) -> tuple[ImportJob, int]:
    job = _visible(session.get(ImportJob, job_id))
    return job, count_overlaps(session, job.id)


def count_overlaps(session: Session, job_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(ImportRejection)
        .where(ImportRejection.job_id == job_id, ImportRejection.code == OVERLAP_CODE)
    ).scalar_one()


IMPORT_SORT = SortKeys(ImportJob.id, descending_by_default=True, created_at=ImportJob.created_at, kind=ImportJob.kind,
                       status=ImportJob.status, filename=ImportJob.filename, total_rows=ImportJob.total_rows,
                       accepted_rows=ImportJob.accepted_rows, rejected_rows=ImportJob.rejected_rows,
                       created_by=ImportJob.created_by)


def list_jobs(session: Session, *, after: str | None, limit: int,
              sort: str | None = None) -> tuple[list[tuple[ImportJob, int]], str | None]:
    """The caller's jobs, newest first (ids are time-ordered), or by ``sort`` (IMPORT_SORT)."""
    actor = context.current().actor
    query = select(ImportJob)
    if actor.role != "internal_auditor":
        query = query.where(ImportJob.created_by == actor.id)
    jobs, next_cursor = IMPORT_SORT.page(session, query, sort=sort, after=after, limit=limit)
    return [(j, count_overlaps(session, j.id)) for j in jobs], next_cursor


def _parse_cursor(after: str | None) -> tuple[int, int] | None:
    if not after:
        return None
    try:
        row_no, rid = after.split("-", 1)
        return int(row_no), int(rid)
    except ValueError:
        raise Invalid("INVALID_CURSOR", "分页游标无效") from None


def list_findings(session: Session, job_id: str, *, overlaps: bool, after: str | None, limit: int,
                  code: str | None = None) -> tuple[list[ImportRejection], str | None]:
    """Rejected rows (or reported overlaps) of a job in row order; the cursor is ``<row_no>-<id>``."""
    job = _visible(session.get(ImportJob, job_id))
    query = select(ImportRejection).where(ImportRejection.job_id == job.id)
    query = query.where(ImportRejection.code == OVERLAP_CODE if overlaps else ImportRejection.code != OVERLAP_CODE)
    if code:
        query = query.where(ImportRejection.code == code)
    cursor = _parse_cursor(after)
    if cursor is not None:
        row_no, rid = cursor
        query = query.where((ImportRejection.row_no > row_no)
                            | ((ImportRejection.row_no == row_no) & (ImportRejection.id > rid)))
    rows = list(session.execute(query.order_by(ImportRejection.row_no, ImportRejection.id).limit(limit + 1)).scalars())
    next_cursor = f"{rows[limit - 1].row_no}-{rows[limit - 1].id}" if len(rows) > limit else None
    return rows[:limit], next_cursor

