"""What the demo city gives the supervisor's own screens (举报处理, 重大要情, 现场监督): a whistleblower report filed
by the public on the web form, a major incident recorded by the officer, and an inspection of the district's agency
taken to its 问题反馈函 — each through the gateway, as the reporter and the officer would.

None of these routes takes an Idempotency-Key (the public form has no caller to hold one), so a second run finds
what the first planted before planting, by the marker each carries (the seed in its title or unit): the report among
the officer's web reports, the incident among the incidents, the inspection among the inspections — then only its
missing steps are taken (a finding by its title, the letter once: its number is unique). The report's tracking code
is shown once, to whoever filed it: the demo keeps it in its own state file (``demo-city-state.json`` beside the
credentials, mode 0600) to print it again."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sifund.demo_city.district import Calendar, District, Employer
from sifund.demo_city.party import DemoCityError, Party
from sifund.launcher import write_private

STATE_FILE = "demo-city-state.json"
INSPECTED_UNIT = "新城区社会保险事业管理中心"
FINDINGS = (
    ("待遇资格认证不及时", "抽查 30 名领取人，4 名超过 12 个月未进行资格认证仍在发放", "INJURY", "12600.00"),
    ("稽核内控抽查比例不足", "2 个月的业务抽查未达到规定比例", None, "0.00"),
)


@dataclass
class Planted:
    screen: str  # the console screen that shows it
    href: str
    note: str = ""

    def line(self) -> str:
        return f"  - {self.screen}：{self.href}{self.note}"


class DemoState:
    """The demo's own memory between runs (what the API has no key for), readable by its owner only."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.values: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.values = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value
        write_private(self.path, json.dumps(self.values, ensure_ascii=False, indent=1))


