"""Rules on the registry's data: S03 (duplicate pension enrolment), S11 (business not registered as an employer) and
S19 (data changed without an approved change request).

**S03** (000 三(九)):

- ``DuplicateEnrolmentFound`` (accounts found overlapping pension schemes in imported history): one case per
  reported overlap, ``S03:reported:<person_id>:<funds>:<overlap_from>`` (the mirror's natural key); the sweep reports
  every mirrored overlap again (so one reported before the rules existed is not missed).
- Active overlap in the mirror: a person with two *active* enrolments in two different pension schemes (PEN_EMP,
  PEN_GOV, PEN_RES) — ``S03:enrolled:<person_id>:<fund>+<fund>``; evaluated when an enrolment opens, resumes or is
  imported, and by the sweep. An overlap already reported open (``overlap_to`` None) for the same funds is not
  reported twice.
- Drawing two pensions for one period: ``payments.find_s03_drawing``.

**S11** (003 三.5), sweep: a business market regulation registered more than ``business_registration_days`` (30)
days before ``as_of`` (day 30 itself is still in time) that oversight's mirror does not know as an employer (no
employer with its USCC, and the partner event did not name one) — ``S11:<uscc>``, suggested class 3.

**S19** (004 第24项: 前台操作和后台审核必须分开，任何修改操作都要经过审批，都要留痕可溯). What oversight can observe,
and therefore checks:

1. ``PersonUpdated`` changing an identity field (citizen id, name, sex, birth date): accounts' API refuses such
   changes (contact details only; identity errors go through no self-service path), so an event carrying one means
   the registry was changed outside the approved process — ``S19:person:<person_id>:v<version>``, at once.
2. ``PersonLifeStatusChanged`` whose ``source`` is neither ``exchange`` (partner data) nor ``correction`` (an
   approved correction) — ``S19:life:<event id>``, at once.
3. Sweep: a change citing ``exchange`` for which no partner record arrived on EXCHANGE (a death or cremation for a
   death; an imprisonment starting on ``imprisoned_from``; a release on ``imprisoned_until`` for a return to alive)
   within ``life_change_grace_hours`` of the change.
4. Sweep: a change citing ``correction`` whose correction accounts' audit chain does not show approved by someone
   other than the requester. The approvals are not events; the sweep endpoint reads accounts'
   ``/audit/entries?entity_type=life_status_correction`` from a cursor (``rule_correction``). Without that feed
   (accounts unreachable) this part is skipped and the sweep says so, never guessed.

What is **not** detectable: a change written straight into another service's database that produces neither an
event nor an audit entry is invisible to oversight until its effects show elsewhere (the audit-chain check finds
edits of the audit log itself, not of business tables); contact-detail updates are front-office changes with a
reason and no approval step in accounts, so they are not flagged; employer updates carry no change-request
reference at all.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from services.contracts import accounts as acc
from services.kernel.events import EventEnvelope
from services.oversight.models import (
    MirroredBusinessRegistration,
    MirroredDuplicateEnrolment,
    MirroredEmployer,
    MirroredEnrolment,
    MirroredLifeEvent,
)
from services.oversight.rules.common import PENSION_FUNDS, chunks, regions_of
from services.oversight.rules.models import RuleCorrection, RuleCursor, RuleLifeChange
from services.oversight.rules.registry import Finding, Tally, raise_findings
from services.kernel.settings import get_settings
from services.kernel import clock

IDENTITY_FIELDS = ("citizen_id", "name", "sex", "birth_date")
LIFE_SOURCES = ("exchange", "correction")
CORRECTION_ENTITY = "life_status_correction"
CORRECTION_CURSOR = "accounts.audit.life_status_correction"


# -- S03 -------------------------------------------------------------------------------------------------------------


def find_s03_reported(session: Session, person_ids: Sequence[str] | None = None) -> list[Finding]:
    D = MirroredDuplicateEnrolment
    rows: list[MirroredDuplicateEnrolment] = []
    for chunk in ([None] if person_ids is None else chunks(sorted(set(person_ids)))):
        query = select(D).order_by(D.person_id, D.funds, D.overlap_from)
        rows.extend(session.execute(query if chunk is None else query.where(D.person_id.in_(chunk))).scalars())
    regions = regions_of(session, {r.person_id for r in rows})
    return [Finding(
        key=f"reported:{r.person_id}:{r.funds}:{r.overlap_from}", subject_type="person", subject_id=r.person_id,
        person_id=r.person_id, region=regions.get(r.person_id),
        title=f"重复参保：{r.funds.replace(',', '、')} 自 {r.overlap_from} 起重叠"
              f"{'至 ' + str(r.overlap_to) if r.overlap_to else '（仍在重叠）'}",
        details={"kind": "reported_overlap", "funds": r.funds.split(","), "overlap_from": r.overlap_from,
                 "overlap_to": r.overlap_to, "import_job_id": r.import_job_id, "source_event_id": r.source_event_id})
        for r in rows]


def _s03_active_pairs() -> tuple[Any, Any]:
    """A person's two active enrolments in different pension schemes not already reported open: the statement for
    every person (the sweep), and the same one for the persons bound to ``ids`` (an event). Built once: aliasing the
    table and building the join again cost more than the query itself for an imported batch."""
    a, b = aliased(MirroredEnrolment), aliased(MirroredEnrolment)
    D = MirroredDuplicateEnrolment
    reported_open = exists().where(D.person_id == a.person_id, D.funds == a.fund + "," + b.fund,
                                   D.overlap_to.is_(None))
    query = (select(a.person_id, a.fund, b.fund, a.enrolment_id, b.enrolment_id, a.start_period, b.start_period,
                    a.employer_id, b.employer_id)
             .join(b, and_(b.person_id == a.person_id, b.fund > a.fund))
             .where(a.fund.in_(PENSION_FUNDS), b.fund.in_(PENSION_FUNDS), a.status == "active",
                    b.status == "active", ~reported_open))
    return query, query.where(a.person_id.in_(bindparam("ids", expanding=True)))


_S03_EVERYONE, _S03_OF_PERSONS = _s03_active_pairs()


def find_s03_enrolled(session: Session, person_ids: Sequence[str] | None = None) -> list[Finding]:
    facts: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for chunk in ([None] if person_ids is None else chunks(sorted(set(person_ids)))):
        rows = session.execute(_S03_EVERYONE) if chunk is None else session.execute(_S03_OF_PERSONS, {"ids": chunk})
        for person_id, fund_a, fund_b, id_a, id_b, start_a, start_b, employer_a, employer_b in rows:
            facts[(person_id, fund_a, fund_b)].append({
                "enrolments": [{"enrolment_id": id_a, "fund": fund_a, "start_period": start_a,
                                "employer_id": employer_a},
                               {"enrolment_id": id_b, "fund": fund_b, "start_period": start_b,
                                "employer_id": employer_b}]})
    regions = regions_of(session, {p for p, _, _ in facts})
    findings = []
    for (person_id, fund_a, fund_b), pairs in sorted(facts.items()):
        enrolments = {e["enrolment_id"]: e for pair in pairs for e in pair["enrolments"]}
        findings.append(Finding(
            key=f"enrolled:{person_id}:{fund_a}+{fund_b}", subject_type="person", subject_id=person_id,
            person_id=person_id, region=regions.get(person_id),
            title=f"重复参保：同时在 {fund_a} 与 {fund_b} 两个养老保险制度中处于参保状态",
            details={"kind": "active_overlap", "funds": [fund_a, fund_b],
                     "enrolments": [enrolments[k] for k in sorted(enrolments)]}))
    return findings


# -- S11 -------------------------------------------------------------------------------------------------------------


def find_s11(session: Session, as_of: date) -> list[Finding]:
    days = get_settings().oversight_rules.business_registration_days
    B, M = MirroredBusinessRegistration, MirroredEmployer
    registered = exists().where(M.uscc == B.uscc)
    rows = session.execute(
        select(B.uscc, B.name, B.registered_on, B.source, B.record_id)
        .where(B.registered_on < as_of - timedelta(days=days), B.employer_id.is_(None), ~registered)
        .order_by(B.uscc, B.registered_on))
    first: dict[str, tuple] = {}
    for row in rows:
        first.setdefault(row[0], row)
    return [Finding(
        key=uscc, subject_type="business", subject_id=uscc,
        title=f"新设立单位逾期未办理社会保险登记：{name}（{registered_on.isoformat()} 登记，已 {(as_of - registered_on).days} 天）",
        details={"uscc": uscc, "name": name, "registered_on": registered_on.isoformat(), "limit_days": days,
                 "source": source, "record_id": record_id})
        for uscc, (_, name, registered_on, source, record_id) in sorted(first.items())]


# -- S19 -------------------------------------------------------------------------------------------------------------


def find_s19_person_update(session: Session, envelope: EventEnvelope) -> list[Finding]:
    e = envelope.payload_view(acc.PersonUpdated)
    changed = sorted(set(e.changes) & set(IDENTITY_FIELDS))
    if not changed:
        return []
    shown = {f: (["已变更", "已变更"] if f == "citizen_id" else e.changes[f]) for f in changed}
    return [Finding(
        key=f"person:{e.person_id}:v{e.version}", subject_type="person", subject_id=e.person_id,
        person_id=e.person_id, region=regions_of(session, [e.person_id]).get(e.person_id),
        title=f"身份信息被修改（未经审批流程）：{'、'.join(changed)}",
        details={"kind": "identity_fields_changed", "version": e.version, "fields": changed, "changes": shown,
                 "actor": envelope.actor.id, "actor_role": envelope.actor.role, "event_id": envelope.id,
                 "at": envelope.time.isoformat()})]


def record_life_change(session: Session, envelope: EventEnvelope) -> RuleLifeChange:
    e = envelope.payload_view(acc.PersonLifeStatusChanged)
    row = session.get(RuleLifeChange, envelope.id)
    if row is None:
        row = RuleLifeChange(
            event_id=envelope.id, person_id=e.person_id, life_status=e.life_status,
            previous_status=e.previous_status, death_date=e.death_date, imprisoned_from=e.imprisoned_from,
            imprisoned_until=e.imprisoned_until, source=e.source, source_ref=e.source_ref,
            actor_id=envelope.actor.id, at=envelope.time, received_at=clock.utc_now())
        session.add(row)
        session.flush()
    return row


def _life_finding(row: RuleLifeChange, region: str | None, problem: str, title: str) -> Finding:
    return Finding(
        key=f"life:{row.event_id}", subject_type="person", subject_id=row.person_id, person_id=row.person_id,
        region=region, title=title,
        details={"kind": problem, "event_id": row.event_id, "life_status": row.life_status,
                 "previous_status": row.previous_status, "source": row.source, "source_ref": row.source_ref,
                 "death_date": row.death_date, "imprisoned_from": row.imprisoned_from,
                 "imprisoned_until": row.imprisoned_until, "actor": row.actor_id, "at": row.at})


def find_s19_life_source(session: Session, row: RuleLifeChange) -> list[Finding]:
    if row.source in LIFE_SOURCES:
        return []
    return [_life_finding(row, regions_of(session, [row.person_id]).get(row.person_id), "unknown_source",
                          f"生存状态被修改为 {row.life_status}，来源“{row.source}”既非共享数据也非经审批的更正")]


def find_s19_unbacked_exchange(session: Session, as_of: date) -> list[Finding]:
    C, L = RuleLifeChange, MirroredLifeEvent
    grace = timedelta(hours=get_settings().oversight_rules.life_change_grace_hours)
    cutoff = datetime.combine(as_of, datetime.min.time(), UTC) - grace
    backed = exists().where(L.person_id == C.person_id, or_(
        and_(C.life_status == "deceased", L.kind.in_(("died", "cremated"))),
        and_(C.life_status == "imprisoned", L.kind == "imprisoned", L.event_date == C.imprisoned_from),
        and_(C.life_status == "alive", L.kind == "released", L.event_date == C.imprisoned_until)))
    rows = list(session.execute(select(C).where(C.source == "exchange", C.at < cutoff, ~backed)
                                .order_by(C.at)).scalars())
    regions = regions_of(session, {r.person_id for r in rows})
    return [_life_finding(r, regions.get(r.person_id), "exchange_without_partner_record",
                          f"生存状态改为 {r.life_status}，称依据共享数据，但未收到相应的部门数据记录") for r in rows]


def find_s19_unapproved_correction(session: Session) -> list[Finding]:
    C, K = RuleLifeChange, RuleCorrection
    approved = exists().where(K.correction_id == C.source_ref, K.status == "approved",
                              or_(K.requested_by.is_(None), K.decided_by != K.requested_by))
    rows = list(session.execute(select(C).where(C.source == "correction", ~approved).order_by(C.at)).scalars())
    corrections = {k.correction_id: k for chunk in chunks([r.source_ref for r in rows])
                   for k in session.execute(select(K).where(K.correction_id.in_(chunk))).scalars()}
    regions = regions_of(session, {r.person_id for r in rows})
    findings = []
    for r in rows:
        known = corrections.get(r.source_ref)
        if known is None:
            why = "审计链中没有该更正申请"
        elif known.status != "approved":
            why = f"更正申请状态为 {known.status}"
        else:
            why = "更正由申请人本人审批"
        finding = _life_finding(r, regions.get(r.person_id), "correction_not_approved",
                                f"生存状态按更正 {r.source_ref} 修改，但{why}")
        finding.details["correction"] = None if known is None else {
            "status": known.status, "requested_by": known.requested_by, "decided_by": known.decided_by,
            "decided_at": known.decided_at}
        findings.append(finding)
    return findings


def record_corrections(session: Session, entries: list[dict[str, Any]]) -> int:
    """Apply accounts' audit entries about life-status corrections (request / approve / reject); returns the highest
    sequence number seen (0 if none). Entries are applied in ``seq`` order and each only once (by its seq)."""
    highest = 0
    for entry in sorted(entries, key=lambda x: x["seq"]):
        highest = max(highest, int(entry["seq"]))
        if entry.get("entity_type") != CORRECTION_ENTITY:
            continue
        action = str(entry.get("action", "")).rsplit(".", 1)[-1]
        row = session.get(RuleCorrection, entry["entity_id"])
        if row is None:
            row = RuleCorrection(correction_id=entry["entity_id"], status="requested", updated_at=clock.utc_now())
        seq = int(entry["seq"])
        if action == "request":
            row.requested_by, row.requested_seq = entry.get("actor_id"), seq
        elif action in ("approve", "reject"):
            row.status = "approved" if action == "approve" else "rejected"
            row.decided_by, row.decided_at, row.decided_seq = entry.get("actor_id"), entry.get("at"), seq
        row.updated_at = clock.utc_now()
        session.add(row)
    session.flush()
    return highest


def correction_cursor(session: Session) -> int:
    row = session.get(RuleCursor, CORRECTION_CURSOR)
    return row.value if row else 0


def move_correction_cursor(session: Session, value: int) -> None:
    row = session.get(RuleCursor, CORRECTION_CURSOR)
    if row is None:
        row = RuleCursor(name=CORRECTION_CURSOR, value=0, updated_at=clock.utc_now())
    if value > row.value:
        row.value, row.updated_at = value, clock.utc_now()
    session.add(row)


# -- event entry points ----------------------------------------------------------------------------------------------


def on_duplicate_enrolment_found(session: Session, envelope: EventEnvelope) -> Tally:
    e = envelope.payload_view(acc.DuplicateEnrolmentFound)
    session.flush()  # the mirror's handler ran first in this transaction
    return raise_findings(session, "S03", [f for f in find_s03_reported(session, [e.person_id])
                                           if f.details["overlap_from"] == e.overlap_from
                                           and f.details["funds"] == sorted(e.funds)])


def on_enrolment_changed(session: Session, envelope: EventEnvelope) -> Tally:
    if envelope.type == acc.EnrolmentsImported.event_type:
        imported = envelope.payload_view(acc.EnrolmentsImported)
        people = {item.person_id for item in imported.enrolments if item.fund in PENSION_FUNDS}
    else:
        e = envelope.payload()
        people = {e.person_id} if getattr(e, "fund", None) in PENSION_FUNDS else set()
    if not people:
        return Tally()
    session.flush()
    return raise_findings(session, "S03", find_s03_enrolled(session, sorted(people)))


def on_person_updated(session: Session, envelope: EventEnvelope) -> Tally:
    return raise_findings(session, "S19", find_s19_person_update(session, envelope))


def check_life_change(session: Session, envelope: EventEnvelope, row: RuleLifeChange) -> Tally:
    return raise_findings(session, "S19", find_s19_life_source(session, row))

