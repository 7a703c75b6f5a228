"""Money in for the demo city: the year's parameters and finance's accounts, the registry imported as the agency's
legacy files (a job per file), each employer's declarations and assessments, the tax bureau's lines in batches of up
to 10 000, and finance's remittances and receipts. The agency posts what was collected on its own (the COLLECTION
stream); oversight reconciles.

A second run changes nothing: parameters and accounts are looked up first, imports skipped when the registry is
complete (and their duplicate rows refused when not), declarations answer ASSESSMENT_EXISTS, a tax line id already
stored is reported as a duplicate, a remittance is keyed by its voucher and a receipt by its Idempotency-Key."""

import csv
import io
from collections.abc import Callable

from services.benefits.parameters.schemas import default_benefit_document
from services.collection.parameters.schemas import default_document
from sifund.demo_city.district import (CITY, CONTRIBUTION_FUNDS, DISTRICT, Calendar, District, Employer, fen,
                                       yuan)
from sifund.demo_city.party import DemoCityError, Party, in_parallel, until

AVERAGE_WAGE_FEN = 850_000
TAX_BATCH_LINES = 10_000
IMPORT_ROWS = 5_000
BANK = "中国工商银行呼和浩特新城支行"
JOB_FINISHED = {"succeeded", "failed"}
ALREADY_IMPORTED = {"EMPLOYER_ALREADY_REGISTERED", "PERSON_ALREADY_REGISTERED", "ALREADY_ENROLLED",
                    "ENROLMENT_ALREADY_EXISTS", "DUPLICATE_IN_FILE"}

Say = Callable[[str], None]


