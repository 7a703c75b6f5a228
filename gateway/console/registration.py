"""Agency registration (参保登记): a person, an employer, a person's enrolment in a fund — each form posted to the
accounts API's own registration route; a refusal is shown next to its form in the API's Chinese words (the console
has no second set of validation rules), with what was typed kept; a registration leads to the registered object's
page."""

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gateway.console import forms
from gateway.console.format import FUND_LABELS, SEX_LABELS, UNIT_TYPE_LABELS
from gateway.console.pages import Page, screen_page

router = APIRouter(prefix="/agency/register")

RegistrationPage = Annotated[Page, screen_page("registration")]


@dataclass(frozen=True)
class Input:
    name: str
    kind: str  # as forms.body_of reads it
    label: str
    choices: dict[str, str] | None = None  # a select: code → Chinese label ("" first when optional)


@dataclass(frozen=True)
class Registration:
    title: str
    route: str  # the API route the form posts to
    fields: tuple[Input, ...]
    created_page: str  # the console page of what was registered, ``{id}`` the answer's ``id_key``
    id_key: str = "id"

    @property
    def body_fields(self) -> dict[str, str]:
        return {f.name: f.kind for f in self.fields}

    def page_of(self, created: dict[str, Any]) -> str:
        return self.created_page.format(id=quote(str(created.get(self.id_key, "")), safe=""))


REGION = Input("region", "text", "参保地行政区划代码（6位）")
REGISTRATIONS = {
    "person": Registration("参保人员登记", "/api/accounts/persons", (
        Input("citizen_id", "text", "公民身份号码"), Input("name", "text", "姓名"),
        Input("sex", "text?", "性别（可不填，按身份证号）", {"": "按身份证号", **SEX_LABELS}),
        Input("birth_date", "text?", "出生日期（YYYY-MM-DD，可不填）"),
        Input("household_type", "text?", "户籍类型", {"urban": "城镇", "rural": "农村"}),
        Input("phone", "text?", "联系电话"), Input("address", "text?", "地址"), REGION),
        "/console/agency/persons/{id}"),
    "employer": Registration("参保单位登记", "/api/accounts/employers", (
        Input("uscc", "text", "统一社会信用代码"), Input("name", "text", "单位名称"), REGION,
        Input("unit_type", "text?", "单位类型", UNIT_TYPE_LABELS),
        Input("industry_risk_class", "int?", "工伤保险行业风险类别（1–8）"),
        Input("contact_name", "text?", "联系人"), Input("contact_phone", "text?", "联系电话"),
        Input("address", "text?", "单位地址")),
        "/console/agency/employers/{id}"),
    "enrolment": Registration("参保登记（人员参加险种）", "/api/accounts/enrolments", (
        Input("person_id", "text", "参保人员编号"), Input("fund", "text", "险种", FUND_LABELS),
        Input("employer_id", "text?", "参保单位编号（城乡居民养老保险不填）"),
        Input("start_period", "int", "起始月份（YYYYMM）")),
        "/console/agency/persons/{id}", id_key="person_id"),
}
Kind = Annotated[str, Path(pattern="^(" + "|".join(REGISTRATIONS) + ")$")]


async def _forms(page: Page, *, status_code: int = 200, kind: str | None = None, error: str | None = None,
                 form: dict[str, str] | None = None) -> Response:
    """The three forms; the refused one (``kind``) with the API's message beside it and what was typed."""
    return await page.render("registration.html", status_code=status_code, registrations=REGISTRATIONS,
                             refused=kind, error=error, typed=form or {})


@router.get("")
async def registration(page: RegistrationPage) -> Response:
    return await _forms(page)


@router.post("/{kind}")
async def register(page: RegistrationPage, kind: Kind) -> Response:
    chosen = REGISTRATIONS[kind]

    async def again(**context: Any) -> Response:
        return await _forms(page, kind=kind, **context)

    return await forms.submit(page, chosen.route, chosen.route, chosen.body_fields, chosen.page_of, again)
