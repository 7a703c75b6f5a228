"""The gateway's guard: request size limit, early rejection of bad tokens, rate limits per principal
and per IP (stricter on ``/auth/token``), and every mutating request written to the gateway's audit chain.

Services still check the token and role of every call themselves; the guard only turns away what is certainly bad
and records who did what.

The rate limits are per gateway process (token buckets in memory): with N gateway replicas a client may get up to N
times a figure, so at scale each figure is set to the wanted total divided by N (README, "Running at scale").
Sharing them would put a database or NATS round trip on every request's path for a flood guard; the limit that
must hold across replicas, the sign-in lockout after ``login_max_failures``, is kept in the gateway's database.
"""

import json
import math
import re
import time
from dataclasses import dataclass

import anyio
import structlog
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kernel import context
from services.kernel.audit import append_audit
from services.kernel.context import Actor
from services.kernel.db import unit_of_work
from services.kernel.errors import error_body
from services.kernel.models import AuditEntry
from services.kernel.settings import Settings

log = structlog.get_logger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_PATH = "/auth/token"
# audit_log.entity_id is VARCHAR(100): a longer "METHOD path" is cut there (PostgreSQL refuses the whole entry).
ROUTE_ID_MAX = AuditEntry.__table__.c.entity_id.type.length

# The routes that take a whole file and run it as a job (imports, a month's tax-line file): their bodies are a city's
# month, far past the limit of an ordinary request; the service behind checks its own, per kind.
_FILE_UPLOADS = re.compile(r"^/api/(accounts/imports/[a-z_]+|collection/tax-payments/files)/?$")


def is_file_upload(method: str, path: str) -> bool:
    return method == "POST" and _FILE_UPLOADS.match(path) is not None


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets: ``per_minute`` requests a minute on average, bursts up to the same number."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 if allowed, else the seconds to wait."""
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) > 100_000:
                self._forget_idle(now)
            bucket = self.buckets[key] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.capacity / self.rate
        self.buckets = {k: b for k, b in self.buckets.items() if now - b.stamp < full_after}


class GuardMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings
        self.per_principal = RateLimiter(settings.rate_limit_per_principal_per_minute)
        self.per_ip = RateLimiter(settings.rate_limit_per_ip_per_minute)
        self.token_per_ip = RateLimiter(settings.rate_limit_token_per_ip_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        ip = (scope.get("client") or ("unknown", 0))[0]
        content_length, authorization, chunked = _guarded_headers(scope)
        limit = self.settings.max_upload_bytes if is_file_upload(method, path) else self.settings.max_request_bytes

        if content_length > limit:
            await _reply(send, 413, "PAYLOAD_TOO_LARGE", f"请求体超过上限 {limit} 字节")
            return

        actor = None
        if authorization[:7].lower() == "bearer ":
            try:
                actor = scope["app"].state.token_verifier.verify(authorization[7:].strip())
            except HTTPException as exc:
                await _reply(send, 401, exc.detail["code"], exc.detail["message"], {"www-authenticate": "Bearer"})
                return

        waits = [self.token_per_ip.take(ip)] if path == TOKEN_PATH else [self.per_ip.take(ip)]
        if actor is not None and path != TOKEN_PATH:
            waits.append(self.per_principal.take(f"{actor.id}"))
        wait = max(waits)
        if wait > 0:
            await _reply(send, 429, "RATE_LIMITED", "请求过于频繁，请稍后再试", {"retry-after": str(math.ceil(wait))})
            return

        if not chunked and method not in MUTATING:
            # Nothing to count (a body without Transfer-Encoding is as long as its Content-Length, checked above,
            # or empty) and nothing to audit: the request goes on as it came.
            await self.app(scope, receive, send)
            return

        received, too_large = 0, False

        async def counted_receive() -> Message:
            # A body without Content-Length is counted as it arrives; past the limit the app gets an empty end of
            # body and whatever it answers is replaced by 413 (raising here would surface as a 400 parse error).
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        status = 500

        async def watched_send(message: Message) -> None:
            nonlocal status
            if too_large:
                if message["type"] == "http.response.start":
                    status = 413
                    await _reply(send, 413, "PAYLOAD_TOO_LARGE", f"请求体超过上限 {limit} 字节")
                return
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        finally:
            if method in MUTATING:
                await self._audit(scope, actor, method, path, status, ip)

    async def _audit(self, scope: Scope, actor: Actor | None, method: str, path: str, status: int, ip: str) -> None:
        engine = scope["app"].state.engine
        who = actor or Actor(id="anonymous")
        request_id = context.current().request_id

        route = f"{method} {path}"
        detail = {"status": status, "ip": ip, "result": "ok" if status < 400 else "refused"}
        if len(route) > ROUTE_ID_MAX:  # e.g. a path with two ids: the whole path goes into the detail
            detail["path"] = path
            route = route[:ROUTE_ID_MAX - 1] + "…"

        def write() -> None:
            with context.trace(actor=Actor(id=who.id, role=",".join(who.roles) or None), request_id=request_id):
                with unit_of_work(engine) as session:
                    append_audit(session, action="http.request", entity_type="route", entity_id=route, detail=detail)
                    session.flush()

        try:
            await anyio.to_thread.run_sync(write)
        except Exception as exc:  # noqa: BLE001 - the response is already sent; make the gap loud
            log.error("gateway.audit_failed", method=method, path=path, error=str(exc))


def _guarded_headers(scope: Scope) -> tuple[int, str, bool]:
    """Content-Length (0 when absent or unreadable: the body is then counted as it arrives), Authorization and
    whether a Transfer-Encoding was given (a body of unannounced length), the headers the guard reads; ASGI servers
    give header names in lower case."""
    content_length, authorization, chunked = 0, "", False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                content_length = 0
        elif name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"transfer-encoding":
            chunked = True
    return content_length, authorization, chunked


async def _reply(send: Send, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(code, message), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
