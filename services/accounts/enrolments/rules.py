"""Enrolment rules as pure functions (no database), shared by the enrolment service and the bulk import.

- employee funds (PEN_EMP, PEN_GOV, UNEMP, INJURY) need an active employer;
- PEN_RES (城乡居民养老) needs no employer;
- a person is active in at most one pension scheme at a time, and in at most one enrolment per other fund
  (000 三(九): duplicate enrolment is a suspicion, S03);
- no one is enrolled after death.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from services.accounts.models import EMPLOYEE_FUNDS, FUNDS, PENSION_FUNDS, Employer, Enrolment, Person, fund_group
from services.kernel.errors import Conflict, DomainError


def check_new_enrolment(*, person: Person, fund: str, employer: Employer | None, active: Iterable[Enrolment]) -> None:
    """Raise a DomainError naming the broken rule; ``active`` are the person's active enrolments."""
    if fund not in FUNDS:
        raise DomainError("UNKNOWN_FUND", f"险种 {fund} 不存在（可选：{'、'.join(FUNDS)}）", status=422)
    if person.life_status == "deceased":
        raise Conflict("PERSON_DECEASED", "参保人员已死亡，不能办理参保登记")
    if fund in EMPLOYEE_FUNDS:
        if employer is None:
            raise DomainError("EMPLOYER_REQUIRED", f"职工险种 {fund} 须有参保单位", status=422)
        if employer.status != "active":
            state = {"suspended": "已暂停", "deregistered": "已注销"}.get(employer.status, employer.status)
            raise Conflict("EMPLOYER_NOT_ACTIVE", f"参保单位{state}，不能办理参保登记")
    elif employer is not None:
        raise DomainError("EMPLOYER_NOT_ALLOWED", "城乡居民养老保险以个人身份参保，不关联单位", status=422)
    group = fund_group(fund)
    for enrolment in active:
        if enrolment.status != "active" or enrolment.fund_group != group:
            continue
        if enrolment.fund == fund:
            raise Conflict("ALREADY_ENROLLED", f"该人员已在险种 {fund} 参保（参保登记 {enrolment.id}）")
        raise Conflict("DUPLICATE_PENSION",
                       f"同一时间只能参加一种基本养老保险：该人员已参加 {enrolment.fund}，不能再参加 {fund}")


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
