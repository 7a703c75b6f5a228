"""Work done in the console across several users, in Chromium: a claim submitted by a clerk from the person's page,
returned (退回) by the reviewer to the clerk, corrected and resubmitted, then decided at its first level by the
reviewer and at its last by an approver (three users, each level offered only to its role); and a case taken from
下发 to 销号 by an oversight officer through its classification, follow-up and rectification ledger entry, with the
API's refusal shown in Chinese and the typed text kept."""

import time

import httpx
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from stdnum import luhn

from services.kernel.clock import china_today
from tests.support.browser import log_in

PATIENCE_SECONDS = 60.0


def _api(platform, role: str) -> httpx.Client:  # noqa: ANN001
    username, password = platform.user(role)
    token = httpx.post(f"{platform.url}/auth/token", data={"username": username, "password": password},
                       trust_env=False, timeout=30).json()["access_token"]
    return httpx.Client(base_url=f"{platform.url}/api", headers={"Authorization": f"Bearer {token}"},
                        trust_env=False, timeout=30)


def _payable_person(platform) -> str:  # noqa: ANN001
    """The last registered person, with a bank account of their own that benefits knows (a grant needs one)."""
    with _api(platform, "agency_clerk") as clerk:
        person = clerk.get("/accounts/persons", params={"limit": 500}).json()["items"][-1]
        card = "622202" + person["citizen_id"][-12:-1].replace("X", "0").rjust(12, "9")
        card += luhn.calc_check_digit(card)
        added = clerk.post(f"/accounts/persons/{person['id']}/bank-accounts", json={
            "kind": "bank_account", "bank_name": "中国工商银行呼和浩特分行", "account_no": card,
            "holder_name": person["name"]})
        assert added.status_code in (201, 409), added.text

        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:  # benefits learns of the account from accounts' event
            found = clerk.get(f"/benefits/registry/persons/{person['id']}")
            if found.status_code == 200 and any(a["payable"] for a in found.json()["accounts"]):
                break
            assert time.monotonic() < deadline, found.text
            time.sleep(0.25)
        return person["id"]


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("heading", name="工作人员登录")).to_be_visible()


def test_a_claim_walks_from_clerk_to_reviewer_to_approver(platform, page: Page):
    person_id = _payable_person(platform)
    today = china_today()
    log_in(page, platform.url, *platform.user("agency_clerk"))
    page.goto(f"{platform.url}/console/agency/persons/{person_id}")
    form = page.locator("#claim-form")
    form.get_by_label("待遇类型").select_option("one_off")
    form.get_by_label("险种（养老金、一次性待遇）").select_option("PEN_EMP")
    form.get_by_label("起始月份（YYYYMM）").fill("2026130")  # not a month: the API's message, the form kept
    form.get_by_label("一次性金额（元）").fill("1200.00")
    form.get_by_label("依据材料").fill("丧葬补助金申请表")
    form.get_by_label("材料文号").fill("浏览器测试〔2026〕1号")
    form.get_by_role("button", name="提交申请").click()
    expect(page.locator("#claim-form-error")).to_be_visible()
    expect(page.locator("#claim-form").get_by_label("依据材料")).to_have_value("丧葬补助金申请表")
    page.locator("#claim-form").get_by_label("起始月份（YYYYMM）").fill(f"{today.year}{today.month:02d}")
    page.locator("#claim-form").get_by_role("button", name="提交申请").click()
    expect(page.locator("#claim-status")).to_have_text("审核中")
    claim_url = page.url
    expect(page.locator("#decision-form")).to_have_count(0)  # the clerk decides no level
    _sign_out(page)

    log_in(page, platform.url, *platform.user("agency_reviewer"))
    page.locator('nav.menu a[data-screen="claims"]').click()
    claim_id = claim_url.rsplit("/", 1)[1]
    page.locator(f'#queue-table a[data-claim="{claim_id}"]').click()
    expect(page.locator("#claim-checks")).to_contain_text("通过")
    sent_back = page.locator("#return-form")  # 退回: to the clerk, with what is to be corrected
    sent_back.get_by_label("退回原因（须补正的内容）").fill("请补充死亡证明")
    sent_back.get_by_role("button", name="退回").click()
    expect(page.locator("#claim-status")).to_have_text("已退回经办（待补正）")
    _sign_out(page)

    log_in(page, platform.url, *platform.user("agency_clerk"))
    page.locator('nav.menu a[data-screen="claims"]').click()
    expect(page.locator("#returned-table")).to_contain_text("请补充死亡证明")
    page.locator(f'#returned-table a[data-returned="{claim_id}"]').click()
    corrected = page.locator("#resubmit-form")
    corrected.get_by_label("补正说明").fill("已补充死亡证明")
    corrected.get_by_label("补充材料类型").fill("死亡证明")
    corrected.get_by_label("补充材料文号").fill("浏览器测试〔2026〕2号")
    corrected.get_by_role("button", name="重新提交").click()
    expect(page.locator("#claim-status")).to_have_text("审核中")
    expect(page.locator("#claim-history")).to_contain_text("请补充死亡证明")
    _sign_out(page)

    log_in(page, platform.url, *platform.user("agency_reviewer"))
    page.goto(claim_url)
    decision = page.locator("#decision-form")
    expect(decision).to_contain_text("初审")
    decision.get_by_label("审核意见").fill("材料齐全，初审同意")
    decision.get_by_role("button", name="同意").click()
    expect(page.locator("#claim-levels")).to_contain_text("初审（复核/复审）：同意")
    expect(page.locator("#decision-form")).to_have_count(0)  # the next level is the approver's
    _sign_out(page)

    log_in(page, platform.url, *platform.user("agency_approver"))
    page.goto(claim_url)
    decision = page.locator("#decision-form")
    expect(decision).to_contain_text("复核/复审")
    decision.get_by_label("审核意见").fill("同意发放")
    decision.get_by_role("button", name="同意").click()
    expect(page.locator("#claim-status")).to_have_text("已核准")
    expect(page.locator("#claim-levels")).to_contain_text("同意发放")
    page.locator("#claim-facts a").click()  # the person's page: the entitlement granted, the employer's page
    expect(page.locator("#person-enrolments")).to_contain_text("企业职工基本养老保险")
    page.locator("#person-enrolments a").first.click()
    expect(page.locator("#employer-enrolments tbody tr")).not_to_have_count(0)


