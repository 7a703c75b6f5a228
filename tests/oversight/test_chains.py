"""Audit-chain verification: oversight pulls /audit/verify, /audit/head and /audit/entries from a real
accounts service under uvicorn, keeps the last verified head, and opens a severe CHAIN case when the chain is broken
(an entry edited in the database), rewound (the tail cut off and the head row put back) or rewritten (every hash
recomputed after an edit: the chain verifies, but not the entry oversight saw)."""

import socket
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlmodel import Session

from services.kernel.audit import chain_hash
from services.kernel.db import make_engine
from services.kernel.models import AuditEntry, AuditHead
from services.kernel.service_app import create_service_app
from sifund import services as catalogue
from tests.support.apps import running_app
from tests.support.gateway import serve
from tests.support.oversight import register_employers


def free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def platform(make_settings, nats_server, **oversight_overrides):  # noqa: ANN001
    """accounts under uvicorn on loopback; oversight in-process, pointed at it (the other components at ports
    where nothing listens)."""
    settings = make_settings(nats_server.url)
    async with serve(create_service_app(catalogue.spec("accounts"), settings)) as accounts_url:
        oversight_settings = make_settings(nats_server.url, accounts_url=accounts_url, collection_url=free_url(),
                                           benefits_url=free_url(), port_base=free_port(), **oversight_overrides)
        async with running_app(create_service_app(catalogue.spec("oversight"), oversight_settings)) as oversight, \
                httpx.AsyncClient(base_url=accounts_url) as accounts:
            yield accounts, oversight, settings


async def verify(oversight, officer, components=("accounts",)) -> dict:  # noqa: ANN001
    response = await oversight.post("/chains/verify", headers=officer, json={"components": list(components)})
    assert response.status_code == 200, response.text
    return {c["component"]: c for c in response.json()}


def accounts_engine(database_urls):  # noqa: ANN001, ANN201
    return make_engine(database_urls["accounts"])


@pytest.fixture
def officer(auth):
    return auth("oversight_officer", subject="officer.wang")


async def test_a_clean_chain_verifies_and_an_edited_entry_opens_a_severe_case(make_settings, nats_server,
                                                                              database_urls, officer, auth):
    # 004 第24项: an edited audit entry is found and opens a case.
    async with platform(make_settings, nats_server) as (accounts, oversight, settings):
        await register_employers(accounts, settings, (1, 2, 3))
        checks = await verify(oversight, officer, ("accounts", "collection", "benefits", "gateway"))
        ok = checks["accounts"]
        assert (ok["status"], ok["credential"], ok["case_id"]) == ("ok", "service", None)
        assert ok["length"] == ok["head_seq"] >= 3
        assert {checks[c]["status"] for c in ("collection", "benefits", "gateway")} == {"unreachable"}
        checkpoints = {c["component"]: c for c in (await oversight.get("/chains", headers=officer)).json()}
        assert (checkpoints["accounts"]["seq"], checkpoints["accounts"]["hash"]) == (ok["length"], ok["head_hash"])
        assert checkpoints["gateway"]["seq"] == 0 and checkpoints["gateway"]["last_status"] == "unreachable"
        assert (await oversight.get("/cases", headers=officer)).json()["items"] == []  # unreachable: no case
        verified = ok["length"]

        engine = accounts_engine(database_urls)
        with Session(engine) as session:  # someone edits an audit entry in the database (后台修改)
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(detail='{"forged":true}'))
            session.commit()
        broken = (await verify(oversight, officer))["accounts"]
        assert (broken["status"], broken["first_bad_seq"]) == ("broken", 2)
        case = (await oversight.get(f"/cases/{broken['case_id']}", headers=officer)).json()
        assert (case["rule_id"], case["severity"], case["subject_type"], case["subject_id"], case["fact_key"],
                case["status"], case["unit"]) == ("CHAIN", "severe", "audit_chain", "accounts", "accounts:broken:2",
                                                  "issued", "社会保险经办机构信息数据部门")
        assert case["details"]["problem"] == "entry content does not match its hash"

        again = (await verify(oversight, officer))["accounts"]  # the same damage: the same case, counted
        assert again["case_id"] == broken["case_id"]
        assert (await oversight.get(f"/cases/{broken['case_id']}", headers=officer)).json()["occurrences"] == 2
        checkpoint = [c for c in (await oversight.get("/chains", headers=officer)).json()
                      if c["component"] == "accounts"][0]
        assert (checkpoint["seq"], checkpoint["last_status"], checkpoint["last_case_id"]) == \
            (verified, "broken", broken["case_id"])
        refusal = await oversight.post("/chains/accounts/rebaseline", headers=officer, json={"reason": "x"})
        assert refusal.status_code == 409 and refusal.json()["error"]["code"] == "CHAIN_BROKEN"
        history = (await oversight.get("/chains/checks", headers=auth("internal_auditor"),
                                       params={"component": "accounts"})).json()
        assert [c["status"] for c in history] == ["broken", "broken", "ok"]
        assert (await oversight.post("/chains/verify", headers=auth("internal_auditor"), json={})).status_code == 403
        engine.dispose()


