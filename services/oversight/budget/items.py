"""Line items of a fund budget (002 二(三)), the approval chain's roles (002 二(四)), and what the ledger can tell.

Income: 社会保险费收入, 财政补贴收入, 利息收入, 转移收入, 上级补助收入, 下级上解收入, 其他收入.
Expenditure: 社会保险待遇支出, 社会保险非待遇性支出, 转移支出, 补助下级支出, 上解上级支出, 其他支出.

Oversight's independent ledger (``services/oversight/ledger``) holds two of them per fund and month, and only those
are computed; the others are entered at the final accounts (they come from finance's books, which oversight does
not receive line by line):

- ``contributions``: the contributions the agency posted (到账确认记账, the AGENCY leg: ``ledger_fund_period_agency.
  agency_fen``, employer + individual parts, late fees excluded) for the months (费款所属期) of the year;
- ``benefits``: the benefit payments the bank confirmed (``ledger_fund_month_out.paid_fen``) for the payroll months
  of the year (returned payments are not expenditure).
"""

INCOME_ITEMS: dict[str, str] = {
    "contributions": "社会保险费收入",
    "fiscal_subsidy": "财政补贴收入",
    "interest": "利息收入",
    "transfer_in": "转移收入",
    "subsidy_from_above": "上级补助收入",
    "remittance_from_below": "下级上解收入",
    "other_income": "其他收入",
}
EXPENDITURE_ITEMS: dict[str, str] = {
    "benefits": "社会保险待遇支出",
    "non_benefit": "社会保险非待遇性支出",
    "transfer_out": "转移支出",
    "subsidy_to_below": "补助下级支出",
    "remittance_to_above": "上解上级支出",
    "other_expenditure": "其他支出",
}
ITEMS: dict[str, str] = {**INCOME_ITEMS, **EXPENDITURE_ITEMS}
SIDE: dict[str, str] = {**dict.fromkeys(INCOME_ITEMS, "income"), **dict.fromkeys(EXPENDITURE_ITEMS, "expenditure")}
LEDGER_ITEMS = ("contributions", "benefits")  # computed from oversight's ledger; the rest are entered

FUND_NAMES: dict[str, str] = {
    "PEN_EMP": "企业职工基本养老保险基金",
    "PEN_GOV": "机关事业单位基本养老保险基金",
    "PEN_RES": "城乡居民基本养老保险基金",
    "UNEMP": "失业保险基金",
    "INJURY": "工伤保险基金",
    "MED_EMP": "职工基本医疗保险基金",
    "MATERNITY": "生育保险基金",
}

# The approval chain of 002 二(四), as the platform's roles carry it:
# - drafted and submitted by the agency (经办机构会同征缴部门编制预算报表): ``accountant`` (会计) or
#   ``agency_approver`` (经办机构审批岗);
# - reviewed by the finance department (财政部门复审): ``finance_officer``;
# - approved: the budget is approved by the people's congress and issued (批复下达) by finance together with the
#   human-resources department; the platform records that approval — its reference (人大批准/批复文号) and day — by
#   a *second* ``finance_officer``. The fund supervisor (``oversight_officer``) is not in the chain: oversight is
#   independent of the operation it supervises (DOMAIN.md: any operating role is incompatible with
#   ``oversight_officer``); it reads every step, the execution and its warnings.
# Each step is a different person: the drafter (creator and submitter), the reviewer and the approver.
DRAFTERS = ("accountant", "agency_approver")
REVIEWERS = ("finance_officer",)
APPROVERS = ("finance_officer",)
READERS = ("oversight_officer", "internal_auditor", "finance_officer", "accountant", "agency_approver")
