"""No full citizen id or bank account in any log file. ``sifund up`` runs the platform as a user runs
it (uvicorn's own logging config: access log with query strings, error log, the services' structlog lines, httpx's
request log of calls between services); requests carry a citizen id and a bank card in query strings, paths and
bodies, refused or not; then every log file is read."""

import signal

import httpx

import pytest
from tests.support.registry import make_card, make_citizen_id
from tests.support.launcher import Launcher, _record, demo_credentials, launcher, sign_in  # noqa: F401 (fixture)

pytestmark = pytest.mark.once  # `sifund up` strips SIFUND_*: SQLite and the real clock whatever the run


CITIZEN_ID = make_citizen_id(7, area="110105")
CARD = make_card(4242)


def test_no_full_citizen_id_or_bank_account_in_the_logs(launcher: Launcher):
    launcher.start()
    _record(launcher, launcher.wait_ready())
    with httpx.Client(base_url=launcher.gateway_url, timeout=30, trust_env=False) as gateway:
        clerk = sign_in(gateway, *demo_credentials(launcher.data_dir)["demo_agency_clerk"])
        registered = gateway.post("/api/accounts/persons", headers=clerk, json={
            "citizen_id": CITIZEN_ID, "name": "王某", "region": "150102"})
        assert registered.status_code == 201, registered.text
        person_id = registered.json()["id"]
        found = gateway.get("/api/accounts/persons", params={"citizen_id": CITIZEN_ID}, headers=clerk)
        assert found.status_code == 200 and found.json()["items"], found.text
        assert gateway.get("/api/accounts/persons", params={"citizen_id": CITIZEN_ID}).status_code == 401
        account = gateway.post(f"/api/accounts/persons/{person_id}/bank-accounts", headers=clerk, json={
            "kind": "bank_account", "bank_name": "中国工商银行", "account_no": CARD, "holder_name": "王某"})
        assert account.status_code == 201, account.text
        gateway.get("/api/accounts/persons", params={"citizen_id": CARD}, headers=clerk)
        assert gateway.get(f"/api/accounts/persons/{CITIZEN_ID}", headers=clerk).status_code == 404
        gateway.get("/api/accounts/verification/enrolment", headers=clerk,
                    params={"citizen_id": CITIZEN_ID, "fund": "PEN_EMP", "period": 202401})
        gateway.get(f"/api/benefits/persons/{CARD}", headers=clerk)
    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.wait_exit(30) == 0

    logs = {path.name: path.read_text(errors="replace") for path in (launcher.data_dir / "logs").glob("*.log")}
    assert {"gateway.log", "accounts.log", "benefits.log"} <= set(logs)
    # The requests were logged (masked): the test would see a leak.
    assert "citizen_id=110105********" in logs["gateway.log"] and "citizen_id=110105********" in logs["accounts.log"]
    for name, text in logs.items():
        assert CITIZEN_ID not in text, f"full citizen id in {name}"
        assert CARD not in text, f"full bank account in {name}"
