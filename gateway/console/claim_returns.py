"""退回 on the claim's page (待遇审核): the claim's next level sends it back, with the reason, to the clerk or to the
level before (``POST /claims/{id}/returns``, under the same rules as a decision); the clerk corrects a returned claim
— what was corrected, a further document, the corrected amount of an injury or one-off claim — and resubmits it
(``POST /claims/{id}/resubmission``). A refusal is shown on the claim's page in the API's words, with what was typed."""

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.console import forms
from gateway.console.agency import RESUBMIT, RETURN, ClaimsPage, Id, _claim_page
from gateway.console.pages import Page

router = APIRouter(prefix="/agency")

RETURN_FIELDS = {"reason": "text", "to": "text", "level": "text?"}
AMOUNTS = {"monthly_amount": "yuan?", "one_off_amount": "yuan?"}


def _again(page: Page, claim_id: str):  # noqa: ANN202
    async def again(status_code: int, form: dict[str, str], error: str) -> Response:
        return await _claim_page(page, claim_id, status_code=status_code, error=error, typed=form)

    return again


@router.post("/claims/{claim_id}/returns")
async def return_claim(page: ClaimsPage, claim_id: Id) -> Response:
    cid = quote(claim_id, safe="")
    return await forms.submit(page, RETURN[1], f"/api/benefits/claims/{cid}/returns", RETURN_FIELDS,
                              f"/console/agency/claims/{cid}", _again(page, claim_id))


@router.post("/claims/{claim_id}/resubmission")
async def resubmit_claim(page: ClaimsPage, claim_id: Id) -> Response:
    """The documents are the claim's own plus the one typed, if any (the API replaces the list when one is sent)."""
    cid = quote(claim_id, safe="")
    claim = await page.calls.json("GET", f"/api/benefits/claims/{cid}")

    def body(form: dict[str, str]) -> dict[str, Any]:
        sent = {"reason": form.get("reason", "").strip(), **forms.body_of(AMOUNTS, form)}
        kind, reference = form.get("document_kind", "").strip(), form.get("document_reference", "").strip()
        if kind or reference:
            sent["documents"] = [*claim["documents"], {"kind": kind, "reference": reference}]
        return sent

    return await forms.submit(page, RESUBMIT[1], f"/api/benefits/claims/{cid}/resubmission", body,
                              f"/console/agency/claims/{cid}", _again(page, claim_id))
