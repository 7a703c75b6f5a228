"""Whistleblower reports (000 三(四); 001 第三十二条至第三十八条): public intake without an account, tracking by
code, identity for oversight officers only, urgent alerts, the per-IP limit, the workflow, and reward eligibility
(each condition, the statutory-duty exclusion, the first-reporter rule, joint reports) and amounts in fen."""

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlmodel import Session
from structlog.testing import capture_logs

from services.kernel import clock
from services.kernel.citations import is_canonical
from services.kernel.models import OutboxMessage
from services.oversight.whistleblowing import rewards
from services.oversight.whistleblowing.ratelimit import TokenBucket
from services.oversight.whistleblowing.service import CODE_ALPHABET, CODE_LENGTH, normalise_code
from tests.support.exchange import citizen_id
from tests.support.oversight import anonymous, unlimited

REPORTER_NAME = "张举报"
REPORTER_ID = citizen_id(4242)
REPORTER_PHONE = "13912345678"


def named(**overrides) -> dict:
    body = {
        "anonymous": False,
        "reporters": [{"name": REPORTER_NAME, "citizen_id": REPORTER_ID, "phone": REPORTER_PHONE}],
        "subject_name": "某某劳务派遣有限公司",
        "subject_type": "employer",
        "category": "payment",
        "title": "冒领已故人员养老金",
        "content": "该公司负责人代已故职工领取养老金已两年。",
    }
    body.update(overrides)
    return body


