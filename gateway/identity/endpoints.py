"""``/auth/*`` (tokens, who am I) and ``/identity/*`` (administration of users, roles and clients)."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status
from sqlalchemy import select

from gateway.identity import service
from gateway.identity.models import RoleConflictRule, SystemClient, UserAccount
from gateway.identity.schemas import (
    ClientCreate,
    ClientCreated,
    ClientOut,
    ConflictRuleOut,
    Me,
    PasswordChange,
    RoleGrant,
    RoleOut,
    StatusChange,
    TenureOut,
    USERNAME_PATTERN,
    TokenResponse,
    UserCreate,
    UserOut,
)
from services.kernel import openapi
from services.kernel.auth import CurrentActor, allow, public
from services.kernel.errors import BadRequest
from services.kernel.service_app import SessionDep
from services.kernel.settings import SettingsDep

auth_router = APIRouter(prefix="/auth", tags=["auth"])
identity_router = APIRouter(prefix="/identity", tags=["identity"])

ANY_STAFF_OR_CLIENT = tuple(sorted(service.STAFF_ROLES | service.CLIENT_ROLES))


def _tokens(issued: service.IssuedTokens) -> TokenResponse:
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in,
                         refresh_token=issued.refresh_token, roles=list(issued.roles))


@auth_router.post("/token", response_model=TokenResponse, dependencies=[public()],
                  responses=openapi.refusals(401),  # wrong credentials
                  summary="OAuth2 token: password, client_credentials or refresh_token grant")
def token(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    grant_type: Annotated[str, Form()] = "password",
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
) -> TokenResponse:
    if grant_type == "password" and username and password:
        return _tokens(service.sign_in(session, settings, username=username, password=password))
    if grant_type == "client_credentials" and client_id and client_secret:
        return _tokens(service.sign_in_client(session, settings, client_id=client_id, secret=client_secret))
    if grant_type == "refresh_token" and refresh_token:
        return _tokens(service.refresh(session, settings, request.app.state.token_verifier, refresh_token=refresh_token))
    raise BadRequest("INVALID_GRANT", "不支持的授权方式或缺少必要字段（password: username+password；"
                     "client_credentials: client_id+client_secret；refresh_token: refresh_token）")


@auth_router.post("/revoke", status_code=status.HTTP_200_OK, dependencies=[public()],
                  summary="Revoke a refresh token (sign out; RFC 7009: an unknown or already revoked token is 200 too)")
def revoke(request: Request, session: SessionDep, token: Annotated[str, Form(max_length=4096)]) -> dict:
    service.revoke(session, request.app.state.token_verifier, refresh_token=token)
    return {"revoked": True}


@auth_router.get("/me", response_model=Me, dependencies=[allow(*ANY_STAFF_OR_CLIENT)], summary="Who am I")
def me(actor: CurrentActor) -> Me:
    return Me(subject=actor.id, role=actor.role, roles=list(actor.roles), unit=actor.unit, region=actor.region)


@auth_router.post("/password", status_code=status.HTTP_204_NO_CONTENT,
                  dependencies=[allow(*sorted(service.STAFF_ROLES))], summary="Change my password")
def change_password(body: PasswordChange, settings: SettingsDep, session: SessionDep, actor: CurrentActor) -> None:
    service.change_password(session, settings, username=actor.id, old=body.old_password,
                            new=body.new_password)


# -- administration (信息岗位) ---------------------------------------------------------------------------------------


def _user_out(session: SessionDep, user: UserAccount) -> UserOut:
    roles = [RoleOut(role=a.role, granted_at=a.granted_at, granted_by=a.granted_by, reason=a.reason)
             for a in service.active_roles(session, user.id)]
    return UserOut(username=user.username, display_name=user.display_name, unit=user.unit, region=user.region,
                   status=user.status, locked_until=user.locked_until, created_at=user.created_at, roles=roles)


@identity_router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut,
                      dependencies=[allow("it_admin")], summary="Create a staff user")
def create_user(body: UserCreate, settings: SettingsDep, session: SessionDep) -> UserOut:
    user = service.create_user(session, settings, username=body.username,
                               display_name=body.display_name, unit=body.unit, region=body.region,
                               password=body.password)
    return _user_out(session, user)


@identity_router.get("/users", response_model=list[UserOut], dependencies=[allow("it_admin", "internal_auditor")],
                     summary="Staff users, paged by username")
def list_users(session: SessionDep, after: str | None = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[UserOut]:
    query = select(UserAccount).order_by(UserAccount.username).limit(limit)
    if after:
        query = query.where(UserAccount.username > after)
    return [_user_out(session, u) for u in session.execute(query).scalars()]


@identity_router.get("/users/{username}", response_model=UserOut, dependencies=[allow("it_admin", "internal_auditor")],
                     summary="One staff user with active roles")
def get_user(username: str, session: SessionDep) -> UserOut:
    return _user_out(session, service.get_user(session, username))


@identity_router.post("/users/{username}/roles", status_code=status.HTTP_201_CREATED, response_model=UserOut,
                      dependencies=[allow("it_admin")], summary="Grant a role (incompatible duties are refused)")
def grant_role(username: str, body: RoleGrant, session: SessionDep) -> UserOut:
    service.grant_role(session, username=username, role=body.role, reason=body.reason)
    return _user_out(session, service.get_user(session, username))


@identity_router.delete("/users/{username}/roles/{role}", response_model=UserOut, dependencies=[allow("it_admin")],
                        summary="Revoke a role")
def revoke_role(username: str, role: str, session: SessionDep,
                reason: Annotated[str, Query(min_length=2, max_length=500)]) -> UserOut:
    service.revoke_role(session, username=username, role=role, reason=reason)
    return _user_out(session, service.get_user(session, username))


@identity_router.post("/users/{username}/disable", response_model=UserOut, dependencies=[allow("it_admin")],
                      summary="Disable a user (signs them out)")
def disable_user(username: str, body: StatusChange, session: SessionDep) -> UserOut:
    return _user_out(session, service.set_user_status(session, username=username, status="disabled", reason=body.reason))


@identity_router.post("/users/{username}/enable", response_model=UserOut, dependencies=[allow("it_admin")],
                      summary="Enable a disabled user")
def enable_user(username: str, body: StatusChange, session: SessionDep) -> UserOut:
    return _user_out(session, service.set_user_status(session, username=username, status="active", reason=body.reason))


@identity_router.post("/users/{username}/unlock", response_model=UserOut, dependencies=[allow("it_admin")],
                      summary="Lift a sign-in lockout")
def unlock_user(username: str, body: StatusChange, session: SessionDep) -> UserOut:
    return _user_out(session, service.unlock_user(session, username=username, reason=body.reason))


@identity_router.post("/clients", status_code=status.HTTP_201_CREATED, response_model=ClientCreated,
                      dependencies=[allow("it_admin")], summary="Register a system client; the secret is shown once")
def create_client(body: ClientCreate, session: SessionDep) -> ClientCreated:
    client, secret = service.create_client(session, client_id=body.client_id, name=body.name, role=body.role,
                                           region=body.region)
    return ClientCreated(client_id=client.client_id, name=client.name, role=client.role, region=client.region,
                         client_secret=secret)


@identity_router.get("/clients", response_model=list[ClientOut], dependencies=[allow("it_admin", "internal_auditor")],
                     summary="System clients, paged by client id (never a secret)",
                     description="`role`, `status` filter on the server; `after`: the last client id of the page "
                                 "before. `last_token_at` is the client's last token grant, when one was recorded.")
def list_clients(
    session: SessionDep,
    after: Annotated[str | None, Query(max_length=64, pattern=USERNAME_PATTERN)] = None,
    role: Annotated[str | None, Query(pattern="^(" + "|".join(sorted(service.CLIENT_ROLES)) + ")$")] = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(active|disabled)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ClientOut]:
    query = select(SystemClient).order_by(SystemClient.client_id).limit(limit)
    if after:
        query = query.where(SystemClient.client_id > after)
    if role:
        query = query.where(SystemClient.role == role)
    if status_:
        query = query.where(SystemClient.status == status_)
    return [ClientOut(client_id=c.client_id, name=c.name, roles=[c.role], region=c.region, status=c.status,
                      disabled=c.status != "active", created_at=c.created_at, created_by=c.created_by,
                      last_token_at=c.last_token_at) for c in session.execute(query).scalars()]


@identity_router.get("/conflict-rules", response_model=list[ConflictRuleOut],
                     dependencies=[allow("it_admin", "internal_auditor", "oversight_officer")],
                     summary="Incompatible-duty rules in force")
def conflict_rules(session: SessionDep) -> list[ConflictRuleOut]:
    rules = session.execute(select(RoleConflictRule).order_by(RoleConflictRule.code)).scalars()
    return [ConflictRuleOut(code=r.code, roles_a=r.roles_a.split(","), roles_b=r.roles_b.split(","),
                            message=r.message, basis=r.basis) for r in rules]


@identity_router.get("/reports/long-tenure", response_model=list[TenureOut],
                     dependencies=[allow("it_admin", "internal_auditor", "oversight_officer")],
                     summary="High-risk posts held for more than N years (001 第十六条)")
def long_tenure(session: SessionDep, years: Annotated[int, Query(ge=1, le=30)] = 5) -> list[TenureOut]:
    return [TenureOut(**row) for row in service.long_tenure_report(session, years=years)]
