"""Cases: idempotent opening, every step of the workflow of OVERSIGHT.md and every refusal, class-4
follow-up confirmed only by benefits' events on a real nats-server, RecoveryEscalated opening a class-5 candidate,
overdue list and escalation, the rectification ledger and the dishonesty list (001 第十二条、第十三条、第二十九条、第三十条)."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import nats
import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from services.contracts.benefits import (
    EntitlementResumed,
    EntitlementSuspended,
    RecoveryEscalated,
    RecoveryNoticeIssued,
)
from services.contracts.oversight import CaseEscalated, CaseOpened, CaseTransitioned
from services.kernel import clock, context
from services.kernel.auth import TokenClaims, issue_token
from services.kernel.db import make_engine
from services.kernel.errors import DomainError
from services.kernel.events import EventActor, build_envelope
from services.kernel.migrations import upgrade_database
from services.kernel.models import AuditEntry, OutboxMessage
from services.oversight import models
from services.kernel.clock import china_today as today
from services.oversight.cases import service
from services.oversight.cases.models import BenefitSignal, Case, CaseHistory, CaseOccurrence
from services.oversight.cases.service import open_case
from tests.support.e2e import wait_for

UNIT = "呼和浩特市新城区社会保险事业管理局"
REGION = "150102"


@pytest.fixture
def officer(auth):
    return auth("oversight_officer", subject="officer.wang")


@pytest.fixture
def officer2(auth):
    return auth("oversight_officer", subject="officer.li")


@pytest.fixture
def unit_staff(auth):
    """A reviewer of the responsible unit (a district agency; region 150102)."""
    return auth("agency_reviewer", subject="reviewer.zhao", region=REGION, unit=UNIT)


@pytest.fixture
def other_unit(auth):
    return auth("agency_reviewer", subject="reviewer.qian", region="150103", unit="回民区社保局")


def case_body(n: int = 1, **overrides) -> dict:
    body = {
        "rule_id": "S01", "fact_key": f"S01:person-{n}:202601", "severity": "medium", "subject_type": "person",
        "subject_id": f"person-{n}", "title": "死亡后仍发放待遇", "details": {"period": 202601, "amount_fen": 320000},
        "seed_clause": "001 第二十七条", "unit": UNIT, "region": REGION, "deadline_days": 15,
    }
    body.update(overrides)
    return body


async def opened(client, headers, **overrides) -> dict:  # noqa: ANN001
    response = await client.post("/cases", headers=headers, json=case_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def step(client, headers, case_id: str, action: str, body: dict | None = None,  # noqa: ANN001
               expect: int = 200) -> dict:
    response = await client.post(f"/cases/{case_id}/{action}", headers=headers, json=body or {})
    assert response.status_code == expect, response.text
    return response.json()


def refusal(response, status: int, code: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text


def outbox_types(client) -> list[str]:  # noqa: ANN001
    with Session(client.app.state.engine) as session:
        return list(session.execute(select(OutboxMessage.event_type).order_by(OutboxMessage.seq)).scalars())


def outbox_payloads(client, event_type: str) -> list[dict]:  # noqa: ANN001
    with Session(client.app.state.engine) as session:
        rows = session.execute(select(OutboxMessage.envelope).where(OutboxMessage.event_type == event_type)
                               .order_by(OutboxMessage.seq)).scalars()
        return [json.loads(r)["data"] for r in rows]


async def publish(nats_url: str, payload, source: str = "benefits") -> str:  # noqa: ANN001
    envelope = build_envelope(payload, source=source, subject="x", actor=EventActor(id="system:benefits"),
                              correlation_id=None, causation_id=None)
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()
    return envelope.id


# -- opening ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["oversight"])
    upgrade_database(engine, "oversight", models.metadata)
    yield engine
    engine.dispose()


def test_open_case_is_idempotent_on_rule_and_fact(engine):
    args = dict(rule_id="S05", severity="high", subject_type="person", subject_id="p1", fact_key="S05:p1:202603",
                title="领取失业金期间有在职缴费", details={"period": 202603}, seed_clause="000 三(九)", unit=UNIT,
                deadline_days=10, region=REGION)
    with context.trace(actor=context.Actor(id="system:rules", role="system")), Session(engine) as session:
        first = open_case(session, **args)
        again = open_case(session, **args)  # the same fact reported again: counted, not a second case
        changed = open_case(session, **{**args, "details": {"period": 202603, "months": 2}})
        other = open_case(session, **{**args, "fact_key": "S05:p1:202604"})
        session.commit()
        assert first.created and not again.created and not changed.created and other.created
        assert first.case.id == again.case.id == changed.case.id != other.case.id
        case = session.get(Case, first.case.id)
        assert case.occurrences == 3 and json.loads(case.details) == {"period": 202603, "months": 2}
        assert case.person_id == "p1" and case.status == "issued" and case.opened_by == "system:rules"
        assert case.deadline == today() + timedelta(days=10) == case.current_deadline
        occurrences = session.execute(select(CaseOccurrence.details).where(CaseOccurrence.case_id == case.id)
                                      .order_by(CaseOccurrence.id)).scalars().all()
        assert [json.loads(d) for d in occurrences] == [{"period": 202603}, {"period": 202603, "months": 2}]
        count = session.execute(select(func.count()).select_from(Case)).scalar_one()
        assert count == 2
        opened_events = session.execute(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.event_type == CaseOpened.event_type)).scalar_one()
        assert opened_events == 2  # one per case, none for a repeat
        audit = session.execute(select(AuditEntry.action).where(AuditEntry.entity_id == case.id)
                                .order_by(AuditEntry.seq)).scalars().all()
        assert audit == ["case.open", "case.reported_again"]
        with pytest.raises(DomainError) as bad:
            open_case(session, **{**args, "fact_key": "x", "severity": "catastrophic"})
        assert bad.value.code == "INVALID_SEVERITY"



def _blocked_on_a_lock(engine) -> bool:
    """PostgreSQL: is some session of this database waiting for a lock? (SQLite's waiter cannot be seen: there the
    second opener simply starts after the first commits.)"""
    if engine.dialect.name != "postgresql":
        return True
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND wait_event_type = 'Lock'")).scalar_one() > 0


def test_a_second_opener_of_the_same_fact_waits_and_counts_an_occurrence_on_the_first_case(engine):
    # Two consumers (or a sweep and an event) find the same fact at once: the second one's insert waits for the
    # first transaction (INSERT … ON CONFLICT on PostgreSQL, the write lock on SQLite), then finds its case.
    args = dict(rule_id="S10", severity="low", subject_type="employer", subject_id="e1", fact_key="S10:clamp:e1:1",
                title="申报缴费基数超出上下限", details={"lines": 1}, seed_clause="003 三.6", unit=UNIT, region=REGION)

    def second_opener():
        with context.trace(actor=context.Actor(id="system:oversight", role="system")), Session(engine) as session:
            opening = open_case(session, **{**args, "details": {"lines": 2}})
            session.commit()
            return opening.created, opening.case.id

    with context.trace(actor=context.Actor(id="system:oversight", role="system")), Session(engine) as session, \
            ThreadPoolExecutor(1) as pool:
        first = open_case(session, **args)
        first_id = first.case.id
        second = pool.submit(second_opener)
        deadline = time.monotonic() + 30
        while not _blocked_on_a_lock(engine) and not second.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        session.commit()
        created, case_id = second.result(timeout=60)
    assert first.created and not created and case_id == first_id
    with Session(engine) as session:
        case = session.get(Case, case_id)
        assert case.occurrences == 2 and json.loads(case.details) == {"lines": 2}
        assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.event_type == CaseOpened.event_type)).scalar_one() == 1
        assert session.execute(select(AuditEntry.action).where(AuditEntry.entity_id == case_id)
                               .order_by(AuditEntry.seq)).scalars().all() == ["case.open", "case.reported_again"]

# -- the workflow ----------------------------------------------------------------------------------------------------


async def test_a_case_goes_from_issued_to_closed_with_every_step_kept(start_service, officer, officer2, unit_staff,
                                                                      other_unit):
    # 001 第二十九条(一): class 1, closed once the data is corrected and an officer verifies it.
    async with start_service("oversight") as oversight:
        created = await oversight.post("/cases", headers=officer, json=case_body(1))
        assert created.status_code == 201 and created.json()["created"] is True
        case = created.json()
        assert (case["status"], case["unit"], case["deadline"]) == \
            ("issued", UNIT, (today() + timedelta(days=15)).isoformat())
        repeat = await oversight.post("/cases", headers=officer, json=case_body(1))
        assert repeat.status_code == 200 and repeat.json()["created"] is False and repeat.json()["id"] == case["id"]
        assert repeat.json()["occurrences"] == 2
        cid = case["id"]

        # The unit reads what was issued to it; another unit neither sees nor reads it.
        mine = (await oversight.get("/cases", headers=unit_staff)).json()["items"]
        assert [c["id"] for c in mine] == [cid]
        assert (await oversight.get("/cases", headers=other_unit)).json()["items"] == []
        refusal(await oversight.get(f"/cases/{cid}", headers=other_unit), 403, "CASE_NOT_ISSUED_TO_YOU")
        assert (await oversight.get(f"/cases/{cid}", headers=unit_staff)).status_code == 200
        # The unit reports; it does not move the case.
        refusal(await oversight.post(f"/cases/{cid}/investigate", headers=unit_staff, json={}), 403, "FORBIDDEN")

        await step(oversight, officer, cid, "investigate", {"note": "调取死亡火化信息"})
        refusal(await oversight.post(f"/cases/{cid}/investigate", headers=officer, json={}), 409,
                "INVALID_TRANSITION")
        classified = await step(oversight, officer, cid, "classify",
                                {"class_code": 1, "finding": "后台修改导致死亡人员状态未同步"})
        assert classified["status"] == "classified" and classified["class_name"] == "经办操作或后台修改导致数据错误"
        assert classified["required_follow_up"] == [
            {"any_of": ["data_corrected"], "satisfied": False, "by_event_only": False}]

        due = (today() + timedelta(days=20)).isoformat()
        rectifying = await step(oversight, officer, cid, "rectification",
                                {"measures": "恢复人员状态，追回多发待遇", "due_date": due, "responsible": "张科长"},
                                expect=201)
        assert rectifying["status"] == "rectifying" and rectifying["current_deadline"] == due
        assert rectifying["rectification"]["status"] == "open"

        # Not closable until the class's follow-up is recorded.
        incomplete = await oversight.post(f"/cases/{cid}/close", headers=officer,
                                          json={"verification_note": "已核实"})
        refusal(incomplete, 409, "FOLLOW_UP_INCOMPLETE")
        assert incomplete.json()["error"]["details"] == {"missing": [["data_corrected"]]}

        # The unit submits its follow-up and rectification evidence; another unit cannot.
        follow = await oversight.post(f"/cases/{cid}/follow-ups", headers=unit_staff, json={
            "kind": "data_corrected", "evidence": "变更单 BG-2026-001 已复核", "reference": "BG-2026-001"})
        assert follow.status_code == 201, follow.text
        assert follow.json()["source"] == "recorded" and follow.json()["recorded_by"] == "reviewer.zhao"
        refusal(await oversight.post(f"/cases/{cid}/follow-ups", headers=other_unit, json={
            "kind": "data_corrected", "evidence": "x"}), 403, "CASE_NOT_ISSUED_TO_YOU")
        evidence = await oversight.post(f"/cases/{cid}/rectification/evidence", headers=unit_staff,
                                        json={"note": "已追回 3 200 元", "document_ref": "HK-01"})
        assert evidence.status_code == 201, evidence.text

        closed = await step(oversight, officer2, cid, "close", {"verification_note": "核查变更单与追回凭证，属实"})
        assert (closed["status"], closed["closed_by"]) == ("closed", "officer.li")
        assert closed["rectification"]["status"] == "closed" and closed["rectification"]["closed_by"] == "officer.li"
        assert [e["note"] for e in closed["rectification"]["evidence"]] == ["已追回 3 200 元"]
        assert [(h["action"], h["from_status"], h["to_status"], h["actor_id"]) for h in closed["history"]] == [
            ("open", None, "issued", "officer.wang"),
            ("investigate", "issued", "investigating", "officer.wang"),
            ("classify", "investigating", "classified", "officer.wang"),
            ("rectify", "classified", "rectifying", "officer.wang"),
            ("follow_up", "rectifying", "rectifying", "reviewer.zhao"),
            ("rectification_evidence", "rectifying", "rectifying", "reviewer.zhao"),
            ("close", "rectifying", "closed", "officer.li"),
        ]
        assert all(h["at"] for h in closed["history"])
        refusal(await oversight.post(f"/cases/{cid}/investigate", headers=officer, json={}), 409,
                "INVALID_TRANSITION")

        # The same steps are in the audit chain, and the chain holds.
        auditor = {"Authorization": officer["Authorization"]}
        entries = (await oversight.get("/audit/entries", headers=auditor,
                                       params={"entity_type": "oversight_case", "entity_id": cid})).json()
        assert [e["action"] for e in entries] == [f"case.{h['action']}" for h in closed["history"]]
        assert (await oversight.get("/audit/verify", headers=auditor)).json()["ok"] is True
        transitions = [(p["action"], p["to_status"]) for p in outbox_payloads(oversight, CaseTransitioned.event_type)]
        assert transitions == [("investigate", "investigating"), ("classify", "classified"),
                               ("rectify", "rectifying"), ("close", "closed")]

        ledger = (await oversight.get("/rectification-ledger", headers=unit_staff)).json()["items"]
        assert [(e["case_id"], e["status"], e["measures"]) for e in ledger] == [(cid, "closed", "恢复人员状态，追回多发待遇")]
        assert (await oversight.get("/rectification-ledger", headers=other_unit)).json()["items"] == []


async def test_refusals_of_the_workflow(start_service, officer, unit_staff):
    # 001 第二十九条(二)、第二十九条(三): class 2; class 3 notifies the employer before any referral.
    async with start_service("oversight") as oversight:
        cid = (await opened(oversight, officer, n=2))["id"]
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer,
                                     json={"class_code": 1, "finding": "x"}), 409, "INVALID_TRANSITION")
        refusal(await oversight.post(f"/cases/{cid}/rectification", headers=officer, json={
            "measures": "x", "due_date": today().isoformat()}), 409, "INVALID_TRANSITION")
        refusal(await oversight.post(f"/cases/{cid}/close", headers=officer, json={"verification_note": "x"}), 409,
                "INVALID_TRANSITION")
        refusal(await oversight.post(f"/cases/{cid}/follow-ups", headers=officer, json={
            "kind": "data_corrected", "evidence": "x"}), 409, "NOT_CLASSIFIED")
        await step(oversight, officer, cid, "investigate")
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer,
                                     json={"class_code": 7, "finding": "x"}), 422, "INVALID_CASE_CLASS")
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer,
                                     json={"class_code": 0, "finding": "x"}), 422, "INVALID_CASE_CLASS")
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer,
                                     json={"class_code": "fraud", "finding": "x"}), 422, "VALIDATION_ERROR")
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer, json={"class_code": 2}), 422,
                "VALIDATION_ERROR")  # the finding is required
        # Class 3 needs an employer: this case is about a person.
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer,
                                     json={"class_code": 3, "finding": "x"}), 422, "EMPLOYER_REQUIRED")
        await step(oversight, officer, cid, "classify", {"class_code": 2, "finding": "数据抽取错误"})
        refusal(await oversight.post(f"/cases/{cid}/classify", headers=officer,
                                     json={"class_code": 1, "finding": "x"}), 422, "REASON_REQUIRED")
        refusal(await oversight.post(f"/cases/{cid}/follow-ups", headers=officer, json={
            "kind": "data_corrected", "evidence": "x"}), 422, "FOLLOW_UP_NOT_FOR_CLASS")
        refusal(await oversight.post(f"/cases/{cid}/follow-ups", headers=officer, json={
            "kind": "made_up", "evidence": "x"}), 422, "VALIDATION_ERROR")
        refusal(await oversight.post(f"/cases/{cid}/rectification", headers=officer, json={
            "measures": "x", "due_date": (today() - timedelta(days=1)).isoformat()}), 422, "DUE_DATE_IN_PAST")
        refusal(await oversight.post(f"/cases/{cid}/rectification/evidence", headers=unit_staff,
                                     json={"note": "x"}), 409, "NOT_RECTIFYING")
        reclassified = await step(oversight, officer, cid, "classify",
                                  {"class_code": 1, "finding": "后台修改", "reason": "复核后改为经办错误"})
        assert reclassified["class_code"] == 1 and reclassified["history"][-1]["reason"] == "复核后改为经办错误"
        refusal(await oversight.get("/cases/nope", headers=officer), 404, "CASE_NOT_FOUND")
        refusal(await oversight.post("/cases", headers=officer, json=case_body(3, severity="catastrophic")), 422,
                "VALIDATION_ERROR")
        refusal(await oversight.post("/cases", headers=unit_staff, json=case_body(3)), 403, "FORBIDDEN")

        # Class 3: notify the employer first, then refer (or the employer registers).
        employer_case = (await opened(oversight, officer, n=3, rule_id="S11", fact_key="S11:e-1",
                                      subject_type="employer", subject_id="e-1"))["id"]
        await step(oversight, officer, employer_case, "investigate")
        classified = await step(oversight, officer, employer_case, "classify",
                                {"class_code": 3, "finding": "成立 45 天未办理社保登记"})
        assert classified["employer_id"] == "e-1"
        refusal(await oversight.post(f"/cases/{employer_case}/follow-ups", headers=officer, json={
            "kind": "referred_to_labour_inspection", "evidence": "移送函"}), 409, "NOTIFY_FIRST")
        await step(oversight, unit_staff, employer_case, "follow-ups",
                   {"kind": "employer_notified", "evidence": "短信告知 2026-01-05"}, expect=201)
        await step(oversight, officer, employer_case, "rectification",
                   {"measures": "督促登记", "due_date": today().isoformat()}, expect=201)
        refusal(await oversight.post(f"/cases/{employer_case}/close", headers=officer,
                                     json={"verification_note": "x"}), 409, "FOLLOW_UP_INCOMPLETE")
        await step(oversight, officer, employer_case, "follow-ups",
                   {"kind": "referred_to_labour_inspection", "evidence": "移送函 JC-7"}, expect=201)
        assert (await step(oversight, officer, employer_case, "close",
                           {"verification_note": "移送回执已核"}))["status"] == "closed"


async def test_dismissal_needs_a_reason_and_a_second_officer(start_service, officer, officer2):
    async with start_service("oversight") as oversight:
        cid = (await opened(oversight, officer, n=4))["id"]
        refusal(await oversight.post(f"/cases/{cid}/dismissal", headers=officer, json={}), 422, "VALIDATION_ERROR")
        await step(oversight, officer, cid, "dismissal", {"reason": "死亡信息错误，民政已更正"})
        refusal(await oversight.post(f"/cases/{cid}/dismissal", headers=officer2, json={"reason": "x"}), 409,
                "DISMISSAL_PENDING")
        refusal(await oversight.post(f"/cases/{cid}/investigate", headers=officer2, json={}), 409,
                "DISMISSAL_PENDING")
        refusal(await oversight.post(f"/cases/{cid}/dismissal/decision", headers=officer, json={"approve": True}),
                403, "SAME_OFFICER")
        refusal(await oversight.post(f"/cases/{cid}/dismissal/decision", headers=officer2, json={"approve": False}),
                422, "REASON_REQUIRED")
        rejected = await step(oversight, officer2, cid, "dismissal/decision",
                              {"approve": False, "reason": "民政更正函未附"})
        assert rejected["status"] == "issued" and rejected["dismissal_proposed_by"] is None
        refusal(await oversight.post(f"/cases/{cid}/dismissal/decision", headers=officer2, json={"approve": True}),
                409, "NO_DISMISSAL_PENDING")
        await step(oversight, officer, cid, "investigate")
        await step(oversight, officer2, cid, "dismissal", {"reason": "已附民政更正函"})
        dismissed = await step(oversight, officer, cid, "dismissal/decision", {"approve": True, "reason": "同意"})
        assert (dismissed["status"], dismissed["dismissed_by"], dismissed["dismissal_proposed_by"]) == \
            ("dismissed", "officer.wang", "officer.li")
        assert [h["action"] for h in dismissed["history"]] == [
            "open", "propose_dismissal", "reject_dismissal", "investigate", "propose_dismissal", "confirm_dismissal"]
        assert dismissed["history"][1]["reason"] == "死亡信息错误，民政已更正"
        refusal(await oversight.post(f"/cases/{cid}/investigate", headers=officer, json={}), 409,
                "INVALID_TRANSITION")
        # A case under rectification is a confirmed problem: it can no longer be dismissed.
        other = (await opened(oversight, officer, n=5))["id"]
        await step(oversight, officer, other, "investigate")
        await step(oversight, officer, other, "classify", {"class_code": 1, "finding": "x"})
        await step(oversight, officer, other, "rectification", {"measures": "x", "due_date": today().isoformat()},
                   expect=201)
        refusal(await oversight.post(f"/cases/{other}/dismissal", headers=officer2, json={"reason": "x"}), 409,
                "INVALID_TRANSITION")


async def test_a_system_client_with_the_officer_role_neither_dismisses_nor_closes(start_service, officer, settings):
    """The scheduler's client holds oversight_officer to run sweeps; the judgement steps are for staff in person."""
    token, _ = issue_token(settings, TokenClaims(subject="oversight_scheduler", kind="client",
                                                 roles=("oversight_officer",), name="监督定时任务"))
    machine = {"Authorization": f"Bearer {token}"}
    async with start_service("oversight") as oversight:
        cid = (await opened(oversight, officer, n=6))["id"]
        refusal(await oversight.post(f"/cases/{cid}/dismissal", headers=machine, json={"reason": "误报"}), 403,
                "OFFICER_IN_PERSON_REQUIRED")
        await step(oversight, officer, cid, "dismissal", {"reason": "误报"})
        refusal(await oversight.post(f"/cases/{cid}/dismissal/decision", headers=machine, json={"approve": True}),
                403, "OFFICER_IN_PERSON_REQUIRED")
        refusal(await oversight.post(f"/cases/{cid}/close", headers=machine, json={"verification_note": "x"}), 403,
                "OFFICER_IN_PERSON_REQUIRED")


