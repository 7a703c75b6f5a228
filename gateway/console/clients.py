"""System clients (系统客户端) for the IT administrator: the clients the gateway knows (tax bureau, finance, banks,
partner departments) from ``GET /identity/clients`` — client id, name, roles, region, created, last token, disabled;
never a secret: the API has none to give — filtered on the server, sortable and downloadable like every report table;
and a client registered with ``POST /identity/clients``, its secret shown once on the answer page (only its hash is
kept). The internal auditor reads the list; the form is offered only to the roles the API admits."""

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.console import forms
from gateway.console import reports as r
from gateway.console.calls import ApiError
from gateway.console.format import ROLE_LABELS
from gateway.console.pages import Page, ScreenRefused, screen_page
from gateway.console.tables import Column, Filter, Table
from gateway.identity.service import CLIENT_ROLES

router = APIRouter(prefix="/admin")

CREATE = ("POST", "/identity/clients")
CLIENT_FIELDS = {"client_id": "text", "name": "text", "role": "text", "region": "text"}
LIST_INTRO = ("对接系统（税务、财政、银行、协作部门）以客户端编号和密钥取得令牌；密钥只在登记时显示一次，系统只保存其摘要，"
              "此处不显示任何密钥。")
CLIENTS = Table(
    "系统客户端", "/identity/clients",
    (Column("client_id", "客户端编号"), Column("name", "名称"), Column("role_names", "角色"),
     Column("region", "行政区划"), Column("created_at", "登记时间", "time"), Column("created_by", "登记人"),
     Column("last_token_at", "最近取得令牌", "time"), Column("disabled", "已停用", "bool")),
    (Filter("role", "角色", tuple(sorted(CLIENT_ROLES)), "role"), Filter("status", "状态", ("active", "disabled"),
                                                                        "client_status")),
    items=None, cursor=None, page_size=500)  # the API's largest page: a region has dozens of clients, not hundreds


async def _role_names(page: Page, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "role_names": "、".join(ROLE_LABELS.get(role, role) for role in row.get("roles", []))}
            for row in rows]


async def _form(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"may_create": await page.may(*CREATE), "typed": {}, "error": None,
            "client_roles": {role: ROLE_LABELS.get(role, role) for role in sorted(CLIENT_ROLES)}}


r.add_table(router, "clients", "/clients", CLIENTS, template="clients.html", intro=LIST_INTRO, enrich=_role_names,
            extra=_form)


@router.post("/clients")
async def create_client(page: Annotated[Page, screen_page("clients")]) -> Response:
    """The client is registered; its secret is in this one answer (never stored in clear, never shown again)."""
    async def again(*, status_code: int, form: dict[str, str], error: str) -> Response:
        return await r.show_table(page, "/console/admin/clients", CLIENTS, {}, template="clients.html",
                                  intro=LIST_INTRO, enrich=_role_names, extra=_form, status_code=status_code,
                                  typed=form, error=error)

    if not await page.may(*CREATE):
        raise ScreenRefused()  # the auditor reads the list and registers nothing
    response = await page.calls.call("POST", CREATE[1], json=forms.body_of(CLIENT_FIELDS, page.form))
    if response.status_code == 201:
        return await page.render("client_created.html", created=response.json())
    error = ApiError.of(response)
    return await again(status_code=error.status, form=page.form, error=error.in_words())