async def test_a_rewound_chain_opens_a_severe_case_until_re_baselined(make_settings, nats_server, database_urls,
                                                                     officer):
    async with platform(make_settings, nats_server) as (accounts, oversight, settings):
        await register_employers(accounts, settings, (11, 12, 13, 14))
        ok = (await verify(oversight, officer))["accounts"]
        assert ok["status"] == "ok"
        seen_seq, seen_hash = ok["length"], ok["head_hash"]

        engine = accounts_engine(database_urls)
        with Session(engine) as session:  # cut the tail off and put the head back: the chain itself verifies
            keep = session.execute(select(AuditEntry).where(AuditEntry.seq == 2)).scalar_one()
            session.execute(text("DELETE FROM audit_log WHERE seq > 2"))
            session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=2, hash=keep.hash))
            session.commit()
        headers = {"Authorization": officer["Authorization"]}
        assert (await accounts.get("/audit/verify", headers=headers)).json()["ok"] is True
        rewound = (await verify(oversight, officer))["accounts"]
        assert (rewound["status"], rewound["head_seq"], rewound["baseline_seq"]) == ("rewound", 2, seen_seq)
        case = (await oversight.get(f"/cases/{rewound['case_id']}", headers=officer)).json()
        assert (case["rule_id"], case["severity"], case["fact_key"]) == \
            ("CHAIN", "severe", f"accounts:rewound:{seen_seq}:{seen_hash}")
        assert case["details"]["last_verified_seq"] == seen_seq and case["details"]["head_seq"] == 2

        # New entries on the rewound chain do not hide it: the entry oversight saw is still not there.
        await register_employers(accounts, settings, (15, 16, 17))
        later = (await verify(oversight, officer))["accounts"]
        assert later["status"] == "rewound" and later["case_id"] == rewound["case_id"]

        # After the case is handled, an officer accepts the current chain as the new baseline (audited).
        moved = await oversight.post("/chains/accounts/rebaseline", headers=officer,
                                     json={"reason": "已从备份核对，截断部分已另行归档，见案件处理"})
        assert moved.status_code == 200, moved.text
        assert (moved.json()["status"], moved.json()["baseline_seq"]) == ("rebaselined", seen_seq)
        assert (await verify(oversight, officer))["accounts"]["status"] == "ok"
        entries = (await oversight.get("/audit/entries", headers=officer,
                                       params={"entity_type": "chain_checkpoint"})).json()
        assert [(e["action"], e["entity_id"]) for e in entries] == [("chain.rebaseline", "accounts")]
        engine.dispose()


async def test_a_recomputed_chain_verifies_but_is_caught_as_rewritten(make_settings, nats_server, database_urls,
                                                                      officer):
    async with platform(make_settings, nats_server) as (accounts, oversight, settings):
        await register_employers(accounts, settings, (21, 22))
        ok = (await verify(oversight, officer))["accounts"]
        engine = accounts_engine(database_urls)
        with Session(engine) as session:  # edit entry 1 and recompute every hash after it
            entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
            entries[0].reason = "改写"
            prev = "0" * 64
            for entry in entries:
                entry.prev_hash = prev
                entry.hash = chain_hash(prev, entry)
                prev = entry.hash
                session.add(entry)
                session.flush()
            session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))
            session.commit()
        assert (await accounts.get("/audit/verify", headers=officer)).json()["ok"] is True
        rewritten = (await verify(oversight, officer))["accounts"]
        assert rewritten["status"] == "rewound" and rewritten["head_seq"] == ok["head_seq"]
        case = (await oversight.get(f"/cases/{rewritten['case_id']}", headers=officer)).json()
        assert case["details"]["hash_now"] != ok["head_hash"] and "改写" in case["details"]["problem"]
        engine.dispose()


async def test_without_the_signing_key_oversight_forwards_the_officers_token(make_settings, nats_server, officer):
    async with platform(make_settings, nats_server, jwt_private_key=None) as (accounts, oversight, settings):
        assert oversight.app.state.settings.jwt_private_key is None
        await register_employers(accounts, settings, (31,))
        check = (await verify(oversight, officer))["accounts"]
        assert (check["status"], check["credential"], check["checked_by"]) == ("ok", "caller", "officer.wang")
