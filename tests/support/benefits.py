"""Benefits factories: approved benefit parameters, a platform of accounts + collection + benefits for claims,
payroll accounts and lines, days inside a period."""

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import date

import httpx
from sqlalchemy import select
from sqlmodel import Session

from services.accounts.models import ContributionMonth
from services.benefits.models import (
    BeneficiaryAccount,
    BeneficiaryPerson,
    ContributionIndex,
    PayrollLine,
)
from services.benefits.parameters.schemas import default_benefit_document
from services.kernel import clock
from services.kernel.events import new_event_id
from services.kernel.periods import add_months, months_between
from services.kernel.settings import Settings
from tests.support.apps import bearer
from tests.support.registry import engine_of, make_card, make_citizen_id, make_uscc

DISTRICT = "150102"


CITY = "150100"


CLERK = "clerk.zhou"


def periods(first: int, last: int) -> list[int]:
    return [add_months(first, i) for i in range(months_between(first, last))]


@dataclass
class Platform:
    settings: Settings
    benefits: httpx.AsyncClient
    accounts: httpx.AsyncClient | None
    accounts_app: object | None
    employer_id: str | None = None
    serial: int = 0
    people: dict[str, dict] = field(default_factory=dict)

    def headers(self, *roles: str, subject: str, region: str = CITY) -> dict[str, str]:
        return bearer(self.settings, *roles, region=region, subject=subject)

    @property
    def clerk(self) -> dict[str, str]:
        return self.headers("agency_clerk", subject=CLERK)

    def reviewer(self, subject: str) -> dict[str, str]:
        return self.headers("agency_reviewer", subject=subject)

    def approver(self, subject: str) -> dict[str, str]:
        return self.headers("agency_approver", subject=subject)

    async def _accounts_post(self, path: str, body: dict, headers: dict | None = None) -> dict:
        response = await self.accounts.post(path, json=body, headers=headers or self.clerk)
        assert response.status_code == 201, f"{path}: {response.text}"
        return response.json()

    async def person(self, *, born: date, name: str, sex: str = "M", enrol: dict[str, int] | None = None,
                     months: dict[str, tuple[int, int]] | None = None, balance: str | None = None,
                     index: list[tuple[int, int, int]] | None = None, life_status: str = "alive",
                     payment_accounts: list[tuple[str, str, str]] | None = None, in_accounts: bool = True) -> str:
        """A person in accounts (registered, enrolled, contribution months, balance) and in benefits' mirror (person,
        payment accounts [(kind, holder, status)], contribution index segments [(months, base_fen, wage_fen)])."""
        self.serial += 1
        # Born in 土默特左旗 (150121): its code has no start year, unlike 新城区 (150102, from 1983).
        citizen_id = make_citizen_id(self.serial, born=born, sex=sex, area="150121")
        person_id = new_event_id()
        if in_accounts:
            if self.employer_id is None:
                employer = await self._accounts_post("/employers", {"uscc": make_uscc(1), "name": "甲有限公司",
                                                                   "region": DISTRICT})
                self.employer_id = employer["id"]
            person_id = (await self._accounts_post("/persons", {"citizen_id": citizen_id, "name": name,
                                                                "region": DISTRICT}))["id"]
            for fund, start in (enrol or {}).items():
                body = {"person_id": person_id, "fund": fund, "start_period": start}
                if fund != "PEN_RES":
                    body["employer_id"] = self.employer_id
                await self._accounts_post("/enrolments", body)
            with Session(self.accounts_app.state.engine) as session:
                for fund, (first, last) in (months or {}).items():
                    session.add_all(ContributionMonth(person_id=person_id, fund=fund, period=p,
                                                      employer_id=self.employer_id, source="import",
                                                      recorded_at=clock.utc_now()) for p in periods(first, last))
                session.commit()
            if balance is not None:
                response = await self.accounts.post(
                    f"/individual-accounts/{person_id}/transfers-in", headers={
                        **self.headers("accountant", subject="acct.he"), "Idempotency-Key": f"in:{person_id}"},
                    json={"amount": balance, "document_ref": "转移接续-001", "from_region": "110105"})
                assert response.status_code == 201, response.text
        await self._mirror_person(person_id, from_events=in_accounts, citizen_id=citizen_id, name=name, sex=sex,
                                  born=born, life_status=life_status)
        with Session(engine_of(self.benefits)) as session:
            for i, (kind, holder, status) in enumerate(payment_accounts or [("ss_card", name, "active")]):
                session.add(BeneficiaryAccount(bank_account_id=new_event_id(), person_id=person_id, kind=kind,
                                               bank_name="中国工商银行", account_no=make_card(self.serial * 10 + i),
                                               holder_name=holder, status=status))
            if index:
                first = (months or {}).get("PEN_EMP", (201101, 0))[0]
                period = first
                for count, base_fen, wage_fen in index:
                    for _ in range(count):
                        session.add(ContributionIndex(person_id=person_id, fund="PEN_EMP", period=period,
                                                      base_fen=base_fen, average_wage_fen=wage_fen,
                                                      assessment_line_id=new_event_id(),
                                                      assessment_id=new_event_id()))
                        period = add_months(period, 1)
            session.commit()
        self.people[person_id] = {"citizen_id": citizen_id, "name": name}
        return person_id

    async def _mirror_person(self, person_id: str, *, from_events: bool, citizen_id: str, name: str, sex: str,
                             born: date, life_status: str) -> None:
        """When benefits runs its registry consumer, the person arrives from accounts' events: wait for it (and set a
        mirror-only life status on it); without the consumer, insert the row as the consumer would."""
        engine = engine_of(self.benefits)
        death_date = date(2026, 10, 1) if life_status == "deceased" else None
        if from_events and "ACCOUNTS" in self.benefits.app.state.consumers:
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                with Session(engine) as session:
                    row = session.get(BeneficiaryPerson, person_id)
                    if row is not None:
                        row.life_status, row.death_date = life_status, death_date
                        session.add(row)
                        session.commit()
                        return
                assert asyncio.get_running_loop().time() < deadline, "person not mirrored from accounts' events"
                await asyncio.sleep(0.05)
        with Session(engine) as session:
            session.add(BeneficiaryPerson(person_id=person_id, citizen_id=citizen_id, name=name, sex=sex,
                                          birth_date=born, region=DISTRICT, life_status=life_status,
                                          death_date=death_date, source_event_id=new_event_id()))
            session.commit()

    async def claim(self, body: dict, expected: int = 201) -> dict:
        response = await self.benefits.post("/claims", json=body, headers=self.clerk)
        assert response.status_code == expected, response.text
        return response.json()

    async def decide(self, claim_id: str, headers: dict, decision: str = "approve", expected: int = 200,
                     **extra) -> dict:
        response = await self.benefits.post(f"/claims/{claim_id}/decisions", headers=headers,
                                            json={"decision": decision, "reason": f"{decision}：材料齐全", **extra})
        assert response.status_code == expected, response.text
        return response.json()

    def own_account(self, person_id: str) -> str:
        with Session(engine_of(self.benefits)) as session:
            return session.execute(select(BeneficiaryAccount.bank_account_id).where(
                BeneficiaryAccount.person_id == person_id, BeneficiaryAccount.status == "active")).scalars().first()


