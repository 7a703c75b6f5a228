"""Collection payments: employers, persons and assessments in the mirror, tax-bureau payments posted and counted."""

from datetime import date

from sqlalchemy import func, insert, select
from sqlmodel import Session
from stdnum.cn import ric

from services.collection.models import (
    Assessment,
    AssessmentLine,
    RegistryEmployer,
    RegistryPerson,
)
from services.kernel import clock
from services.kernel.auth import TokenClaims, issue_token
from services.kernel.events import new_event_id
from tests.support.registry import engine_of, make_uscc

REGION = "150102"


TAX = "tax.bureau"  # the tax bureau's system: a client of the gateway


def tax_headers(settings, subject: str = TAX) -> dict[str, str]:  # noqa: ANN001
    token, _ = issue_token(settings, TokenClaims(subject=subject, kind="client", roles=("tax_system",),
                                                 name="税务征收系统", unit="税务局"))
    return {"Authorization": f"Bearer {token}"}


def citizen_id(serial: int) -> str:
    born = date(1970, 1, 1).toordinal() + serial // 1000
    body = f"150121{date.fromordinal(born):%Y%m%d}{serial % 1000:03d}"  # 土默特左旗: a code without a validity range
    return body + ric.calc_check_digit(body + "0")


def add_employer(client, serial: int = 1, *, status: str = "active") -> tuple[str, str]:  # noqa: ANN001
    """(employer id, USCC) of an employer in collection's registry mirror."""
    employer_id, uscc = new_event_id(), make_uscc(serial)
    with Session(engine_of(client)) as session:
        session.add(RegistryEmployer(employer_id=employer_id, uscc=uscc, name=f"测试单位{serial}", region=REGION,
                                     unit_type="enterprise", industry_risk_class=1, status=status,
                                     source_event_id=new_event_id()))
        session.commit()
    return employer_id, uscc


def add_persons(client, serials) -> list[tuple[str, str]]:  # noqa: ANN001
    """[(person id, citizen id)]; Core insert."""
    people = [(new_event_id(), citizen_id(s)) for s in serials]
    with Session(engine_of(client)) as session:
        session.execute(insert(RegistryPerson), [
            {"person_id": p, "citizen_id": c, "name": "张三", "life_status": "alive", "source_event_id": new_event_id()}
            for p, c in people])
        session.commit()
    return people


def add_assessment(client, employer_id: str | None, period: int, due: date,  # noqa: ANN001
                   lines: list[tuple[str, str, int, int]], *, supersedes_id: str | None = None) -> tuple[str, list[str]]:
    """An issued assessment with lines (person id, fund, employer fen, individual fen); (assessment id, line ids)."""
    assessment_id = new_event_id()
    line_ids = [new_event_id() for _ in lines]
    with Session(engine_of(client)) as session:
        session.add(Assessment(
            id=assessment_id, employer_id=employer_id, period=period, parameters_id="test", status="issued",
            supersedes_id=supersedes_id, due_date=due, lines=len(lines),
            employer_total_fen=sum(x[2] for x in lines), individual_total_fen=sum(x[3] for x in lines),
            issued_at=clock.utc_now(), issued_by="test"))
        session.flush()
        session.execute(insert(AssessmentLine), [
            {"id": line_id, "assessment_id": assessment_id, "employer_id": employer_id, "person_id": person_id,
             "fund": fund, "period": period, "base_fen": 0, "employer_rate": "0.16", "individual_rate": "0.08",
             "employer_fen": employer_fen, "individual_fen": individual_fen, "due_date": due, "status": "open",
             "paid_principal_fen": 0, "paid_late_fee_fen": 0}
            for line_id, (person_id, fund, employer_fen, individual_fen) in zip(line_ids, lines, strict=True)])
        session.commit()
    return assessment_id, line_ids


def supersede(client, old_id: str, employer_id: str, period: int, due: date,  # noqa: ANN001
              lines: list[tuple[str, str, int, int]]) -> tuple[str, list[str]]:
    """A correction as the assessments package makes it: old superseded, paid amounts carried to the new lines."""
    with Session(engine_of(client)) as session:
        paid = {(line.person_id, line.fund): (line.paid_principal_fen, line.paid_late_fee_fen) for line in
                session.execute(select(AssessmentLine).where(AssessmentLine.assessment_id == old_id)).scalars()}
    with Session(engine_of(client)) as session:  # first, so that one assessment per employer and period is issued
        session.get(Assessment, old_id).status = "superseded"
        for line in session.execute(select(AssessmentLine).where(AssessmentLine.assessment_id == old_id)).scalars():
            line.status = "superseded"
        session.commit()
    new_id, line_ids = add_assessment(client, employer_id, period, due, lines, supersedes_id=old_id)
    with Session(engine_of(client)) as session:
        session.get(Assessment, old_id).superseded_by_id = new_id
        for line in session.execute(select(AssessmentLine).where(AssessmentLine.assessment_id == new_id)).scalars():
            line.paid_principal_fen, line.paid_late_fee_fen = paid.get((line.person_id, line.fund), (0, 0))
        session.commit()
    return new_id, line_ids


def pay(tax_line_id: str, **fields) -> dict:
    line = {"tax_line_id": tax_line_id, "fund": "PEN_EMP", "period": 202601, "employer_amount": "0.00",
            "individual_amount": "0.00", "late_fee_amount": "0.00", "method": "bank_transfer",
            "voucher_no": f"V-{tax_line_id}", "paid_date": "2026-02-10"}
    line.update(fields)
    return line


async def post(client, settings, lines: list[dict]):  # noqa: ANN001, ANN201
    return await client.post("/tax-payments/batches", json={"lines": lines}, headers=tax_headers(settings))


def count(client, model, *where) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


# The hand-computed example: 869.78 + 434.89 = 1 304.67 yuan due 2026-02-15, paid 2026-03-17 →
# 30 days (13 in February, 17 in March) → 130 467 fen × 0.0005 × 30 = 1 957.005 fen → 19.57 yuan.
EMPLOYER_FEN, INDIVIDUAL_FEN = 86_978, 43_489


DUE = date(2026, 2, 15)
