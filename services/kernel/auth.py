"""Tokens and per-endpoint role policies, enforced by every service itself (defence in depth).

The gateway issues Ed25519-signed JWTs; services verify them with the public key alone. Every route declares its
policy with ``allow(...)`` (roles that may call it) or ``public()``; ``enforce_route_policies`` refuses to build an
app with an undeclared route and writes each policy into the OpenAPI document as ``x-sifund-roles`` /
``x-sifund-public``, which the authorisation matrix test reads.
"""

import hashlib
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from sqlalchemy import ColumnElement, false
from sqlalchemy.orm import InstrumentedAttribute

from services.kernel import clock, context, openapi
from services.kernel.context import Actor
from services.kernel.settings import Settings

# Roles of DOMAIN.md (Roles and incompatible duties).
ROLES: dict[str, str] = {
    "agency_clerk": "经办",
    "agency_reviewer": "复核/复审",
    "agency_approver": "审批",
    "accountant": "会计",
    "cashier": "出纳",
    "it_admin": "信息",
    "internal_auditor": "稽核内控",
    "oversight_officer": "基金监督",
    "finance_officer": "财政",
    "tax_system": "税务系统",
    "partner_system": "卫健/民政/公安/法院/市场监管",
    "bank_system": "代发银行",
    "public": "公众",
}
SYSTEM_ROLES = frozenset({"tax_system", "partner_system", "bank_system"})
ALGORITHM = "EdDSA"


# -- keys ------------------------------------------------------------------------------------------------------------


def generate_key_pair() -> tuple[str, str]:
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


