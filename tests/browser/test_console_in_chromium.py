"""The console in Chromium: each role's menu after logging in through the form, the public disclosure page (chart
and table) and the whistleblower form with its tracking code, the reconciliation matrix after a small month with
the planted discrepancy followed to its lines, and the login page keeping what was typed when a session expired."""

import re

import httpx
from playwright.sync_api import Page, expect

from gateway.console.menu import SCREENS, RoutePolicies
from gateway.identity.service import STAFF_ROLES
from services.kernel.settings import SERVICES
from tests.chaos.month import PERIOD
from tests.support.browser import log_in
from tests.support.console import PLANTED_FUND


def policies_of(url: str) -> RoutePolicies:
    """The policies as the platform publishes them (the same documents the console reads)."""
    documents = {"gateway": httpx.get(f"{url}/openapi.json", timeout=30, trust_env=False).json()}
    for name in SERVICES:
        documents[name] = httpx.get(f"{url}/api/{name}/openapi.json", timeout=30, trust_env=False).json()
    return RoutePolicies.from_documents(documents)


def test_each_role_logs_in_and_sees_its_menu(platform, page: Page):
    policies = policies_of(platform.url)
    for role in sorted(STAFF_ROLES):
        log_in(page, platform.url, *platform.user(role))
        expect(page.get_by_role("heading", name="我的工作台")).to_be_visible()
        shown = set(page.locator("nav.menu a").evaluate_all("links => links.map(a => a.dataset.screen)"))
        expected = {s.key for s in SCREENS if s.in_menu and policies.screen_allowed(s, [role])}
        assert shown == expected, role
        for screen in SCREENS:
            if screen.key in expected and screen.key not in ("home", "disclosure", "whistleblowing"):
                page.locator(f'nav.menu a[data-screen="{screen.key}"]').click()
                expect(page.locator("h1")).not_to_have_text(re.compile("无权访问|未找到|接口暂不可用"))
        page.get_by_role("button", name="退出登录").click()
        expect(page.get_by_role("heading", name="工作人员登录")).to_be_visible()
        page.goto(f"{platform.url}/console/")
        expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2F$"))


def test_wrong_password_is_refused_in_words(platform, page: Page):
    log_in(page, platform.url, "demo_oversight_officer", "not-the-password")
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误")


def test_public_disclosure_without_login(platform, page: Page):
    page.goto(f"{platform.url}/console/public/disclosure")
    expect(page.get_by_role("heading", level=1)).to_contain_text("社会保险基金信息公开")
    # No month is closed yet: the page says so; once closed, chart and table show every fund of the month.
    if page.locator("#disclosure-empty").count():
        expect(page.locator("#disclosure-empty")).to_contain_text("尚无已结账月份")
    else:
        expect(page.locator("#disclosure-chart canvas")).to_have_count(1)
        expect(page.locator("#disclosure-table tbody tr")).not_to_have_count(0)


def test_public_disclosure_after_the_month_is_closed(platform, page: Page):
    officer = platform.user("oversight_officer")
    token = httpx.post(f"{platform.url}/auth/token", data={"username": officer[0], "password": officer[1]},
                       trust_env=False, timeout=30).json()["access_token"]
    closed = httpx.post(f"{platform.url}/api/oversight/reconciliation/months/{PERIOD}/close",
                        headers={"Authorization": f"Bearer {token}"}, json={"note": "浏览器测试月结"},
                        trust_env=False, timeout=30)
    assert closed.status_code in (201, 409), closed.text
    page.goto(f"{platform.url}/console/public/disclosure?year={PERIOD // 100}")
    expect(page.locator("#disclosure-chart canvas")).to_have_count(1)  # ECharts drew from the vendored file
    table = page.locator("#disclosure-table")
    expect(table).to_contain_text(f"{PERIOD // 100}年{PERIOD % 100}月")
    expect(table).to_contain_text("失业保险")
    amounts = table.locator("td.num").all_inner_texts()
    assert amounts and all(re.fullmatch(r"-?[\d,]+\.\d{2}", a) for a in amounts), amounts
    assert any("," in a for a in amounts)  # thousands separators


def test_whistleblower_report_and_tracking(platform, page: Page):
    page.goto(f"{platform.url}/console/public/whistleblowing")
    page.get_by_label("标题").fill("某单位虚报参保人数")
    page.get_by_label("举报内容").fill("该单位长期为非本单位人员缴纳社会保险，骗取待遇。")
    page.get_by_label("涉及金额（元）").fill("abc")
    page.get_by_role("button", name="提交举报").click()
    expect(page.locator("#report-errors")).to_be_visible()  # the API's own message, the text kept
    expect(page.get_by_label("举报内容")).to_have_value("该单位长期为非本单位人员缴纳社会保险，骗取待遇。")
    page.get_by_label("涉及金额（元）").fill("12000.50")
    page.get_by_role("button", name="提交举报").click()
    expect(page.locator("#report-received")).to_contain_text("举报已受理")
    code = page.locator("#tracking-code").inner_text().strip()
    assert code
    page.get_by_label("查询码").fill(code)
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#tracking-status")).to_have_text("已受理")
    page.get_by_label("查询码").fill("NO-SUCH-CODE")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#tracking-error")).to_contain_text("查询码不存在")


def test_reconciliation_matrix_follows_the_planted_discrepancy_to_its_lines(platform, page: Page):
    log_in(page, platform.url, *platform.user("oversight_officer"))
    page.locator('nav.menu a[data-screen="reconciliation"]').click()
    page.goto(f"{platform.url}/console/oversight/reconciliation?end={PERIOD}&span=3")
    matrix = page.locator("#reconciliation-matrix")
    expect(matrix).to_contain_text("企业职工基本养老保险")
    matched = matrix.locator(f'a[data-cell="{PERIOD}-PEN_EMP"]')
    expect(matched).to_have_attribute("data-status", "matched")
    planted = matrix.locator(f'a[data-cell="{PERIOD}-{PLANTED_FUND}"]')
    expect(planted).not_to_have_attribute("data-status", "matched")
    planted.focus()
    page.keyboard.press("Enter")  # keyboard-navigable: the cell is a link
    detail = page.locator("#cell-detail")
    expect(detail.locator("#cell-legs")).to_contain_text("税务征收")
    expect(detail.locator("#cell-legs")).to_contain_text("财政专户")
    expect(detail.locator("#cell-legs")).to_contain_text("经办入账")
    expect(detail.locator("#cell-status")).not_to_have_text("一致")
    expect(detail.locator("#cell-lines tbody tr")).not_to_have_count(0)
    with page.expect_download() as download:
        detail.get_by_role("link", name="下载本月对账 Excel").click()
    assert download.value.suggested_filename == f"reconciliation-{PERIOD}.xlsx"


def test_an_expired_session_keeps_the_place_and_returns_after_login(platform, page: Page, context):
    log_in(page, platform.url, *platform.user("oversight_officer"))
    expect(page.get_by_role("heading", name="我的工作台")).to_be_visible()
    context.clear_cookies()  # the session is gone (expired, or signed out elsewhere)
    page.goto(f"{platform.url}/console/oversight/cases?severity=high")
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Foversight%2Fcases%3Fseverity%3Dhigh"))
    page.get_by_label("用户名").fill("demo_oversight_officer")
    page.get_by_label("密码").fill(platform.user("oversight_officer")[1])
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/console/oversight/cases\?severity=high$"))
    expect(page.get_by_label("严重程度")).to_have_value("high")
