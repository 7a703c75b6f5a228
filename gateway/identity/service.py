"""Identity rules: users and clients, role grants under the incompatible-duty rules, sign-in with lockout, tokens.

Every change is appended to the gateway's audit chain in the same transaction (004 第24项).
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from gateway.identity.conflicts import find_conflict
from gateway.identity.models import RefreshToken, RoleAssignment, SystemClient, UserAccount
from gateway.identity.passwords import (
    check_password_policy,
    generate_client_secret,
    hash_secret,
    verify_secret,
)
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import ROLES, SYSTEM_ROLES, TokenClaims, TokenVerifier, Unauthenticated, issue_token
from services.kernel.db import keep_writes
from services.kernel.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from services.kernel.settings import Settings

# The finance department's system may post as a client; oversight's scheduler reads the audit chains and the
# identity reports as a client (services/oversight/scheduler).
CLIENT_ROLES = SYSTEM_ROLES | {"finance_officer", "oversight_officer"}
STAFF_ROLES = frozenset(ROLES) - SYSTEM_ROLES - {"public"}
# Posts DOMAIN.md calls high-risk (benefit payment, rate assessment, accountant, cashier): tenure > 5 years flagged.
HIGH_RISK_ROLES = ("accountant", "cashier", "agency_reviewer", "agency_approver")


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _by() -> str:
    return context.actor_id()


# -- users -----------------------------------------------------------------------------------------------------------


def get_user(session: Session, username: str) -> UserAccount:
    user = session.execute(select(UserAccount).where(UserAccount.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFound("USER_NOT_FOUND", f"用户 {username} 不存在")
    return user


def active_roles(session: Session, user_id: str) -> list[RoleAssignment]:
    return list(
        session.execute(
            select(RoleAssignment)
            .where(RoleAssignment.user_id == user_id, RoleAssignment.revoked_at.is_(None))
            .order_by(RoleAssignment.granted_at)
        ).scalars()
    )


def create_user(session: Session, settings: Settings, *, username: str, display_name: str, unit: str, region: str,
                password: str) -> UserAccount:
    check_password_policy(password, username=username, min_length=settings.password_min_length)
    if session.execute(select(UserAccount.id).where(UserAccount.username == username)).first():
        raise Conflict("USER_EXISTS", f"用户名 {username} 已存在")
    now = clock.utc_now()
    user = UserAccount(id=str(uuid.uuid4()), username=username, display_name=display_name, unit=unit, region=region,
                       password_hash=hash_secret(password), created_at=now, created_by=_by(), password_changed_at=now)
    session.add(user)
    append_audit(session, action="user.create", entity_type="user", entity_id=username,
                 detail={"display_name": display_name, "unit": unit, "region": region})
    session.flush()
    return user


def grant_role(session: Session, *, username: str, role: str, reason: str | None,
               granted_at: datetime | None = None) -> RoleAssignment:
    """Grant ``role``, refusing any pair the conflict rules forbid. ``granted_at`` back-dates migrated tenure."""
    if role not in STAFF_ROLES:
        raise Invalid("UNKNOWN_ROLE", f"角色 {role} 不存在或不能授予人员")
    user = get_user(session, username)
    if user.username == _by():
        raise Forbidden("SELF_GRANT_FORBIDDEN", "不得为本人授权")
    held = {a.role for a in active_roles(session, user.id)}
    if role in held:
        raise Conflict("ROLE_ALREADY_HELD", f"用户 {username} 已拥有角色 {role}")
    conflict = find_conflict(session, held, role)
    if conflict is not None:
        rule, clash = conflict
        raise Conflict(
            "ROLE_CONFLICT",
            f"{rule.message}：用户 {username} 已担任 {ROLES[clash]}({clash})，不能再授予 {ROLES[role]}({role})（依据：{rule.basis}）",
            details={"rule": rule.code, "held_role": clash, "requested_role": role},
        )
    assignment = RoleAssignment(user_id=user.id, role=role, granted_at=granted_at or clock.utc_now(), granted_by=_by(),
                                reason=reason)
    session.add(assignment)
    append_audit(session, action="role.grant", entity_type="user", entity_id=username, detail={"role": role},
                 reason=reason)
    session.flush()
    return assignment


def revoke_role(session: Session, *, username: str, role: str, reason: str) -> RoleAssignment:
    user = get_user(session, username)
    assignment = next((a for a in active_roles(session, user.id) if a.role == role), None)
    if assignment is None:
        raise NotFound("ROLE_NOT_HELD", f"用户 {username} 未拥有角色 {role}")
    assignment.revoked_at, assignment.revoked_by, assignment.revoke_reason = clock.utc_now(), _by(), reason
    session.add(assignment)
    append_audit(session, action="role.revoke", entity_type="user", entity_id=username, detail={"role": role},
                 reason=reason)
    session.flush()
    return assignment


def set_user_status(session: Session, *, username: str, status: str, reason: str) -> UserAccount:
    user = get_user(session, username)
    user.status = status
    if status == "active":
        user.failed_logins, user.locked_until = 0, None
    session.add(user)
    _revoke_refresh_tokens(session, username)
    append_audit(session, action=f"user.{'enable' if status == 'active' else 'disable'}", entity_type="user",
                 entity_id=username, reason=reason)
    session.flush()
    return user


def unlock_user(session: Session, *, username: str, reason: str) -> UserAccount:
    user = get_user(session, username)
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    append_audit(session, action="user.unlock", entity_type="user", entity_id=username, reason=reason)
    session.flush()
    return user


def change_password(session: Session, settings: Settings, *, username: str, old: str, new: str) -> None:
    user = get_user(session, username)
    if not verify_secret(user.password_hash, old):
        raise BadRequest("INVALID_CREDENTIALS", "原密码错误")
    check_password_policy(new, username=username, min_length=settings.password_min_length)
    user.password_hash, user.password_changed_at = hash_secret(new), clock.utc_now()
    session.add(user)
    _revoke_refresh_tokens(session, username)
    append_audit(session, action="user.password_change", entity_type="user", entity_id=username)
    session.flush()


# -- clients ---------------------------------------------------------------------------------------------------------


def create_client(session: Session, *, client_id: str, name: str, role: str, region: str) -> tuple[SystemClient, str]:
    """Returns the client and its secret, which is shown this once and stored only as a hash."""
    if role not in CLIENT_ROLES:
        raise Invalid("UNKNOWN_ROLE", f"系统客户端角色须为 {', '.join(sorted(CLIENT_ROLES))}")
    if session.execute(select(SystemClient.id).where(SystemClient.client_id == client_id)).first():
        raise Conflict("CLIENT_EXISTS", f"客户端 {client_id} 已存在")
    secret = generate_client_secret()
    client = SystemClient(id=str(uuid.uuid4()), client_id=client_id, name=name, role=role, region=region,
                          secret_hash=hash_secret(secret), created_at=clock.utc_now(), created_by=_by())
    session.add(client)
    append_audit(session, action="client.create", entity_type="client", entity_id=client_id,
                 detail={"name": name, "role": role, "region": region})
    session.flush()
    return client, secret


# -- sign-in and tokens ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str | None
    roles: tuple[str, ...]


def _issue(session: Session, settings: Settings, claims: TokenClaims, *, with_refresh: bool) -> IssuedTokens:
    access, expires_in = issue_token(settings, claims)
    refresh = None
    if with_refresh:
        jti = uuid.uuid4().hex
        lifetime = timedelta(hours=settings.refresh_token_hours)
        refresh, _ = issue_token(settings, claims, token_type="refresh", lifetime=lifetime, jti=jti)
        now = clock.utc_now()
        session.add(RefreshToken(jti=jti, subject=claims.subject, kind=claims.kind, issued_at=now,
                                 expires_at=now + lifetime))
    return IssuedTokens(access, expires_in, refresh, claims.roles)


def _user_claims(session: Session, user: UserAccount) -> TokenClaims:
    roles = tuple(a.role for a in active_roles(session, user.id))
    return TokenClaims(subject=user.username, kind="user", roles=roles, name=user.display_name, unit=user.unit,
                       region=user.region)


def sign_in(session: Session, settings: Settings, *, username: str, password: str) -> IssuedTokens:
    """Password grant. Repeated failures lock the account for a while; every attempt is audited."""
    user = session.execute(select(UserAccount).where(UserAccount.username == username)).scalar_one_or_none()
    now = clock.utc_now()
    if user is None:
        verify_secret(None, password)  # same cost as a real check
        raise Unauthenticated("用户名或密码错误")
    with context.trace(actor=context.Actor(id=username)):
        locked_until = _aware(user.locked_until)
        refusal = ({"why": "disabled"} if user.status != "active" else
                   {"why": "locked", "locked_until": locked_until.isoformat()} if locked_until and locked_until > now
                   else None)
        if refusal:
            # A disabled or locked account is answered exactly as a wrong password (same check, status, code and
            # message): a distinct answer would tell whoever is guessing that the user name exists. The refusal is
            # audited; the user learns why from the IT administrator.
            verify_secret(user.password_hash, password)
            append_audit(session, action="auth.refused", entity_type="user", entity_id=username, detail=refusal)
            raise keep_writes(Unauthenticated("用户名或密码错误"))  # the refusal (and the lockout count) stands
        if not verify_secret(user.password_hash, password):
            user.failed_logins += 1
            detail = {"why": "bad_password", "failures": user.failed_logins}
            if user.failed_logins >= settings.login_max_failures:
                user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
                user.failed_logins = 0
                detail["locked_until"] = user.locked_until.isoformat()
            session.add(user)
            append_audit(session, action="auth.failed", entity_type="user", entity_id=username, detail=detail)
            raise keep_writes(Unauthenticated("用户名或密码错误"))  # the refusal (and the lockout count) stands
        user.failed_logins, user.locked_until = 0, None
        session.add(user)
        tokens = _issue(session, settings, _user_claims(session, user), with_refresh=True)
        append_audit(session, action="auth.sign_in", entity_type="user", entity_id=username,
                     detail={"roles": list(tokens.roles)})
        session.flush()
        return tokens


def sign_in_client(session: Session, settings: Settings, *, client_id: str, secret: str) -> IssuedTokens:
    client = session.execute(select(SystemClient).where(SystemClient.client_id == client_id)).scalar_one_or_none()
    if client is None or client.status != "active" or not verify_secret(client.secret_hash if client else None, secret):
        raise Unauthenticated("客户端凭据错误")
    claims = TokenClaims(subject=client.client_id, kind="client", roles=(client.role,), name=client.name,
                         unit=client.name, region=client.region)
    tokens = _issue(session, settings, claims, with_refresh=False)
    client.last_token_at = clock.utc_now()
    session.add(client)
    with context.trace(actor=context.Actor(id=client.client_id, role=client.role)):
        append_audit(session, action="auth.client_token", entity_type="client", entity_id=client_id)
    session.flush()
    return tokens


def refresh(session: Session, settings: Settings, verifier: TokenVerifier, *, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token. Presenting one already used means it was stolen: every token of the user dies."""
    claims = verifier.decode(refresh_token, token_type="refresh")
    stored = session.get(RefreshToken, claims["jti"])
    if stored is None:
        raise Unauthenticated("刷新令牌无效")
    if stored.revoked_at is not None:
        _revoke_refresh_tokens(session, stored.subject)
        with context.trace(actor=context.Actor(id=stored.subject)):
            append_audit(session, action="auth.refresh_reuse", entity_type="user", entity_id=stored.subject)
        raise keep_writes(Unauthenticated("刷新令牌已使用，已注销该用户全部会话"))  # the revocation stands
    user = get_user(session, stored.subject)
    if user.status != "active":
        raise Unauthenticated("账户已停用")
    tokens = _issue(session, settings, _user_claims(session, user), with_refresh=True)
    stored.revoked_at = clock.utc_now()
    stored.replaced_by = verifier.decode(tokens.refresh_token, token_type="refresh")["jti"]
    session.add(stored)
    session.flush()
    return tokens


