"""The electronic archive (社会保险业务档案) in the console: dossier search; a dossier's items, read only with the purpose
the API requires (each read is a line of the 利用登记 register) and exported with one; the register for auditors; a
package handed back checked (genuine, altered or unknown); disposal lists (销毁清册) proposed by a clerk and approved
by two other people; the yearly seal as a background job, and a sealed year checked again.

The export is asked of the API's route as it is: a 201 answer is the package itself (passed through as a download);
a 202 answer is a background job, followed on its job page (jobs.py)."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from gateway.console import format as fmt
from gateway.console import forms
from gateway.console import reports as r
from gateway.console.calls import ApiError
from gateway.console.pages import Page, ScreenRefused, screen_page
from gateway.console.tables import Column, Filter, Table
from services.kernel.clock import china_today

router = APIRouter(prefix="/archives")
API = "/api/accounts/archives"
EXPORT = ("POST", f"{API}/dossiers/{{dossier_id}}/exports")
SEAL = ("POST", f"{API}/years/{{year}}/seal")
Id = Annotated[str, Path(max_length=100, pattern=r"^[\w-]+$")]

fmt.LABELS.update({
    "archive_action": {"read": "查阅", "export": "导出"},
    "retention_class": {"permanent": "永久", "long": "长期", "short": "短期"},
    "disposal_status": {"proposed": "待审批", "approved_once": "已一人批准（待第二人）", "destroyed": "已销毁",
                        "rejected": "已驳回"},
    "package_result": {"genuine": "与导出时一致（真实）", "altered": "已被改动", "unknown": "非本档案系统导出"},
})
fmt.JOB_RESULT_LABELS.update({"year": "年度", "dossiers": "案卷数", "items": "件数", "root_sha256": "根哈希"})

DOSSIERS = Table(
    "档案查询", f"{API}/dossiers",
    (Column("name", "名称/姓名", link="/console/archives/dossiers/{id}"),
     Column("subject_type", "档案类型", "label:subject_type"), Column("registration_number", "身份证号/信用代码"),
     Column("region", "行政区划"), Column("item_count", "件数", "count"), Column("opened_at", "建档时间", "time"),
     Column("last_filed_at", "最近归档", "time")),
    (Filter("subject_type", "档案类型", ("person", "employer"), "subject_type"),
     Filter("registration_number", "身份证号/信用代码"), Filter("name", "名称/姓名"), Filter("subject_id", "对象编号")))

ACCESS_REGISTER = Table(
    "档案利用登记", f"{API}/access-register",
    (Column("accessed_at", "利用时间", "time"), Column("dossier_id", "案卷"), Column("actor_id", "利用人"),
     Column("actor_role", "岗位", "label:role"), Column("action", "方式", "label:archive_action"),
     Column("purpose", "利用目的"), Column("request_id", "请求编号")),
    (Filter("dossier_id", "案卷编号"), Filter("actor_id", "利用人")))

DISPOSALS = Table(
    "档案鉴定销毁", f"{API}/disposals",
    (Column("proposed_at", "提出时间", "time"), Column("id", "销毁清册", link="/console/archives/disposals/{id}"),
     Column("status", "状态", "label:disposal_status"), Column("expired_before_year", "保管期满（年度前）", "count"),
     Column("item_count", "件数", "count"), Column("reason", "鉴定意见"), Column("proposed_by", "提出人"),
     Column("first_approved_by", "第一审批人"), Column("second_approved_by", "第二审批人"),
     Column("rejected_by", "驳回人"), Column("destroyed_at", "销毁时间", "time")))

r.add_table(router, "archives", "/dossiers", DOSSIERS,
            intro="按身份证号、统一社会信用代码或名称查找案卷；查阅案卷内容须说明利用目的，并记入利用登记。")
r.add_table(router, "archive_register", "/access-register", ACCESS_REGISTER,
            intro="谁在何时、为何查阅或导出了哪一案卷（利用登记），最新的在前。")


async def _disposal_actions(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"may_propose": await page.may("POST", f"{API}/disposals")}


r.add_table(router, "archive_disposals", "/disposals", DISPOSALS, template="archive_disposals.html",
            extra=_disposal_actions,
            intro="保管期满的档案经鉴定列入销毁清册，须两名审批人（非提出人、互不相同）先后批准方可销毁；清册永久保存。")

# -- a dossier: its items read with a purpose, exported with one -----------------------------------------------------


async def _dossier_page(page: Page, dossier_id: str, *, purpose: str = "", year: str = "", after: str = "",
                        status_code: int = 200, error: str | None = None) -> Response:
    """Without a purpose the page asks for one; with it, the items (a read the API records in the register)."""
    listing = None
    if purpose and error is None:
        params = {"purpose": purpose, **({"year": year} if year else {}), **({"after": after} if after else {})}
        response = await page.calls.call("GET", f"{API}/dossiers/{quote(dossier_id, safe='')}/items", params=params)
        if response.status_code == 422:
            error, status_code = ApiError.of(response).in_words(), 422
        elif response.status_code >= 300:
            raise ApiError.of(response)
        else:
            listing = response.json()
    next_href = None
    if listing and listing.get("next_cursor") is not None:
        next_href = r.table_query_href(f"/console/archives/dossiers/{dossier_id}",
                                       {"purpose": purpose, "year": year}, after=str(listing["next_cursor"]))
    return await page.render("archive_dossier.html", status_code=status_code, dossier_id=dossier_id, listing=listing,
                             purpose=purpose, year=year, error=error, next_href=next_href,
                             may_export=await page.may(*EXPORT))


@router.get("/dossiers/{dossier_id}")
async def dossier(page: Annotated[Page, screen_page("archives")], dossier_id: Id,
                  purpose: Annotated[str, Query(max_length=500)] = "", year: Annotated[str, Query(max_length=4)] = "",
                  after: Annotated[str, Query(max_length=20)] = "") -> Response:
    return await _dossier_page(page, dossier_id, purpose=purpose.strip(), year=year.strip(), after=after)


@router.post("/dossiers/{dossier_id}/export")
async def export_dossier(page: Annotated[Page, screen_page("archives")], dossier_id: Id) -> Response:
    """The package as the API hands it out (201: the zip), or its background job (202: the job's page)."""
    if not await page.may(*EXPORT):
        raise ScreenRefused()
    purpose = page.form.get("purpose", "").strip()
    response = await page.calls.call("POST", f"{API}/dossiers/{quote(dossier_id, safe='')}/exports",
                                     params={"purpose": purpose})
    if response.status_code == 202:
        return page.redirect(f"/console/jobs/accounts/{quote(response.json()['id'], safe='')}")
    if response.status_code != 201:
        return await _dossier_page(page, dossier_id, purpose=purpose, status_code=response.status_code,
                                   error=ApiError.of(response).in_words())
    headers = {k: v for k, v in response.headers.items()
               if k.lower() in ("content-disposition", "x-export-id", "x-manifest-sha256")}
    return page.finish(Response(response.content, media_type="application/zip", headers=headers))


@router.get("/exports/{export_id}/package")
async def exported_package(page: Annotated[Page, screen_page("archives")], export_id: Id) -> Response:
    """The package of an export made as a background job (its job's result names it), for the one who exported it
    (anyone else: the API's 404). Where the export route answers with the package itself, this is not used."""
    response = await page.calls.call("GET", f"{API}/exports/{quote(export_id, safe='')}/package")
    if response.status_code != 200:
        raise ApiError.of(response)
    headers = {k: v for k, v in response.headers.items()
               if k.lower() in ("content-disposition", "x-export-id", "x-manifest-sha256", "x-package-sha256")}
    return page.finish(Response(response.content, media_type="application/zip", headers=headers))


# -- a package handed back: is it what was exported? ------------------------------------------------------------------


@router.get("/verification")
async def verification_form(page: Annotated[Page, screen_page("archive_verification")]) -> Response:
    return await page.render("archive_verification.html", result=None, error=None, filename="")


@router.post("/verification")
async def verify_package(page: Annotated[Page, screen_page("archive_verification")], request: Request) -> Response:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return await page.render("archive_verification.html", status_code=422, result=None, filename="",
                                 error="请选择要校验的档案包（.zip）")
    # Streamed on as Starlette spooled it: a package may be large.
    response = await page.calls.call("POST", f"{API}/packages/verification", files={
        "file": (upload.filename, upload.file, upload.content_type or "application/zip")})
    if response.status_code != 200:
        return await page.render("archive_verification.html", status_code=response.status_code, result=None,
                                 filename=upload.filename, error=ApiError.of(response).in_words())
    return await page.render("archive_verification.html", result=response.json(), error=None,
                             filename=upload.filename)


# -- disposal lists: proposed by a clerk, approved by two others -----------------------------------------------------

PROPOSAL = forms.FormSet(
    "提出销毁清册", "/console/archives/disposal-proposal",
    "列入保管期满、未被封存年度保护之外的全部到期档案；提出后须两名审批人先后批准。",
    {"disposal": forms.Entry("鉴定销毁", f"{API}/disposals", (forms.Input("reason", "text", "鉴定意见"),),
                             "/console/archives/disposals/{id}")},
    button="提出销毁清册", form_id="proposal")
PROPOSAL.add_routes(router, "archive_disposal_proposal")

DISPOSAL = forms.Workflow(
    api=f"{API}/disposals/{{disposal_id}}", page="/console/archives/disposals/{disposal_id}",
    template="archive_disposal.html", name="disposal",
    steps={"approvals": ("/approvals", {"reason": "text"}), "rejection": ("/rejection", {"reason": "text"})})
DISPOSAL.add_routes(router, "archive_disposals")

# -- the yearly seal ---------------------------------------------------------------------------------------------------

Year = Annotated[str, Query(max_length=4, pattern=r"^(\d{4})?$")]


async def _seal_page(page: Page, year: str, *, status_code: int = 200, error: str | None = None) -> Response:
    shown = year or str(china_today().year - 1)
    seal = verification = None
    response = await page.calls.call("GET", f"{API}/years/{shown}/seal")
    if response.status_code == 200:
        seal = response.json()
        verification = await page.calls.json("GET", f"{API}/years/{shown}/verification")
    elif response.status_code not in (404, 422):
        raise ApiError.of(response)
    return await page.render("archive_seals.html", status_code=status_code, year=shown, seal=seal,
                             verification=verification, error=error, may_seal=await page.may(*SEAL))


@router.get("/seals")
async def seals(page: Annotated[Page, screen_page("archive_seals")], year: Year = "") -> Response:
    return await _seal_page(page, year)


@router.post("/seals")
async def seal_year(page: Annotated[Page, screen_page("archive_seals")],
                    year: Annotated[str, Form()] = "") -> Response:
    """Starts the seal (a background job) and follows it on its page; a refusal is shown on the seal page."""
    if not await page.may(*SEAL):
        raise ScreenRefused()
    typed = year.strip()
    response = await page.calls.call("POST", f"{API}/years/{quote(typed or '0', safe='')}/seal")
    if response.status_code == 202:
        return page.redirect(f"/console/jobs/accounts/{quote(response.json()['id'], safe='')}")
    return await _seal_page(page, typed if typed.isdigit() and len(typed) == 4 else "",
                            status_code=response.status_code, error=ApiError.of(response).in_words())
