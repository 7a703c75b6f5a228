"""The console calls the gateway's own routes (``/auth/…``, ``/identity/…``, ``/api/<service>/…``) in-process through
ASGI, as the browser's user: the same guard, rate limits, audit, proxy and each service's role and object checks as
any API client, with the user's own bearer token. No private back door, no second authorisation model.

The internal call carries the browser's address as its client, so the gateway's per-IP limits and audit see the
person, not the console."""

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.console.session import BrowserSession

# An access token this close to its expiry is refreshed before the call rather than after a 401.
REFRESH_MARGIN_SECONDS = 30


class LoginRequired(Exception):
    """No session, or one whose tokens can no longer be refreshed: back to the login page."""


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    details: Any = None

    @classmethod
    def of(cls, response: httpx.Response) -> "ApiError":
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error", body) if isinstance(body, dict) else {}
        message = error.get("message") if isinstance(error, dict) else None
        return cls(response.status_code, (error.get("code") if isinstance(error, dict) else None) or "ERROR",
                   message or f"接口返回 {response.status_code}", error.get("details") if isinstance(error, dict)
                   else None)

    def in_words(self) -> str:
        """The API's Chinese message and code; for a 422 of several fields, each field's message after it."""
        details = self.details if isinstance(self.details, list) else []
        extra = "；".join(str(d.get("message") or d.get("msg") or "") for d in details if isinstance(d, dict))
        return f"{self.message}（{self.code}）" + (f"：{extra}" if extra else "")


class Refreshes:
    """One rotation per refresh token in this process. A page's parallel calls, or a page and its htmx requests
    arriving together with the same cookie, would otherwise present the same refresh token twice — which the gateway
    takes for a stolen token and answers by signing the user out everywhere (gateway/identity/service.refresh). The
    first caller rotates; the others get its result for REUSE_SECONDS."""

    REUSE_SECONDS = 60.0

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.recent: dict[str, tuple[float, dict | None]] = {}

    async def rotate(self, refresh_token: str, rotate) -> dict | None:  # noqa: ANN001
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        async with self.lock:
            now = time.monotonic()
            self.recent = {k: v for k, v in self.recent.items() if now - v[0] < self.REUSE_SECONDS}
            if key in self.recent:
                return self.recent[key][1]
            tokens = await rotate(refresh_token)
            self.recent[key] = (now, tokens)
            return tokens


class GatewayCalls:
    """One browser request's calls to the gateway, with the browser session's tokens (refreshed when due)."""

    def __init__(self, gateway: ASGIApp, request: Request, session: BrowserSession, refreshes: "Refreshes"):
        self.session = session
        self.refreshes = refreshes
        client = (request.client.host, request.client.port) if request.client else ("127.0.0.1", 0)
        self.transport = httpx.ASGITransport(app=gateway, client=client)
        self.base_url = "http://console.internal"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=self.base_url, timeout=30.0)

    async def sign_in(self, username: str, password: str) -> httpx.Response:
        async with self._client() as client:
            return await client.post("/auth/token", data={"grant_type": "password", "username": username,
                                                          "password": password})

    async def refresh(self) -> bool:
        if not self.session.refresh_token:
            return False
        tokens = await self.refreshes.rotate(self.session.refresh_token, self._rotate)
        if tokens is None:
            return False
        self.session.sign_in(tokens, self.session.username or "", self.session.display_name)
        return True

    async def _rotate(self, refresh_token: str) -> dict | None:
        async with self._client() as client:
            response = await client.post("/auth/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": refresh_token})
        return response.json() if response.status_code == 200 else None

    async def revoke(self) -> None:
        if self.session.refresh_token:
            async with self._client() as client:
                await client.post("/auth/revoke", data={"token": self.session.refresh_token})

    async def call(self, method: str, path: str, *, public: bool = False, **kwargs: Any) -> httpx.Response:
        """``public``: a route open to anyone, called without a token whether or not the user is signed in."""
        if public:
            async with self._client() as client:
                return await client.request(method, path, **kwargs)
        if not self.session.signed_in:
            raise LoginRequired()
        if self.session.access_expires_at - REFRESH_MARGIN_SECONDS < time.time() and not await self.refresh():
            self.session.sign_out()
            raise LoginRequired()
        response = await self._send(method, path, **kwargs)
        if response.status_code == 401:  # revoked or expired early (clock): one refresh, then the login page
            if not await self.refresh():
                self.session.sign_out()
                raise LoginRequired()
            response = await self._send(method, path, **kwargs)
        return response

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.session.access_token}"}
        async with self._client() as client:
            return await client.request(method, path, headers=headers, **kwargs)

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The body of a 2xx answer, or ApiError with the API's code and Chinese message."""
        response = await self.call(method, path, **kwargs)
        if response.status_code >= 300:
            raise ApiError.of(response)
        return response.json()
