"""Payroll factories (benefits): beneficiaries and entitlements written straight into the benefits database, a
run computed, approved and funded, its bank file issued and read back, the bank's results in the file format."""

from datetime import date

from sqlmodel import Session

from services.benefits.models import BeneficiaryPerson, Claim, Entitlement
from services.benefits.payroll import bankfile
from services.kernel import clock
from services.kernel.events import new_event_id
from tests.support.benefits import add_account, lines_of
from tests.support.registry import engine_of, make_citizen_id

FUND = "PEN_EMP"
PERIOD = 202503
REGION = "150102"


def add_person(client, serial: int, *, name: str | None = None, **fields) -> str:  # noqa: ANN001
    person = BeneficiaryPerson(person_id=new_event_id(), citizen_id=make_citizen_id(serial, born=date(1960, 5, 1)),
                               name=name or f"领取人{serial}", sex="M", birth_date=date(1960, 5, 1), region=REGION,
                               source_event_id=new_event_id(), **fields)
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(person)
        session.commit()
    return person.person_id


def add_entitlement(client, person_id: str, amount_fen: int, *, fund: str = FUND, start: int = 202401,  # noqa: ANN001
                    end: int | None = None, status: str = "active") -> str:
    now = clock.utc_now()
    claim = Claim(id=new_event_id(), person_id=person_id, kind="basic_pension", fund=fund, importance="important",
                  region=REGION, status="approved", effective_period=start, end_period=end,
                  monthly_amount_fen=amount_fen, computation="{}", verification="{}", submitted_at=now,
                  submitted_by="test")
    entitlement = Entitlement(id=new_event_id(), claim_id=claim.id, person_id=person_id, kind="basic_pension",
                              fund=fund, monthly_amount_fen=amount_fen, start_period=start, end_period=end,
                              status=status, region=REGION, created_at=now)
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(claim)
        session.flush()
        session.add(entitlement)
        session.commit()
    return entitlement.id


async def run_payroll(client, headers, fund: str = FUND, period: int = PERIOD,  # noqa: ANN001
                      expect: int = 201) -> dict:
    response = await client.post("/payroll/runs", json={"fund": fund, "period": period}, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


async def approved_and_funded(client, roles, run_id: str) -> None:  # noqa: ANN001
    response = await client.post(f"/payroll/runs/{run_id}/approve", headers=roles["approver"])
    assert response.status_code == 200, response.text
    response = await client.post(f"/payroll/runs/{run_id}/funding-request", headers=roles["accountant"])
    assert response.status_code == 201, response.text


async def download(client, roles, file_id: str) -> str:  # noqa: ANN001
    response = await client.get(f"/payroll/bank-files/{file_id}/content", headers=roles["cashier"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return response.text


def result_csv(file_id: str, checksum: str, rows: list[tuple[int, str, str, str | None]]) -> str:
    return bankfile.render_result_file(file_id, checksum, [bankfile.ResultLine(*r) for r in rows])


async def post_results(client, roles, file_id: str, text: str):  # noqa: ANN001, ANN201
    return await client.post(f"/payroll/bank-files/{file_id}/results", content=text.encode(),
                             headers={**roles["bank"], "Content-Type": "text/csv"})


async def issued_file(benefits, roles, persons: int = 3) -> tuple[dict, dict, bankfile.PaymentFile]:  # noqa: ANN001
    for serial in range(1, persons + 1):
        person = add_person(benefits, serial, name=f"领取人{serial}")
        add_account(benefits, person, serial, holder=f"领取人{serial}")
        add_entitlement(benefits, person, 100_000 + serial)
    run = (await run_payroll(benefits, roles["clerk"]))["run"]
    await approved_and_funded(benefits, roles, run["id"])
    file = (await benefits.post(f"/payroll/runs/{run['id']}/bank-files", headers=roles["cashier"])).json()["file"]
    return run, file, bankfile.parse_payment_file(await download(benefits, roles, file["id"]))


def statuses(benefits, run_id: str) -> list[str]:  # noqa: ANN001
    return sorted(ln.status for ln in lines_of(benefits, run_id))


def payroll_roles(auth) -> dict[str, dict[str, str]]:  # noqa: ANN001
    """The payroll's cast: a clerk (and a second one), an approver, the accountant, the cashier, a bank, an auditor."""
    return {
        "clerk": auth("agency_clerk", subject="clerk.wang"),
        "clerk2": auth("agency_clerk", subject="clerk.zhao"),
        "approver": auth("agency_approver", subject="approver.li"),
        "accountant": auth("accountant", subject="accountant.chen"),
        "cashier": auth("cashier", subject="cashier.sun"),
        "bank": auth("bank_system", subject="bank.icbc"),
        "auditor": auth("internal_auditor", subject="auditor.zhou"),
    }
