"""A month of money in, driven through the gateway by the parties as they would under faults: the agency registers
employers and persons and enrols them, each employer declares and is assessed, the tax bureau posts the month's
lines, finance records the remittances to the treasury and their receipts; the agency posts what was collected from
the COLLECTION stream on its own.

Every party is patient the way a real one is: an answer that says nothing about the outcome (no connection, the
connection dropped, a timeout, 502/503/504 while a process is down) is followed by the same request again — with the
same ``Idempotency-Key`` where the API takes one, and otherwise relying on the business key (a USCC, a citizen id, a
tax line id, a voucher number) to turn a repeat into "already there", which is then looked up."""

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import httpx
from stdnum import luhn
from stdnum.cn import ric, uscc as uscc_mod

from services.benefits.parameters.schemas import default_benefit_document
from services.benefits.payroll import bankfile
from services.collection.parameters.schemas import default_document
from services.kernel.settings import SERVICES
from tests.chaos.platform import RunningPlatform

CITY = "150100"
DISTRICT = "150102"
PERIOD = 202610
PAID_ON = "2026-11-12"
REMITTED_ON = "2026-11-16"
RECEIVED_ON = "2026-11-20"  # within 10 working days of the remittance (000 二(二))
BENEFIT_PERIOD = 202611  # the injury allowance's first month, paid by that month's INJURY payroll
ALLOCATED_ON = "2026-11-25"
INJURY_MONTHLY_FEN = 320_000  # at most half of what the INJURY special account received, so the allocation is covered
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
AVERAGE_WAGE_FEN = 800_000
# Answers that say nothing about whether the request was applied: ask again.
UNANSWERED = {502, 503, 504}
PATIENCE_SECONDS = 180.0


class Unexpected(AssertionError):
    pass


