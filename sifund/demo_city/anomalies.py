"""What the demo city plants for oversight to find, each through the party that would cause it in real life, and
how to check that oversight found it (the same checks tests/demo runs):

- **unreceived tax line** — the tax bureau reports one more UNEMP line for the last month after finance recorded the
  month's receipts: R1 TAX = AGENCY ≠ FINANCE (000 二(二)); the sweep opens S15 for the cell.
- **cash payment** — the tax bureau reports a line paid in cash, a refused method (002 四): collection rejects it and
  oversight opens S17 at once. The officer works the case to rectification due today: overdue from tomorrow.
- **pension after death** — the partner department's death batch reports a paid injury-allowance holder dead
  before the month paid (001 第二十七条): S01, and benefits suspends the allowance.
- **duplicate enrolment** — the legacy import carries a residents' pension history row of one employee that overlaps
  the employee pension (000 三(九)): accounts stores and reports it, oversight opens S03.
- **base below the floor** — one employer declares two of its staff at 2 800 yuan, below 60 % of the average wage
  (003 三.6): S10 for each of its months.
- the death batch also carries a citizen id nobody here has: an unmatched exchange record for the agency's review.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from stdnum.cn import ric

from sifund.demo_city.district import Calendar, District, Employer, Person, add_months, yuan
from sifund.demo_city.money_in import MoneyIn
from sifund.demo_city.money_out import MoneyOut
from sifund.demo_city.party import Party, until

PLANTED_FUND = "UNEMP"
# Valid and synthetic, registered nowhere in the district (born 1950, outside the district's birth years).
UNKNOWN_CITIZEN = "15010219500101001" + ric.calc_check_digit("15010219500101001" + "0")


@dataclass
class Finding:
    name: str  # what was planted
    rule: str  # the rule or check that finds it
    where: str  # where to see it in the console
    fact: dict = field(default_factory=dict)  # what the checks look for
    case_id: str | None = None

    def line(self) -> str:
        case = f"，案件 /console/oversight/cases/{self.case_id}" if self.case_id else ""
        return f"  - {self.name}（{self.rule}）：{self.where}{case}"


class Plant:
    def __init__(self, parties: dict[str, Party], district: District, calendar: Calendar, money_in: MoneyIn,
                 money_out: MoneyOut, say: Callable[[str], None]):
        self.parties, self.district, self.calendar, self.say = parties, district, calendar, say
        self.money_in, self.money_out = money_in, money_out
        self.findings: list[Finding] = []
        self.last = calendar.periods[-1]

    @property
    def duplicate(self) -> Person:
        """The employee the legacy import also enrols in the residents' pension."""
        return self.district.employers[2 % len(self.district.employers)].staff[0]

    @property
    def low_payer(self) -> Employer:
        """The employer that declares two of its staff below the base floor (003 三.6)."""
        return self.district.employers[3 % len(self.district.employers)]

    def plan_declarations(self) -> None:
        for person in self.low_payer.staff[:2]:
            person.base_fen = 280_000

    def plan_registry(self) -> None:
        """A residents' pension history row that runs two months into the employee pension: stored by the import
        and reported (accounts keeps overlapping pension history, 000 三(九))."""
        start = self.calendar.enrolled_from
        self.money_in.extra_enrolments.append(
            (self.duplicate.citizen_id, "PEN_RES", "", add_months(start, -24), add_months(start, 1)))

    # -- money in ------------------------------------------------------------------------------------------------

    def _line(self, person: Person, fund: str, suffix: str, amount_fen: int, method: str) -> dict:
        employer = self.district.employer_of(person)
        return {"tax_line_id": f"DC{self.last}-{suffix}", "payer_uscc": employer.uscc, "citizen_id": person.citizen_id,
                "fund": fund, "period": self.last, "employer_amount": yuan(amount_fen), "individual_amount": "0.00",
                "method": method, "voucher_no": f"DC{self.last}-{suffix}", "paid_date": self.calendar.paid_on(self.last)}

    async def tax_lines(self) -> None:
        tax = self.parties["tax"]
        unreceived = self.district.employers[1].staff[0]
        await tax.call("POST", "/collection/tax-payments/batches", json={"lines": [
            self._line(unreceived, PLANTED_FUND, "LATE-UNEMP", 38_600, "bank_withholding")]})
        self.findings.append(Finding(
            "税务已征、财政未到账的一笔失业保险费", "R1/S15",
            f"三方对账 /console/oversight/reconciliation/{self.last}/{PLANTED_FUND}", {"month": self.last, "fund": PLANTED_FUND}))
        cash = self.district.employers[1].staff[1]
        await tax.call("POST", "/collection/tax-payments/batches", json={"lines": [
            self._line(cash, "PEN_EMP", "CASH-PEN_EMP", 52_000, "cash")]})
        self.findings.append(Finding("以现金缴纳的一笔养老保险费（整改期限今天，明天起逾期）", "S17",
                                     "监督案件 /console/oversight/cases?rule_id=S17", {"tax_line_id": f"DC{self.last}-CASH-PEN_EMP"}))

    # -- the partner department's death batch ----------------------------------------------------------------------

    async def deaths(self) -> None:
        clerk = self.parties["clerk"]
        lines = (await clerk.json("GET", f"/benefits/payroll/runs/{self.money_out.run['id']}/lines",
                                  params={"limit": 200}))["items"]
        paid = {ln["person_id"] for ln in lines if ln["status"] == "paid"}
        victim = next(c.person for c in self.money_out.approved if c.person.id in paid)
        died = add_months(self.calendar.benefit_period, -1)
        others = [e.staff[-1] for e in self.district.employers[-3:]]
        records = [{"record_id": f"SW{died}-{i:04d}", "citizen_id": p.citizen_id, "name": p.name,
                    "death_date": f"{died // 100}-{died % 100:02d}-{10 + i:02d}"}
                   for i, p in enumerate([victim, *others], start=1)]
        records.append({"record_id": f"SW{died}-9999", "citizen_id": UNKNOWN_CITIZEN, "name": "查无此人",
                        "death_date": f"{died // 100}-{died % 100:02d}-28"})
        result = await self.parties["partner"].json("POST", "/accounts/exchange/batches", json={
            "batch_key": f"MZ-DEATH-{died}", "kind": "death", "records": records})
        self.say(f"民政死亡数据：{len(records)} 条（批次 {result['batch_key']}）")
        self.findings.append(Finding(
            "死亡后仍领取的一笔工伤待遇", "S01", f"监督案件 /console/oversight/cases?rule_id=S01（{victim.name}）",
            {"person_id": victim.id}))
        self.findings.append(Finding(
            "查无此人的死亡记录（待经办复核）", "数据交换", "经办：/api/accounts/exchange/records?status=unmatched",
            {"record_id": f"SW{died}-9999"}))
        self.findings.append(Finding(
            "申报基数低于下限的单位", "S10", f"监督案件 /console/oversight/cases?rule_id=S10（{self.low_payer.name}）",
            {"employer_id": self.low_payer.id, "period": self.last}))
        person = self.duplicate
        self.findings.append(Finding(
            "同时参加职工养老与居民养老的一人", "S03", f"监督案件 /console/oversight/cases?rule_id=S03（{person.name}）",
            {"person_id": person.id}))

    # -- oversight's view ----------------------------------------------------------------------------------------

    async def case_of(self, finding: Finding) -> dict | None:
        officer = self.parties["officer"]
        params = {"rule_id": finding.rule.split("/")[-1]}
        if "person_id" in finding.fact:
            params["person_id"] = finding.fact["person_id"]
        items = (await officer.json("GET", "/oversight/cases", params={**params, "limit": 100}))["items"]
        for case in items:
            text = f"{case['fact_key']} {case['details']}"
            if all(str(v) in text for k, v in finding.fact.items() if k != "person_id"):
                return case
        return None

    async def found(self, timeout: float = 300.0) -> None:
        """Run the sweep over the months, then wait until every planted fact has its case."""
        officer = self.parties["officer"]
        await officer.call("POST", "/oversight/rules/sweeps", json={"months": self.calendar.periods})
        for finding in self.findings:
            if finding.rule.startswith("R1") or finding.rule.startswith("S"):

                async def opened(finding: Finding = finding) -> bool:
                    case = await self.case_of(finding)
                    finding.case_id = case["id"] if case else None
                    return case is not None

                await until(opened, f"oversight's case for {finding.name}", timeout=timeout, pause=1.0)
        self.say("监督：全部埋点已立案")

    async def overdue(self) -> None:
        """The officer works the cash-payment case to rectification due today (overdue from tomorrow)."""
        officer = self.parties["officer"]
        finding = next(f for f in self.findings if f.rule == "S17")
        case = await officer.json("GET", f"/oversight/cases/{finding.case_id}")
        if case["status"] == "issued":
            case = await officer.json("POST", f"/oversight/cases/{case['id']}/investigate",
                                      json={"note": "调取税务征收明细核查"})
        if case["status"] == "investigating":
            case = await officer.json("POST", f"/oversight/cases/{case['id']}/classify", json={
                "class_code": 1, "finding": "征收窗口误收现金，已责令改为银行转账缴纳"})
        if case["status"] == "classified":
            await officer.call("POST", f"/oversight/cases/{case['id']}/rectification", already=("RECTIFICATION_EXISTS",),
                               json={"measures": "退还现金，通知单位改以银行转账缴纳并对窗口人员进行培训",
                                     "due_date": self.calendar.today.isoformat(), "responsible": "征收窗口负责人"})
