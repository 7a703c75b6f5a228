"""The cache of verified access tokens (services/kernel/auth.VerifiedTokens) with real tokens from a real identity
store: hits and misses, expiry and not-yet-valid judged on the platform clock on every hit, the size bound, and
revocation answered exactly as without the cache."""

from datetime import timedelta

import pytest

from gateway.identity import service
from gateway.identity.admin import identity_session
from services.kernel import clock
from services.kernel.auth import TokenClaims, TokenVerifier, Unauthenticated, issue_token
from services.kernel.settings import Settings

GOOD_PASSWORD = "Correct-Horse-42"


@pytest.fixture
def identity_settings(tmp_path, database_urls) -> Settings:
    return Settings(data_dir=tmp_path / "var", gateway_database_url=database_urls["gateway"])


@pytest.fixture
def shift_clock(monkeypatch):  # noqa: ANN201
    """Move the platform clock (as SIFUND_TEST_CLOCK does) by an offset from real time."""
    def shift(offset: timedelta) -> None:
        monkeypatch.setattr(clock, "_offset", offset)
    shift(timedelta(0))
    return shift


def token(settings: Settings, subject: str = "u1", **kwargs) -> str:  # noqa: ANN003
    return issue_token(settings, TokenClaims(subject=subject, kind="user", roles=("agency_clerk",),
                                             region="150100"), **kwargs)[0]


def test_a_token_is_verified_once_then_served_from_the_cache(identity_settings, shift_clock):
    verifier = TokenVerifier(identity_settings)
    access = token(identity_settings)
    first = verifier.verify(access)
    again = verifier.verify(access)
    assert again == first and (first.id, first.roles, first.region) == ("u1", ("agency_clerk",), "150100")
    assert (verifier.cache.misses, verifier.cache.hits, len(verifier.cache)) == (1, 1, 1)

    # A token differing in one character of its signature is another key: verified, and refused.
    tampered = access[:-2] + ("A" if access[-2] != "A" else "B") + access[-1]
    with pytest.raises(Unauthenticated, match="令牌无效"):
        verifier.verify(tampered)
    assert len(verifier.cache) == 1  # refusals are not cached


def test_a_cached_token_expires_on_the_platform_clock(identity_settings, shift_clock):
    verifier = TokenVerifier(identity_settings)
    access = token(identity_settings, lifetime=timedelta(minutes=15))
    verifier.verify(access)
    shift_clock(timedelta(minutes=14))
    assert verifier.verify(access).id == "u1"  # still within its lifetime: a hit
    assert verifier.cache.hits == 1
    shift_clock(timedelta(minutes=15, seconds=1))
    with pytest.raises(Unauthenticated, match="令牌已过期"):
        verifier.verify(access)
    assert len(verifier.cache) == 0  # an expired token leaves the cache
    with pytest.raises(Unauthenticated, match="令牌已过期"):
        verifier.verify(access)  # and is refused by the full verification too


def test_a_cached_token_is_not_valid_before_its_time(identity_settings, shift_clock):
    verifier = TokenVerifier(identity_settings)
    access = token(identity_settings)
    verifier.verify(access)
    shift_clock(timedelta(hours=-1))  # the platform's clock set back before the token's iat
    with pytest.raises(Unauthenticated, match="令牌无效"):
        verifier.verify(access)
    shift_clock(timedelta(0))
    assert verifier.verify(access).id == "u1"


def test_the_cache_keeps_at_most_its_size_least_recently_used_out_first(tmp_path, database_urls, shift_clock):
    settings = Settings(data_dir=tmp_path / "var", gateway_database_url=database_urls["gateway"], token_cache_size=2)
    verifier = TokenVerifier(settings)
    a, b, c = (token(settings, subject) for subject in ("a", "b", "c"))
    verifier.verify(a)
    verifier.verify(b)
    verifier.verify(a)  # a is now the most recently used
    verifier.verify(c)  # b goes
    assert len(verifier.cache) == 2
    misses = verifier.cache.misses
    assert [verifier.verify(t).id for t in (a, c)] == ["a", "c"] and verifier.cache.misses == misses
    assert verifier.verify(b).id == "b" and verifier.cache.misses == misses + 1

    uncached = TokenVerifier(Settings(data_dir=tmp_path / "var", gateway_database_url=database_urls["gateway"],
                                      token_cache_size=0))
    assert uncached.verify(a).id == "a" and len(uncached.cache) == 0


def test_revocation_is_answered_as_without_the_cache(identity_settings, shift_clock):
    """Disabling a user (or changing a password, or reusing a spent refresh token) revokes the refresh tokens, checked in the database on every use and never
    cached; access tokens already issued stay valid until they expire, whether cached or not: the cache adds no
    window beyond the access token's lifetime."""
    cached, uncached = TokenVerifier(identity_settings), TokenVerifier(identity_settings.model_copy(
        update={"token_cache_size": 0}))
    with identity_session(identity_settings) as session:
        service.create_user(session, identity_settings, username="wang.li", display_name="王力", unit="市社保中心",
                            region="150100", password=GOOD_PASSWORD)
        service.grant_role(session, username="wang.li", role="agency_clerk", reason="任职文件")
        tokens = service.sign_in(session, identity_settings, username="wang.li", password=GOOD_PASSWORD)
        assert cached.verify(tokens.access_token).roles == ("agency_clerk",)
        with pytest.raises(Unauthenticated):
            cached.verify(tokens.refresh_token)  # a refresh token is never taken for an access token
        assert len(cached.cache) == 1

        service.set_user_status(session, username="wang.li", status="disabled", reason="离职")
        with pytest.raises(Unauthenticated):
            service.refresh(session, identity_settings, cached, refresh_token=tokens.refresh_token)
        # Same answer with and without the cache while the access token lives ...
        assert cached.verify(tokens.access_token) == uncached.verify(tokens.access_token)
        # ... and the same refusal once it has expired.
        shift_clock(timedelta(minutes=identity_settings.access_token_minutes, seconds=1))
        for verifier in (cached, uncached):
            with pytest.raises(Unauthenticated, match="令牌已过期"):
                verifier.verify(tokens.access_token)