# -- class 4: confirmed by benefits' events ---------------------------------------------------------------------------


async def test_class_4_is_closed_only_after_suspension_and_recovery_notice_events(start_service, settings, officer):
    person = "0190a000-0000-7000-8000-00000000p004"
    async with start_service("oversight") as oversight:
        assert "BENEFITS" in oversight.app.state.consumers
        assert await oversight.app.state.bus.wait_ready(timeout=20)
        early = (await opened(oversight, officer, n=40, subject_id=person, fact_key="S01:early"))["id"]
        cid = (await opened(oversight, officer, n=41, subject_id=person, fact_key="S01:main"))["id"]
        await step(oversight, officer, cid, "investigate")
        classified = await step(oversight, officer, cid, "classify",
                                {"class_code": 4, "finding": "死亡后冒领 2 个月", "amount_fen": 640000})
        assert [r["by_event_only"] for r in classified["required_follow_up"]] == [True, True]
        await step(oversight, officer, cid, "rectification", {"measures": "停发并追回", "due_date": today().isoformat()},
                   expect=201)

        async def close(expect: int = 409) -> dict:
            response = await oversight.post(f"/cases/{cid}/close", headers=officer,
                                            json={"verification_note": "核实"})
            assert response.status_code == expect, response.text
            return response.json()

        assert (await close())["error"]["details"]["missing"] == [["benefit_suspended"], ["recovery_notice_issued"]]
        # Nobody can enter the benefits follow-up by hand.
        refusal(await oversight.post(f"/cases/{cid}/follow-ups", headers=officer, json={
            "kind": "benefit_suspended", "evidence": "已停发"}), 422, "REFERENCE_REQUIRED")
        refusal(await oversight.post(f"/cases/{cid}/follow-ups", headers=officer, json={
            "kind": "benefit_suspended", "evidence": "已停发", "reference": "ent-1"}), 409, "NO_BENEFIT_EVENT")

        async def follow_ups(case_id: str = cid) -> list:
            return (await oversight.get(f"/cases/{case_id}", headers=officer)).json()["follow_ups"]

        suspended_id = await publish(settings.nats_server_url, EntitlementSuspended(
            entitlement_id="ent-1", person_id=person, reason="deceased", since=today()))
        await wait_for(lambda: _has(follow_ups, "benefit_suspended"), timeout=20)
        assert (await close())["error"]["details"]["missing"] == [["recovery_notice_issued"]]
        # A notice for someone else confirms nothing.
        await publish(settings.nats_server_url, RecoveryNoticeIssued(
            notice_id="N-other", person_id="someone-else", amount_fen=100, deadline=today(), overpayment_ids=[]))
        notice_id = await publish(settings.nats_server_url, RecoveryNoticeIssued(
            notice_id="N-1", person_id=person, amount_fen=640000, deadline=today() + timedelta(days=30),
            overpayment_ids=["op-1"]))
        await wait_for(lambda: _has(follow_ups, "recovery_notice_issued"), timeout=20)
        rows = await follow_ups()
        assert [(f["kind"], f["source"], f["reference"], f["event_id"]) for f in rows] == [
            ("benefit_suspended", "event", "ent-1", suspended_id),
            ("recovery_notice_issued", "event", "N-1", notice_id)]

        # Benefits resumed the entitlement: the suspension no longer confirms the case.
        await publish(settings.nats_server_url, EntitlementResumed(entitlement_id="ent-1", person_id=person,
                                                                   reason="死亡信息有误"))

        async def withdrawn() -> bool:
            return any(f["withdrawn_at"] for f in await follow_ups())

        await wait_for(withdrawn, timeout=20)
        assert (await close())["error"]["details"]["missing"] == [["benefit_suspended"]]
        await publish(settings.nats_server_url, EntitlementSuspended(
            entitlement_id="ent-1", person_id=person, reason="manual", since=today()))

        async def suspended_again() -> bool:
            return len([f for f in await follow_ups() if f["kind"] == "benefit_suspended"]) == 2

        await wait_for(suspended_again, timeout=20)
        closed = await close(200)
        assert closed["status"] == "closed"
        assert "follow_up_withdrawn" in [h["action"] for h in closed["history"]]

        # A case classified later picks up the events that arrived since it was opened.
        await step(oversight, officer, early, "investigate")
        late = await step(oversight, officer, early, "classify", {"class_code": 4, "finding": "同一人员"})
        confirmed = {f["kind"] for f in late["follow_ups"] if not f["withdrawn_at"]}
        assert confirmed == {"benefit_suspended", "recovery_notice_issued"}
        assert all(r["satisfied"] for r in late["required_follow_up"])

        # A case opened after the events: they were earlier, so an officer links them by id (not by word).
        newer = (await opened(oversight, officer, n=42, subject_id=person, fact_key="S01:newer"))["id"]
        await step(oversight, officer, newer, "investigate")
        fresh = await step(oversight, officer, newer, "classify", {"class_code": 4, "finding": "x"})
        assert fresh["follow_ups"] == []
        linked = await oversight.post(f"/cases/{newer}/follow-ups", headers=officer, json={
            "kind": "recovery_notice_issued", "evidence": "与本案同一告知书", "reference": "N-1"})
        assert linked.status_code == 201, linked.text
        assert (linked.json()["source"], linked.json()["event_id"]) == ("event", notice_id)
        refusal(await oversight.post(f"/cases/{newer}/follow-ups", headers=officer, json={
            "kind": "recovery_notice_issued", "evidence": "x", "reference": "N-other"}), 409, "NO_BENEFIT_EVENT")
        # Class 4 needs a person.
        employer_case = (await opened(oversight, officer, n=43, subject_type="employer", subject_id="e-9"))["id"]
        await step(oversight, officer, employer_case, "investigate")
        refusal(await oversight.post(f"/cases/{employer_case}/classify", headers=officer, json={
            "class_code": 4, "finding": "x"}), 422, "PERSON_REQUIRED")
        assert (await oversight.get("/admin/dead-letters", headers=_it(settings))).json() == []