def _auth_for(settings: Settings):  # noqa: ANN202
    return lambda *roles, **options: bearer(settings, *roles, **options)


ACCOUNTANT = "acct.qian"


APPROVER = "approver.sun"


def benefit_document(**overrides) -> dict:
    doc = copy.deepcopy(default_benefit_document(850_000, unemployment_monthly_fen=180_000,
                                                 resident_basic_pension_fen=20_000))
    doc.update(overrides)
    return doc


async def approved_benefit_parameters(client, auth, *, valid_from: int = 202401, region: str = CITY,  # noqa: ANN001
                                      doc: dict | None = None) -> str:
    body = {"region": region, "valid_from": valid_from, "document": doc or benefit_document(), "reason": "年度计发参数"}
    proposed = await client.post("/parameters", json=body, headers=auth("accountant", region=CITY, subject=ACCOUNTANT))
    assert proposed.status_code == 201, proposed.text
    approved = await client.post(f"/parameters/{proposed.json()['id']}/approve", json={"reason": "同意"},
                                 headers=auth("agency_approver", region=CITY, subject=APPROVER))
    assert approved.status_code == 200, approved.text
    return approved.json()["id"]


def day_in(period: int, day: int) -> date:
    return date(period // 100, period % 100, day)


def add_account(client, person_id: str, serial: int, *, holder: str, status: str = "active",  # noqa: ANN001
                kind: str = "bank_account") -> tuple[str, str]:
    account = BeneficiaryAccount(bank_account_id=new_event_id(), person_id=person_id, kind=kind, bank_name="测试银行",
                                 account_no=make_card(serial), holder_name=holder, status=status)
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(account)
        session.commit()
    return account.bank_account_id, account.account_no


def lines_of(client, run_id: str) -> list[PayrollLine]:  # noqa: ANN001
    with Session(engine_of(client), expire_on_commit=False) as session:
        return list(session.execute(select(PayrollLine).where(PayrollLine.run_id == run_id)
                                    .order_by(PayrollLine.id)).scalars())
