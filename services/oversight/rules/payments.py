"""Rules on benefit payments: S01 (paid after death), S02 (paid during imprisonment), S03 (two pensions for one
period), S04 (survival certification overdue and still paid), S05 (unemployment benefit while employed) and S07
(paid into an account not in the beneficiary's name, or one account for several persons).

Facts. ``PaymentsSettled`` paid lines become ``rule_paid_period`` rows (person × fund × period) and move the person's
``rule_beneficiary`` row (first and last paid period); ``SurvivalCertified`` moves its last certification;
``PaymentsIssued`` lines become ``rule_payee`` rows (account digest × person). Failed lines are not payments.

When they run. On ``PaymentsSettled`` for the persons of the event (S01, S02, S03 drawing, S04, S05 for UNEMP);
on a life-status change or a partner's death/imprisonment/release for that person (S01, S02: a death reported
after the payment); on ``PaymentsIssued`` (S07). The sweep runs S01, S02, S04 and S05 over everyone (S05 also
catches an enrolment reported after the payment, e.g. an import of past employment).

Windows (the same as benefits' own overpayment rules, 001 第二十七条): after death, a period is payable up to the
death month itself, not the month after; during imprisonment, the month it began is payable, the months after it up
to the month it ended are not (open while no end is known). Oversight takes the dates from the registry mirror
(``mirrored_person``) and from the partner records themselves (``mirrored_life_event``: a death or an imprisonment
the partner reported counts even if the registry did not apply it, unless the registry corrected the person back
to alive by an approved correction).
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, and_, cast, func, literal_column, null, or_, select, union_all
from sqlalchemy.orm import aliased
from sqlmodel import Session

from services.contracts import benefits as ben
from services.kernel.events import EventEnvelope
from services.kernel.periods import add_months
from services.oversight.facts import FactHandler
from services.oversight.models import MirroredEnrolment, MirroredLifeEvent, MirroredPerson
from services.oversight.rules.common import (
    EMPLOYED_FUNDS,
    PENSION_FUNDS,
    UNEMPLOYMENT_FUND,
    account_key,
    bump,
    chunks,
    index_of,
    lock_persons,
    month_index,
    period_from_index,
    period_start,
    persons,
    regions_of,
    same_name,
    yuan,
)
from services.oversight.rules.models import RuleBeneficiary, RulePaidPeriod, RulePayee
from services.oversight.rules.registry import Finding, Tally, raise_findings
from services.kernel.settings import get_settings

P, L, R = MirroredPerson, MirroredLifeEvent, RulePaidPeriod


# -- facts -----------------------------------------------------------------------------------------------------------


def record_paid(session: Session, e: ben.PaymentsSettled, at: datetime) -> set[str]:
    """Paid lines → paid periods and beneficiaries; returns the persons paid."""
    periods: dict[tuple[str, int], dict[str, Any]] = {}
    for line in e.lines:
        if line.result != "paid":
            continue
        row = periods.get((line.person_id, line.period))
        if row is None:
            row = periods[(line.person_id, line.period)] = {
                "person_id": line.person_id, "fund": e.fund, "period": line.period,
                "period_start": period_start(line.period), "paid_fen": 0, "lines": 0,
                "last_line_id": line.payroll_line_id, "first_paid_at": at}
        row["paid_fen"] += line.amount_fen
        row["lines"] += 1
        row["last_line_id"] = line.payroll_line_id
    bump(session, RulePaidPeriod, periods.values(), add=("paid_fen", "lines"), overwrite=("last_line_id",),
         least=("first_paid_at",))
    people: dict[str, dict[str, Any]] = {}
    for (person_id, period), _ in periods.items():
        row = people.setdefault(person_id, {"person_id": person_id, "first_paid_period": period,
                                            "first_paid_index": month_index(period), "last_paid_period": period,
                                            "last_paid_index": month_index(period)})
        if period < row["first_paid_period"]:
            row["first_paid_period"], row["first_paid_index"] = period, month_index(period)
        if period > row["last_paid_period"]:
            row["last_paid_period"], row["last_paid_index"] = period, month_index(period)
    bump(session, RuleBeneficiary, people.values(), least=("first_paid_period", "first_paid_index"),
         greatest=("last_paid_period", "last_paid_index"))
    return set(people)


def record_certified(session: Session, e: ben.SurvivalCertified) -> None:
    bump(session, RuleBeneficiary, [{"person_id": e.person_id, "last_certified_on": e.certified_on,
                                     "certified_index": index_of(e.certified_on)}],
         greatest=("last_certified_on", "certified_index"))


def record_payees(session: Session, e: ben.PaymentsIssued) -> dict[str, list[ben.IssuedPayment]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    by_key: dict[str, list[ben.IssuedPayment]] = defaultdict(list)
    for line in e.lines:
        key = account_key(line.account_no)
        by_key[key].append(line)
        row = rows.setdefault((key, line.person_id), {
            "account_key": key, "person_id": line.person_id, "account_tail": line.account_no.strip()[-4:],
            "bank_account_id": line.bank_account_id, "holder_name": line.holder_name, "first_period": line.period,
            "last_period": line.period})
        row["first_period"] = min(row["first_period"], line.period)
        row["last_period"] = max(row["last_period"], line.period)
    bump(session, RulePayee, rows.values(), overwrite=("account_tail", "bank_account_id", "holder_name"),
         least=("first_period",), greatest=("last_period",))
    return by_key


# -- S01, S02: paid after death, during imprisonment -----------------------------------------------------------------


def _restricted(query: Any, column: Any, chunk: Sequence[str] | None) -> Any:
    return query if chunk is None else query.where(column.in_(chunk))


def _death_windows(chunk: Sequence[str] | None) -> Any:
    """(person_id, start, until=None, source) for every recorded death."""
    registry = _restricted(select(P.person_id.label("person_id"), P.death_date.label("start"),
                                  cast(null(), Date).label("until"), literal_column("'registry'").label("source"))
                           .where(P.life_status == "deceased", P.death_date.is_not(None)), P.person_id, chunk)
    partner = _restricted(
        select(L.person_id, L.event_date, cast(null(), Date), literal_column("'partner'"))
        .join(P, P.person_id == L.person_id, isouter=True)
        .where(L.kind == "died", _not_corrected_alive()), L.person_id, chunk)
    return union_all(registry, partner).subquery("w")


def _not_corrected_alive() -> Any:
    """The registry did not set the person back to alive by an approved correction (which overrides partner data)."""
    return or_(P.person_id.is_(None), P.life_status.is_(None), P.life_status != "alive",
               P.life_status_source.is_(None), P.life_status_source != "correction")


def _imprisonment_windows(chunk: Sequence[str] | None) -> Any:
    registry = _restricted(select(P.person_id.label("person_id"), P.imprisoned_from.label("start"),
                                  P.imprisoned_until.label("until"), literal_column("'registry'").label("source"))
                           .where(P.imprisoned_from.is_not(None)), P.person_id, chunk)
    released = aliased(MirroredLifeEvent)
    release = (select(func.min(released.event_date))
               .where(released.person_id == L.person_id, released.kind == "released",
                      released.event_date >= L.event_date).scalar_subquery())
    partner = _restricted(
        select(L.person_id, L.event_date, func.coalesce(L.until_date, release), literal_column("'partner'"))
        .join(P, P.person_id == L.person_id, isouter=True)
        .where(L.kind == "imprisoned", _not_corrected_alive()), L.person_id, chunk)
    return union_all(registry, partner).subquery("w")


def _paid_in_windows(session: Session, windows_of: Any, person_ids: Sequence[str] | None) -> list[tuple]:
    """(person, fund, period, paid, lines, start, until, source) for every paid period inside a window.

    Everyone (the sweep): one join. Given persons (an event): their windows first — usually none, and then that is
    the only query — and the paid periods of the few persons that have one."""
    if person_ids is None:
        w = windows_of(None)
        query = (select(R.person_id, R.fund, R.period, R.paid_fen, R.lines, w.c.start, w.c.until, w.c.source)
                 .join(w, w.c.person_id == R.person_id)
                 .where(R.period_start > w.c.start, or_(w.c.until.is_(None), R.period_start <= w.c.until)))
        return list(session.execute(query))
    windows: dict[str, list[tuple]] = defaultdict(list)
    for chunk in chunks(sorted(set(person_ids))):
        w = windows_of(chunk)
        for person_id, start, until, source in session.execute(select(w.c.person_id, w.c.start, w.c.until,
                                                                      w.c.source)):
            windows[person_id].append((_as_date(start), _as_date(until), source))
    found = []
    for chunk in chunks(sorted(windows)):
        rows = session.execute(select(R.person_id, R.fund, R.period, R.period_start, R.paid_fen, R.lines)
                               .where(R.person_id.in_(chunk)))
        for person_id, fund, period, start_of_period, paid, lines in rows:
            for start, until, source in windows[person_id]:
                if start_of_period > start and (until is None or start_of_period <= until):
                    found.append((person_id, fund, period, paid, lines, start, until, source))
    return found


def _as_date(value: Any) -> date | None:
    """A date from a UNION column (SQLite hands back the stored text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _per_person_period(rows: list[tuple]) -> dict[tuple[str, int], dict[str, Any]]:
    facts: dict[tuple[str, int], dict[str, Any]] = {}
    for person_id, fund, period, paid_fen, lines, start, until, source in rows:
        start, until = _as_date(start), _as_date(until)
        fact = facts.setdefault((person_id, period), {"funds": {}, "start": start, "until": until,
                                                      "sources": set()})
        fact["funds"][fund] = {"paid_fen": paid_fen, "lines": lines}
        fact["sources"].add(source)
        if start < fact["start"]:
            fact["start"], fact["until"] = start, until
    return facts


def find_s01(session: Session, person_ids: Sequence[str] | None = None) -> list[Finding]:
    facts = _per_person_period(_paid_in_windows(session, _death_windows, person_ids))
    regions = regions_of(session, {p for p, _ in facts})
    findings = []
    for (person_id, period), fact in sorted(facts.items()):
        paid = sum(f["paid_fen"] for f in fact["funds"].values())
        findings.append(Finding(
            key=f"{person_id}:{period}", subject_type="person", subject_id=person_id, person_id=person_id,
            region=regions.get(person_id), amount_fen=paid,
            title=f"死亡后仍发放待遇：{period} 期已发放 {yuan(paid)} 元（死亡日期 {fact['start'].isoformat()}）",
            details={"period": period, "death_date": fact["start"].isoformat(), "paid_fen": paid,
                     "funds": fact["funds"], "death_reported_by": sorted(fact["sources"])}))
    return findings


def find_s02(session: Session, person_ids: Sequence[str] | None = None) -> list[Finding]:
    facts = _per_person_period(_paid_in_windows(session, _imprisonment_windows, person_ids))
    regions = regions_of(session, {p for p, _ in facts})
    findings = []
    for (person_id, period), fact in sorted(facts.items()):
        paid = sum(f["paid_fen"] for f in fact["funds"].values())
        until = fact["until"].isoformat() if fact["until"] else None
        findings.append(Finding(
            key=f"{person_id}:{period}", subject_type="person", subject_id=person_id, person_id=person_id,
            region=regions.get(person_id), amount_fen=paid,
            title=f"服刑期间发放待遇：{period} 期已发放 {yuan(paid)} 元（服刑自 {fact['start'].isoformat()}"
                  f"{'至 ' + until if until else '，未释放'}）",
            details={"period": period, "imprisoned_from": fact["start"].isoformat(), "imprisoned_until": until,
                     "paid_fen": paid, "funds": fact["funds"], "reported_by": sorted(fact["sources"])}))
    return findings


# -- S03: paid by two pension funds for one period -------------------------------------------------------------------


def find_s03_drawing(session: Session, person_ids: Sequence[str]) -> list[Finding]:
    a, b = aliased(RulePaidPeriod), aliased(RulePaidPeriod)
    pairs: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    amounts: dict[tuple[str, str, str], int] = defaultdict(int)
    for chunk in chunks(sorted(set(person_ids))):
        rows = session.execute(
            select(a.person_id, a.fund, b.fund, a.period, a.paid_fen + b.paid_fen)
            .join(b, and_(b.person_id == a.person_id, b.period == a.period, b.fund > a.fund))
            .where(a.person_id.in_(chunk), a.fund.in_(PENSION_FUNDS), b.fund.in_(PENSION_FUNDS)))
        for person_id, fund_a, fund_b, period, paid in rows:
            pairs[(person_id, fund_a, fund_b)].append(period)
            amounts[(person_id, fund_a, fund_b)] += paid
    regions = regions_of(session, {p for p, _, _ in pairs})
    return [Finding(
        key=f"drawing:{person_id}:{fund_a}+{fund_b}", subject_type="person", subject_id=person_id,
        person_id=person_id, region=regions.get(person_id), amount_fen=amounts[(person_id, fund_a, fund_b)],
        severity="high",
        title=f"重复领取养老金：{fund_a} 与 {fund_b} 同期发放（{len(periods)} 个月，自 {min(periods)}）",
        details={"kind": "drawing_two_pensions", "funds": [fund_a, fund_b], "periods": sorted(periods),
                 "paid_fen_both": amounts[(person_id, fund_a, fund_b)]})
        for (person_id, fund_a, fund_b), periods in sorted(pairs.items())]


# -- S04: survival certification overdue, still paid -----------------------------------------------------------------


def find_s04(session: Session, person_ids: Sequence[str] | None = None) -> list[Finding]:
    months = get_settings().oversight_rules.survival_months
    B = RuleBeneficiary
    base = func.coalesce(B.certified_index, B.first_paid_index)
    query = (select(B.person_id, B.last_certified_on, B.certified_index, B.first_paid_period, B.first_paid_index,
                    B.last_paid_period, B.last_paid_index, P.region)
             .join(P, P.person_id == B.person_id, isouter=True)
             .where(B.last_paid_index.is_not(None), B.last_paid_index > base + months))
    findings = []
    for chunk in ([None] if person_ids is None else chunks(sorted(set(person_ids)))):
        for row in session.execute(_restricted(query, B.person_id, chunk)):
            person_id, certified_on, cert_index, first_period, first_index, last_period, last_index, region = row
            base_index = cert_index if cert_index is not None else first_index
            first_overdue = period_from_index(base_index + months + 1)
            overdue_months = last_index - base_index - months
            since = certified_on.isoformat() if certified_on else f"首次发放 {first_period}"
            findings.append(Finding(
                key=f"{person_id}:{certified_on.isoformat() if certified_on else 'never'}", subject_type="person",
                subject_id=person_id, person_id=person_id, region=region,
                title=f"生存认证逾期仍发放待遇：上次认证 {since}，已发放至 {last_period}（逾期 {overdue_months} 个月）",
                details={"last_certified_on": certified_on.isoformat() if certified_on else None,
                         "first_paid_period": first_period, "certification_months": months,
                         "due_period": add_months(period_from_index(base_index), months),
                         "first_overdue_period": first_overdue, "last_paid_period": last_period,
                         "overdue_months_paid": overdue_months}))
    return findings


# -- S05: unemployment benefit while employed ------------------------------------------------------------------------


def find_s05(session: Session, person_ids: Sequence[str] | None = None) -> list[Finding]:
    E = MirroredEnrolment
    covers = and_(E.person_id == R.person_id, E.fund.in_(EMPLOYED_FUNDS), E.employer_id.is_not(None),
                  E.start_period <= R.period,
                  or_(and_(E.end_period.is_(None), E.status == "active"), E.end_period >= R.period))
    query = (select(R.person_id, R.period, R.paid_fen, E.enrolment_id, E.fund, E.employer_id, E.start_period,
                    E.end_period, E.status)
             .join(E, covers).where(R.fund == UNEMPLOYMENT_FUND))
    facts: dict[tuple[str, int], dict[str, Any]] = {}
    for chunk in ([None] if person_ids is None else chunks(sorted(set(person_ids)))):
        for row in session.execute(_restricted(query, R.person_id, chunk)):
            person_id, period, paid, enrolment_id, fund, employer_id, start, end, status = row
            fact = facts.setdefault((person_id, period), {"paid_fen": paid, "enrolments": []})
            fact["enrolments"].append({"enrolment_id": enrolment_id, "fund": fund, "employer_id": employer_id,
                                       "start_period": start, "end_period": end, "status": status})
    regions = regions_of(session, {p for p, _ in facts})
    findings = []
    for (person_id, period), fact in sorted(facts.items()):
        enrolments = sorted(fact["enrolments"], key=lambda x: x["enrolment_id"])
        employers = sorted({x["employer_id"] for x in enrolments})
        findings.append(Finding(
            key=f"{person_id}:{period}", subject_type="person", subject_id=person_id, person_id=person_id,
            employer_id=employers[0], region=regions.get(person_id), amount_fen=fact["paid_fen"],
            title=f"领取失业保险金期间在职参保：{period} 期发放 {yuan(fact['paid_fen'])} 元，同期在单位参保",
            details={"period": period, "paid_fen": fact["paid_fen"], "employers": employers,
                     "enrolments": enrolments}))
    return findings


# -- S07: account holder, shared accounts ----------------------------------------------------------------------------


def find_s07(session: Session, e: ben.PaymentsIssued, by_key: dict[str, list[ben.IssuedPayment]]) -> list[Finding]:
    findings = []
    info = persons(session, {line.person_id for line in e.lines})
    seen: set[tuple[str, str]] = set()
    for line in e.lines:
        person = info.get(line.person_id)
        if person is None or not person.name or (line.person_id, line.bank_account_id) in seen:
            continue  # a person oversight has no name for cannot be judged
        seen.add((line.person_id, line.bank_account_id))
        if not same_name(person.name, line.holder_name):
            findings.append(Finding(
                key=f"holder:{line.person_id}:{line.bank_account_id}", subject_type="person",
                subject_id=line.person_id, person_id=line.person_id, region=person.region,
                amount_fen=line.amount_fen,
                title=f"待遇发放至非本人账户：户名“{line.holder_name}”与领取人“{person.name}”不符",
                details={"kind": "holder_not_beneficiary", "person_name": person.name,
                         "holder_name": line.holder_name, "bank_account_id": line.bank_account_id,
                         "account_tail": line.account_no.strip()[-4:], "period": line.period,
                         "amount_fen": line.amount_fen, "file_id": e.file_id, "fund": e.fund}))
    shared: list[str] = []
    for chunk in chunks(sorted(by_key)):
        shared.extend(session.execute(
            select(RulePayee.account_key).where(RulePayee.account_key.in_(chunk)).group_by(RulePayee.account_key)
            .having(func.count() > 1)).scalars())
    for chunk in chunks(shared):
        payees: dict[str, list[RulePayee]] = defaultdict(list)
        for row in session.execute(select(RulePayee).where(RulePayee.account_key.in_(chunk))
                                   .order_by(RulePayee.account_key, RulePayee.person_id)).scalars():
            payees[row.account_key].append(row)
        regions = regions_of(session, {p.person_id for rows in payees.values() for p in rows})
        for key, rows in payees.items():
            latest = by_key[key][-1]
            findings.append(Finding(
                key=f"shared:{key}", subject_type="bank_account", subject_id=latest.bank_account_id,
                region=regions.get(rows[0].person_id),
                title=f"一个银行账户（尾号 {rows[0].account_tail}）为 {len(rows)} 人领取待遇",
                details={"kind": "shared_account", "account_tail": rows[0].account_tail, "persons": [
                    {"person_id": r.person_id, "bank_account_id": r.bank_account_id, "holder_name": r.holder_name,
                     "first_period": r.first_period, "last_period": r.last_period} for r in rows],
                    "file_id": e.file_id, "fund": e.fund}))
    return findings


# -- event entry points: the facts (replayed by a rebuild), then the cases (live only) ---------------------------------


def record_settlement(session: Session, envelope: EventEnvelope) -> list[str]:
    """Paid lines → paid periods and beneficiaries; returns the persons paid."""
    e = envelope.payload_view(ben.PaymentsSettled)
    return sorted(record_paid(session, e, envelope.time))


def check_settlement(session: Session, envelope: EventEnvelope, paid: list[str]) -> Tally:
    e = envelope.payload_view(ben.PaymentsSettled)
    tally = Tally()
    if not paid:
        return tally
    lock_persons(session, paid)
    tally.add(raise_findings(session, "S01", find_s01(session, paid)))
    tally.add(raise_findings(session, "S02", find_s02(session, paid)))
    if e.fund in PENSION_FUNDS:
        tally.add(raise_findings(session, "S03", find_s03_drawing(session, paid)))
    tally.add(raise_findings(session, "S04", find_s04(session, paid)))
    if e.fund == UNEMPLOYMENT_FUND:
        tally.add(raise_findings(session, "S05", find_s05(session, paid)))
    return tally


def record_survival(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(ben.SurvivalCertified)
    record_certified(session, e)


def record_issue(session: Session, envelope: EventEnvelope) -> dict[str, list[ben.IssuedPayment]]:
    e = envelope.payload_view(ben.PaymentsIssued)
    return record_payees(session, e)


def check_issue(session: Session, envelope: EventEnvelope, by_key: dict[str, list[ben.IssuedPayment]]) -> Tally:
    e = envelope.payload_view(ben.PaymentsIssued)
    return raise_findings(session, "S07", find_s07(session, e, by_key))


on_payments_settled = FactHandler(record_settlement, check_settlement)
on_survival_certified = FactHandler(record_survival)
on_payments_issued = FactHandler(record_issue, check_issue)


def on_life_fact(session: Session, person_id: str) -> Tally:
    """A death, imprisonment or release (registry or partner) for a person: payments already recorded."""
    session.flush()  # the mirror's handler ran first in this transaction
    lock_persons(session, [person_id])
    tally = raise_findings(session, "S01", find_s01(session, [person_id]))
    tally.add(raise_findings(session, "S02", find_s02(session, [person_id])))
    return tally


def sweep_rules() -> dict[str, Any]:
    return {"S01": lambda s, ctx: find_s01(s), "S02": lambda s, ctx: find_s02(s),
            "S04": lambda s, ctx: find_s04(s), "S05": lambda s, ctx: find_s05(s)}


__all__ = ["find_s01", "find_s02", "find_s03_drawing", "find_s04", "find_s05", "find_s07", "on_life_fact",
           "on_payments_issued", "on_payments_settled", "on_survival_certified", "sweep_rules"]