def test_class_4_counts_benefits_events_since_the_fact_that_opened_the_case(engine):
    """A death reported on the bus reaches benefits and oversight at once: benefits' suspension and recovery notice
    for it may be recorded before the rule opens the case. Counted from the event the rule opened the case on, they
    confirm it at classification; an older event does not (an officer links one by id); a case opened by hand
    counts from its opening. (Seen in tests/e2e/test_oversight_workflows.py: the suspension usually came first and
    the case could never be closed on events.)"""
    person = "0190a000-0000-7000-8000-00000000p044"
    signal_at = clock.utc_now() - timedelta(seconds=30)
    death_event = new_event_id_at(signal_at - timedelta(seconds=1))  # accounts' event, a second before benefits acted
    old_at = signal_at - timedelta(days=40)
    signals = [
        BenefitSignal(event_id="ev-old-notice", kind="notice_issued", person_id=person, notice_id="N-old",
                      amount_fen=100, at=old_at, received_at=old_at),
        BenefitSignal(event_id="ev-suspended", kind="suspended", person_id=person, entitlement_id="ent-44",
                      reason="deceased", at=signal_at, received_at=signal_at),
        BenefitSignal(event_id="ev-notice", kind="notice_issued", person_id=person, notice_id="N-44",
                      amount_fen=320_000, at=signal_at, received_at=signal_at)]
    common = dict(severity="high", subject_type="person", subject_id=person, title="死亡后仍发放待遇",
                  details={"period": 202608}, seed_clause="001 第二十七条", suggested_class=4)
    with Session(engine) as session:
        session.add_all(signals)
        session.commit()
        with context.trace(actor=context.Actor(id="system:oversight", role="system"), causation_id=death_event):
            by_rule = open_case(session, rule_id="S01", fact_key=f"S01:{person}:202608", **common).case
        with context.trace(actor=context.Actor(id="officer.wang", role="oversight_officer")):
            by_hand = open_case(session, rule_id="MANUAL", fact_key=f"manual:{person}", **common).case
        session.commit()
        assert service.aware(by_rule.opened_at) > signal_at  # opened after benefits acted
        assert service.confirmations_since(session, by_rule) == service.aware(
            datetime.fromtimestamp(int(death_event.replace("-", "")[:12], 16) / 1000, UTC))
        assert service.confirmations_since(session, by_hand) == service.aware(by_hand.opened_at)
        with context.trace(actor=context.Actor(id="officer.wang", role="oversight_officer")):
            for case in (by_rule, by_hand):
                service.investigate(session, case.id, note=None)
                service.classify(session, case.id, class_code=4, finding="死亡后冒领", person_id=None,
                                 employer_id=None, amount_fen=320_000, reason=None)
        confirmed = {(f.kind, f.reference, f.source) for f in service.follow_ups(session, by_rule.id)}
        assert confirmed == {("benefit_suspended", "ent-44", "event"), ("recovery_notice_issued", "N-44", "event")}
        assert service.follow_up_missing(session, session.get(Case, by_rule.id)) == []
        assert service.follow_ups(session, by_hand.id) == []  # opened by hand after the events: link them by id


