"""Money out for the demo city: work-injury allowances (伤残津贴) claimed for last month and left at every level of
the important-claim chain (初审 → 复审 → 审批, 004 第4项) — some waiting at each level, some approved, one refused,
one blocked by the online verification and back with the clerk — and the INJURY payroll of the approved ones:
computed, approved, funded by finance, sent to the bank, two lines returned failed.

A claim takes no Idempotency-Key: each person's claim is looked up before it is submitted, and each level is decided
only while it is the claim's next one, so a second run decides nothing twice."""

from collections.abc import Callable
from dataclasses import dataclass

from services.benefits.payroll import bankfile
from sifund.demo_city.district import Calendar, District, Person, add_months, bank_card, yuan
from sifund.demo_city.party import DemoCityError, Party, in_parallel, until

LEVEL_DECIDER = {"first_review": "reviewer", "second_review": "reviewer_2", "approval": "approver",
                 "large_amount_review": "approver"}
# The target of each claim, in the order persons are drawn: how far the decisions go.
TARGETS = (["first_review"] * 2 + ["second_review"] * 2 + ["approval"] * 2 + ["approved"] * 6 + ["rejected"]
           + ["blocked"])
BANK_FAILURES = 2  # lines of the payroll the bank returns failed
INJURY_BANK = "中国农业银行呼和浩特新城支行"


@dataclass
class Claimant:
    person: Person
    target: str
    monthly_fen: int
    claim_id: str | None = None
    status: str | None = None
    next_level: str | None = None


