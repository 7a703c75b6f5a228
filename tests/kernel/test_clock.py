"""The kernel clock: pinned by the test session, still running, and the same in every process of a test run;
tokens are issued and judged on it."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.kernel import clock
from services.kernel.auth import TokenClaims, TokenVerifier, Unauthenticated, issue_token
from services.kernel.events import new_event_id, new_event_ids
from services.kernel.settings import Settings
from tests.support.apps import TEST_PRIVATE_KEY, TEST_PUBLIC_KEY

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

READ_OFFSET = "from services.kernel import clock; print(clock.anchor().total_seconds())"


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": ROOT}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def environment(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (clock.PIN, clock.ANCHORED_AT)}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def test_the_suite_runs_on_the_pinned_clock_which_keeps_running():
    pinned = datetime.fromisoformat(os.environ[clock.PIN])
    first = clock.utc_now()
    assert first >= pinned
    assert clock.china_today() == pinned.astimezone(clock.CHINA).date()
    assert clock.china_now().utcoffset() == timedelta(hours=8)

    # Not frozen: timeouts, token expiry and outbox timers need it to move on.
    for _ in range(1_000_000):
        if clock.utc_now() > first:
            break
    assert clock.utc_now() > first


def test_a_subprocess_reads_the_same_clock_as_the_test_session():
    before = clock.utc_now()
    child = python("from services.kernel import clock; print(clock.utc_now().isoformat())", dict(os.environ))
    after = clock.utc_now()
    assert child.returncode == 0, child.stderr
    assert before <= datetime.fromisoformat(child.stdout.strip()) <= after
    assert float(python(READ_OFFSET, dict(os.environ)).stdout) == clock.anchor().total_seconds()


def test_a_process_that_anchors_the_pin_exports_the_anchor_to_the_processes_it_starts():
    code = (
        "import os, subprocess, sys\n"
        "from services.kernel import clock\n"
        "print(clock.anchor().total_seconds())\n"
        "print(os.environ['SIFUND_TEST_CLOCK_ANCHORED_AT'])\n"
        f"print(subprocess.run([sys.executable, '-c', {READ_OFFSET!r}], capture_output=True, text=True).stdout)\n"
    )
    result = python(code, environment(SIFUND_TEST_CLOCK="2027-01-04T09:00:00+08:00"))
    assert result.returncode == 0, result.stderr
    own, anchored_at, grandchild = result.stdout.split()
    assert own == grandchild
    pinned = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)
    assert float(own) == (pinned - datetime.fromisoformat(anchored_at)).total_seconds()


def test_a_pin_without_a_zone_is_china_time_and_an_anchor_fixes_the_offset():
    env = environment(SIFUND_TEST_CLOCK="2027-12-31T16:00:00", SIFUND_TEST_CLOCK_ANCHORED_AT="2027-12-31T08:00:00Z")
    assert float(python(READ_OFFSET, env).stdout) == 0  # 16:00 in China is 08:00 UTC
    env[clock.ANCHORED_AT] = "2027-12-30T08:00:00+00:00"
    assert float(python(READ_OFFSET, env).stdout) == 86_400


def test_without_a_pin_the_clock_is_the_real_one():
    assert float(python(READ_OFFSET, environment()).stdout) == 0


def test_a_malformed_pin_is_refused_with_the_variable_named():
    result = python(READ_OFFSET, environment(SIFUND_TEST_CLOCK="next tuesday"))
    assert result.returncode != 0
    assert "SIFUND_TEST_CLOCK='next tuesday' is not an ISO instant" in result.stderr


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, jwt_private_key=TEST_PRIVATE_KEY, jwt_public_key=TEST_PUBLIC_KEY)


CLAIMS = TokenClaims(subject="u1", kind="user", roles=("agency_clerk",))


def test_tokens_are_issued_and_judged_on_the_platform_clock(settings):
    before = int(clock.utc_now().timestamp())
    token, lifetime = issue_token(settings, CLAIMS)
    after = int(clock.utc_now().timestamp()) + 1
    claims = TokenVerifier(settings).decode(token)
    assert before <= claims["iat"] <= after
    assert claims["exp"] == claims["iat"] + lifetime

    expired, _ = issue_token(settings, CLAIMS, lifetime=timedelta(seconds=-1))
    with pytest.raises(Unauthenticated, match="令牌已过期"):
        TokenVerifier(settings).decode(expired)


def test_a_token_not_yet_valid_on_the_platform_clock_is_refused(settings):
    now = clock.utc_now() + timedelta(hours=2)
    payload = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": "u1", "iat": now, "nbf": now,
               "exp": now + timedelta(minutes=5), "jti": "j1", "typ": "access", "roles": []}
    with pytest.raises(Unauthenticated, match="令牌无效"):
        TokenVerifier(settings).decode(jwt.encode(payload, TEST_PRIVATE_KEY, algorithm="EdDSA"))


@pytest.mark.parametrize("mint", [lambda n: [new_event_id() for _ in range(n)], new_event_ids],
                         ids=["one by one", "at once"])
def test_event_ids_carry_the_platform_clock_and_keep_their_order(mint):
    before = clock.utc_now() - timedelta(milliseconds=2)  # ids keep whole milliseconds of a whole-ms offset
    ids = mint(1_000)
    after = clock.utc_now() + timedelta(milliseconds=1)
    minted = {datetime.fromtimestamp((uuid.UUID(i).int >> 80) / 1000, UTC) for i in ids}
    assert before <= min(minted) and max(minted) <= after
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}