def new_event_id_at(at: datetime) -> str:
    """A UUIDv7 minted at ``at`` (as ``new_event_id`` would have then)."""
    value = (int(at.timestamp() * 1000) << 80) | (0x7 << 76) | (0x8 << 60) | 0x123
    return str(uuid.UUID(int=value))


async def _has(follow_ups, kind: str) -> bool:  # noqa: ANN001
    return any(f["kind"] == kind and not f["withdrawn_at"] for f in await follow_ups())


def _it(settings) -> dict:  # noqa: ANN001
    from tests.support.apps import bearer  # noqa: PLC0415

    return bearer(settings, "it_admin")


async def test_recovery_escalated_opens_a_class_5_candidate_once(start_service, settings, officer):
    async with start_service("oversight") as oversight:
        assert await oversight.app.state.bus.wait_ready(timeout=20)  # the streams exist
        payload = RecoveryEscalated(notice_id="N-77", person_id="person-77", remaining_fen=1_234_500,
                                    deadline=today() - timedelta(days=1))
        await publish(settings.nats_server_url, payload)
        await publish(settings.nats_server_url, payload)  # escalated twice (another event id): the same case

        async def case() -> dict | None:
            items = (await oversight.get("/cases", headers=officer, params={"rule_id": "R-ESC"})).json()["items"]
            return items[0] if items and items[0]["occurrences"] == 2 else None

        found = await wait_for(case, timeout=20)
        assert (found["fact_key"], found["severity"], found["suggested_class"], found["amount_fen"],
                found["person_id"], found["seed_clause"], found["opened_by"]) == \
            ("notice:N-77", "high", 5, 1_234_500, "person-77", "001 第二十九条(五)", "system:oversight")
        assert found["deadline"] == (today() + timedelta(days=30)).isoformat()
        assert len((await oversight.get("/cases", headers=officer)).json()["items"]) == 1


