"""services/kernel/metrics.py without a platform: who may read /metrics, the route label, counting after commit."""

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlmodel import Session

from services.kernel import metrics
from services.kernel.settings import Settings

pytestmark = pytest.mark.unit


def _scope(client: str, **headers: str) -> dict:
    return {"client": (client, 40000), "headers": [(k.lower().replace("_", "-").encode(), v.encode())
                                                  for k, v in headers.items()]}


def test_metrics_answer_direct_callers_from_the_allowed_networks_or_with_the_token():
    loopback_only = metrics.MetricsAccess(Settings())
    assert loopback_only.allows(_scope("127.0.0.1")) and loopback_only.allows(_scope("::1"))
    assert not loopback_only.allows(_scope("10.0.0.5"))
    # Through the gateway or another proxy: refused whatever the address.
    assert not loopback_only.allows(_scope("127.0.0.1", x_forwarded_for="203.0.113.9"))
    assert not loopback_only.allows(_scope("127.0.0.1", forwarded="for=203.0.113.9"))

    cluster = metrics.MetricsAccess(Settings(metrics_allowed_networks=["10.0.0.0/8"],
                                             metrics_token=SecretStr("s3cret-scrape")))
    assert cluster.allows(_scope("10.0.0.5")) and not cluster.allows(_scope("127.0.0.1"))
    assert cluster.allows(_scope("192.0.2.7", authorization="Bearer s3cret-scrape"))
    assert not cluster.allows(_scope("192.0.2.7", authorization="Bearer wrong"))
    assert not cluster.allows(_scope("10.0.0.5", authorization="Bearer s3cret-scrape", x_forwarded_for="1.2.3.4"))


def test_the_route_label_is_the_template_and_bounded():
    class Route:
        path = "/persons/{person_id}"

    assert metrics.route_template({"route": Route, "path": "/persons/p-1"}) == "/persons/{person_id}"
    assert metrics.route_template({"path": "/persons/110105199001011234"}) == metrics.UNMATCHED_ROUTE
    assert metrics.route_template({"path": "/api/accounts/persons/1"}) == "/api/accounts/{path:path}"
    assert metrics.route_template({"path": "/api/whatever/x"}) == metrics.UNMATCHED_ROUTE


def _paid() -> float:
    return metrics.PAYROLL_LINES.labels(outcome="paid")._value.get()


def test_business_counters_count_what_was_committed_only():
    engine = create_engine("sqlite://")
    before = _paid()
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        metrics.count_after_commit(session, metrics.PAYROLL_LINES, 2, outcome="paid")
        with pytest.raises(ValueError), session.begin_nested():  # a savepoint rolled back: its lines do not count
            metrics.count_after_commit(session, metrics.PAYROLL_LINES, 5, outcome="paid")
            raise ValueError
        with session.begin_nested():
            metrics.count_after_commit(session, metrics.PAYROLL_LINES, 1, outcome="paid")
        assert _paid() == before  # nothing before the commit
        session.commit()
    assert _paid() == before + 3
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        metrics.count_after_commit(session, metrics.PAYROLL_LINES, 7, outcome="paid")
        session.rollback()
        session.commit()
    assert _paid() == before + 3


def test_scrape_targets_for_file_based_discovery():
    assert metrics.scrape_targets([("accounts-2", "http://127.0.0.1:8020")]) == [
        {"targets": ["127.0.0.1:8020"], "labels": {"process": "accounts-2", "service": "accounts"}}]