class MoneyOut:
    def __init__(self, parties: dict[str, Party], district: District, calendar: Calendar, say: Callable[[str], None]):
        self.parties, self.district, self.calendar, self.say = parties, district, calendar, say
        # The first employer's staff claim, in order (the planted pension-after-death claimant is among the paid).
        staff = district.employers[0].staff
        self.claimants = [Claimant(p, target, 150_000 + 10_000 * (p.serial % 12))
                          for p, target in zip(staff, TARGETS, strict=False)]
        self.run: dict | None = None
        self.paid: list[str] = []  # payroll line ids the bank paid
        self.failed: list[str] = []

    @property
    def approved(self) -> list[Claimant]:
        return [c for c in self.claimants if c.target == "approved"]

    async def claims(self) -> None:
        await in_parallel(self.claimants, self._claim)
        await in_parallel(self.claimants, self._decide)
        counts: dict[str, int] = {}
        for c in self.claimants:
            counts[c.status or "?"] = counts.get(c.status or "?", 0) + 1
        self.say(f"待遇申领：{len(self.claimants)} 件（" + "，".join(f"{k} {v}" for k, v in sorted(counts.items())) + "）")

    async def _bank_account(self, claimant: Claimant) -> None:
        clerk, person = self.parties["clerk"], claimant.person
        await clerk.call("POST", f"/accounts/persons/{person.id}/bank-accounts",
                         already=("BANK_ACCOUNT_ALREADY_REGISTERED",), json={
                             "kind": "bank_account", "bank_name": INJURY_BANK, "account_no": bank_card(person.serial),
                             "holder_name": person.name})

        async def payable() -> bool:
            response = await clerk.call("GET", f"/benefits/registry/persons/{person.id}", expect=(200, 404))
            return response.status_code == 200 and any(a["payable"] for a in response.json()["accounts"])

        await until(payable, f"{person.name}'s payment account known to benefits")

    async def _claim(self, claimant: Claimant) -> None:
        clerk = self.parties["clerk"]
        found = (await clerk.json("GET", "/benefits/claims", params={"person_id": claimant.person.id}))["items"]
        if not found:
            await self._bank_account(claimant)
            # The blocked one claims from before the person was enrolled: the online verification fails
            # (NOT_ENROLLED) and the claim goes back to the clerk with its reason.
            effective = (add_months(self.calendar.enrolled_from, -2) if claimant.target == "blocked"
                         else self.calendar.benefit_period)
            found = [await clerk.json("POST", "/benefits/claims", json={
                "kind": "injury", "person_id": claimant.person.id, "effective_period": effective,
                "monthly_amount": yuan(claimant.monthly_fen),
                "documents": [{"kind": "工伤认定决定书", "reference": f"呼人社工认〔2026〕{claimant.person.serial}号"},
                              {"kind": "劳动能力鉴定结论书", "reference": f"呼劳鉴〔2026〕{claimant.person.serial}号"}]})]
        self._note(claimant, found[0])

    def _note(self, claimant: Claimant, claim: dict) -> None:
        claimant.claim_id, claimant.status, claimant.next_level = claim["id"], claim["status"], claim["next_level"]

    async def _decide(self, claimant: Claimant) -> None:
        """Decide the claim's levels up to its target: stop before the target level, approve through to the end, or
        reject at the first level."""
        while claimant.status == "in_review" and claimant.next_level and claimant.next_level != claimant.target:
            decision = "reject" if claimant.target == "rejected" else "approve"
            reason = "工伤认定与劳动能力鉴定材料不一致，不予核准" if decision == "reject" else "材料齐全，核定无误，同意"
            claim = await self.parties[LEVEL_DECIDER[claimant.next_level]].json(
                "POST", f"/benefits/claims/{claimant.claim_id}/decisions",
                json={"decision": decision, "reason": reason, "level": claimant.next_level})
            self._note(claimant, claim)

    # -- the INJURY payroll of last month -------------------------------------------------------------------------

    async def payroll(self) -> None:
        clerk, approver, accountant = self.parties["clerk"], self.parties["approver"], self.parties["accountant"]
        period = self.calendar.benefit_period
        run = (await clerk.json("POST", "/benefits/payroll/runs", json={"fund": "INJURY", "period": period}))["run"]
        if run["lines"] < len(self.approved):
            raise DemoCityError(f"the INJURY payroll of {period} has {run['lines']} lines, expected "
                                f"{len(self.approved)}")
        if run["status"] == "computed":
            run = await approver.json("POST", f"/benefits/payroll/runs/{run['id']}/approve")
        if run["funding_requested_at"] is None:
            await accountant.call("POST", f"/benefits/payroll/runs/{run['id']}/funding-request")
        await self.parties["finance"].call("POST", "/collection/treasury/allocations",
                                           key=f"demo-city-allocation-INJURY-{period}", json={
                                               "fund": "INJURY", "amount": run["total"],
                                               "value_date": self.calendar.today.replace(day=1).isoformat(),
                                               "payroll_reference": run["id"]})
        files = await self.parties["cashier"].json("GET", f"/benefits/payroll/runs/{run['id']}/bank-files")
        file = files[0] if files else (await self.parties["cashier"].json(
            "POST", f"/benefits/payroll/runs/{run['id']}/bank-files"))["file"]
        if file["awaiting_result"]:
            await self._bank_results(file)
        self.run = await clerk.json("GET", f"/benefits/payroll/runs/{run['id']}")
        by_status = {k: v["lines"] for k, v in self.run["by_status"].items() if v["lines"]}
        self.say(f"工伤待遇发放 {period}：{self.run['lines']} 人，合计 {self.run['total']} 元，"
                 + "，".join(f"{k} {v}" for k, v in sorted(by_status.items())))

    async def _bank_results(self, file: dict) -> None:
        bank = self.parties["bank"]
        content = (await bank.call("GET", f"/benefits/payroll/bank-files/{file['id']}/content")).text
        parsed = bankfile.parse_payment_file(content)
        results = []
        for index, line in enumerate(parsed.lines):
            failed = index >= len(parsed.lines) - BANK_FAILURES
            results.append({"line_no": line.line_no, "payroll_line_id": line.payroll_line_id,
                            "result": "failed" if failed else "paid",
                            **({"reason": "账户已冻结"} if failed else {})})
            (self.failed if failed else self.paid).append(line.payroll_line_id)
        await bank.call("POST", f"/benefits/payroll/bank-files/{file['id']}/results",
                        json={"checksum": parsed.checksum, "lines": results})