# -- overdue and escalation ------------------------------------------------------------------------------------------


async def test_overdue_cases_are_listed_and_escalate(start_service, officer, officer2, unit_staff):
    async with start_service("oversight") as oversight:
        soon = (await opened(oversight, officer, n=6, deadline_days=1, severity="medium"))["id"]
        later = (await opened(oversight, officer, n=7, deadline_days=30))["id"]
        elsewhere = (await opened(oversight, officer, n=8, deadline_days=1, unit="回民区社保局", region="150103"))["id"]
        done = (await opened(oversight, officer, n=9, deadline_days=1))["id"]
        await step(oversight, officer, done, "dismissal", {"reason": "误报"})
        await step(oversight, officer2, done, "dismissal/decision", {"approve": True})
        day = today() + timedelta(days=5)

        overdue = (await oversight.get("/cases/overdue", headers=officer, params={"as_of": day.isoformat()})).json()
        assert sorted(c["id"] for c in overdue) == sorted([soon, elsewhere])
        mine = (await oversight.get("/cases/overdue", headers=unit_staff, params={"as_of": day.isoformat()})).json()
        assert [c["id"] for c in mine] == [soon]
        assert (await oversight.get("/cases/overdue", headers=officer)).json() == []  # nothing overdue today

        refusal(await oversight.post("/cases/escalations", headers=unit_staff, json={}), 403, "FORBIDDEN")
        run = (await oversight.post("/cases/escalations", headers=officer, json={"as_of": day.isoformat()})).json()
        escalated = {c["id"]: c for c in run["escalated"]}
        assert set(escalated) == {soon, elsewhere}
        assert (escalated[soon]["severity"], escalated[soon]["escalation_level"]) == ("high", 1)
        again = (await oversight.post("/cases/escalations", headers=officer, json={"as_of": day.isoformat()})).json()
        assert again["escalated"] == []  # at most once per interval
        week = (await oversight.post("/cases/escalations", headers=officer,
                                     json={"as_of": (day + timedelta(days=7)).isoformat()})).json()
        assert {c["id"]: (c["severity"], c["escalation_level"]) for c in week["escalated"]}[soon] == ("severe", 2)
        capped = (await oversight.post("/cases/escalations", headers=officer,
                                       json={"as_of": (day + timedelta(days=14)).isoformat()})).json()
        assert {c["id"]: c["severity"] for c in capped["escalated"]}[soon] == "severe"
        events = [p for p in outbox_payloads(oversight, CaseEscalated.event_type) if p["case_id"] == soon]
        assert [(e["severity_before"], e["severity"], e["days_overdue"]) for e in events] == [
            ("medium", "high", 4), ("high", "severe", 11), ("severe", "severe", 18)]
        detail = (await oversight.get(f"/cases/{soon}", headers=officer)).json()
        assert [h["action"] for h in detail["history"]].count("escalate") == 3

        # Once rectifying, the rectification due date is the deadline that counts.
        await step(oversight, officer, later, "investigate")
        await step(oversight, officer, later, "classify", {"class_code": 1, "finding": "x"})
        await step(oversight, officer, later, "rectification",
                   {"measures": "x", "due_date": (today() + timedelta(days=3)).isoformat()}, expect=201)
        overdue = (await oversight.get("/cases/overdue", headers=officer, params={"as_of": day.isoformat()})).json()
        assert later in [c["id"] for c in overdue]
        ledger = (await oversight.get("/rectification-ledger", headers=officer,
                                      params={"overdue_as_of": day.isoformat()})).json()["items"]
        assert [e["case_id"] for e in ledger] == [later]
        assert CaseEscalated.event_type in outbox_types(oversight)


