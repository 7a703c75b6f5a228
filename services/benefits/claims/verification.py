"""Online verification with accounts (004 第10项: 办理待遇核定业务时必须在线核验缴费状态、待遇状况和待遇领取资格).

Benefits asks accounts synchronously, while the clerk waits, through the process's shared ``app.state.http`` client
at ``settings.service_url("accounts")``, **forwarding the caller's Authorization header**: accounts checks the clerk's
own role and region, so benefits never verifies with more rights than the person at the counter has. The request and
correlation ids travel along for tracing.

- ``GET /verification/enrolment?citizen_id&fund&period`` — person found, enrolled in the fund in that month;
- ``GET /verification/contribution-months?citizen_id&fund&until`` — posted contribution months up to a month;
- ``GET /individual-accounts/{person_id}`` — the individual account balance (pensions only; no account → 0).

Accounts unreachable, timing out (``internal_call_timeout_seconds``, shorter than the gateway's) or failing (5xx) → 503
``DEPENDENCY_UNAVAILABLE`` naming accounts, and nothing is stored: a claim is never processed on unverified data. Accounts refusing the caller (401/403) → the same status and code.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from services.kernel import context
from services.kernel.errors import BadGateway, DependencyUnavailable, DomainError
from services.kernel.money import yuan_to_fen
from services.kernel.web import CORRELATION_ID_HEADER, REQUEST_ID_HEADER
from services.kernel.settings import Settings


@dataclass(frozen=True)
class AccountsAnswers:
    """What accounts answered, kept as received (recorded in the claim's ``verification`` JSON)."""

    base_url: str
    enrolment: dict[str, Any]
    contribution_months: dict[str, Any]
    account: dict[str, Any] | None  # None: not asked (not a pension)
    balance_fen: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"source": "accounts", "enrolment": self.enrolment, "contribution_months": self.contribution_months,
                "individual_account": self.account}


def _unavailable(detail: str) -> DomainError:
    return DependencyUnavailable("accounts", detail, "无法在线核验参保缴费状况，待遇申请未受理，请稍后重试")


def _headers(request: Request) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    authorization = request.headers.get("authorization")
    if authorization:
        headers["Authorization"] = authorization
    ctx = context.current()
    if ctx.request_id:
        headers[REQUEST_ID_HEADER] = ctx.request_id
    if ctx.correlation_id:
        headers[CORRELATION_ID_HEADER] = ctx.correlation_id
    return headers


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any] | None = None,
               *, allow_not_found: bool = False) -> dict[str, Any] | None:
    try:
        response = await client.get(url, params=params, headers=headers)
    except httpx.HTTPError as exc:  # connect refused, timeout, protocol error
        raise _unavailable(type(exc).__name__) from None
    if response.status_code == 404 and allow_not_found:
        return None
    if response.status_code >= 500:
        raise _unavailable(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise _unavailable("invalid response") from None
    if response.status_code in (401, 403):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise DomainError(error.get("code", "FORBIDDEN"),
                          f"参保登记系统拒绝核验：{error.get('message', '无权限')}", status=response.status_code)
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise BadGateway("VERIFICATION_FAILED",
                         f"参保登记系统核验失败（HTTP {response.status_code} {error.get('code', '')}）")
    return body


async def ask_accounts(request: Request, settings: Settings, *, citizen_id: str, person_id: str, fund: str,
                       enrolment_period: int, months_until: int, with_balance: bool) -> AccountsAnswers:
    """The online checks of one claim, asked concurrently."""
    base = settings.service_url("accounts")
    client: httpx.AsyncClient = request.app.state.http
    headers = _headers(request)
    calls = [
        _get(client, f"{base}/verification/enrolment", headers,
             {"citizen_id": citizen_id, "fund": fund, "period": enrolment_period}),
        _get(client, f"{base}/verification/contribution-months", headers,
             {"citizen_id": citizen_id, "fund": fund, "until": months_until}),
    ]
    if with_balance:
        calls.append(_get(client, f"{base}/individual-accounts/{person_id}", headers, allow_not_found=True))
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    enrolment, months = results[0], results[1]
    account, balance_fen = None, None
    if with_balance:
        account = results[2] or {"person_id": person_id, "balance": "0.00", "status": "none"}
        balance_fen = yuan_to_fen(str(account.get("balance", "0")))
    return AccountsAnswers(base_url=base, enrolment=enrolment, contribution_months=months, account=account,
                           balance_fen=balance_fen)