class MoneyIn:
    def __init__(self, parties: dict[str, Party], district: District, calendar: Calendar, say: Say):
        self.parties, self.district, self.calendar, self.say = parties, district, calendar, say
        # (employer serial, period) → the assessed lines: (person, fund, employer fen, individual fen)
        self.assessed: dict[tuple[int, int], list[tuple[str, str, int, int]]] = {}
        # History rows beyond the plan: (citizen id, fund, uscc or "", start period, end period)
        self.extra_enrolments: list[tuple[str, str, str, int, int]] = []

    # -- the year's parameters and the fund accounts ------------------------------------------------------------

    async def prepare(self) -> None:
        accountant, approver = self.parties["accountant"], self.parties["approver"]
        year_start = self.calendar.enrolled_from // 100 * 100 + 1
        for service, document in (("collection", default_document(AVERAGE_WAGE_FEN)),
                                  ("benefits", default_benefit_document(AVERAGE_WAGE_FEN))):
            effective = await accountant.call("GET", f"/{service}/parameters/effective/{CITY}/"
                                                     f"{self.calendar.enrolled_from}", already=("NO_PARAMETERS",))
            if effective.status_code == 200:
                continue
            proposed = await accountant.json("POST", f"/{service}/parameters", json={
                "region": CITY, "valid_from": year_start, "document": document, "reason": "演示城市年度参数"})
            await approver.call("POST", f"/{service}/parameters/{proposed['id']}/approve", json={"reason": "同意"})
        finance = self.parties["finance"]
        for number, fund in enumerate(CONTRIBUTION_FUNDS, start=1):
            await finance.call("POST", "/collection/treasury/accounts", already=("ACCOUNT_EXISTS",), json={
                "kind": "special", "fund": fund, "bank_name": BANK, "account_no": f"0602{number}12009024561",
                "opened_on": "2019-01-07", "opening_approval_ref": f"呼财社〔2019〕{number}号",
                "annual_inspection_due": "2027-03-31"})
        await accountant.call("POST", "/collection/treasury/accounts", already=("ACCOUNT_EXISTS",), json={
            "kind": "expenditure", "fund": "INJURY", "bank_name": BANK, "account_no": "060292009024568",
            "opened_on": "2019-01-07", "opening_approval_ref": "呼财社〔2019〕9号", "annual_inspection_due": "2027-03-31"})
        self.say("参数与基金账户：就绪")

    # -- the registry --------------------------------------------------------------------------------------------

    async def register(self) -> None:
        """Import employers, persons and enrolments (skipped when collection already knows every enrolment), then
        wait until collection's registry knows each employer's staff (it learns them from the ACCOUNTS stream)."""
        await self._find_employers()
        if all(e.id for e in self.district.employers) and await self._registry_complete(quick=True):
            self.say(f"登记：{len(self.district.employers)} 家单位、{len(self.district.persons)} 名参保人已在册，跳过导入")
            if self.extra_enrolments:  # the history rows beyond the plan: refused as already there if they are
                kind, header, _rows = self._import_rows()[-1]
                await self._import(kind, header, self.extra_enrolments)
            return
        for kind, header, rows in self._import_rows():
            for start in range(0, len(rows), IMPORT_ROWS):
                await self._import(kind, header, rows[start:start + IMPORT_ROWS])
            self.say(f"导入 {kind}：{len(rows)} 行")
        await self._find_employers()
        await self._registry_complete(quick=False)
        self.say("登记：征缴系统已同步全部参保关系")

    def _import_rows(self) -> list[tuple[str, tuple[str, ...], list[tuple]]]:
        d, start = self.district, self.calendar.enrolled_from
        employers = [(e.uscc, e.name, DISTRICT, 1 + e.serial % 3) for e in d.employers]
        persons = [(p.citizen_id, p.name, DISTRICT) for p in d.persons]
        enrolments = [(p.citizen_id, fund, e.uscc, start, "") for e in d.employers for p in e.staff
                      for fund in CONTRIBUTION_FUNDS]
        enrolments += self.extra_enrolments
        return [("employers", ("统一社会信用代码", "单位名称", "行政区划代码", "行业风险类别"), employers),
                ("persons", ("公民身份号码", "姓名", "行政区划代码"), persons),
                ("enrolments", ("公民身份号码", "险种", "统一社会信用代码", "参保开始年月", "参保终止年月"),
                 enrolments)]

    async def _import(self, kind: str, header: tuple[str, ...], rows: list[tuple]) -> None:
        """One file as a background job (``Prefer: respond-async``), polled to its end; rows refused only because
        they are there already (a second run) are fine."""
        clerk = self.parties["clerk"]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        job = await clerk.json("POST", f"/accounts/imports/{kind}", expect=(202,),
                               files={"file": (f"demo-city-{kind}.csv", text.getvalue().encode(), "text/csv")},
                               headers={"Prefer": "respond-async"})

        async def finished() -> bool:
            nonlocal job
            job = await clerk.json("GET", f"/accounts/jobs/{job['id']}")
            return job["status"] in JOB_FINISHED

        if job["status"] not in JOB_FINISHED:
            await until(finished, f"the {kind} import finished", timeout=600)
        result = job["result"] or {}
        if job["status"] != "succeeded" or result.get("status") != "completed":
            raise DemoCityError(f"the {kind} import ended {job['status']}: {job.get('error') or result}")
        if not set(result["rejections_by_code"]) <= ALREADY_IMPORTED:
            raise DemoCityError(f"the {kind} import refused rows: {result['rejections'][:5]}")

    async def _find_employers(self) -> None:
        by_uscc = {e.uscc: e for e in self.district.employers}
        after = None
        while True:
            page = await self.parties["clerk"].json("GET", "/accounts/employers", params={
                "limit": 500, **({"after": after} if after else {})})
            for item in page["items"]:
                if item["uscc"] in by_uscc:
                    by_uscc[item["uscc"]].id = item["id"]
            after = page.get("next_cursor")
            if not after:
                return

    async def _registry_complete(self, *, quick: bool) -> bool:
        """Collection knows every employer's enrolments and their persons (one read per employer); the person ids
        are taken from there. ``quick``: answer at once, otherwise wait for the stream."""
        by_citizen = {p.citizen_id: p for p in self.district.persons}

        async def known(employer: Employer) -> bool:
            response = await self.parties["clerk"].call(
                "GET", f"/collection/registry/employers/{employer.id}/enrolments", params={"limit": 1000},
                expect=(200, 404))
            items = response.json()["items"] if response.status_code == 200 else []
            mine = [i for i in items if i["fund"] in CONTRIBUTION_FUNDS]
            if len(mine) < len(employer.staff) * len(CONTRIBUTION_FUNDS) or any(
                    i["life_status"] is None for i in mine):
                return False
            for item in mine:
                by_citizen[item["citizen_id"]].id = item["person_id"]
            return True

        async def wait(employer: Employer) -> bool:
            if quick:
                return await known(employer)
            await until(lambda: known(employer), f"collection's registry of {employer.name}", timeout=600)
            return True

        return all(await in_parallel(self.district.employers, wait))

    # -- declarations and assessments ----------------------------------------------------------------------------

    async def assess(self) -> None:
        clerk = self.parties["clerk"]
        citizen_of = {p.id: p.citizen_id for p in self.district.persons}

        async def declare(item: tuple[Employer, int]) -> None:
            employer, period = item
            response = await clerk.call("POST", f"/collection/employers/{employer.id}/declarations",
                                        already=("ASSESSMENT_EXISTS",), json={"period": period, "lines": [
                                            {"citizen_id": p.citizen_id, "base": yuan(p.base_fen)}
                                            for p in employer.staff]})
            if response.status_code in (200, 201):
                assessment_id = response.json()["assessment"]["id"]
            else:
                found = (await clerk.json("GET", "/collection/assessments", params={
                    "employer_id": employer.id, "period": period}))["items"]
                assessment_id = found[0]["id"]
            lines, after = [], None
            while True:
                page = await clerk.json("GET", f"/collection/assessments/{assessment_id}", params={
                    "limit": 1000, **({"after": after} if after else {})})
                lines += [(citizen_of[ln["person_id"]], ln["fund"], ln["employer_fen"], ln["individual_fen"])
                          for ln in page["items"]]
                after = page.get("next_cursor")
                if not after:
                    break
            self.assessed[(employer.serial, period)] = lines

        work = [(e, p) for p in self.calendar.periods for e in self.district.employers]
        await in_parallel(work, declare, limit=4)
        self.say(f"申报核定：{len(work)} 份（{len(self.calendar.periods)} 个月）")

    # -- the tax bureau ------------------------------------------------------------------------------------------

    def tax_lines(self, period: int) -> list[dict]:
        lines = []
        for employer in self.district.employers:
            voucher = f"DC{period}-{employer.serial:05d}"
            for citizen_id, fund, employer_fen, individual_fen in self.assessed[(employer.serial, period)]:
                lines.append({"tax_line_id": f"DC{period}-{employer.serial:05d}-{citizen_id[-8:]}-{fund}",
                              "payer_uscc": employer.uscc, "citizen_id": citizen_id, "fund": fund, "period": period,
                              "employer_amount": yuan(employer_fen), "individual_amount": yuan(individual_fen),
                              "method": "bank_withholding", "voucher_no": voucher,
                              "paid_date": self.calendar.paid_on(period)})
        return lines

    async def pay(self) -> dict[tuple[int, str], int]:
        """Every assessed line paid, in batches; returns fen collected by (period, fund)."""
        collected: dict[tuple[int, str], int] = {}
        tax = self.parties["tax"]
        for period in self.calendar.periods:
            lines = self.tax_lines(period)
            stored = duplicates = 0
            for start in range(0, len(lines), TAX_BATCH_LINES):
                result = await tax.json("POST", "/collection/tax-payments/batches",
                                        json={"lines": lines[start:start + TAX_BATCH_LINES]})
                if result["rejected"]:
                    raise DemoCityError(f"the tax bureau's lines of {period} were refused: {result['rejections'][:5]}")
                stored += result.get("accepted", 0)
                duplicates += result.get("duplicates", 0)
            for line in lines:
                key = (period, line["fund"])
                collected[key] = collected.get(key, 0) + fen(line["employer_amount"]) + fen(line["individual_amount"])
            self.say(f"税务征收 {period}：{len(lines)} 行（新 {stored}，已有 {duplicates}）")
        return collected

    # -- finance -------------------------------------------------------------------------------------------------

    async def remit_and_receive(self, collected: dict[tuple[int, str], int]) -> None:
        finance = self.parties["finance"]
        for (period, fund), amount in sorted(collected.items()):
            remittance = (await finance.json("POST", "/collection/treasury/remittances", json={
                "fund": fund, "period": period, "amount": yuan(amount), "remitted_on": self.calendar.remitted_on(period),
                "voucher_no": f"GK{period}-{fund}"}))["remittance"]
            await finance.call("POST", "/collection/treasury/receipts", key=f"demo-city-receipt-{period}-{fund}", json={
                "remittance_id": remittance["id"], "amount": yuan(amount),
                "value_date": self.calendar.received_on(period), "reference": f"ZH{period}-{fund}"})
        self.say(f"财政：{len(collected)} 笔国库缴款及专户到账")
