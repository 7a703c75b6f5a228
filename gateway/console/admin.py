"""IT administrator (信息岗位): staff users with their roles, the incompatible-duty rules in force and the long-tenure
report of high-risk posts (001 第十六条), over the gateway's ``/identity`` routes."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.console.pages import Page, screen_page

router = APIRouter(prefix="/admin")


@router.get("/users")
async def users(page: Annotated[Page, screen_page("users")], after: str | None = None,
                years: Annotated[int, Query(ge=1, le=30)] = 5) -> Response:
    params = {"limit": 100, **({"after": after} if after else {})}
    listing, rules, tenure = await asyncio.gather(
        page.calls.json("GET", "/identity/users", params=params),
        page.calls.json("GET", "/identity/conflict-rules"),
        page.calls.json("GET", "/identity/reports/long-tenure", params={"years": years}))
    return await page.render("users.html", users=listing, rules=rules, tenure=tenure, years=years,
                             next_after=listing[-1]["username"] if len(listing) == 100 else None)
