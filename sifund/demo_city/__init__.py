"""``sifund demo city``: fill a running platform, through its gateway only, with a synthetic district so that a
newcomer opening the console sees a living system — thousands of insured persons and dozens of employers, three
months of declarations, assessments, tax lines, treasury remittances and receipts (the agency posts on its own),
work-injury claims at every level of approval, a payroll with bank failures, a death batch from the partner
department, and planted anomalies that oversight's reconciliation and rules find (``anomalies.py``).

It signs in as the demo users and clients of ``sifund demo`` (their secrets read from ``demo-credentials.txt`` in
the data directory, never printed), plus a second reviewer it creates through the IT administrator (an important
claim's 复审 must be another reviewer than its 初审; that password is kept beside the others, mode 0600).

Seeded and idempotent: the same ``--seed`` gives the same district, and a second run finds everything there (natural
keys, Idempotency-Keys, look-ups before claims) and doubles nothing."""

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from sifund.demo_city.anomalies import Plant
from sifund.demo_city.district import CONTRIBUTION_FUNDS, Calendar, build_district
from sifund.demo_city.money_in import MoneyIn
from sifund.demo_city.money_out import MoneyOut
from sifund.demo_city.party import DemoCityError, Party, read_credentials, until
from sifund.demo_city.supervision import STATE_FILE, DemoState, SupervisorPlants
from sifund.launcher import write_private

__all__ = ["DemoCityError", "Options", "fill_city"]

SECOND_REVIEWER = "demo_city_reviewer2"
CITY_CREDENTIALS = "demo-city-credentials.txt"
USERS = {"clerk": "agency_clerk", "reviewer": "agency_reviewer", "approver": "agency_approver",
         "accountant": "accountant", "cashier": "cashier", "finance": "finance_officer", "officer": "oversight_officer",
         "admin": "it_admin"}
CLIENTS = {"tax": "demo_tax", "bank": "demo_bank", "partner": "demo_partner"}


@dataclass(frozen=True)
class Options:
    gateway: str
    data_dir: Path
    credentials: Path
    persons: int = 3000
    seed: int = 2026


async def _parties(client: httpx.AsyncClient, options: Options) -> dict[str, Party]:
    known = read_credentials(options.credentials)
    needed = [f"demo_{role}" for role in USERS.values()] + list(CLIENTS.values())
    if missing := [name for name in needed if name not in known]:
        raise DemoCityError(f"{options.credentials} lacks {', '.join(missing)}: run `sifund demo` first")
    parties = {who: Party(client, f"demo_{role}", known[f"demo_{role}"]) for who, role in USERS.items()}
    parties |= {who: Party(client, name, known[name], system=True) for who, name in CLIENTS.items()}
    await asyncio.gather(*(p.sign_in() for p in parties.values()))
    parties["reviewer_2"] = await _second_reviewer(client, parties["admin"], options.data_dir / CITY_CREDENTIALS)
    return parties


async def _second_reviewer(client: httpx.AsyncClient, admin: Party, path: Path) -> Party:
    """The city's second agency reviewer, created once by the IT administrator; the password kept in ``path``."""
    kept = read_credentials(path) if path.exists() else {}
    if SECOND_REVIEWER not in kept:
        password = f"City-{secrets.token_hex(10)}-R2"
        response = await admin.call("POST", "/identity/users", api=False, already=("USER_EXISTS",), json={
            "username": SECOND_REVIEWER, "display_name": "演示复审员", "unit": "演示社保经办机构", "region": "150100",
            "password": password})
        if response.status_code not in (200, 201):
            raise DemoCityError(f"{SECOND_REVIEWER} exists but its password is not in {path}: disable it (sifund user "
                                "disable) and create another, or restore the file")
        write_private(path, f"Demo city accounts (kind, user name, password, role):\n"
                            f"  user   {SECOND_REVIEWER} {password} agency_reviewer\n")
        kept[SECOND_REVIEWER] = password
    await admin.call("POST", f"/identity/users/{SECOND_REVIEWER}/roles", api=False, already=("ROLE_ALREADY_HELD",),
                     json={"role": "agency_reviewer", "reason": "演示城市复审岗"})
    return await Party(client, SECOND_REVIEWER, kept[SECOND_REVIEWER]).sign_in()


async def _close_settled_months(parties: dict[str, Party], months: list[int], say: Callable[[str], None]) -> None:
    """Wait until R1 of each month is matched for every fund (the agency has posted), then close it (月结): the
    public disclosure shows closed months."""
    officer = parties["officer"]
    closed = []
    for month in months:
        async def matched(month: int = month) -> bool:
            report = await officer.json("GET", f"/oversight/reconciliation/months/{month}",
                                        params={"include_matched": True})
            if report.get("closed"):
                return True
            cells = next(c for c in report["checks"] if c["check"] == "R1")["cells"]
            return {c["fund"] for c in cells if c["status"] == "matched"} >= set(CONTRIBUTION_FUNDS)

        try:
            await until(matched, f"R1 of {month} matched", timeout=300, pause=1.0)
        except DemoCityError:  # other data on this platform keeps the month open: leave it for a person to judge
            say(f"月结：{month} 三方未全部一致（平台上另有数据？），未月结")
            continue
        await officer.call("POST", f"/oversight/reconciliation/months/{month}/close", already=("MONTH_ALREADY_CLOSED",),
                           json={"note": "演示城市月结"})
        closed.append(month)
    say(f"月结：{', '.join(map(str, closed)) or '无'}")


async def fill_city(options: Options, say: Callable[[str], None]) -> list[str]:
    """Fill the city; returns the report's lines (what was planted and where to see it)."""
    began = time.monotonic()
    calendar = Calendar.of_today()
    district = build_district(options.persons, options.seed)
    say(f"演示城市（种子 {options.seed}）：{len(district.employers)} 家单位、{len(district.persons)} 名参保人，"
        f"缴费月份 {', '.join(map(str, calendar.periods))}，待遇月份 {calendar.benefit_period}")
    async with httpx.AsyncClient(base_url=options.gateway, timeout=60.0, trust_env=False) as client:
        parties = await _parties(client, options)
        money_in = MoneyIn(parties, district, calendar, say)
        money_out = MoneyOut(parties, district, calendar, say)
        plant = Plant(parties, district, calendar, money_in, money_out, say)
        await money_in.prepare()
        plant.plan_registry()
        plant.plan_declarations()
        await money_in.register()
        await money_in.assess()
        await money_in.remit_and_receive(await money_in.pay())
        await _close_settled_months(parties, calendar.periods[:-1], say)
        await plant.tax_lines()
        await money_out.claims()
        await money_out.payroll()
        await plant.deaths()
        await plant.found()
        await plant.overdue()
        supervision = await SupervisorPlants(parties, district, calendar, DemoState(options.data_dir / STATE_FILE),
                                             options.seed, say).plant()
    console = options.gateway.rstrip("/") + "/console/"
    return [f"演示城市就绪（{time.monotonic() - began:.0f} 秒）。控制台 {console}，用 {options.credentials} 中的演示账号登录。",
            "埋点（监督应发现的问题）及查看位置：", *(f.line() for f in plant.findings),
            "监督人员的办理事项：", *(p.line() for p in supervision),
            f"  - 逾期案件：/console/oversight/cases（S17 案件整改期限为今天 {calendar.today}，明天起列入逾期）",
            "待遇审批各环节：/api/benefits/claims?status=in_review（初审、复审、审批各 2 件），已核准 6 件、"
            "不予核准 1 件、核查未通过退回经办 1 件"]
