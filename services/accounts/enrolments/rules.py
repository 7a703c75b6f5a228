"""Enrolment rules as pure functions (no database), shared by the enrolment service and the bulk import.

- employee funds (PEN_EMP, PEN_GOV, UNEMP, INJURY) need an active employer;
- PEN_RES (城乡居民养老) needs no employer;
- a person is active in at most one pension scheme at a time, and in at most one enrolment per other fund
  (000 三(九): duplicate enrolment is a suspicion, S03);
- no one is enrolled after death;
- an enrolment that is suspended (暂停) still holds its place: it is resumed, not enrolled again;
- a new enrolment may not cover months an earlier enrolment of the same fund group already covers;
- a transfer closes the old enrolment on the month before the new one starts.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from services.accounts.models import EMPLOYEE_FUNDS, FUNDS, PENSION_FUNDS, Employer, Enrolment, Person, fund_group
from services.kernel.errors import Conflict, Invalid
from services.kernel.periods import add_months

# Enrolments that still hold the person's place in their fund group.
OPEN_STATUSES = ("active", "suspended")


def check_new_enrolment(*, person: Person, fund: str, employer: Employer | None, active: Iterable[Enrolment]) -> None:
    """Raise a DomainError naming the broken rule; ``active`` are the person's open enrolments (active ones, and
    suspended ones, which block a new enrolment in their group as well; stopped ones are ignored)."""
    if fund not in FUNDS:
        raise Invalid("UNKNOWN_FUND", f"险种 {fund} 不存在（可选：{'、'.join(FUNDS)}）")
    if person.life_status == "deceased":
        raise Conflict("PERSON_DECEASED", "参保人员已死亡，不能办理参保登记")
    if fund in EMPLOYEE_FUNDS:
        check_employer_usable(fund, employer)
    elif employer is not None:
        raise Invalid("EMPLOYER_NOT_ALLOWED", "城乡居民养老保险以个人身份参保，不关联单位")
    conflict = group_conflict(fund, active)
    if conflict is not None:
        raise conflict


def check_employer_usable(fund: str, employer: Employer | None) -> None:
    """The employer part of ``check_new_enrolment``, alone (a resume checks it again)."""
    if fund in EMPLOYEE_FUNDS:
        if employer is None:
            raise Invalid("EMPLOYER_REQUIRED", f"职工险种 {fund} 须有参保单位")
        if employer.status != "active":
            state = {"suspended": "已暂停", "deregistered": "已注销"}.get(employer.status, employer.status)
            raise Conflict("EMPLOYER_NOT_ACTIVE", f"参保单位{state}，不能办理参保登记")


def group_conflict(fund: str, enrolments: Iterable[Enrolment], *, ignore: str | None = None) -> Conflict | None:
    """The conflict an enrolment in ``fund`` would have with the person's open enrolments (``None`` if none):
    ALREADY_ENROLLED for the same fund, DUPLICATE_PENSION for another pension scheme. Suspended enrolments count
    (they are resumed, not enrolled again); ``ignore`` is an enrolment id left out (the one being resumed)."""
    group = fund_group(fund)
    for enrolment in enrolments:
        if enrolment.status not in OPEN_STATUSES or enrolment.fund_group != group or enrolment.id == ignore:
            continue
        suspended = "（已暂停，请办理恢复）" if enrolment.status == "suspended" else ""
        if enrolment.fund == fund:
            return Conflict("ALREADY_ENROLLED", f"该人员已在险种 {fund} 参保（参保登记 {enrolment.id}）{suspended}")
        return Conflict("DUPLICATE_PENSION",
                        f"同一时间只能参加一种基本养老保险：该人员已参加 {enrolment.fund}{suspended}，不能再参加 {fund}")
    return None


def check_no_overlap(fund: str, start_period: int, history: Iterable[Enrolment]) -> None:
    """A new enrolment starting at ``start_period`` may not cover a month an earlier enrolment of the same fund
    group covered (two schemes paid for one month is a duplicate enrolment, 000 三(九))."""
    group = fund_group(fund)
    for enrolment in history:
        if enrolment.fund_group != group or enrolment.status in OPEN_STATUSES:
            continue
        end = enrolment.end_period if enrolment.end_period is not None else enrolment.start_period
        if start_period <= end:
            raise Conflict("ENROLMENT_PERIOD_OVERLAP",
                           f"起始期 {start_period} 与已终止的参保登记 {enrolment.id}（{enrolment.fund}，"
                           f"{enrolment.start_period}–{end}）重叠")


def transfer_close_period(old: Enrolment, new_start_period: int) -> int:
    """The last month of the old enrolment when the new one starts at ``new_start_period``."""
    closed = add_months(new_start_period, -1)
    if closed < old.start_period:
        raise Invalid("INVALID_TRANSFER_PERIOD",
                      f"转入起始期 {new_start_period} 须晚于原参保登记的起始期 {old.start_period}")
    return closed


def check_end_period(enrolment: Enrolment, end_period: int) -> None:
    if end_period < enrolment.start_period:
        raise Invalid("INVALID_END_PERIOD",
                      f"终止期 {end_period} 不能早于起始期 {enrolment.start_period}")


@dataclass(frozen=True)
class Overlap:
    person_id: str
    funds: tuple[str, str]
    overlap_from: int
    overlap_to: int | None


def pension_overlaps(enrolments: Iterable[Enrolment]) -> list[Overlap]:
    """Historic pension enrolments of one or more persons whose periods overlap (reported as S03, never dropped)."""
    by_person: dict[str, list[Enrolment]] = {}
    for e in enrolments:
        if e.fund in PENSION_FUNDS:
            by_person.setdefault(e.person_id, []).append(e)
    found = []
    for person_id, rows in by_person.items():
        rows.sort(key=lambda e: e.start_period)
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                a_end = a.end_period if a.end_period is not None else 999912
                if b.start_period > a_end:
                    break
                b_end = b.end_period if b.end_period is not None else 999912
                end = min(a_end, b_end)
                found.append(Overlap(person_id, (a.fund, b.fund), b.start_period, None if end == 999912 else end))
    return found