@dataclass
class Ledger:
    """What the platform acknowledged, by business key, and how often the parties had to ask again."""

    employers: dict[str, str] = field(default_factory=dict)  # uscc → employer id
    persons: dict[str, str] = field(default_factory=dict)  # citizen id → person id
    enrolments: set[tuple[str, str]] = field(default_factory=set)  # (person id, fund)
    assessment_lines: list[dict] = field(default_factory=list)
    # tax line id → (fund, employer + individual part in fen)
    tax_lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    remittances: dict[str, str] = field(default_factory=dict)  # voucher → remittance id
    receipts: set[str] = field(default_factory=set)  # idempotency keys
    claims: set[str] = field(default_factory=set)
    payroll_runs: set[str] = field(default_factory=set)
    paid_lines: set[str] = field(default_factory=set)  # payroll line ids the bank confirmed
    attempts: int = 0
    repeated: int = 0
    statuses: dict[int | str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def writes(self) -> int:
        return (len(self.employers) + len(self.persons) + len(self.enrolments) + len(self.tax_lines)
                + len(self.remittances) + len(self.receipts) + len(self.claims) + len(self.payroll_runs)
                + len(self.paid_lines))


class Party:
    """One caller (a user or a system client) signed in through the gateway."""

    def __init__(self, client: httpx.AsyncClient, ledger: Ledger, name: str, secret: str, *, system: bool = False):
        self.client, self.ledger, self.name, self.secret, self.system = client, ledger, name, secret, system
        self.headers: dict[str, str] = {}

    async def sign_in(self) -> "Party":
        form = ({"grant_type": "client_credentials", "client_id": self.name, "client_secret": self.secret}
                if self.system else {"username": self.name, "password": self.secret})
        response = await self._patiently("POST", "/auth/token", data=form)
        if response.status_code != 200:
            raise Unexpected(f"{self.name} could not sign in: {response.status_code} {response.text}")
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self

    async def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), already: tuple[str, ...] = (),
                   key: str | None = None, api: bool = True, **kwargs) -> httpx.Response:
        """The answer, once it says something; a refusal whose code is in ``already`` (the repeat of something the
        platform had applied) is returned too, anything else not expected fails the round. ``api=False``: a path
        of the gateway's own (``/identity/…``) rather than a service's."""
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        response = await self._patiently(method, f"/api{path}" if api else path, headers=headers, **kwargs)
        if response.status_code in expect:
            return response
        code = _error_code(response)
        if code in already:
            return response
        raise Unexpected(f"{self.name}: {method} {path} answered {response.status_code} {response.text[:500]}")

    async def _patiently(self, method: str, url: str, **kwargs) -> httpx.Response:
        deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
        pause = 0.1
        first = True
        while True:
            self.ledger.attempts += 1
            if not first:
                self.ledger.repeated += 1
            first = False
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                self.ledger.statuses[type(exc).__name__] += 1
            else:
                self.ledger.statuses[response.status_code] += 1
                if response.status_code not in UNANSWERED and response.status_code != 429:
                    return response
            if asyncio.get_running_loop().time() > deadline:
                raise Unexpected(f"{self.name}: {method} {url} unanswered for {PATIENCE_SECONDS:g}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)


def _error_code(response: httpx.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


def citizen_id(serial: int) -> str:
    body = f"{DISTRICT}1985{1 + serial // 28 % 12:02d}{1 + serial % 28:02d}{serial % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def fen(amount: str) -> int:
    return int((Decimal(amount) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Month:
    """The parties and the month's plan: ``employers`` employers of 2 to 4 persons each, bases drawn by ``seed``."""

    parties: dict[str, Party]
    ledger: Ledger
    employers: int
    seed: int

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.plan = [[(serial * 10 + k, rng.randrange(400_000, 2_600_000, 100)) for k in range(rng.randint(2, 4))]
                     for serial in range(1, self.employers + 1)]

    # -- before the faults: the year's parameters and finance's special accounts ------------------------------------

    async def prepare(self) -> None:
        accountant, approver, finance = self.parties["accountant"], self.parties["approver"], self.parties["finance"]
        proposed = (await accountant.call("POST", "/collection/parameters", json={
            "region": CITY, "valid_from": 202601, "document": default_document(AVERAGE_WAGE_FEN),
            "reason": "2026 年度费率基数"})).json()
        await approver.call("POST", f"/collection/parameters/{proposed['id']}/approve", json={"reason": "同意"})
        proposed = (await accountant.call("POST", "/benefits/parameters", json={
            "region": CITY, "valid_from": 202601, "document": default_benefit_document(850_000),
            "reason": "2026 年度待遇计发参数"})).json()
        await approver.call("POST", f"/benefits/parameters/{proposed['id']}/approve", json={"reason": "同意"})
        await accountant.call("POST", "/collection/treasury/accounts", already=("ACCOUNT_EXISTS",), json={
            "kind": "expenditure", "fund": "INJURY", "bank_name": "中国工商银行呼和浩特分行",
            "account_no": "15203012001000078", "opened_on": "2020-01-06", "opening_approval_ref": "内财社〔2020〕9号",
            "annual_inspection_due": "2027-03-31"})
        for number, fund in enumerate(FUNDS, start=1):
            await finance.call("POST", "/collection/treasury/accounts", already=("ACCOUNT_EXISTS",), json={
                "kind": "special", "fund": fund, "bank_name": "中国工商银行呼和浩特分行",
                "account_no": f"1520{number}012001000077", "opened_on": "2020-01-06",
                "opening_approval_ref": f"内财社〔2020〕{number}号", "annual_inspection_due": "2027-03-31"})

    # -- under faults ---------------------------------------------------------------------------------------------

    async def register(self) -> None:
        clerk = self.parties["clerk"]
        for serial, staff in enumerate(self.plan, start=1):
            employer_id = await self._employer(clerk, serial)
            for person_serial, _base in staff:
                person_id = await self._person(clerk, person_serial)
                for fund in FUNDS:
                    await clerk.call("POST", "/accounts/enrolments", already=("ALREADY_ENROLLED",), json={
                        "person_id": person_id, "fund": fund, "employer_id": employer_id, "start_period": 202601})
                    self.ledger.enrolments.add((person_id, fund))

    async def _employer(self, clerk: Party, serial: int) -> str:
        code = uscc(serial)
        response = await clerk.call("POST", "/accounts/employers", already=("EMPLOYER_ALREADY_REGISTERED",), json={
            "uscc": code, "name": f"测试制造有限公司{serial}", "region": DISTRICT, "industry_risk_class": 1})
        if response.status_code != 201:
            [found] = (await clerk.call("GET", "/accounts/employers", params={"uscc": code})).json()["items"]
            response_id = found["id"]
        else:
            response_id = response.json()["id"]
        self.ledger.employers[code] = response_id
        return response_id

    async def _person(self, clerk: Party, serial: int) -> str:
        code = citizen_id(serial)
        response = await clerk.call("POST", "/accounts/persons", already=("PERSON_ALREADY_REGISTERED",), json={
            "citizen_id": code, "name": f"参保人{serial}", "region": DISTRICT})
        if response.status_code != 201:
            [found] = (await clerk.call("GET", "/accounts/persons", params={"citizen_id": code})).json()["items"]
            person_id = found["id"]
        else:
            person_id = response.json()["id"]
        self.ledger.persons[code] = person_id
        return person_id

    async def declare(self) -> None:
        """Each employer declares once collection's registry has its enrolments (it learns them from the stream)."""
        clerk = self.parties["clerk"]
        for serial, staff in enumerate(self.plan, start=1):
            employer_id = self.ledger.employers[uscc(serial)]
            await _eventually(lambda: self._mirrored(clerk, employer_id, 3 * len(staff)),
                              f"employer {serial}'s enrolments in collection")
            lines = [{"person_id": self.ledger.persons[citizen_id(s)], "base": yuan(base)} for s, base in staff]
            await clerk.call("POST", f"/collection/employers/{employer_id}/declarations",
                             already=("ASSESSMENT_EXISTS",), json={"period": PERIOD, "lines": lines})
            [assessment] = (await clerk.call("GET", "/collection/assessments", params={
                "employer_id": employer_id, "period": PERIOD})).json()["items"]
            detail = (await clerk.call("GET", f"/collection/assessments/{assessment['id']}",
                                       params={"limit": 1000})).json()
            self.ledger.assessment_lines.extend({**line, "employer_serial": serial} for line in detail["items"])

    async def _mirrored(self, clerk: Party, employer_id: str, expected: int) -> bool:
        """Collection holds the employer's enrolments and their persons. A consumer killed mid-batch gets its
        unacknowledged events back only after the consumer's ack_wait, so later events (an enrolment) can arrive
        before an earlier one (its person): collection keeps the enrolment and waits for the person."""
        response = await clerk.call("GET", f"/collection/registry/employers/{employer_id}/enrolments",
                                    expect=(200, 404))
        items = response.json()["items"] if response.status_code == 200 else []
        return len(items) == expected and all(item["life_status"] is not None for item in items)

    async def pay(self, batch_size: int = 40) -> None:
        """The tax bureau posts every assessed line as paid (person lines; INJURY as one employer line), in batches;
        a batch asked again reports its stored lines as duplicates."""
        tax = self.parties["tax"]
        lines = self._tax_lines()
        for start in range(0, len(lines), batch_size):
            chunk = lines[start:start + batch_size]
            result = (await tax.call("POST", "/collection/tax-payments/batches", json={"lines": chunk})).json()
            if result["rejected"]:
                raise Unexpected(f"tax lines rejected: {result['rejections']}")
            for line in chunk:
                self.ledger.tax_lines[line["tax_line_id"]] = (
                    line["fund"], fen(line["employer_amount"]) + fen(line["individual_amount"]))

    def _tax_lines(self) -> list[dict]:
        citizen_of = {person_id: code for code, person_id in self.ledger.persons.items()}
        lines, injury = [], defaultdict(int)
        for line in self.ledger.assessment_lines:
            serial = line["employer_serial"]
            if line["fund"] == "INJURY":
                injury[serial] += fen(line["employer_amount"])
                continue
            lines.append({"tax_line_id": f"SW-{serial:04d}-{line['fund']}-{citizen_of[line['person_id']]}",
                          "payer_uscc": uscc(serial), "citizen_id": citizen_of[line["person_id"]],
                          "fund": line["fund"], "period": PERIOD, "employer_amount": line["employer_amount"],
                          "individual_amount": line["individual_amount"], "method": "bank_withholding",
                          "voucher_no": f"PZ-{serial:04d}", "paid_date": PAID_ON})
        for serial, amount in injury.items():
            lines.append({"tax_line_id": f"SW-{serial:04d}-INJURY", "payer_uscc": uscc(serial), "fund": "INJURY",
                          "period": PERIOD, "employer_amount": yuan(amount), "individual_amount": "0.00",
                          "method": "bank_transfer", "voucher_no": f"PZ-{serial:04d}", "paid_date": PAID_ON})
        return lines

    def collected(self) -> dict[str, int]:
        """Fen collected per fund: what the tax bureau posted."""
        by_fund: dict[str, int] = defaultdict(int)
        for fund, amount in self.ledger.tax_lines.values():
            by_fund[fund] += amount
        return dict(by_fund)

    async def remit_and_receive(self) -> None:
        """Finance records each fund's remittance of the month's collection and its receipt in the special account
        (a receipt moves money: it carries an Idempotency-Key)."""
        finance = self.parties["finance"]
        for fund, amount in sorted(self.collected().items()):
            voucher = f"GK-{fund}-{PERIOD}"
            remittance = (await finance.call("POST", "/collection/treasury/remittances", json={
                "fund": fund, "period": PERIOD, "amount": yuan(amount), "remitted_on": REMITTED_ON,
                "voucher_no": voucher})).json()["remittance"]
            self.ledger.remittances[voucher] = remittance["id"]
            key = f"R-{fund}-{PERIOD}"
            await finance.call("POST", "/collection/treasury/receipts", key=key, json={
                "remittance_id": remittance["id"], "amount": yuan(amount), "value_date": RECEIVED_ON,
                "reference": f"BK-{fund}-{PERIOD}"})
            self.ledger.receipts.add(key)


class InjuryAllowance:
    """Money out under faults: one insured person's monthly injury allowance (伤残津贴), decided at three levels by
    three people, paid by the INJURY payroll of BENEFIT_PERIOD — computed, approved by another person, funded,
    allocated by finance from the special account, sent to the bank and confirmed paid.

    Submitting a claim takes no Idempotency-Key, so after an answer that says nothing the clerk looks the claim up
    before submitting again, as a careful clerk would."""

    def __init__(self, month: Month):
        self.month, self.parties, self.ledger = month, month.parties, month.ledger
        serial, _base = month.plan[0][0]
        self.person_id = self.ledger.persons[citizen_id(serial)]
        self.name = f"参保人{serial}"
        self.card = f"622202{serial:012d}"
        self.card += luhn.calc_check_digit(self.card)
        self.paid_fen = 0
        self.monthly_fen = max(100, min(INJURY_MONTHLY_FEN, month.collected().get("INJURY", 0) // 2))

    async def run(self) -> None:
        clerk = self.parties["clerk"]
        await clerk.call("POST", f"/accounts/persons/{self.person_id}/bank-accounts",
                         already=("BANK_ACCOUNT_ALREADY_REGISTERED",), json={
                             "kind": "bank_account", "bank_name": "中国工商银行呼和浩特分行", "account_no": self.card,
                             "holder_name": self.name})
        await _eventually(self._payable_in_benefits, "the payment account in benefits")
        claim_id = await self._claim()
        for level, decider in (("first_review", "reviewer"), ("second_review", "reviewer_2"),
                               ("approval", "approver")):
            await self.parties[decider].call("POST", f"/benefits/claims/{claim_id}/decisions",
                                             already=("WRONG_LEVEL", "CLAIM_NOT_IN_REVIEW"), json={
                                                 "decision": "approve", "reason": "材料齐全，同意", "level": level})
        claim = (await clerk.call("GET", f"/benefits/claims/{claim_id}")).json()
        if claim["status"] != "approved":
            raise Unexpected(f"the injury claim is {claim['status']} after three approvals: {claim}")
        await self._payroll()

    async def _payable_in_benefits(self) -> bool:
        response = await self.parties["clerk"].call("GET", f"/benefits/registry/persons/{self.person_id}",
                                                    expect=(200, 404))
        return response.status_code == 200 and any(a["payable"] for a in response.json()["accounts"])

    async def _claim(self) -> str:
        clerk = self.parties["clerk"]
        for _ in range(3):
            found = (await clerk.call("GET", "/benefits/claims", params={"person_id": self.person_id})).json()["items"]
            if found:
                self.ledger.claims.add(found[0]["id"])
                return found[0]["id"]
            await clerk.call("POST", "/benefits/claims", json={
                "kind": "injury", "person_id": self.person_id, "effective_period": BENEFIT_PERIOD,
                "monthly_amount": yuan(self.monthly_fen),
                "documents": [{"kind": "工伤认定决定书", "reference": "呼人社工认〔2026〕31号"}]})
        raise Unexpected("the injury claim was submitted but cannot be found")

    async def _payroll(self) -> None:
        clerk, approver, accountant = self.parties["clerk"], self.parties["approver"], self.parties["accountant"]
        finance, cashier, bank = self.parties["finance"], self.parties["cashier"], self.parties["bank"]
        # Computing a month's run again returns the same run (recomputed while not yet approved).
        run = (await clerk.call("POST", "/benefits/payroll/runs", json={
            "fund": "INJURY", "period": BENEFIT_PERIOD})).json()["run"]
        if run["lines"] != 1:
            raise Unexpected(f"the INJURY payroll of {BENEFIT_PERIOD} has {run['lines']} lines, not the one allowance")
        self.ledger.payroll_runs.add(run["id"])
        await approver.call("POST", f"/benefits/payroll/runs/{run['id']}/approve",
                            already=("PAYROLL_ALREADY_APPROVED",))
        funding = (await accountant.call("POST", f"/benefits/payroll/runs/{run['id']}/funding-request")).json()
        await finance.call("POST", "/collection/treasury/allocations", key=f"AL-INJURY-{BENEFIT_PERIOD}", json={
            "fund": "INJURY", "amount": funding["amount"], "value_date": ALLOCATED_ON,
            "payroll_reference": run["id"]})
        self.ledger.receipts.add(f"AL-INJURY-{BENEFIT_PERIOD}")
        file = (await cashier.call("POST", f"/benefits/payroll/runs/{run['id']}/bank-files")).json()["file"]
        content = (await bank.call("GET", f"/benefits/payroll/bank-files/{file['id']}/content")).text
        parsed = bankfile.parse_payment_file(content)
        await bank.call("POST", f"/benefits/payroll/bank-files/{file['id']}/results", json={
            "checksum": parsed.checksum, "lines": [
                {"line_no": ln.line_no, "payroll_line_id": ln.payroll_line_id, "result": "paid"}
                for ln in parsed.lines]})
        self.ledger.paid_lines.update(ln.payroll_line_id for ln in parsed.lines)
        self.paid_fen = sum(ln.amount_fen for ln in parsed.lines)


async def _eventually(check, what: str, timeout: float = PATIENCE_SECONDS) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise Unexpected(f"not {what} within {timeout:g}s")
        await asyncio.sleep(0.25)


# -- shared by the fault suite and tests/operations ------------------------------------------------------------

CONVERGENCE_SECONDS = 180.0


async def run_the_month(month: Month) -> "InjuryAllowance":
    """The month's business in order (registration, declarations, tax payments, remittance and receipt, an injury
    allowance paid out); returns the allowance."""
    await month.register()
    await month.declare()
    await month.pay()
    await month.remit_and_receive()
    allowance = InjuryAllowance(month)
    await allowance.run()
    return allowance


async def signed_in(platform: RunningPlatform, client: httpx.AsyncClient, ledger: Ledger) -> dict[str, Party]:
    secrets = platform.credentials()

    def user(role: str) -> Party:
        return Party(client, ledger, f"demo_{role}", secrets[f"demo_{role}"])

    parties = {"clerk": user("agency_clerk"), "accountant": user("accountant"), "approver": user("agency_approver"),
               "finance": user("finance_officer"), "officer": user("oversight_officer"), "operator": user("it_admin"),
               "reviewer": user("agency_reviewer"), "cashier": user("cashier"),
               "tax": Party(client, ledger, "demo_tax", secrets["demo_tax"], system=True),
               "bank": Party(client, ledger, "demo_bank", secrets["demo_bank"], system=True)}
    for party in parties.values():
        await party.sign_in()
    # A claim is decided at two review levels by two different reviewers: the IT administrator adds the second.
    password = f"Chaos-{random.SystemRandom().randrange(10**12):012d}"
    await parties["operator"].call("POST", "/identity/users", api=False, already=("USER_EXISTS",), json={
        "username": "chaos_reviewer_2", "display_name": "复审经办人", "unit": "演示社保经办机构", "region": "150100",
        "password": password})
    await parties["operator"].call("POST", "/identity/users/chaos_reviewer_2/roles", api=False,
                                   already=("ROLE_ALREADY_HELD",), json={"role": "agency_reviewer", "reason": "复审"})
    parties["reviewer_2"] = await Party(client, ledger, "chaos_reviewer_2", password).sign_in()
    return parties


async def converged(parties: dict[str, Party], month: Month, allowance: InjuryAllowance) -> dict[str, dict]:
    """Wait until no service holds an unpublished outbox row or a dead letter, oversight's R1 cells of the period
    are all matched and its R5 cell of the allowance's month shows approved = allocated = paid; returns the R1 cells
    by fund."""
    operator, officer = parties["operator"], parties["officer"]
    deadline = asyncio.get_running_loop().time() + CONVERGENCE_SECONDS
    last = None
    while asyncio.get_running_loop().time() < deadline:
        backlog = {s: (await operator.call("GET", f"/{s}/admin/outbox")).json()["backlog"] for s in SERVICES}
        letters = {s: (await operator.call("GET", f"/{s}/admin/dead-letters")).json() for s in SERVICES}
        # A dead letter never heals by waiting. Said first and short: a CI log keeps only part of a long message.
        assert not any(letters.values()), "dead letters: " + "; ".join(
            f"{s}/{d.get('consumer')} {d.get('event_type')} after {d.get('attempts')}: {str(d.get('error'))[:300]}"
            for s, rows in letters.items() for d in rows)
        report = (await officer.call("GET", f"/oversight/reconciliation/months/{PERIOD}",
                                     params={"include_matched": True})).json()
        r1 = {cell["fund"]: cell for check in report["checks"] if check["check"] == "R1" for cell in check["cells"]}
        money_out = (await officer.call("GET", f"/oversight/reconciliation/months/{BENEFIT_PERIOD}",
                                        params={"include_matched": True})).json()
        r5 = {cell["fund"]: cell for check in money_out["checks"] if check["check"] == "R5" for cell in check["cells"]}
        last = (backlog, {fund: (cell["status"], cell["amounts"]) for fund, cell in r1.items()},
                {fund: (cell["status"], cell["amounts"]) for fund, cell in r5.items()})
        paid_out = r5.get("INJURY", {})
        if not any(backlog.values()) and set(r1) == set(FUNDS) and all(
                cell["status"] == "matched" and fen(cell["amounts"]["agency"]) == month.collected()[fund]
                for fund, cell in r1.items()) and paid_out.get("status") == "matched" and fen(
                paid_out["amounts"]["paid"]) == allowance.paid_fen:
            return r1
        await asyncio.sleep(0.5)
    raise AssertionError(f"the month did not converge within {CONVERGENCE_SECONDS:g}s: {last}")
