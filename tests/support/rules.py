"""Builders of the events the suspicion rules read (tests/oversight/test_rules.py and the rebuild of their facts,
tests/oversight/test_facts_rebuild.py): persons, life-status changes, settlements, bank files, claims, decisions,
enrolments and assessments, with the fewest fields a rule needs."""

from datetime import UTC, date, datetime, timedelta

from services.contracts import accounts as acc
from services.contracts import benefits as ben
from services.contracts import collection as col

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
REGION = "150102"


def person(pid: str, *, sex: str = "M", born: date = date(1960, 5, 1), name: str | None = None) -> acc.PersonRegistered:
    return acc.PersonRegistered(person_id=pid, citizen_id=f"15010219600501{abs(hash(pid)) % 1000:03d}X"[:18],
                                name=name or f"张{pid}", sex=sex, birth_date=born, region=REGION,
                                household_type="urban", registered_at=T0 - timedelta(days=3000))


def life(pid: str, status: str, *, source: str = "exchange", ref: str = "rec-1", death: date | None = None,
         prison_from: date | None = None, prison_until: date | None = None,
         previous: str = "alive") -> acc.PersonLifeStatusChanged:
    return acc.PersonLifeStatusChanged(person_id=pid, citizen_id="150102196005010001", life_status=status,
                                       previous_status=previous, death_date=death, imprisoned_from=prison_from,
                                       imprisoned_until=prison_until, source=source, source_ref=ref)


def died(pid: str, on: date, record: str = "mz-1") -> acc.PersonDied:
    return acc.PersonDied(person_id=pid, citizen_id="150102196005010001", death_date=on, source="civil_affairs",
                          record_id=record)


def settled(fund: str, *lines: tuple, file_id: str = "f1", result: str = "paid") -> ben.PaymentsSettled:
    """``lines``: (person_id, period, amount_fen)."""
    return ben.PaymentsSettled(file_id=file_id, run_id="run1", fund=fund, period=lines[0][1], part=1, parts=1,
                               lines=[ben.SettledPayment(payroll_line_id=f"{file_id}-{i}", person_id=pid,
                                                         amount_fen=amount, period=period, result=result,
                                                         reason=None) for i, (pid, period, amount) in
                                      enumerate(lines)])


def issued(*lines: tuple, file_id: str = "bf1") -> ben.PaymentsIssued:
    """``lines``: (person_id, account_no, holder_name)."""
    return ben.PaymentsIssued(file_id=file_id, run_id="run1", fund="PEN_EMP", period=202606, sequence=1, part=1,
                              parts=1, file_total_fen=0, lines=[
                                  ben.IssuedPayment(payroll_line_id=f"{file_id}-{i}", person_id=pid,
                                                    bank_account_id=f"ba-{pid}-{account[-4:]}", account_no=account,
                                                    holder_name=holder, amount_fen=300000, period=202606)
                                  for i, (pid, account, holder) in enumerate(lines)])


def submitted(claim: str, pid: str, *, kind: str = "basic_pension", age: int | None = 60, status: str = "in_review",
              monthly: int | None = 300000, one_off: int | None = None, back_months: int | None = None,
              large: bool = False, effective: int = 202606) -> ben.ClaimSubmitted:
    return ben.ClaimSubmitted(claim_id=claim, person_id=pid, kind=kind, fund="PEN_EMP", importance="important",
                              status=status, blocked_reason=None, effective_period=effective,
                              monthly_amount_fen=monthly, one_off_amount_fen=one_off, large_amount=large,
                              age_at_effective=age, back_payment_months=back_months)


def decided(claim: str, pid: str, level: str, by: str, *, status: str = "in_review",
            role: str = "agency_reviewer") -> ben.ClaimDecided:
    return ben.ClaimDecided(claim_id=claim, person_id=pid, level=level, decision="approve", decided_by=by, role=role,
                            claim_status=status)


def granted(claim: str, pid: str, amount: int, levels: list[str]) -> ben.EntitlementGranted:
    return ben.EntitlementGranted(entitlement_id=f"ent-{claim}", claim_id=claim, person_id=pid, kind="basic_pension",
                                  fund="PEN_EMP", monthly_amount_fen=amount, start_period=202606, end_period=None,
                                  levels=levels, large_amount_reviewed="large_amount_review" in levels)


def enrolled(eid: str, pid: str, fund: str, start: int, employer: str | None = "emp1") -> acc.EnrolmentOpened:
    return acc.EnrolmentOpened(enrolment_id=eid, person_id=pid, fund=fund, employer_id=employer, start_period=start)


def assessed(assessment_id: str, employer: str | None, period: int, *lines: tuple,
             supersedes: str | None = None) -> col.AssessmentIssued:
    """``lines``: (person_id, fund, declared_base_fen, base_fen, clamp)."""
    return col.AssessmentIssued(
        assessment_id=assessment_id, employer_id=employer, period=period, due_date=date(2026, 7, 15),
        supersedes_id=supersedes, part=1, parts=1, employer_total_fen=0, individual_total_fen=0,
        lines=[col.AssessedLine(line_id=f"{assessment_id}-{i}", person_id=pid, fund=fund, declared_base_fen=declared,
                                base_fen=base, clamp=clamp, employer_fen=base * 16 // 100,
                                individual_fen=base * 8 // 100)
               for i, (pid, fund, declared, base, clamp) in enumerate(lines)])
