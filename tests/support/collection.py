"""Collection factories: approved rates and bases, employers, persons and enrolments in the registry mirror,
declarations, treasury accounts."""

import copy
from datetime import date, timedelta

from sqlalchemy import insert
from sqlmodel import Session
from stdnum.cn import ric

from services.collection.models import RegistryEmployer, RegistryEnrolment, RegistryPerson
from services.collection.parameters.schemas import default_document
from services.collection.treasury import rules
from services.collection.treasury.schemas import FUNDS
from services.kernel.events import new_event_id
from tests.support.registry import engine_of, make_uscc

PERIOD = 202406


async def declare(client, headers, employer_id: str, lines: list[dict], period: int = PERIOD,  # noqa: ANN001
                  expect: int = 201):  # noqa: ANN201
    response = await client.post(f"/employers/{employer_id}/declarations", json={"period": period, "lines": lines},
                                  headers=headers)
    assert response.status_code == expect, response.text
    return response.json() if expect == 201 else response


REGION = "150102"  # 呼和浩特市新城区: the employers' district


CITY = "150100"  # the pooling region the parameter sets are configured for


AVERAGE_WAGE_FEN = 800_000  # 8 000.00 yuan: floor 4 800.00, cap 24 000.00


ACCOUNTANT = "acct.wang"


APPROVER = "approver.zhao"


def document(average_monthly_wage_fen: int = AVERAGE_WAGE_FEN, **overrides) -> dict:
    doc = copy.deepcopy(default_document(average_monthly_wage_fen))
    doc.update(overrides)
    return doc


def accountant(auth, subject: str = ACCOUNTANT, region: str = CITY) -> dict:  # noqa: ANN001
    return auth("accountant", region=region, subject=subject)


def approver(auth, subject: str = APPROVER, region: str = CITY) -> dict:  # noqa: ANN001
    return auth("agency_approver", region=region, subject=subject)


async def approved_parameters(client, auth, *, valid_from: int = 202401, region: str = CITY,  # noqa: ANN001
                              doc: dict | None = None) -> str:
    """Propose (accountant) and approve (another person) a set; returns its id."""
    body = {"region": region, "valid_from": valid_from, "document": doc or document(), "reason": "年度费率基数"}
    proposed = await client.post("/parameters", json=body, headers=accountant(auth))
    assert proposed.status_code == 201, proposed.text
    approved = await client.post(f"/parameters/{proposed.json()['id']}/approve", json={"reason": "同意"},
                                 headers=approver(auth))
    assert approved.status_code == 200, approved.text
    return approved.json()["id"]


def add_employer(client, serial: int = 1, *, region: str = REGION, status: str = "active",  # noqa: ANN001
                 risk_class: int = 1) -> str:
    employer_id = new_event_id()
    with Session(engine_of(client)) as session:
        session.add(RegistryEmployer(employer_id=employer_id, uscc=make_uscc(serial), name=f"测试单位{serial}",
                                     region=region, unit_type="enterprise", industry_risk_class=risk_class,
                                     status=status, source_event_id=new_event_id()))
        session.commit()
    return employer_id


def citizen_id_of(serial: int, area: str = REGION) -> str:
    """A valid 公民身份号码, distinct for every serial (1 000 per birth date)."""
    born = date(1985, 1, 1) + timedelta(days=serial // 1000)
    body = f"{area}{born:%Y%m%d}{serial % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def add_people(client, employer_id: str | None, count: int, *, first_serial: int = 1,  # noqa: ANN001
               funds: tuple[str, ...] = ("PEN_EMP", "UNEMP", "INJURY"), start: int = 202001,
               end: int | None = None, status: str = "active") -> list[tuple[str, str]]:
    """``count`` persons in collection's registry, each enrolled with the employer in ``funds``; Core inserts.
    Returns [(person id, citizen id)]."""
    people, persons, enrolments = [], [], []
    for serial in range(first_serial, first_serial + count):
        person_id = new_event_id()
        citizen_id = citizen_id_of(serial)
        people.append((person_id, citizen_id))
        persons.append({"person_id": person_id, "citizen_id": citizen_id, "name": f"职工{serial}",
                        "life_status": "alive", "source_event_id": "0"})
        for fund in funds:
            enrolments.append({"enrolment_id": new_event_id(), "person_id": person_id, "fund": fund,
                               "employer_id": employer_id, "start_period": start, "end_period": end,
                               "status": status, "source_event_id": "0"})
    with Session(engine_of(client)) as session:
        for i in range(0, len(persons), 5000):
            session.execute(insert(RegistryPerson.__table__), persons[i:i + 5000])
        for i in range(0, len(enrolments), 5000):
            session.execute(insert(RegistryEnrolment.__table__), enrolments[i:i + 5000])
        session.commit()
    return people


def add_enrolment(client, person_id: str, employer_id: str | None, fund: str, *, start: int = 202001,  # noqa: ANN001
                  end: int | None = None, status: str = "active") -> str:
    enrolment_id = new_event_id()
    with Session(engine_of(client)) as session:
        session.add(RegistryEnrolment(enrolment_id=enrolment_id, person_id=person_id, fund=fund,
                                      employer_id=employer_id, start_period=start, end_period=end, status=status,
                                      source_event_id="0"))
        session.commit()
    return enrolment_id


def account_no(kind: str, fund: str) -> str:
    return f"15{rules.ACCOUNT_KINDS.index(kind)}{FUNDS.index(fund)}0120010000{len(kind)}"