async def file(client, body: dict, headers: dict | None = None) -> dict:  # noqa: ANN001
    response = await client.post("/whistleblowing/reports", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()


async def conclude(client, officer: dict, report_id: str, *, outcome: str = "substantiated",  # noqa: ANN001
                   verified: str | None = "50000.00") -> None:
    for path, body in (("assign", {"officer_id": "officer.li"}), ("investigate", {})):
        r = await client.post(f"/whistleblowing/reports/{report_id}/{path}", json=body, headers=officer)
        assert r.status_code == 200, r.text
    answer = {"answer": "经查属实，已责令退回并依法处理。", "outcome": outcome}
    if verified is not None:
        answer["verified_amount"] = verified
    r = await client.post(f"/whistleblowing/reports/{report_id}/answer", json=answer, headers=officer)
    assert r.status_code == 200, r.text


def reward_request(**overrides) -> dict:
    body = {"verified_amount": "50000.00", "full_civil_capacity": True, "facts_already_known": False,
            "statutory_duty": False}
    body.update(overrides)
    return body


async def reward(client, officer: dict, report_id: str, **overrides):  # noqa: ANN001, ANN201
    return await client.post(f"/whistleblowing/reports/{report_id}/reward", json=reward_request(**overrides),
                             headers=officer)


# -- intake and tracking ---------------------------------------------------------------------------------------------


async def test_anonymous_web_report_is_tracked_by_its_code_without_internal_notes(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    async with start_service("oversight") as client:
        received = await file(client, anonymous())
        code = received["tracking_code"]
        raw = normalise_code(code)
        assert len(raw) == CODE_LENGTH >= 16 and set(raw) <= set(CODE_ALPHABET)
        assert received["status"] == "received" and received["track_url"].endswith(code)
        other = await file(client, anonymous())
        assert other["tracking_code"] != code

        tracked = await client.get(f"/whistleblowing/track/{code}")
        assert tracked.status_code == 200, tracked.text
        assert tracked.json()["status"] == "received" and tracked.json()["answer"] is None
        # Case and dashes do not matter; an unknown or malformed code is 404.
        assert (await client.get(f"/whistleblowing/track/{raw.lower()}")).status_code == 200
        unknown = "-".join("ABCD" for _ in range(5))
        for bad in (unknown, "x", "0" * 20):
            r = await client.get(f"/whistleblowing/track/{bad}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "TRACKING_CODE_NOT_FOUND"

        report_id = received["report_id"]
        for path, body in (("assign", {"officer_id": "officer.li", "note": "内部：请李科长办理"}),
                           ("investigate", {"note": "内部：已调取缴费台账"})):
            assert (await client.post(f"/whistleblowing/reports/{report_id}/{path}", json=body,
                                      headers=officer)).status_code == 200
        note = await client.post(f"/whistleblowing/reports/{report_id}/notes",
                                 json={"text": "内部备注：负责人系某局干部亲属"}, headers=officer)
        assert note.status_code == 201, note.text
        tracked = (await client.get(f"/whistleblowing/track/{code}")).json()
        assert tracked["status"] == "investigating"
        assert [s["status"] for s in tracked["steps"]] == ["received", "assigned", "investigating"]
        assert set(tracked) == {"status", "status_label", "received_at", "last_update_at", "answer", "answered_at",
                                "closed_reason", "closed_at", "steps"}
        text = json.dumps(tracked, ensure_ascii=False)
        assert "内部" not in text and "officer.li" not in text and "officer.wang" not in text

        # Answering is only after investigating; the answer is what the reporter sees.
        r = await client.post(f"/whistleblowing/reports/{other['report_id']}/answer",
                              json={"answer": "x", "outcome": "unsubstantiated"}, headers=officer)
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_REPORT_STATUS"
        r = await client.post(f"/whistleblowing/reports/{report_id}/answer",
                              json={"answer": "经查属实，已责令单位补缴。", "outcome": "substantiated",
                                    "verified_amount": "12000.00"}, headers=officer)
        assert r.status_code == 200, r.text
        tracked = (await client.get(f"/whistleblowing/track/{code}")).json()
        assert tracked["status"] == "answered" and tracked["answer"] == "经查属实，已责令单位补缴。"
        assert "12000" not in json.dumps(tracked) and "substantiated" not in json.dumps(tracked)
        closed = await client.post(f"/whistleblowing/reports/{report_id}/close", json={"reason": "已办结"},
                                   headers=officer)
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        tracked = (await client.get(f"/whistleblowing/track/{code}")).json()
        assert tracked["status"] == "closed" and tracked["answer"] == "经查属实，已责令单位补缴。"

        detail = (await client.get(f"/whistleblowing/reports/{report_id}", headers=officer)).json()
        assert detail["anonymous"] and detail["reporters"] == [] and not detail["identity_withheld"]
        assert [n["text"] for n in detail["notes"]] == ["内部备注：负责人系某局干部亲属"]
        assert detail["recorded_by"] == "anonymous" and detail["assigned_to"] == "officer.li"


async def test_named_reporter_identity_is_shown_to_oversight_officers_only(start_service, auth):
    officer = auth("oversight_officer")
    auditor = auth("internal_auditor")
    async with start_service("oversight") as client:
        body = named(content=f"我（身份证 {REPORTER_ID}，电话 {REPORTER_PHONE}）实名举报：该公司代领养老金。")
        report_id = (await file(client, body))["report_id"]

        seen = (await client.get(f"/whistleblowing/reports/{report_id}", headers=officer)).json()
        assert seen["reporters"] == [{"name": REPORTER_NAME, "citizen_id": REPORTER_ID, "phone": REPORTER_PHONE,
                                      "email": None, "address": None}]
        assert REPORTER_ID in seen["content"]

        for path in (f"/whistleblowing/reports/{report_id}", "/whistleblowing/reports"):
            r = await client.get(path, headers=auditor)
            assert r.status_code == 200, r.text
            text = json.dumps(r.json(), ensure_ascii=False)
            assert REPORTER_NAME not in text and REPORTER_ID not in text and REPORTER_PHONE not in text
        masked = (await client.get(f"/whistleblowing/reports/{report_id}", headers=auditor)).json()
        assert masked["reporters"] is None and masked["identity_withheld"] and masked["reporter_count"] == 1
        assert masked["subject_name"] == "某某劳务派遣有限公司"

        for role in ("agency_clerk", "accountant", "finance_officer"):
            assert (await client.get(f"/whistleblowing/reports/{report_id}", headers=auth(role))).status_code == 403
        assert (await client.post(f"/whistleblowing/reports/{report_id}/assign", json={"officer_id": "x"},
                                  headers=auditor)).status_code == 403

        # Free text written by officers about the reporter is withheld from auditors too.
        flagged = await client.post(f"/whistleblowing/reports/{report_id}/flag", headers=officer,
                                    json={"reason": f"举报人{REPORTER_NAME}（{REPORTER_PHONE}）称受到威胁"})
        assert flagged.status_code == 201, flagged.text
        for path in ("assign", "investigate"):
            await client.post(f"/whistleblowing/reports/{report_id}/{path}", headers=officer,
                              json={"officer_id": "officer.li"} if path == "assign" else {"note": f"约谈{REPORTER_NAME}"})
        await client.post(f"/whistleblowing/reports/{report_id}/answer", headers=officer,
                          json={"answer": f"{REPORTER_NAME}同志：经查属实。", "outcome": "substantiated"})
        for path in ("/whistleblowing/alerts", f"/whistleblowing/reports/{report_id}"):
            text = json.dumps((await client.get(path, headers=auditor)).json(), ensure_ascii=False)
            assert REPORTER_NAME not in text and REPORTER_PHONE not in text, text
            assert REPORTER_NAME in json.dumps((await client.get(path, headers=officer)).json(), ensure_ascii=False)

        # Neither the audit chain nor the outbox carries the identity.
        entries = (await client.get("/audit/entries", params={"entity_id": report_id}, headers=officer)).json()
        assert entries and all(REPORTER_NAME not in json.dumps(e, ensure_ascii=False) for e in entries)
        with Session(client.app.state.engine) as session:
            envelopes = [m.envelope for m in session.execute(select(OutboxMessage)).scalars()]
        assert all(REPORTER_NAME not in e and REPORTER_ID not in e for e in envelopes)


async def test_staff_record_phone_letter_email_and_visit_reports(start_service, auth):
    officer = auth("oversight_officer", subject="officer.zhao")
    async with start_service("oversight") as client:
        unlimited(client)
        phone = named(channel="phone")
        r = await client.post("/whistleblowing/reports", json=phone)
        assert r.status_code == 401
        r = await client.post("/whistleblowing/reports", json=phone, headers=auth("internal_auditor"))
        assert r.status_code == 403
        letter_day = (clock.utc_now() - timedelta(days=3)).isoformat()
        for channel in ("phone", "email", "letter", "visit"):
            received = await file(client, named(channel=channel, received_at=letter_day), officer)
            detail = (await client.get(f"/whistleblowing/reports/{received['report_id']}", headers=officer)).json()
            assert detail["channel"] == channel and detail["recorded_by"] == "officer.zhao"
            assert datetime.fromisoformat(detail["received_at"]) == datetime.fromisoformat(letter_day)
        # The web form's time is the system's; identity fields must match the choice of anonymity.
        r = await client.post("/whistleblowing/reports", json=named(received_at=letter_day))
        assert r.status_code == 422 and r.json()["error"]["code"] == "RECEIVED_AT_NOT_ALLOWED"
        r = await client.post("/whistleblowing/reports", json=anonymous(reporters=named()["reporters"]))
        assert r.status_code == 422 and r.json()["error"]["code"] == "ANONYMOUS_WITH_IDENTITY"
        r = await client.post("/whistleblowing/reports", json=named(reporters=[]))
        assert r.status_code == 422 and r.json()["error"]["code"] == "REPORTER_REQUIRED"
        r = await client.post("/whistleblowing/reports",
                              json=named(reporters=[{"name": "李", "citizen_id": REPORTER_ID[:-1] + "0"}]))
        assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_CITIZEN_ID"


async def test_public_intake_is_limited_per_ip(start_service, auth):
    async with start_service("oversight") as client:
        client.app.state.whistleblowing_intake_limiter = TokenBucket(burst=2, per_hour=1)
        via_gateway = {"X-Forwarded-For": "203.0.113.7"}
        for _ in range(2):
            await file(client, anonymous(), via_gateway)
        refused = await client.post("/whistleblowing/reports", json=anonymous(), headers=via_gateway)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"
        # The IP is the one the gateway appended (last), whatever the caller put before it.
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert (await client.post("/whistleblowing/reports", json=anonymous(), headers=spoofed)).status_code == 429
        # Also when the caller's own header comes as a line of its own before the gateway's (the gateway passes the
        # caller's X-Forwarded-For on and adds its own line: seen in tests/e2e/test_oversight_workflows.py).
        two_lines = [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "198.51.100.1, 203.0.113.7")]
        assert (await client.post("/whistleblowing/reports", json=anonymous(), headers=two_lines)).status_code == 429
        await file(client, anonymous(), {"X-Forwarded-For": "203.0.113.8"})
        # Officers recording other channels are not limited by the public bucket.
        await file(client, named(channel="phone"), {**via_gateway, **auth("oversight_officer")})


async def test_major_or_urgent_reports_alert_an_officer_at_once(start_service, auth):
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        unlimited(client)
        with capture_logs() as logs:
            urgent = await file(client, named(urgent=True))
            keyword = await file(client, anonymous(content="经办机构负责人挪用基金并准备转移资金。"))
            large = await file(client, anonymous(amount_claimed="1500000.00"))
            plain = await file(client, anonymous())
        alerts = (await client.get("/whistleblowing/alerts", headers=auth("internal_auditor"))).json()
        by_report = {a["report_id"]: [r["code"] for r in a["reasons"]] for a in alerts}
        assert by_report == {urgent["report_id"]: ["URGENT_REQUESTED"], keyword["report_id"]: ["KEYWORD"],
                             large["report_id"]: ["LARGE_AMOUNT"]}
        assert plain["report_id"] not in by_report
        warnings = [e for e in logs if e["event"] == "whistleblowing.major_or_urgent_report"]
        assert {e["report_id"] for e in warnings} == set(by_report)
        assert all(e["log_level"] == "warning" and REPORTER_NAME not in json.dumps(e, ensure_ascii=False)
                   for e in warnings)
        with Session(client.app.state.engine) as session:
            flagged = [json.loads(m.envelope) for m in session.execute(select(OutboxMessage)).scalars()
                       if m.event_type == "oversight.whistleblower_report.flagged.v1"]
        assert {e["data"]["report_id"] for e in flagged} == set(by_report)

        detail = (await client.get(f"/whistleblowing/reports/{keyword['report_id']}", headers=officer)).json()
        assert detail["flagged"] and "挪用" in detail["flag_reasons"][0]["detail"]

        # An officer flags a report later; alerts are acknowledged with what was done.
        raised = await client.post(f"/whistleblowing/reports/{plain['report_id']}/flag",
                                   json={"reason": "涉及多名已故人员，可能为团伙冒领"}, headers=officer)
        assert raised.status_code == 201, raised.text
        alert_id = raised.json()["id"]
        done = await client.post(f"/whistleblowing/alerts/{alert_id}/acknowledge",
                                 json={"action_taken": "已报告分管领导，通知经办机构暂停相关待遇发放"}, headers=officer)
        assert done.status_code == 200 and done.json()["acknowledged_at"]
        again = await client.post(f"/whistleblowing/alerts/{alert_id}/acknowledge", json={"action_taken": "x"},
                                  headers=officer)
        assert again.status_code == 409
        open_ids = {a["id"] for a in (await client.get("/whistleblowing/alerts", headers=officer)).json()}
        assert alert_id not in open_ids and len(open_ids) == 3


# -- rewards ---------------------------------------------------------------------------------------------------------


async def test_reward_eligibility_lists_every_condition_and_refuses_each_failure(start_service, auth):
    # 001 第三十六条(一)、第三十六条(二)、第三十六条(三)、第三十六条(四)、第三十六条(五)；001 第三十三条: each condition refused on its own.
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        unlimited(client)
        good = (await file(client, named()))["report_id"]
        r = await reward(client, officer, good)
        assert r.status_code == 409 and r.json()["error"]["code"] == "REPORT_NOT_CONCLUDED"
        await conclude(client, officer, good)
        # The reward is computed on the amount the answer recorded as verified, not on another figure.
        r = await reward(client, officer, good, verified_amount="60000.00")
        assert r.status_code == 409 and r.json()["error"]["code"] == "VERIFIED_AMOUNT_MISMATCH", r.text
        assert r.json()["error"]["details"]["verified_amount"] == "50000.00"
        granted = await reward(client, officer, good)
        assert granted.status_code == 201, granted.text
        body = granted.json()
        assert body["eligible"] and body["kind"] == "main" and body["failed"] == []
        assert [c["code"] for c in body["checks"]] == ["NAMED", "FULL_CIVIL_CAPACITY", "CLEAR_SUBJECT",
                                                       "WITHIN_SCOPE", "NEW_FACTS", "VERIFIED",
                                                       "NO_STATUTORY_DUTY", "FIRST_REPORTER"]
        assert all(c["ok"] and is_canonical(c["clause"]) and c["clause"].startswith("001 ") for c in body["checks"])
        assert body["amount"] == "1000.00"  # 2 % of 50 000.00
        assert (await reward(client, officer, good)).json()["error"]["code"] == "REWARD_EXISTS"

        cases = {
            "NAMED": (anonymous(), {}),
            "CLEAR_SUBJECT": (named(subject_name=None), {}),
            "WITHIN_SCOPE": (named(category="other"), {}),
            "FULL_CIVIL_CAPACITY": (named(), {"full_civil_capacity": False}),
            "NEW_FACTS": (named(), {"facts_already_known": True}),
            "NO_STATUTORY_DUTY": (named(), {"statutory_duty": True}),  # 001 第三十三条第二款: e.g. an agency clerk
        }
        for code, (report, findings) in cases.items():
            report_id = (await file(client, report))["report_id"]
            await conclude(client, officer, report_id)
            refused = await reward(client, officer, report_id, **findings)
            assert refused.status_code == 201, refused.text
            decision = refused.json()
            assert not decision["eligible"] and decision["amount"] is None and decision["kind"] is None
            assert decision["failed"] == [code], (code, decision["failed"])
            assert len(decision["checks"]) == 8
        # Named without a citizen id is not a real-name report (001 第三十六条(一)).
        no_id = (await file(client, named(reporters=[{"name": "王某"}])))["report_id"]
        await conclude(client, officer, no_id)
        assert (await reward(client, officer, no_id)).json()["failed"] == ["NAMED"]
        # Not found true: VERIFIED fails.
        false_report = (await file(client, named()))["report_id"]
        await conclude(client, officer, false_report, outcome="unsubstantiated", verified=None)
        assert (await reward(client, officer, false_report)).json()["error"]["code"] == "VERIFIED_AMOUNT_MISMATCH"
        unverified = (await reward(client, officer, false_report, verified_amount=None)).json()
        assert (unverified["failed"], unverified["verified_amount"]) == (["VERIFIED"], "0.00")
        # A refused decision is recorded and may be decided again once the facts change; every decision is listed.
        detail = (await client.get(f"/whistleblowing/reports/{false_report}", headers=officer)).json()
        assert [d["eligible"] for d in detail["rewards"]] == [False]
        assert (await client.post(f"/whistleblowing/reports/{good}/reward", json=reward_request(),
                                  headers=auth("internal_auditor"))).status_code == 403


async def test_first_reporter_is_the_main_beneficiary_and_a_joint_report_counts_once(start_service, auth):
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        unlimited(client)
        earlier = (clock.utc_now() - timedelta(days=5)).isoformat()
        first = (await file(client, named(channel="letter", received_at=earlier), officer))["report_id"]
        joint = named(reporters=[{"name": "甲", "citizen_id": citizen_id(11)},
                                 {"name": "乙", "citizen_id": citizen_id(12)},
                                 {"name": "丙", "citizen_id": citizen_id(13)}])
        later = (await file(client, joint))["report_id"]
        linked = await client.post(f"/whistleblowing/reports/{later}/link", json={"same_as": first}, headers=officer)
        assert linked.status_code == 200, linked.text
        assert linked.json()["matter_id"] == first and not linked.json()["first_in_matter"]
        for report_id in (first, later):
            await conclude(client, officer, report_id, verified="8000000.00")

        # The later (joint) report is not the first reporter: refused without a substantial contribution.
        refused = (await reward(client, officer, later, verified_amount="8000000.00")).json()
        assert refused["failed"] == ["FIRST_REPORTER"] and first in refused["checks"][-1]["detail"]
        assert "NEW_FACTS" not in [c["code"] for c in refused["checks"]]

        main = (await reward(client, officer, first, verified_amount="8000000.00")).json()
        assert main["eligible"] and main["kind"] == "main" and main["amount"] == "100000.00" and main["cap_applied"]
        # The matter's cap (100 000) is used up by the main reward: nothing is left for the later reporter.
        r = await reward(client, officer, later, verified_amount="8000000.00", substantial_contribution=True,
                         supplementary_amount="500.00")
        assert r.status_code == 409 and r.json()["error"]["code"] in ("SUPPLEMENTARY_AMOUNT_TOO_HIGH",
                                                                      "MATTER_CAP_REACHED")
        r = await client.post(f"/whistleblowing/reports/{later}/link", json={"same_as": first}, headers=officer)
        assert r.status_code == 200  # already in the matter: nothing to do

        # Another matter: the later joint reporter contributed substantially → a supplementary reward, decided by
        # the officer within the standard; the joint report (three signatories) gets one reward.
        a = (await file(client, named(channel="visit", received_at=earlier), officer))["report_id"]
        b = (await file(client, joint))["report_id"]
        await client.post(f"/whistleblowing/reports/{b}/link", json={"same_as": a}, headers=officer)
        for report_id in (a, b):
            await conclude(client, officer, report_id, verified="100000.00")
        r = await reward(client, officer, b, verified_amount="100000.00", substantial_contribution=True)
        assert r.status_code == 422 and r.json()["error"]["code"] == "SUPPLEMENTARY_AMOUNT_REQUIRED"
        r = await reward(client, officer, b, verified_amount="100000.00", substantial_contribution=True,
                         supplementary_amount="2000.01")
        assert r.status_code == 409 and r.json()["error"]["code"] == "SUPPLEMENTARY_AMOUNT_TOO_HIGH"
        r = await reward(client, officer, a, verified_amount="100000.00", supplementary_amount="10.00")
        assert r.status_code == 422 and r.json()["error"]["code"] == "SUPPLEMENTARY_AMOUNT_NOT_APPLICABLE"
        supplementary = await reward(client, officer, b, verified_amount="100000.00", substantial_contribution=True,
                                     supplementary_amount="500.00")
        assert supplementary.status_code == 201, supplementary.text
        s = supplementary.json()
        assert s["eligible"] and s["kind"] == "supplementary" and s["amount"] == "500.00"
        main = (await reward(client, officer, a, verified_amount="100000.00")).json()
        assert main["kind"] == "main" and main["amount"] == "2000.00"
        # A matter with rewards cannot be merged any more (its first reporter could change).
        c = (await file(client, named()))["report_id"]
        r = await client.post(f"/whistleblowing/reports/{c}/link", json={"same_as": a}, headers=officer)
        assert r.status_code == 409 and r.json()["error"]["code"] == "MATTER_REWARDED"

        # A joint report in which one signatory gives no citizen id is not a real-name report.
        partial = named(reporters=[{"name": "丁", "citizen_id": citizen_id(14)}, {"name": "戊"}])
        p = (await file(client, partial))["report_id"]
        await conclude(client, officer, p)
        assert (await reward(client, officer, p)).json()["failed"] == ["NAMED"]


@pytest.mark.parametrize(("verified", "computed", "amount", "floor", "cap"), [
    ("5000.00", "100.00", "200.00", True, False),  # 2 % = 100 → floor 200
    ("10000.00", "200.00", "200.00", False, False),  # exactly the floor
    ("1234567.25", "24691.35", "24691.35", False, False),  # 2 469 134.5 fen → half-up 2 469 135 fen
    ("1234567.24", "24691.34", "24691.34", False, False),  # 2 469 134.48 fen → 2 469 134 fen
    ("5000000.00", "100000.00", "100000.00", False, False),  # exactly the cap
    ("10000000.00", "200000.00", "100000.00", False, True),  # 2 % = 200 000 → cap 100 000 per matter
])
async def test_reward_amount_is_two_percent_with_floor_and_cap_in_fen(start_service, auth, verified, computed, amount,
                                                                        floor, cap):
    officer = auth("oversight_officer")
    async with start_service("oversight") as client:
        report_id = (await file(client, named()))["report_id"]
        await conclude(client, officer, report_id, verified=verified)
        decision = (await reward(client, officer, report_id, verified_amount=verified)).json()
        assert decision["eligible"], decision
        assert (decision["verified_amount"], decision["computed"], decision["amount"]) == (verified, computed, amount)
        assert (decision["floor_applied"], decision["cap_applied"]) == (floor, cap)
        assert decision["standard"] == "default" and decision["steps"]


@pytest.mark.unit
def test_reward_standard_bands_are_exact_and_rounded_once():
    assert rewards.reward_amount(123_456_725).computed_fen == 2_469_135
    assert rewards.reward_amount(1).amount_fen == 20_000 and rewards.reward_amount(1).floor_applied
    assert rewards.reward_amount(10_000_000, cap_left_fen=5_000).amount_fen == 5_000
    tiered = rewards.RewardStandard(name="tiered", bands=(rewards.Band(100_000_000, Decimal("0.03")),
                                                          rewards.Band(None, Decimal("0.01"))),
                                    floor_fen=20_000, cap_fen=50_000_000)
    # 3 % of 1 000 000 yuan + 1 % of 500 000.50 yuan = 30 000 + 5 000.005 → 35 000.01 yuan (half-up once)
    assert rewards.exact_share(150_000_050, tiered) == Decimal("3500000.50")
    assert rewards.reward_amount(150_000_050, tiered).amount_fen == 3_500_001
    assert rewards.reward_amount(50_000_000, tiered).computed_fen == 1_500_000
    assert rewards.standard_for("150102") is rewards.DEFAULT_STANDARD
