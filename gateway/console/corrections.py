"""The corrections queue (后台修改待审核): life-status corrections of every person of the user's area waiting for a
second person (004 第24项), from accounts' ``GET /life-status-corrections`` — filtered and paged on the server —
each with a link to its person's page and, for the roles the API admits, its 通过/驳回 form right in the queue (the
API refuses the requester: SAME_PERSON_CANNOT_APPROVE, shown beside the queue in its words)."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gateway.console import forms
from gateway.console import reports as r
from gateway.console.pages import Page, screen_page
from gateway.console.tables import Column, Filter, Table

router = APIRouter(prefix="/agency")

QUEUE_API = "/api/accounts/life-status-corrections"
DECIDE = "/api/accounts/persons/{person_id}/life-status-corrections/{correction_id}"
HREF = "/console/agency/corrections"
Id = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]
Step = Annotated[str, Path(pattern="^(approve|reject)$")]

QUEUE = Table(
    "待审核的后台修改", QUEUE_API,
    (Column("requested_at", "申请时间", "time"),
     Column("person_name", "人员", link="/console/agency/persons/{person_id}#person-corrections"),
     Column("current_life_status", "现生存状态", "label:life_status"),
     Column("new_status", "更正为", "label:life_status"), Column("death_date", "死亡日期", "date"),
     Column("imprisoned_from", "服刑起始", "date"), Column("reason", "原因"), Column("evidence", "证明材料"),
     Column("requested_by", "申请人"), Column("status", "状态", "label:correction_status"),
     Column("decided_by", "审核人")),
    (Filter("status", "状态", ("requested", "approved", "rejected", "all"), "correction_status"),
     Filter("new_status", "更正为", ("alive", "deceased", "imprisoned"), "life_status"),
     Filter("exclude_mine", "不含本人申请", ("true",), "exclude_mine")),
    caption="生存状态更正（须由申请人以外的审核人员审核）")
INTRO = "参保人员生存状态的后台修改由经办人员申请、另一人审核（004 第24项）；本列表汇总本辖区所有人员待审核的更正。"


async def _decisions(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"may_decide": await page.may("POST", DECIDE + "/approve"), "error": None, "typed": {}}


r.add_table(router, "corrections", "/corrections", QUEUE, template="corrections.html", intro=INTRO,
            extra=_decisions)


@router.post("/corrections/{person_id}/{correction_id}/{step}")
async def decide(page: Annotated[Page, screen_page("corrections")], person_id: Id, correction_id: Id,
                 step: Step) -> Response:
    """通过 or 驳回 from the queue, back to the queue; a refusal shown above it with the reason typed kept."""
    async def again(*, status_code: int, form: dict[str, str], error: str) -> Response:
        return await r.show_table(page, HREF, QUEUE, {}, template="corrections.html", intro=INTRO,
                                  extra=_decisions, status_code=status_code, error=error,
                                  typed={**form, "correction_id": correction_id})

    path = DECIDE.format(person_id=quote(person_id, safe=""), correction_id=quote(correction_id, safe=""))
    return await forms.submit(page, f"{DECIDE}/{step}", f"{path}/{step}", {"reason": "text?"}, HREF, again)
