"""Accounts factories: employers and persons written through the API or straight into the tables, enrolment
CSV files, request bodies."""

import csv
import io
from datetime import date, timedelta

from sqlmodel import Session

from services.accounts.models import Employer, Person
from services.accounts.persons.identity import derive_and_check
from services.kernel import clock
from services.kernel.events import new_event_id
from tests.support.registry import (
    REGION,
    engine_of,
    make_card,
    make_citizen_id,
    make_uscc,
)

CARD = make_card(1)


def full_employer(serial: int = 1, **overrides) -> dict:
    body = {
        "uscc": make_uscc(serial),
        "name": f"呼和浩特市新城区某某机械有限公司{serial}",
        "region": REGION,
        "unit_type": "enterprise",
        "industry_risk_class": 3,
        "contact_name": "王会计",
        "contact_phone": "0471-6612345",
        "address": "内蒙古呼和浩特市新城区新华大街1号",
        "bank_name": "中国工商银行呼和浩特新城支行",
        "bank_account_no": CARD,
    }
    body.update(overrides)
    return body


def add_person(client, serial: int = 1, *, region: str = REGION, life_status: str = "alive",  # noqa: ANN001
               born: date = date(1985, 6, 15), sex: str = "M") -> tuple[str, str]:
    """A Person row written straight into the database, sex and birth date derived from the citizen id.
    Returns (person id, citizen id)."""
    citizen_id = make_citizen_id(serial, born=born, sex=sex, area=region)
    derived_sex, birth_date = derive_and_check(citizen_id)
    person = Person(id=new_event_id(), citizen_id=citizen_id, name=f"测试人员{serial}", sex=derived_sex,
                    birth_date=birth_date, region=region, life_status=life_status,
                    death_date=date(2025, 3, 1) if life_status == "deceased" else None,
                    registered_at=clock.utc_now(), registered_by="test")
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(person)
        session.commit()
    return person.id, citizen_id


def add_employer(client, serial: int = 1, *, region: str = REGION, status: str = "active") -> str:  # noqa: ANN001
    employer = Employer(id=new_event_id(), uscc=make_uscc(serial), name=f"测试单位{serial}", region=region,
                        status=status, registered_at=clock.utc_now(), registered_by="test")
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(employer)
        session.commit()
    return employer.id


def set_deceased(client, person_id: str) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        person = session.get(Person, person_id)
        person.life_status, person.death_date = "deceased", date(2025, 3, 1)
        session.add(person)
        session.commit()


ENROLMENT_HEADER = ["公民身份号码", "险种", "统一社会信用代码", "参保开始年月", "参保终止年月", "参保状态"]


def csv_bytes(header: list[str], rows: list[list], *, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


WANG_ID = make_citizen_id(1, born=date(1985, 6, 15), sex="M")


def person_body(citizen_id: str = WANG_ID, name: str = "王大明", **overrides) -> dict:
    body = {"citizen_id": citizen_id, "name": name, "phone": "13800138000", "address": "呼和浩特市新城区某路1号",
            "household_type": "urban", "region": REGION}
    body.update(overrides)
    return body


# -- import files ------------------------------------------------------------------------------------------------------

PERSON_HEADER = ["公民身份号码", "姓名", "行政区划代码", "性别", "出生日期"]
EMPLOYER_HEADER = ["统一社会信用代码", "单位名称", "行政区划代码", "单位状态"]


def cid(serial: int) -> str:
    """A distinct valid citizen id per serial (make_citizen_id repeats after 500 serials of one birth date)."""
    return make_citizen_id(serial % 500, born=date(1985, 6, 15) + timedelta(days=serial // 500))


def person(serial: int, *, region: str = REGION, name: str | None = None, sex: str = "", born: str = "") -> list:
    return [cid(serial), name or f"人员{serial}", region, sex, born]
