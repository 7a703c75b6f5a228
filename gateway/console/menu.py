"""The console's screens and the menu built from the token's roles.

Each screen lists the gateway routes it calls. Who may call a route is read from the OpenAPI documents the gateway
publishes (its own ``/openapi.json`` and each service's ``/api/<service>/openapi.json``): ``x-sifund-roles`` or
``x-sifund-public`` per operation, written by ``services.kernel.auth.enforce_route_policies`` from the very guards
that decide. A screen is shown, and served, only when every route it calls admits one of the user's roles: the menu
never offers a screen whose API would refuse the user, and there is no second list of roles to keep in step."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from services.kernel.settings import SERVICES

PUBLIC = "public"
# The policies change only with a deployment; a minute keeps the console from asking for five documents per page.
POLICY_TTL_SECONDS = 60.0
INCOMPLETE_TTL_SECONDS = 5.0  # a service was down: ask again soon


@dataclass(frozen=True)
class Screen:
    key: str
    label: str
    href: str
    section: str
    routes: tuple[tuple[str, str], ...]  # (method, gateway path template), e.g. ("GET", "/api/oversight/cases")
    in_menu: bool = True


SCREENS: tuple[Screen, ...] = (
    Screen("disclosure", "基金信息公开", "/console/public/disclosure", "公开信息",
           (("GET", "/api/oversight/disclosure/funds"), ("GET", "/api/oversight/disclosure/funds/{fund}/{year}"))),
    Screen("whistleblowing", "举报与查询", "/console/public/whistleblowing", "公开信息",
           (("POST", "/api/oversight/whistleblowing/reports"),
            ("GET", "/api/oversight/whistleblowing/track/{code}"))),
    Screen("home", "我的工作台", "/console/", "工作台", (("GET", "/auth/me"),)),
    Screen("reconciliation", "三方对账", "/console/oversight/reconciliation", "基金监督",
           (("GET", "/api/oversight/reconciliation/months/{month}"),)),
    Screen("cases", "监督案件", "/console/oversight/cases", "基金监督",
           (("GET", "/api/oversight/cases"), ("GET", "/api/oversight/cases/overdue"),
            ("GET", "/api/oversight/cases/{case_id}"))),
    Screen("rectification", "整改台账", "/console/oversight/rectification", "基金监督",
           (("GET", "/api/oversight/rectification-ledger"),)),
    Screen("incidents", "重大要情", "/console/oversight/incidents", "基金监督",
           (("GET", "/api/oversight/incidents"), ("GET", "/api/oversight/incidents/due"),
            ("GET", "/api/oversight/incidents/{incident_id}"))),
    Screen("chains", "审计链状态", "/console/oversight/chains", "基金监督", (("GET", "/api/oversight/chains"),)),
    Screen("whistleblowing_reports", "举报处理", "/console/oversight/whistleblowing", "基金监督",
           (("GET", "/api/oversight/whistleblowing/reports"),
            ("GET", "/api/oversight/whistleblowing/reports/{report_id}"))),
    Screen("inspections", "现场监督", "/console/oversight/inspections", "基金监督",
           (("GET", "/api/oversight/inspections"), ("GET", "/api/oversight/inspections/{inspection_id}"))),
    Screen("dishonesty", "失信名单", "/console/oversight/dishonesty", "基金监督",
           (("GET", "/api/oversight/dishonesty-list"),)),
    Screen("rules", "疑点规则", "/console/oversight/rules", "基金监督",
           (("GET", "/api/oversight/rules"), ("GET", "/api/oversight/cases"))),
    Screen("sweeps", "规则扫描", "/console/oversight/sweeps", "基金监督",
           (("GET", "/api/oversight/rules/sweeps"), ("GET", "/api/oversight/rules/sweeps/{sweep_id}"))),
    Screen("scheduler", "定时任务", "/console/oversight/scheduler", "基金监督",
           (("GET", "/api/oversight/scheduler/runs"), ("GET", "/api/oversight/scheduler/jobs"))),
    Screen("claims", "待遇审核", "/console/agency/claims", "经办业务",
           (("GET", "/api/benefits/claims"), ("GET", "/api/benefits/claims/{claim_id}"))),
    Screen("persons", "参保人员", "/console/agency/persons", "经办业务",
           (("GET", "/api/accounts/persons"), ("GET", "/api/accounts/persons/{person_id}"),
            ("GET", "/api/accounts/enrolments/by-person/{person_id}"))),
    Screen("corrections", "后台修改审核", "/console/agency/corrections", "经办业务",
           (("GET", "/api/accounts/life-status-corrections"),)),
    Screen("employers", "参保单位", "/console/agency/employers", "经办业务",
           (("GET", "/api/accounts/employers"), ("GET", "/api/accounts/employers/{employer_id}"),
            ("GET", "/api/accounts/enrolments/by-employer/{employer_id}"))),
    Screen("registration", "参保登记", "/console/agency/register", "经办业务",
           (("POST", "/api/accounts/persons"), ("POST", "/api/accounts/employers"),
            ("POST", "/api/accounts/enrolments"))),
    Screen("unmatched", "未匹配税务明细", "/console/agency/unmatched", "经办业务",
           (("GET", "/api/collection/tax-payments/unmatched"),)),
    Screen("exchange", "部门交换数据", "/console/agency/exchange", "经办业务",
           (("GET", "/api/accounts/exchange/records"),)),
    Screen("imports", "批量导入", "/console/agency/imports", "经办业务",
           (("GET", "/api/accounts/imports"), ("GET", "/api/accounts/imports/{job_id}"),
            ("GET", "/api/accounts/imports/{job_id}/rejections"))),
    Screen("remittances", "国库划款与到账", "/console/finance/remittances", "财务管理",
           (("GET", "/api/collection/treasury/remittances"),)),
    Screen("transactions", "专户收支", "/console/finance/transactions", "财务管理",
           (("GET", "/api/collection/treasury/transactions"),)),
    Screen("bank_accounts", "基金银行账户", "/console/finance/accounts", "财务管理",
           (("GET", "/api/collection/treasury/accounts"),)),
    Screen("finance_entries", "专户收款登记", "/console/finance/entries", "财务管理",
           (("POST", "/api/collection/treasury/remittances"), ("POST", "/api/collection/treasury/receipts"),
            ("POST", "/api/collection/treasury/allocations"))),
    Screen("payroll_funding", "工资资金申请", "/console/finance/payroll-funding", "财务管理",
           (("GET", "/api/benefits/payroll/runs"),)),
    Screen("budgets", "预算与执行", "/console/finance/budgets", "财务管理",
           (("GET", "/api/oversight/budget"), ("GET", "/api/oversight/budget/{fund}/{year}"),
            ("GET", "/api/oversight/budget/{fund}/{year}/execution"),
            ("GET", "/api/oversight/budget/{fund}/{year}/adjustments"),
            ("GET", "/api/oversight/budget/{fund}/{year}/final-accounts"), ("GET", "/api/oversight/budget/items"))),
    Screen("budget_compile", "编制预算", "/console/finance/budget-compile", "财务管理",
           (("POST", "/api/oversight/budget"), ("GET", "/api/oversight/budget/items"))),
    Screen("payroll", "发放批次", "/console/payroll/runs", "待遇发放",
           (("GET", "/api/benefits/payroll/runs"), ("GET", "/api/benefits/payroll/runs/{run_id}"),
            ("GET", "/api/benefits/payroll/runs/{run_id}/lines"),
            ("GET", "/api/benefits/payroll/runs/{run_id}/bank-files"))),
    Screen("payroll_compute", "计算发放批次", "/console/payroll/compute", "待遇发放",
           (("POST", "/api/benefits/payroll/runs"),)),
    Screen("jobs_accounts", "登记任务进度", "/console/jobs/accounts", "后台任务",
           (("GET", "/api/accounts/jobs/{job_id}"),), in_menu=False),
    Screen("jobs_collection", "征缴任务进度", "/console/jobs/collection", "后台任务",
           (("GET", "/api/collection/jobs/{job_id}"),), in_menu=False),
    Screen("jobs_oversight", "监督任务进度", "/console/jobs/oversight", "后台任务",
           (("GET", "/api/oversight/jobs/{job_id}"),), in_menu=False),
    Screen("jobs_benefits", "待遇任务进度", "/console/jobs/benefits", "后台任务",
           (("GET", "/api/benefits/jobs/{job_id}"),), in_menu=False),
    Screen("archives", "档案查询", "/console/archives/dossiers", "业务档案",
           (("GET", "/api/accounts/archives/dossiers"), ("GET", "/api/accounts/archives/dossiers/{dossier_id}/items"))),
    Screen("archive_register", "档案利用登记", "/console/archives/access-register", "业务档案",
           (("GET", "/api/accounts/archives/access-register"),)),
    Screen("archive_verification", "档案包校验", "/console/archives/verification", "业务档案",
           (("POST", "/api/accounts/archives/packages/verification"),)),
    Screen("archive_disposals", "档案鉴定销毁", "/console/archives/disposals", "业务档案",
           (("GET", "/api/accounts/archives/disposals"), ("GET", "/api/accounts/archives/disposals/{disposal_id}"))),
    Screen("archive_disposal_proposal", "提出销毁清册", "/console/archives/disposal-proposal", "业务档案",
           (("POST", "/api/accounts/archives/disposals"),), in_menu=False),
    Screen("archive_seals", "档案年度封存", "/console/archives/seals", "业务档案",
           (("GET", "/api/accounts/archives/years/{year}/seal"),
            ("GET", "/api/accounts/archives/years/{year}/verification"))),
    Screen("control_samples", "内控抽查", "/console/internal-control/samples", "稽核内控",
           (("GET", "/api/accounts/internal-control/samples"),
            ("GET", "/api/accounts/internal-control/samples/{sample_id}"))),
    Screen("control_draw", "抽取内控样本", "/console/internal-control/draw", "稽核内控",
           (("POST", "/api/accounts/internal-control/samples"),)),
    Screen("control_reports", "内控年度报告", "/console/internal-control/reports", "稽核内控",
           (("GET", "/api/accounts/internal-control/reports"),
            ("GET", "/api/accounts/internal-control/reports/{report_id}/document"))),
    Screen("control_deadline", "内控报告期限", "/console/internal-control/deadline", "稽核内控",
           (("GET", "/api/oversight/internal-control/reports/{year}"),
            ("GET", "/api/oversight/internal-control/reports"))),
    Screen("users", "用户与角色", "/console/admin/users", "系统管理",
           (("GET", "/identity/users"), ("GET", "/identity/conflict-rules"),
            ("GET", "/identity/reports/long-tenure"))),
    Screen("clients", "系统客户端", "/console/admin/clients", "系统管理", (("GET", "/identity/clients"),)),
)
SCREENS_BY_KEY = {screen.key: screen for screen in SCREENS}
PUBLIC_SCREENS = frozenset({"disclosure", "whistleblowing"})


class RoutePolicies:
    """(method, gateway path) → the roles the route admits, or ``PUBLIC``; unknown routes admit nobody."""

    def __init__(self, policies: dict[tuple[str, str], frozenset[str] | str]):
        self.policies = policies

    @classmethod
    def from_documents(cls, documents: dict[str, dict]) -> "RoutePolicies":
        """``documents``: ``"gateway"`` → the gateway's own OpenAPI, ``<service>`` → that service's."""
        policies: dict[tuple[str, str], frozenset[str] | str] = {}
        for name, document in documents.items():
            prefix = "" if name == "gateway" else f"/api/{name}"
            for path, operations in (document.get("paths") or {}).items():
                for method, operation in operations.items():
                    if not isinstance(operation, dict):
                        continue
                    if operation.get("x-sifund-public"):
                        policies[(method.upper(), prefix + path)] = PUBLIC
                    elif operation.get("x-sifund-roles"):
                        policies[(method.upper(), prefix + path)] = frozenset(operation["x-sifund-roles"])
        return cls(policies)

    def admits(self, route: tuple[str, str], roles: Iterable[str]) -> bool:
        policy = self.policies.get(route)
        if policy is None:
            return False
        return policy == PUBLIC or bool(policy & set(roles))

    def screen_allowed(self, screen: Screen, roles: Iterable[str]) -> bool:
        roles = set(roles)
        return all(self.admits(route, roles) for route in screen.routes)

    def menu(self, roles: Iterable[str]) -> list[tuple[str, list[Screen]]]:
        """The screens these roles may use, grouped by section in the order of SCREENS."""
        sections: dict[str, list[Screen]] = {}
        for screen in SCREENS:
            if screen.in_menu and self.screen_allowed(screen, roles):
                sections.setdefault(screen.section, []).append(screen)
        return list(sections.items())


class PolicyCache:
    """The policies, fetched through the gateway's own documentation routes and kept POLICY_TTL_SECONDS. A document
    that cannot be fetched (its service is down) contributes nothing: its screens are hidden, never guessed."""

    def __init__(self) -> None:
        self.value: RoutePolicies | None = None
        self.fetched_at = 0.0
        self.complete = False
        self.lock = asyncio.Lock()

    async def get(self, fetch: Callable[[str], Awaitable[dict | None]]) -> RoutePolicies:
        async with self.lock:
            ttl = POLICY_TTL_SECONDS if self.complete else INCOMPLETE_TTL_SECONDS
            if self.value is None or time.monotonic() - self.fetched_at >= ttl:
                documents = {}
                for name, path in (("gateway", "/openapi.json"),
                                   *((service, f"/api/{service}/openapi.json") for service in SERVICES)):
                    document = await fetch(path)
                    if document is not None:
                        documents[name] = document
                self.value = RoutePolicies.from_documents(documents)
                self.complete = len(documents) == 1 + len(SERVICES)
                self.fetched_at = time.monotonic()
            return self.value