def _open_case(platform) -> str:  # noqa: ANN001
    with _api(platform, "oversight_officer") as officer:
        opened = officer.post("/oversight/cases", json={
            "fact_key": "browser-rectification", "severity": "high", "subject_type": "employer",
            "unit": "演示社保经办机构", "subject_id": "E-BROWSER", "title": "浏览器测试：单位缴费基数录入错误",
            "seed_clause": "001 第二十九条", "suggested_class": 1, "amount_fen": 250000})
        assert opened.status_code in (200, 201), opened.text
        return opened.json()["id"]


def test_a_case_is_closed_with_its_rectification_entry(platform, page: Page):
    case_id = _open_case(platform)
    log_in(page, platform.url, *platform.user("oversight_officer"))
    page.goto(f"{platform.url}/console/oversight/cases/{case_id}")
    page.locator("#investigate-form").get_by_label("核查说明").fill("调取经办系统修改日志")
    page.locator("#investigate-form").get_by_role("button", name="开始核查").click()
    expect(page.locator("#case-status")).to_have_text("核查中")

    classify = page.locator("#classify-form")
    classify.get_by_label("涉及金额（元）").fill("2500.00")
    classify.get_by_role("button", name="确认分类").click()  # no finding: the API refuses in words
    expect(page.locator("#case-error")).to_be_visible()
    expect(page.locator("#classify-form").get_by_label("涉及金额（元）")).to_have_value("2500.00")
    page.locator("#classify-form").get_by_label("核实情况").fill("经办人员录入缴费基数时多输一位")
    page.locator("#classify-form").get_by_role("button", name="确认分类").click()
    expect(page.locator("#case-status")).to_have_text("已分类")

    follow_up = page.locator("#follow-ups-form")
    follow_up.get_by_label("办理情况").fill("业务科已按程序更正缴费基数")
    follow_up.get_by_label("文号").fill("更正单 2026-031")
    follow_up.get_by_role("button", name="登记").click()
    expect(page.locator("#case-follow-up")).to_contain_text("已完成")

    rectify = page.locator("#rectification-form")
    rectify.get_by_label("整改措施").fill("更正数据并对经办人员开展培训")
    rectify.get_by_label("整改期限").fill(f"{china_today().year + 1}-01-31")
    rectify.get_by_label("整改责任人").fill("经办科科长")
    rectify.get_by_role("button", name="进入整改").click()
    expect(page.locator("#case-status")).to_have_text("整改中")
    expect(page.locator("#rectification-status")).to_have_text("整改中")

    close = page.locator("#close-form")
    close.get_by_label("核查意见").fill("已核实数据更正到位，同意销号")
    close.get_by_role("button", name="销号").click()
    expect(page.locator("#case-status")).to_have_text("已销号")
    expect(page.locator("#rectification-status")).to_have_text("已销号")
    expect(page.locator("#case-timeline")).to_contain_text("已销号")

    page.locator('nav.menu a[data-screen="rectification"]').click()
    ledger = page.locator("#report-table")
    expect(ledger).to_contain_text("更正数据并对经办人员开展培训")
    with page.expect_download() as download:
        page.locator("#table-excel").click()
    assert download.value.suggested_filename == "rectification.xlsx"
    with open(download.value.path(), "rb") as workbook:  # the saved download has no .xlsx suffix
        sheet = load_workbook(workbook).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[1][:2] == ["建账时间", "整改单位"]
    assert any("更正数据并对经办人员开展培训" in row for row in rows[2:])