def ensure_dev_key_pair(settings: Settings) -> None:
    """First run without configured keys: generate a pair under the data directory (private key mode 0600)."""
    if settings.jwt_public_key or settings.public_key_file.exists():
        return
    private_pem, public_pem = generate_key_pair()
    settings.private_key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(settings.private_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process won the race; it writes the public key too
    with os.fdopen(fd, "w") as f:
        f.write(private_pem)
    tmp = settings.public_key_file.with_suffix(".tmp")
    tmp.write_text(public_pem)
    tmp.replace(settings.public_key_file)


def _read(path: Path, what: str) -> str:
    for _ in range(50):  # a concurrent first run may still be writing it
        if path.exists():
            return path.read_text()
        import time  # noqa: PLC0415

        time.sleep(0.05)
    raise FileNotFoundError(f"{what} not found at {path}; set SIFUND_JWT_{what.upper().replace(' ', '_')}")


def public_key_pem(settings: Settings) -> str:
    if settings.jwt_public_key:
        return settings.jwt_public_key
    ensure_dev_key_pair(settings)
    return _read(settings.public_key_file, "public key")


def private_key_pem(settings: Settings) -> str:
    if settings.jwt_private_key:
        return settings.jwt_private_key
    ensure_dev_key_pair(settings)
    return _read(settings.private_key_file, "private key")


# -- tokens ----------------------------------------------------------------------------------------------------------


class Unauthenticated(HTTPException):
    def __init__(self, message: str = "未认证或令牌无效"):
        super().__init__(401, detail={"code": "UNAUTHENTICATED", "message": message},
                         headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    kind: str  # user | client
    roles: tuple[str, ...]
    name: str | None = None
    unit: str | None = None
    region: str | None = None


def issue_token(settings: Settings, claims: TokenClaims, *, token_type: str = "access",
                lifetime: timedelta | None = None, jti: str | None = None) -> tuple[str, int]:
    now = clock.utc_now()
    lifetime = lifetime or timedelta(minutes=settings.access_token_minutes)
    payload: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": claims.subject,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": jti or uuid.uuid4().hex,
        "typ": token_type,
        "kind": claims.kind,
        "roles": list(claims.roles),
        "name": claims.name,
        "unit": claims.unit,
        "region": claims.region,
    }
    return jwt.encode(payload, private_key_pem(settings), algorithm=ALGORITHM), int(lifetime.total_seconds())


# PyJWT judges exp / iat / nbf against the machine's real time; the platform's clock (which tests and year-end
# rehearsals shift) judges them instead, with PyJWT's own rules: expired when exp <= now, immature when
# iat or nbf > now.
_THE_CLOCK_JUDGES_TIMES = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


def _check_times(claims: dict[str, Any], now: float) -> None:
    times = {}
    for name in ("exp", "iat", "nbf"):
        if name in claims:
            value = claims[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise jwt.InvalidTokenError(f"{name} must be a number")
            times[name] = value
    if times["exp"] <= now:
        raise jwt.ExpiredSignatureError("Signature has expired")
    if times["iat"] > now or times.get("nbf", now) > now:
        raise jwt.ImmatureSignatureError("The token is not yet valid")


class VerifiedTokens:
    """The access tokens this process has verified, by SHA-256 of the token, with the actor each one names and its
    times; least recently used first out beyond ``capacity`` entries.

    A hit skips the signature check and the JSON parsing (the cost of a cheap read's token check) but not the time
    checks: ``exp``/``iat``/``nbf`` are judged again against the platform clock on every use, so a cached token is
    served exactly as long as verifying it again would accept it, and no longer. An access token is never revoked
    before its ``exp``: revoking a role, disabling a user or a refresh-token reuse revokes the *refresh* tokens in
    the gateway's database (gateway/identity/service.py), and the access tokens already issued stay valid until
    they expire (``access_token_minutes``) whether cached or not. The cache therefore adds no window beyond that
    one; refresh tokens, whose revocation is checked in the database on every use, are never cached.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[bytes, tuple[Actor, dict[str, Any]]] = OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> tuple[Actor, dict[str, Any]] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        try:
            self._entries.move_to_end(key)
        except KeyError:  # evicted meanwhile by another thread: still a verified entry
            pass
        return entry

    def put(self, key: bytes, actor: Actor, times: dict[str, Any]) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = (actor, times)
        while len(self._entries) > self.capacity:
            try:
                self._entries.popitem(last=False)
            except KeyError:
                break

    def forget(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class TokenVerifier:
    def __init__(self, settings: Settings):
        self.public_key = public_key_pem(settings)
        # Parsed once: PyJWT would parse the PEM text again on every decode.
        self._key = serialization.load_pem_public_key(self.public_key.encode())
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.cache = VerifiedTokens(settings.token_cache_size)

    def decode(self, token: str, *, token_type: str = "access") -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"], **_THE_CLOCK_JUDGES_TIMES},
            )
            _check_times(claims, clock.utc_now().timestamp())
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("令牌已过期") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("令牌无效") from None
        if claims.get("typ") != token_type:
            raise Unauthenticated("令牌类型错误")
        return claims

    def verify(self, token: str) -> Actor:
        """The actor an access token names; a token verified before is taken from ``self.cache`` after its times
        are checked again (see ``VerifiedTokens``)."""
        key = VerifiedTokens.key(token)
        cached = self.cache.get(key)
        if cached is not None:
            actor, times = cached
            try:
                _check_times(times, clock.utc_now().timestamp())
            except jwt.ExpiredSignatureError:
                self.cache.forget(key)
                raise Unauthenticated("令牌已过期") from None
            except jwt.InvalidTokenError:  # not yet valid (the platform's clock was set back): keep it for later
                raise Unauthenticated("令牌无效") from None
            return actor
        claims = self.decode(token)
        roles = tuple(r for r in claims.get("roles") or () if r in ROLES)
        actor = Actor(id=claims["sub"], role=None, unit=claims.get("unit"), region=claims.get("region"), roles=roles,
                      kind=claims.get("kind"))
        self.cache.put(key, actor, {name: claims[name] for name in ("exp", "iat", "nbf") if name in claims})
        return actor


# -- policies --------------------------------------------------------------------------------------------------------

BEARER_DESCRIPTION = "Access token from POST /auth/token on the gateway"
_AUTHORIZATION = b"authorization"


class RoleGuard(HTTPBearer):
    """Dependency: a valid token whose holder has one of ``roles``. Sets the acting role in the trace context.

    It is the bearer security scheme itself (OpenAPI's ``HTTPBearer``, as FastAPI's ``HTTPBearer`` dependency
    declared it) and reads the ``Authorization`` header from the request's raw headers: one dependency per request
    instead of two (FastAPI's dependency solving costs about as much per dependency as the token check,
    bench/gateway_reads.py)."""

    def __init__(self, roles: frozenset[str]):
        unknown = roles - ROLES.keys()
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=BEARER_DESCRIPTION)
        self.roles = roles

    async def __call__(self, request: Request) -> Actor:  # type: ignore[override]
        token = bearer_token(request.scope)
        if token is None:
            raise Unauthenticated("缺少访问令牌")
        principal = request.app.state.token_verifier.verify(token)
        acting = next((r for r in principal.roles if r in self.roles), None)
        if acting is None:
            needed = "、".join(f"{ROLES[r]}({r})" for r in sorted(self.roles))
            raise HTTPException(403, detail={"code": "FORBIDDEN", "message": f"无权执行此操作，需要角色：{needed}"})
        actor = Actor(id=principal.id, role=acting, unit=principal.unit, region=principal.region, roles=principal.roles,
                      kind=principal.kind)
        request.state.actor = actor
        context.set_actor(actor)
        return actor


def bearer_token(scope: dict[str, Any]) -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header (the scheme in any case), None without
    one — what FastAPI's ``HTTPBearer(auto_error=False)`` gives as credentials."""
    for name, value in scope["headers"]:
        if name == _AUTHORIZATION:
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


class PublicAccess:
    """Dependency marker for the few open endpoints (health, public disclosure)."""

    async def __call__(self) -> None:
        return None


def allow(*roles: str) -> DependsParam:
    """``dependencies=[allow("agency_clerk")]``: who may call this route."""
    return Depends(RoleGuard(frozenset(roles)))


def public() -> DependsParam:
    return Depends(PublicAccess())


def current_actor(request: Request) -> Actor:
    actor = getattr(request.state, "actor", None)
    if actor is None:  # a route forgot its guard: fail closed
        raise Unauthenticated()
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]

# Routes FastAPI adds itself; they carry no data.
FRAMEWORK_ROUTES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def route_policy(route: APIRoute) -> RoleGuard | PublicAccess | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, RoleGuard | PublicAccess):
            return dep.call
        stack.extend(dep.dependencies)
    return None


