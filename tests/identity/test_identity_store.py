"""Identity rules on a real gateway database: password policy, incompatible duties, lockout, tokens, tenure."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.identity import service
from gateway.identity.admin import create_demo, identity_session
from services.kernel import clock
from services.kernel.audit import verify_chain
from services.kernel.auth import TokenVerifier, Unauthenticated
from services.kernel.errors import DomainError
from services.kernel.models import AuditEntry
from services.kernel.settings import Settings

GOOD_PASSWORD = "Correct-Horse-42"


@pytest.fixture
def identity_settings(tmp_path, database_urls) -> Settings:
    return Settings(data_dir=tmp_path / "var", gateway_database_url=database_urls["gateway"], login_max_failures=3)


def make_user(session, settings, username="wang.li", *roles):  # noqa: ANN001
    service.create_user(session, settings, username=username, display_name="王力", unit="市社保中心", region="150100",
                        password=GOOD_PASSWORD)
    for role in roles:
        service.grant_role(session, username=username, role=role, reason="任职文件")


@pytest.mark.parametrize(
    ("password", "fragment"),
    [("Short-1a", "长度"), ("alllowercaseletters", "三类"), ("Wang.Li-Password-1", "用户名")],
)
def test_weak_passwords_are_refused(identity_settings, password, fragment):
    with identity_session(identity_settings) as session, pytest.raises(DomainError) as info:
        service.create_user(session, identity_settings, username="wang.li", display_name="王力", unit="u",
                            region="150100", password=password)
    assert info.value.code == "PASSWORD_TOO_WEAK" and fragment in info.value.message


@pytest.mark.parametrize(
    ("held", "requested", "rule"),
    [
        ("accountant", "cashier", "ACCOUNTANT_CASHIER"),
        ("cashier", "accountant", "ACCOUNTANT_CASHIER"),
        ("agency_clerk", "accountant", "BUSINESS_FINANCE"),
        ("agency_approver", "it_admin", "BUSINESS_IT"),
        ("internal_auditor", "oversight_officer", "OPERATING_OVERSIGHT"),
        ("oversight_officer", "agency_reviewer", "OPERATING_OVERSIGHT"),
    ],
)
def test_incompatible_duties_are_refused_naming_the_conflict(identity_settings, held, requested, rule):
    # 004 第3项、第22项；001 第十六条；003 二.3 (an operating role with oversight_officer).
    with identity_session(identity_settings) as session:
        make_user(session, identity_settings, "wang.li", held)
        with pytest.raises(DomainError) as info:
            service.grant_role(session, username="wang.li", role=requested, reason="调岗")
    assert info.value.code == "ROLE_CONFLICT" and info.value.status == 409
    assert info.value.details["rule"] == rule
    assert held in info.value.message and requested in info.value.message


def test_compatible_roles_and_revocation(identity_settings):
    with identity_session(identity_settings) as session:
        make_user(session, identity_settings, "wang.li", "agency_clerk", "agency_reviewer")
        service.revoke_role(session, username="wang.li", role="agency_clerk", reason="调岗")
        user = service.get_user(session, "wang.li")
        assert [a.role for a in service.active_roles(session, user.id)] == ["agency_reviewer"]
        # after giving up every business role, a finance role is allowed
        service.revoke_role(session, username="wang.li", role="agency_reviewer", reason="调岗")
        service.grant_role(session, username="wang.li", role="accountant", reason="调岗")
        with pytest.raises(DomainError) as info:
            service.grant_role(session, username="wang.li", role="accountant", reason="x")
        assert info.value.code == "ROLE_ALREADY_HELD"


def test_no_one_grants_a_role_to_themselves(identity_settings):
    with identity_session(identity_settings, actor="wang.li") as session:
        make_user(session, identity_settings, "wang.li")
        with pytest.raises(DomainError) as info:
            service.grant_role(session, username="wang.li", role="it_admin", reason="自己")
    assert info.value.code == "SELF_GRANT_FORBIDDEN"


def test_lockout_after_repeated_failures(identity_settings):
    with identity_session(identity_settings) as session:
        make_user(session, identity_settings, "wang.li", "agency_clerk")
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                service.sign_in(session, identity_settings, username="wang.li", password="wrong-password-1A")
        # Locked, even the right password is answered as a wrong one (nothing tells a guesser
        # the user name exists), and the refusal is audited.
        with pytest.raises(Unauthenticated) as locked:
            service.sign_in(session, identity_settings, username="wang.li", password=GOOD_PASSWORD)
        with pytest.raises(Unauthenticated) as unknown:
            service.sign_in(session, identity_settings, username="nobody", password=GOOD_PASSWORD)
        assert (locked.value.status_code, locked.value.detail, locked.value.headers) == (
            unknown.value.status_code, unknown.value.detail, unknown.value.headers)
        refused = session.execute(select(AuditEntry).where(AuditEntry.action == "auth.refused",
                                                           AuditEntry.entity_id == "wang.li")).scalars().all()
        assert [json.loads(e.detail)["why"] for e in refused] == ["locked"]
        service.unlock_user(session, username="wang.li", reason="本人核实")
        tokens = service.sign_in(session, identity_settings, username="wang.li", password=GOOD_PASSWORD)
        assert tokens.roles == ("agency_clerk",)
        with pytest.raises(Unauthenticated):
            service.sign_in(session, identity_settings, username="nobody", password=GOOD_PASSWORD)


def test_disabled_user_cannot_sign_in(identity_settings):
    with identity_session(identity_settings) as session:
        make_user(session, identity_settings, "wang.li", "agency_clerk")
        service.set_user_status(session, username="wang.li", status="disabled", reason="离职")
        with pytest.raises(Unauthenticated) as disabled:
            service.sign_in(session, identity_settings, username="wang.li", password=GOOD_PASSWORD)
        with pytest.raises(Unauthenticated) as unknown:
            service.sign_in(session, identity_settings, username="nobody", password=GOOD_PASSWORD)
        # Nothing tells a guesser that the user name exists: answered as an unknown user.
        assert (disabled.value.status_code, disabled.value.detail, disabled.value.headers) == (
            unknown.value.status_code, unknown.value.detail, unknown.value.headers)
        refused = session.execute(select(AuditEntry).where(AuditEntry.action == "auth.refused",
                                                           AuditEntry.entity_id == "wang.li")).scalars().all()
        assert [json.loads(e.detail)["why"] for e in refused] == ["disabled"]


def test_tokens_carry_roles_and_region_and_refresh_rotates(identity_settings):
    verifier = TokenVerifier(identity_settings)
    with identity_session(identity_settings) as session:
        make_user(session, identity_settings, "wang.li", "agency_clerk")
        tokens = service.sign_in(session, identity_settings, username="wang.li", password=GOOD_PASSWORD)
        actor = verifier.verify(tokens.access_token)
        assert (actor.id, actor.roles, actor.region, actor.unit) == ("wang.li", ("agency_clerk",), "150100", "市社保中心")
        with pytest.raises(Unauthenticated):
            verifier.verify(tokens.refresh_token)  # a refresh token is not an access token
        rotated = service.refresh(session, identity_settings, verifier, refresh_token=tokens.refresh_token)
        assert verifier.verify(rotated.access_token).id == "wang.li"
        # the first refresh token was spent: presenting it again revokes the whole family
        with pytest.raises(Unauthenticated):
            service.refresh(session, identity_settings, verifier, refresh_token=tokens.refresh_token)
        with pytest.raises(Unauthenticated):
            service.refresh(session, identity_settings, verifier, refresh_token=rotated.refresh_token)


def test_client_credentials(identity_settings):
    verifier = TokenVerifier(identity_settings)
    with identity_session(identity_settings) as session:
        client, secret = service.create_client(session, client_id="tax_bureau", name="税务局", role="tax_system",
                                               region="150100")
        tokens = service.sign_in_client(session, identity_settings, client_id="tax_bureau", secret=secret)
        assert verifier.verify(tokens.access_token).roles == ("tax_system",)
        assert tokens.refresh_token is None
        with pytest.raises(Unauthenticated):
            service.sign_in_client(session, identity_settings, client_id="tax_bureau", secret=secret + "x")
        with pytest.raises(DomainError):
            service.create_client(session, client_id="bad_role", name="x", role="agency_clerk", region="150100")


def test_long_tenure_report_lists_high_risk_posts_over_five_years(identity_settings):
    # 001 第十六条: tenure on a high-risk post.
    with identity_session(identity_settings) as session:
        make_user(session, identity_settings, "old.hand")
        make_user(session, identity_settings, "new.hand")
        make_user(session, identity_settings, "old.clerk")
        now = clock.utc_now()
        service.grant_role(session, username="old.hand", role="cashier", reason="x", granted_at=now - timedelta(days=6 * 365))
        service.grant_role(session, username="new.hand", role="cashier", reason="x", granted_at=now - timedelta(days=4 * 365))
        service.grant_role(session, username="old.clerk", role="agency_clerk", reason="x",
                           granted_at=now - timedelta(days=9 * 365))  # not a high-risk post
        report = service.long_tenure_report(session, years=5)
    assert [(r["username"], r["role"]) for r in report] == [("old.hand", "cashier")]
    assert report[0]["tenure_days"] >= 6 * 365


def test_demo_creates_every_role_and_every_change_is_audited(identity_settings):
    created = create_demo(identity_settings)
    roles = {c["role"] for c in created}
    assert {"agency_clerk", "accountant", "cashier", "oversight_officer", "tax_system", "bank_system"} <= roles
    assert create_demo(identity_settings) == []  # idempotent
    with identity_session(identity_settings) as session:
        engine = session.get_bind()
        tokens = service.sign_in(session, identity_settings, username="demo_cashier",
                                 password=next(c["password"] for c in created if c["username"] == "demo_cashier"))
        assert tokens.roles == ("cashier",)
    result = verify_chain(engine)
    users = sum(1 for c in created if c["kind"] == "user")
    # create + grant per user, create per client, and the sign-in
    assert result.ok and result.length == users * 2 + (len(created) - users) + 1
