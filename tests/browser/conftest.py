"""The console in Debian's Chromium (Playwright, executable_path from infra/browser/run-tests.sh) against `sifund up`
after a small month driven through the gateway (tests/chaos/month.py): NATS, the four services and the gateway as
separate processes, the real clock, SQLite. A failing test leaves a screenshot of its page in SCREENSHOTS."""

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.chaos.month import PAID_ON, PERIOD, Ledger, Month, signed_in, uscc
from tests.chaos.platform import RunningPlatform, free_port_base
from tests.support.console import PLANTED_FUND

SCREENSHOTS = Path(os.environ.get("SIFUND_BROWSER_SCREENSHOTS", "var/browser-screenshots"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}  # the smallest screen
EMPLOYERS = 2
PATIENCE_SECONDS = 120.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


class Platform:
    def __init__(self, running: RunningPlatform):
        self.running = running
        self.url = running.gateway_url
        self.secrets = running.credentials()

    def user(self, role: str) -> tuple[str, str]:
        return f"demo_{role}", self.secrets[f"demo_{role}"]


async def _the_month(running: RunningPlatform) -> None:
    """Registration, declarations, the tax bureau's lines, finance's remittances and receipts; then one more tax line
    that finance never receives; waits until oversight's R1 has every fund of the period, the planted one unmatched."""
    ledger = Ledger()
    async with httpx.AsyncClient(base_url=running.gateway_url, timeout=30.0, trust_env=False) as client:
        parties = await signed_in(running, client, ledger)
        month = Month(parties, ledger, EMPLOYERS, 16)
        await month.prepare()
        await month.register()
        await month.declare()
        await month.pay()
        await month.remit_and_receive()
        line = next(a for a in ledger.assessment_lines if a["fund"] == PLANTED_FUND)
        citizen = next(code for code, pid in ledger.persons.items() if pid == line["person_id"])
        await parties["tax"].call("POST", "/collection/tax-payments/batches", json={"lines": [{
            "tax_line_id": f"SW-PLANTED-{PLANTED_FUND}", "payer_uscc": uscc(line["employer_serial"]),
            "citizen_id": citizen, "fund": PLANTED_FUND, "period": PERIOD, "employer_amount": "100.00",
            "individual_amount": "0.00", "method": "bank_withholding", "voucher_no": "PZ-PLANTED",
            "paid_date": PAID_ON}]})
        officer = parties["officer"]
        deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
        while True:
            report = (await officer.call("GET", f"/oversight/reconciliation/months/{PERIOD}")).json()
            r1 = {c["fund"]: c for c in next(c for c in report["checks"] if c["check"] == "R1")["cells"]}
            settled = {f: c for f, c in r1.items() if f != PLANTED_FUND and c["status"] == "matched"}
            if len(settled) == 2 and PLANTED_FUND in r1 and r1[PLANTED_FUND]["status"] != "matched":
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"oversight's R1 did not settle: {r1}")
            await asyncio.sleep(0.5)


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp("browser") / "var"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
    # Every user of the suite signs in from 127.0.0.1, some thirty times a minute at its busiest: above the
    # gateway's per-address limit of token requests (20 a minute), which would answer 429 on a fast machine.
    environment["SIFUND_RATE_LIMIT_TOKEN_PER_IP_PER_MINUTE"] = "600"
    running = RunningPlatform(data_dir, environment, free_port_base()).start()
    try:
        asyncio.run(_the_month(running))
        yield Platform(running)
    finally:
        running.stop()


@pytest.fixture(scope="session")
def playwright_driver():
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def context(playwright_driver, tmp_path, request) -> Iterator[BrowserContext]:
    """A fresh Chromium (its own --user-data-dir) per test, at 1366x768."""
    executable = os.environ.get("SIFUND_CHROMIUM", "/usr/bin/chromium")
    browser = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"), executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
        viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
    try:
        yield browser
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            for index, page in enumerate(browser.pages):
                page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-{index}.png"), full_page=True)
        browser.close()


@pytest.fixture
def page(context) -> Page:
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(30_000)
    return page
