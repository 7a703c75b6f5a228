"""IT administrator (信息岗位): staff users with their roles, the incompatible-duty rules in force and the long-tenure
report of high-risk posts (001 第十六条), over the gateway's ``/identity`` routes; a role granted or revoked there (a
grant of incompatible duties refused in the API's words, 001 第十六条). System clients: clients.py."""

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gateway.console import forms
from gateway.console.calls import ApiError
from gateway.console.format import ROLE_LABELS
from gateway.console.pages import Page, ScreenRefused, screen_page
from gateway.identity.service import STAFF_ROLES

router = APIRouter(prefix="/admin")

UsersPage = Annotated[Page, screen_page("users")]
Username = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")]
Role = Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$")]
GRANT = ("POST", "/identity/users/{username}/roles")
REVOKE = ("DELETE", "/identity/users/{username}/roles/{role}")
GRANT_FIELDS = {"role": "text", "reason": "text"}


async def _users(page: Page, after: str | None = None, years: int = 5, *, status_code: int = 200,
                 error: str | None = None, form: dict[str, str] | None = None, refused_user: str | None = None
                 ) -> Response:
    params = {"limit": 100, **({"after": after} if after else {})}
    listing, rules, tenure = await asyncio.gather(
        page.calls.json("GET", "/identity/users", params=params),
        page.calls.json("GET", "/identity/conflict-rules"),
        page.calls.json("GET", "/identity/reports/long-tenure", params={"years": years}))
    return await page.render(
        "users.html", status_code=status_code, users=listing, rules=rules, tenure=tenure, years=years,
        next_after=listing[-1]["username"] if len(listing) == 100 else None,
        may_grant=await page.may(*GRANT), may_revoke=await page.may(*REVOKE),
        staff_roles={r: ROLE_LABELS.get(r, r) for r in sorted(STAFF_ROLES)},
        error=error, typed=form or {}, refused_user=refused_user)


@router.get("/users")
async def users(page: UsersPage, after: str | None = None,
                years: Annotated[int, Query(ge=1, le=30)] = 5) -> Response:
    return await _users(page, after, years)


@router.post("/users/{username}/roles")
async def grant(page: UsersPage, username: Username) -> Response:
    """Grant a role with its basis; the API refuses incompatible duties (ROLE_CONFLICT), shown beside the user."""
    async def again(**context: Any) -> Response:
        return await _users(page, refused_user=username, **context)

    return await forms.submit(page, GRANT[1], f"/identity/users/{quote(username, safe='')}/roles", GRANT_FIELDS,
                              "/console/admin/users", again)


@router.post("/users/{username}/roles/{role}/revoke")
async def revoke(page: UsersPage, username: Username, role: Role) -> Response:
    """Revoke a role (the API's route is a DELETE with the reason as a query parameter)."""
    if not await page.may(*REVOKE):
        raise ScreenRefused()
    response = await page.calls.call("DELETE", f"/identity/users/{quote(username, safe='')}/roles/{role}",
                                     params={"reason": page.form.get("reason", "").strip()})
    if response.status_code == 200:
        return page.redirect("/console/admin/users")
    error = ApiError.of(response)
    return await _users(page, status_code=error.status, error=error.in_words(), form=page.form,
                        refused_user=username)