def policy_extension(policy: "RoleGuard | PublicAccess") -> dict[str, Any]:
    if isinstance(policy, RoleGuard):
        return {"x-sifund-roles": sorted(policy.roles)}
    return {"x-sifund-public": True}


def enforce_route_policies(app: FastAPI) -> None:
    """Every route must declare who may call it (``allow``/``public`` on the route or in
    ``APIRouter(dependencies=...)``); an app with an undeclared route refuses to start. Each policy is written into
    the OpenAPI document as ``x-sifund-roles`` or ``x-sifund-public``."""
    policies: dict[tuple[str, str], dict[str, Any]] = {}
    missing = []
    for path, route in openapi.api_routes(app):
        policy = route_policy(route)
        if policy is None:
            missing.append(f"{','.join(sorted(route.methods))} {path}")
            continue
        for method in route.methods:
            policies[(path, method.lower())] = policy_extension(policy)
    if missing:
        raise RuntimeError(f"routes without an access policy (use allow(...) or public()): {missing}")

    openapi.publish(app, policies)


# -- the region rule: staff act only on objects of their own area -----------------------------------------------------
# Written once, here, in two forms that agree: region_covers (one object, in Python) and region_filter (a query, in
# SQL). tests/kernel/test_region_filter.py checks that they agree and that no other module writes the rule by hand.


def region_covers(user_region: str | None, object_region: str | None) -> bool:
    """行政区划代码 hierarchy: a user of 150100 (a city) covers 1501xx; of 150000 (a province) covers 15xxxx.
    A user or an object without a region: not covered."""
    if not user_region or not object_region:
        return False
    return object_region.startswith(region_prefix(user_region))


def region_filter(column: ColumnElement[str] | InstrumentedAttribute[str],
                  actor: Actor | None = None) -> ColumnElement[bool]:
    """The SQL twin of :func:`region_covers` for ``actor`` (default: the current actor): rows whose ``column`` lies
    in the actor's area. An actor without a region sees no row; a row without a region (NULL or empty) is seen by
    no one. ``%`` and ``_`` are matched literally (autoescape), as ``str.startswith`` does."""
    return area_filter(column, (actor or context.current().actor).region)


def area_filter(column: ColumnElement[str] | InstrumentedAttribute[str], region: str | None) -> ColumnElement[bool]:
    """Rows whose ``column`` lies in the area ``region`` — an area recorded earlier (a background job's, a sample's),
    where :func:`region_filter` takes the current actor's. No region: no row."""
    if not region:
        return false()
    return column.startswith(region_prefix(region), autoescape=True)


def region_levels(region: str) -> list[str]:
    """``150102`` → [150102, 150100, 150000]: the region and the levels above it, most specific first."""
    return list(dict.fromkeys([region, region[:4] + "00", region[:2] + "0000"]))


def region_prefix(user_region: str) -> str:
    prefix = user_region
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return prefix


def ensure_in_region(actor: Actor, object_region: str) -> None:
    """Object-level check: staff act only on objects of their own area (a district clerk not on another district's).
    The in-Python form of the rule, for one object (:func:`region_filter` for queries)."""
    if not region_covers(actor.region, object_region):
        raise HTTPException(403, detail={"code": "OUT_OF_REGION",
                                         "message": f"无权办理行政区划 {object_region} 的业务（本人所属 {actor.region or '未知'}）"})