def revoke(session: Session, verifier: TokenVerifier, *, refresh_token: str) -> None:
    """Sign-out: the refresh token can no longer be used (its access token lives out its minutes). A token that is
    not a valid refresh token of ours changes nothing and is not reported (RFC 7009 §2.2)."""
    try:
        claims = verifier.decode(refresh_token, token_type="refresh")
    except Unauthenticated:
        return
    stored = session.get(RefreshToken, claims.get("jti"))
    if stored is None or stored.revoked_at is not None:
        return
    stored.revoked_at = clock.utc_now()
    session.add(stored)
    with context.trace(actor=context.Actor(id=stored.subject)):
        append_audit(session, action="auth.sign_out", entity_type="user", entity_id=stored.subject)
    session.flush()


def _revoke_refresh_tokens(session: Session, subject: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.subject == subject, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=clock.utc_now())
    )


# -- reports ---------------------------------------------------------------------------------------------------------


def long_tenure_report(session: Session, *, years: int = 5, at: datetime | None = None) -> list[dict]:
    """High-risk posts held longer than ``years`` (001 第十六条: rotate staff on high-risk posts)."""
    at = at or clock.utc_now()
    cutoff = at - timedelta(days=round(365.25 * years))
    rows = session.execute(
        select(RoleAssignment, UserAccount)
        .join(UserAccount, UserAccount.id == RoleAssignment.user_id)
        .where(RoleAssignment.revoked_at.is_(None), RoleAssignment.role.in_(HIGH_RISK_ROLES),
               RoleAssignment.granted_at <= cutoff, UserAccount.status == "active")
        .order_by(RoleAssignment.granted_at)
    ).all()
    return [
        {
            "username": user.username,
            "display_name": user.display_name,
            "unit": user.unit,
            "region": user.region,
            "role": a.role,
            "granted_at": _aware(a.granted_at),
            "tenure_days": (at - _aware(a.granted_at)).days,
        }
        for a, user in rows
    ]