class SupervisorPlants:
    def __init__(self, parties: dict[str, Party], district: District, calendar: Calendar, state: DemoState,
                 seed: int, say: Callable[[str], None]):
        self.parties, self.district, self.calendar, self.state, self.say = parties, district, calendar, state, say
        self.seed = seed
        self.planted: list[Planted] = []

    @property
    def reported_employer(self) -> Employer:
        return self.district.employers[4 % len(self.district.employers)]

    async def plant(self) -> list[Planted]:
        await self.whistleblower_report()
        await self.major_incident()
        await self.inspection()
        return self.planted

    # -- the public's report ------------------------------------------------------------------------------------------

    @property
    def report_title(self) -> str:
        return f"{self.reported_employer.name}少报职工缴费基数（演示城市 {self.seed}）"

    async def _find(self, path: str, match: Callable[[dict], bool], **params: Any) -> dict | None:
        """The first row of the officer's list ``path`` (every page, whatever year) that ``match`` accepts."""
        officer, after = self.parties["officer"], None
        while True:
            page = await officer.json("GET", path, params={**params, "limit": 200, **({"after": after} if after else {})})
            found = next((row for row in page["items"] if match(row)), None)
            if found or not page.get("next_cursor"):
                return found
            after = page["next_cursor"]

    async def _report_by_title(self) -> dict | None:
        return await self._find("/oversight/whistleblowing/reports", lambda r: r["title"] == self.report_title,
                                channel="web")

    async def whistleblower_report(self) -> None:
        """Filed on the public web form (no token), anonymously; its tracking code kept in the demo's state."""
        key = f"whistleblower_tracking_code:{self.seed}"
        code = self.state.get(key)
        existing = await self._report_by_title()
        if existing is None:
            employer = self.reported_employer
            response = await self.parties["officer"].client.post("/api/oversight/whistleblowing/reports", json={
                "channel": "web", "anonymous": True, "category": "collection", "subject_type": "employer",
                "subject_name": employer.name, "title": self.report_title, "amount_claimed": "18000.00",
                "content": f"{employer.name}按最低基数为部分职工申报缴费，实际工资远高于申报基数，请予核查。",
                "region": "150102"})
            if response.status_code != 201:
                raise DemoCityError(f"the public whistleblower form answered {response.status_code} "
                                    f"{response.text[:300]}")
            code = response.json()["tracking_code"]
            self.state.put(key, code)
            existing = await self._report_by_title()
        if existing is None:
            raise DemoCityError("the whistleblower report filed is not among the officer's reports")
        note = f"（举报人查询码 {code}，公开页面 /console/public/whistleblowing 可查询）" if code else ""
        self.planted.append(Planted("举报处理：网上匿名举报", f"/console/oversight/whistleblowing/{existing['id']}", note))

    # -- the major incident ---------------------------------------------------------------------------------------------

    @property
    def incident_title(self) -> str:
        return f"{INSPECTED_UNIT}挪用工伤保险基金垫付办公经费（演示城市 {self.seed}）"

    async def major_incident(self) -> None:
        """A major incident found today: due at the provincial supervisor within 5 working days (001 第三十一条)."""
        officer, today = self.parties["officer"], self.calendar.today
        incident = await self._find("/oversight/incidents", lambda i: i["title"] == self.incident_title,
                                    kind="misappropriation")
        if incident is None:
            incident = await officer.json("POST", "/oversight/incidents", json={
                "kind": "misappropriation", "title": self.incident_title, "unit": INSPECTED_UNIT, "region": "150102",
                "description": "现场监督发现工伤保险基金支出户向经办机构基本户划转 86 万元，用于垫付办公经费，尚未归还。",
                "channel": "inspection", "discovered_on": today.isoformat(), "amount": "860000.00", "major": True,
                "major_reason": "挪用基金，数额较大（001 第三十一条）"})
        self.planted.append(Planted("重大要情：挪用基金（5 个工作日内报告倒计时）",
                                    f"/console/oversight/incidents/{incident['id']}"))

    # -- the inspection and its feedback letter ------------------------------------------------------------------------

    @property
    def letter_no(self) -> str:
        return f"新监反馈〔{self.calendar.today.year}〕演示{self.seed}号"

    async def _inspection(self) -> dict:
        officer, planned = self.parties["officer"], self.calendar.today - timedelta(days=7)
        unit = f"{INSPECTED_UNIT}（演示城市 {self.seed}）"
        found = await self._find("/oversight/inspections", lambda i: i["target_unit"] == unit)
        if found is not None:
            return found
        return await officer.json("POST", "/oversight/inspections", json={
            "target_unit": unit, "target_level": "lower_level", "planned_on": planned.isoformat(),
            "scope": "工伤保险待遇发放、资格认证与稽核内控执行情况", "members": [
                {"inspector_id": officer.name, "name": "演示监督员", "leader": True},
                {"inspector_id": "demo_city_inspector2", "name": "演示监督员乙"}]})

    async def inspection(self) -> None:
        """Planned a week ago (notified 5 days before), two findings, and today its 问题反馈函 with a deadline per
        finding 30 days on (001 第十一条)."""
        officer, today = self.parties["officer"], self.calendar.today
        inspection = await self._inspection()
        path = f"/oversight/inspections/{inspection['id']}"
        if inspection["status"] == "planned":
            inspection = await officer.json("POST", f"{path}/notification", json={
                "notified_on": (today - timedelta(days=12)).isoformat(), "notice_ref": f"新监通〔{today.year}〕演示{self.seed}号"})
        if inspection["status"] in ("notified", "inspecting"):
            titles = {f["title"] for f in inspection["findings"]}
            for title, description, fund, amount in FINDINGS:
                if title not in titles:
                    await officer.call("POST", f"{path}/findings", json={
                        "title": title, "description": description, "fund": fund, "amount": amount})
            inspection = await officer.json("GET", path)
            await officer.call("POST", f"{path}/feedback-letter", already=("LETTER_NO_TAKEN",), json={
                "letter_no": self.letter_no, "issued_on": today.isoformat(),
                "requirements": "请于整改期限内完成整改并书面报告整改情况。",
                "deadlines": [{"finding_id": f["id"], "rectify_by": (today + timedelta(days=30)).isoformat()}
                              for f in inspection["findings"]]})
        self.planted.append(Planted("现场监督：已下发问题反馈函", f"/console/oversight/inspections/{inspection['id']}",
                                    f"（{self.letter_no}，每条问题整改期限 30 日）"))
