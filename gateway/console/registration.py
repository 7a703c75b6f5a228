"""Agency registration (参保登记): a person, an employer, a person's enrolment in a fund — each form posted to the
accounts API's own registration route; a refusal is shown next to its form in the API's Chinese words (the console
has no second set of validation rules), with what was typed kept; a registration leads to the registered object's
page."""

from fastapi import APIRouter

from gateway.console.format import FUND_LABELS, SEX_LABELS, UNIT_TYPE_LABELS
from gateway.console.forms import Entry, FormSet, Input

router = APIRouter(prefix="/agency/register")

REGION = Input("region", "text", "参保地行政区划代码（6位）")
REGISTRATIONS = {
    "person": Entry("参保人员登记", "/api/accounts/persons", (
        Input("citizen_id", "text", "公民身份号码"), Input("name", "text", "姓名"),
        Input("sex", "text?", "性别（可不填，按身份证号）", {"": "按身份证号", **SEX_LABELS}),
        Input("birth_date", "text?", "出生日期（YYYY-MM-DD，可不填）"),
        Input("household_type", "text?", "户籍类型", {"urban": "城镇", "rural": "农村"}),
        Input("phone", "text?", "联系电话"), Input("address", "text?", "地址"), REGION),
        "/console/agency/persons/{id}"),
    "employer": Entry("参保单位登记", "/api/accounts/employers", (
        Input("uscc", "text", "统一社会信用代码"), Input("name", "text", "单位名称"), REGION,
        Input("unit_type", "text?", "单位类型", UNIT_TYPE_LABELS),
        Input("industry_risk_class", "int?", "工伤保险行业风险类别（1–8）"),
        Input("contact_name", "text?", "联系人"), Input("contact_phone", "text?", "联系电话"),
        Input("address", "text?", "单位地址")),
        "/console/agency/employers/{id}"),
    "enrolment": Entry("参保登记（人员参加险种）", "/api/accounts/enrolments", (
        Input("person_id", "text", "参保人员编号"), Input("fund", "text", "险种", FUND_LABELS),
        Input("employer_id", "text?", "参保单位编号（城乡居民养老保险不填）"),
        Input("start_period", "int", "起始月份（YYYYMM）")),
        "/console/agency/persons/{id}", id_key="person_id"),
}
REGISTRATION = FormSet("参保登记", "/console/agency/register",
                       "登记信息由经办系统按政策规则校验，未通过的原因显示在对应表单旁，已填写的内容保留。",
                       REGISTRATIONS, button="登记", form_id="registration")
REGISTRATION.add_routes(router, "registration")