# -- the dishonesty list ---------------------------------------------------------------------------------------------


async def classified_case(oversight, officer, n: int, class_code: int, amount_fen: int | None = None,  # noqa: ANN001
                          **overrides) -> str:
    cid = (await opened(oversight, officer, n=n, **overrides))["id"]
    await step(oversight, officer, cid, "investigate")
    body = {"class_code": class_code, "finding": "核实属实"}
    if amount_fen is not None:
        body["amount_fen"] = amount_fen
    await step(oversight, officer, cid, "classify", body)
    return cid


async def test_dishonesty_list(start_service, officer, officer2, unit_staff):
    # 001 第三十条；001 第二十九条(六): a confirmed class 6 case always qualifies for the list.
    async with start_service("oversight") as oversight:
        fraud = await classified_case(oversight, officer, 10, 6, subject_id="person-10")
        small = await classified_case(oversight, officer, 11, 4, amount_fen=50_000, subject_id="person-11")
        large = await classified_case(oversight, officer, 12, 5, amount_fen=2_000_000, subject_id="person-12")
        unconfirmed = (await opened(oversight, officer, n=13, subject_id="person-13"))["id"]

        def entry(case_id: str, subject_id: str, subject_type: str = "person") -> dict:
            return {"subject_type": subject_type, "subject_id": subject_id, "case_id": case_id,
                    "reason": "骗取社会保险基金，经核实"}

        listed = await oversight.post("/dishonesty-list", headers=officer, json=entry(fraud, "person-10"))
        assert listed.status_code == 201, listed.text
        assert (listed.json()["class_code"], listed.json()["listed_by"]) == (6, "officer.wang")
        refusal(await oversight.post("/dishonesty-list", headers=officer2, json=entry(fraud, "person-10")), 409,
                "ALREADY_LISTED")
        refusal(await oversight.post("/dishonesty-list", headers=officer, json=entry(small, "person-11")), 409,
                "CASE_NOT_SERIOUS")
        refusal(await oversight.post("/dishonesty-list", headers=officer, json=entry(unconfirmed, "person-13")), 409,
                "CASE_NOT_CONFIRMED")
        refusal(await oversight.post("/dishonesty-list", headers=officer, json=entry(large, "person-10")), 422,
                "SUBJECT_NOT_IN_CASE")
        refusal(await oversight.post("/dishonesty-list", headers=officer, json=entry(large, "e-1", "employer")), 422,
                "SUBJECT_NOT_IN_CASE")
        refusal(await oversight.post("/dishonesty-list", headers=unit_staff, json=entry(large, "person-12")), 403,
                "FORBIDDEN")
        second = await oversight.post("/dishonesty-list", headers=officer2, json=entry(large, "person-12"))
        assert second.status_code == 201, second.text

        listing = (await oversight.get("/dishonesty-list", headers=unit_staff)).json()["items"]
        assert sorted(e["subject_id"] for e in listing) == ["person-10", "person-12"]

        entry_id = listed.json()["id"]
        refusal(await oversight.post(f"/dishonesty-list/{entry_id}/removal", headers=officer, json={"reason": "x"}),
                403, "SAME_OFFICER")
        refusal(await oversight.post(f"/dishonesty-list/{entry_id}/removal", headers=officer2, json={}), 422,
                "VALIDATION_ERROR")
        removed = await oversight.post(f"/dishonesty-list/{entry_id}/removal", headers=officer2,
                                       json={"reason": "信用修复期满"})
        assert removed.status_code == 200, removed.text
        assert (removed.json()["removed_by"], removed.json()["removal_reason"]) == ("officer.li", "信用修复期满")
        refusal(await oversight.post(f"/dishonesty-list/{entry_id}/removal", headers=officer2, json={"reason": "x"}),
                409, "ALREADY_REMOVED")
        refusal(await oversight.post("/dishonesty-list/nope/removal", headers=officer2, json={"reason": "x"}),
                404, "DISHONESTY_ENTRY_NOT_FOUND")
        active = (await oversight.get("/dishonesty-list", headers=officer)).json()["items"]
        assert [e["subject_id"] for e in active] == ["person-12"]
        everyone = (await oversight.get("/dishonesty-list", headers=officer,
                                        params={"include_removed": True})).json()["items"]
        assert len(everyone) == 2
        # Listed again on the same case after removal: a new entry.
        again = await oversight.post("/dishonesty-list", headers=officer2, json=entry(fraud, "person-10"))
        assert again.status_code == 201 and again.json()["id"] != entry_id
        types = outbox_types(oversight)
        assert types.count("oversight.dishonesty.listed.v1") == 3
        assert types.count("oversight.dishonesty.removed.v1") == 1


def test_history_table_keeps_every_step(engine):
    """The history is append-only data: a row per step, never rewritten (checked via the open path here)."""
    with context.trace(actor=context.Actor(id="officer.x", role="oversight_officer")), Session(engine) as session:
        opening = open_case(session, rule_id="MANUAL", severity="low", subject_type="fund", subject_id="PEN_EMP",
                            fact_key="m1", title="手工立案", details={}, seed_clause="001 第十二条")
        session.commit()
        rows = session.execute(select(CaseHistory).where(CaseHistory.case_id == opening.case.id)).scalars().all()
        assert [(r.action, r.actor_id, r.to_status) for r in rows] == [("open", "officer.x", "issued")]
        assert opening.case.unit == "社会保险经办机构" and opening.case.person_id is None
