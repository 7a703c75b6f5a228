"""Claims: verified online with accounts — which runs for real under uvicorn and is asked over HTTP
with the clerk's own token — and against benefits' registry mirror; computed by the system; decided at two or three
levels (plus the large-amount review) by different people; granted into the person's own account only.

Until the registry mirror consumer exists, the mirror rows (BeneficiaryPerson, BeneficiaryAccount, ContributionIndex)
are inserted directly into the benefits database. In accounts, persons, employers, enrolments and balances go through
its API; the posted contribution months (normally written by agency posting) are inserted into its database."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.benefits.claims.service import age_at
from services.benefits.models import BeneficiaryAccount, Claim, ClaimDecision, Entitlement
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from services.kernel.periods import add_months
from services.kernel.service_app import create_service_app
from services.kernel.settings import Settings
from sifund import services as catalogue
from tests.support.registry import engine_of, error_code, make_card, outbox
from tests.support.benefits import approved_benefit_parameters
from tests.support.apps import running_app
from tests.support.gateway import serve
from tests.support.benefits import CLERK, Platform, _auth_for

REVIEWER_1, REVIEWER_2 = "reviewer.wu", "reviewer.zheng"
APPROVER_1, APPROVER_2 = "approver.wang", "approver.feng"


@asynccontextmanager
async def platform(settings: Settings, make_settings, nats_server) -> AsyncIterator[Platform]:  # noqa: ANN001
    """Accounts under uvicorn, benefits in-process pointed at it, benefit parameters approved from 202401."""
    accounts_app = create_service_app(catalogue.spec("accounts"), settings)
    async with serve(accounts_app) as url, httpx.AsyncClient(base_url=url) as accounts:
        benefits_settings = make_settings(nats_server.url, accounts_url=url)
        async with running_app(create_service_app(catalogue.spec("benefits"), benefits_settings)) as benefits:
            await approved_benefit_parameters(benefits, _auth_for(settings), valid_from=202401)
            yield Platform(settings=settings, benefits=benefits, accounts=accounts, accounts_app=accounts_app)


def step(claim: dict, name: str):  # noqa: ANN201
    return next(s["value"] for s in claim["computation"]["steps"] if s["step"] == name)


# -- the retirement claim ---------------------------------------------------------------------------------------------


async def test_retirement_claim_hand_calculated_and_approved_at_three_levels(settings, make_settings, nats_server):
    # 004 第4项: important business at three levels; 004 第20项: the amount computed by the system.
    async with platform(settings, make_settings, nats_server) as p:
        # A man born 1966-11-05 is 60 on 2026-12-01: his pension starts in 202612.
        person = await p.person(born=date(1966, 11, 5), name="张建国", enrol={"PEN_EMP": 201107},
                                months={"PEN_EMP": (201107, 202611)}, balance="98765.43",
                                index=[(100, 480_000, 600_000), (85, 1_050_000, 700_000)])
        claim = await p.claim({"kind": "basic_pension", "person_id": person, "effective_period": 202612,
                               "note": "本人申请按月领取基本养老金"})

        # Hand calculation (parameters: prior-year average monthly wage W = 8 500.00 yuan = 850 000 fen, 1 % a year):
        #   contribution months (accounts)  201107…202611 = 185 → 185 ÷ 12 years
        #   index rows: 100 × (4 800 ÷ 6 000 = 0.8) + 85 × (10 500 ÷ 7 000 = 1.5) = 80 + 127.5 = 207.5
        #   average index = 207.5 ÷ 185 = 83/74 = 1.1216216216…
        #   indexed average wage = 850 000 × 83/74 = 35 275 000/37 = 953 378.378… fen
        #   基础养老金 = (850 000 + 35 275 000/37) ÷ 2 × 185/12 × 0.01
        #             = 33 362 500/37 × 185/12 × 0.01 = 33 362 500 × 5/12 × 0.01   (185 = 5 × 37)
        #             = 13 901 041.666… × 0.01 = 139 010.41666… fen → 139 010 fen (half-up, once)
        #   个人账户养老金 = 9 876 543 ÷ 139 (divisor at 60) = 71 054.266… fen → 71 054 fen
        #   monthly amount = 139 010 + 71 054 = 210 064 fen = 2 100.64 yuan
        assert claim["status"] == "in_review", claim
        assert (claim["monthly_amount_fen"], claim["monthly_amount"]) == (210_064, "2100.64")
        assert step(claim, "index_sum") == "207.5"
        assert step(claim, "average_index") == {"value": "1.1216216216…", "exact": "83/74"}
        assert step(claim, "indexed_average_wage_fen") == {"value": "953378.3783783784…", "exact": "35275000/37"}
        assert step(claim, "basic_pension_exact")["exact"] == "1668125/12"
        assert (step(claim, "basic_pension_fen"), step(claim, "account_pension_fen")) == (139_010, 71_054)
        inputs = claim["computation"]["inputs"]
        assert (inputs["contribution_months"], inputs["index_months"], inputs["account_balance_fen"],
                inputs["account_divisor"], inputs["retirement_age"]) == (185, 185, 9_876_543, 139, 60)
        assert claim["importance"] == "important" and claim["end_period"] is None
        assert (claim["early_retirement"], claim["large_amount"], claim["age_at_effective"]) == (False, False, 60)
        assert [lv["level"] for lv in claim["levels"]] == ["first_review", "second_review", "approval"]
        assert [lv["role"] for lv in claim["levels"]] == ["agency_reviewer", "agency_reviewer", "agency_approver"]
        verification = claim["verification"]
        assert all(c["ok"] for c in verification["checks"]) and claim["blocked_checks"] == []
        assert verification["enrolment"]["enrolled"] is True and verification["enrolment"]["status"] == "active"
        assert verification["contribution_months"]["months"] == 185
        assert verification["individual_account"]["balance"] == "98765.43"
        submitted = outbox(p.benefits, "benefits.claim.submitted.v1")
        assert [(e["claim_id"], e["status"], e["monthly_amount_fen"], e["age_at_effective"]) for e in submitted] == \
            [(claim["id"], "in_review", 210_064, 60)]

        # The submitter decides no level, even holding the reviewer role.
        own = await p.decide(claim["id"], p.headers("agency_clerk", "agency_reviewer", subject=CLERK), expected=403)
        assert error_code_of(own) == "SUBMITTER_CANNOT_DECIDE"
        # 初审 belongs to a reviewer, not an approver.
        wrong_role = await p.decide(claim["id"], p.approver(APPROVER_1), expected=403)
        assert error_code_of(wrong_role) == "ROLE_NOT_ALLOWED_AT_LEVEL"

        first = await p.decide(claim["id"], p.reviewer(REVIEWER_1))
        assert (first["status"], first["next_level"]) == ("in_review", "second_review")
        # The same person cannot act at a second level.
        twice = await p.decide(claim["id"], p.reviewer(REVIEWER_1), expected=403)
        assert error_code_of(twice) == "SAME_PERSON_TWO_LEVELS"
        wrong_level = await p.decide(claim["id"], p.reviewer(REVIEWER_2), level="approval", expected=409)
        assert error_code_of(wrong_level) == "WRONG_LEVEL"
        second = await p.decide(claim["id"], p.reviewer(REVIEWER_2), level="second_review")
        assert second["next_level"] == "approval"
        # Its answer lost, the reviewer sends the same decision again: the claim as it stands, nothing twice.
        repeated = await p.decide(claim["id"], p.reviewer(REVIEWER_2), level="second_review")
        assert repeated["decisions"] == second["decisions"] and repeated["next_level"] == "approval"
        # Not the same decision (another reason, or no level named): refused as before.
        other = await p.decide(claim["id"], p.reviewer(REVIEWER_2), level="second_review", reason="另一理由",
                               expected=403)
        assert error_code_of(other) == "SAME_PERSON_TWO_LEVELS"
        unnamed = await p.decide(claim["id"], p.reviewer(REVIEWER_2), expected=403)
        assert error_code_of(unnamed) == "SAME_PERSON_TWO_LEVELS"
        # Nor with another role at a later level.
        both_hats = await p.decide(claim["id"], p.headers("agency_reviewer", "agency_approver", subject=REVIEWER_1),
                                   expected=403)
        assert error_code_of(both_hats) == "SAME_PERSON_TWO_LEVELS"
        approved = await p.decide(claim["id"], p.approver(APPROVER_1), level="approval")
        assert (approved["status"], approved["next_level"]) == ("approved", None) and approved["entitlement_id"]
        again_final = await p.decide(claim["id"], p.approver(APPROVER_1), level="approval")
        assert again_final == approved  # one entitlement, one event (below)
        assert [(d["level"], d["decided_by"], d["role"]) for d in approved["decisions"]] == [
            ("first_review", REVIEWER_1, "agency_reviewer"), ("second_review", REVIEWER_2, "agency_reviewer"),
            ("approval", APPROVER_1, "agency_approver")]
        assert all(d["reason"] and d["decided_at"] for d in approved["decisions"])

        with Session(engine_of(p.benefits)) as session:
            entitlement = session.get(Entitlement, approved["entitlement_id"])
        assert (entitlement.monthly_amount_fen, entitlement.start_period, entitlement.end_period, entitlement.status,
                entitlement.bank_account_id) == (210_064, 202612, None, "active", p.own_account(person))
        decided = outbox(p.benefits, "benefits.claim.decided.v1")
        assert [(e["level"], e["decided_by"], e["role"], e["claim_status"]) for e in decided] == [
            ("first_review", REVIEWER_1, "agency_reviewer", "in_review"),
            ("second_review", REVIEWER_2, "agency_reviewer", "in_review"),
            ("approval", APPROVER_1, "agency_approver", "approved")]
        granted = outbox(p.benefits, "benefits.entitlement.granted.v1")
        assert [(e["entitlement_id"], e["monthly_amount_fen"], e["levels"], e["large_amount_reviewed"])
                for e in granted] == [(entitlement.id, 210_064, ["first_review", "second_review", "approval"], False)]

        # A decided claim takes no more decisions.
        closed = await p.decide(claim["id"], p.approver(APPROVER_2), expected=409)
        assert error_code_of(closed) == "CLAIM_NOT_IN_REVIEW"

        # Double benefit: a second pension of either kind is blocked, with the reason.
        again = await p.claim({"kind": "basic_pension", "person_id": person, "effective_period": 202701})
        assert again["status"] == "blocked" and again["blocked_checks"] == ["DOUBLE_BENEFIT"]
        assert "DOUBLE_BENEFIT" in again["blocked_reason"] and again["monthly_amount_fen"] is None
        resident = await p.claim({"kind": "resident_pension", "person_id": person, "effective_period": 202701})
        assert resident["status"] == "blocked" and "DOUBLE_BENEFIT" in resident["blocked_checks"]
        blocked_decision = await p.decide(again["id"], p.reviewer(REVIEWER_1), expected=409)
        assert error_code_of(blocked_decision) == "CLAIM_NOT_IN_REVIEW"

        # Reading: in the clerk's area only; the audit chain has every step.
        listed = await p.benefits.get("/claims", params={"person_id": person}, headers=p.reviewer(REVIEWER_1))
        assert [c["status"] for c in listed.json()["items"]] == ["blocked", "blocked", "approved"]
        elsewhere = await p.benefits.get(f"/claims/{claim['id']}", headers=p.headers("agency_reviewer", subject="x",
                                                                                  region="150200"))
        assert elsewhere.status_code == 403
        with Session(engine_of(p.benefits)) as session:
            actions = session.execute(select(AuditEntry.action, AuditEntry.actor_role).where(
                AuditEntry.entity_id == claim["id"]).order_by(AuditEntry.seq)).all()
        assert [tuple(a) for a in actions] == [("claim.submit", "agency_clerk"), ("claim.approve", "agency_reviewer"),
                                              ("claim.approve", "agency_reviewer"), ("claim.approve", "agency_approver")]


def error_code_of(body: dict) -> str:
    return body["error"]["code"]


async def test_rejection_at_any_level_ends_the_claim(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        person = await p.person(born=date(1966, 1, 9), name="刘伟", enrol={"PEN_EMP": 201101},
                                months={"PEN_EMP": (201101, 202611)}, balance="50000.00",
                                index=[(191, 600_000, 600_000)])
        claim = await p.claim({"kind": "basic_pension", "citizen_id": p.people[person]["citizen_id"],
                               "effective_period": 202612})
        assert claim["status"] == "in_review" and claim["person_id"] == person
        # Two reviewers deciding 初审 at once: one takes the level, the other is told it is gone.
        racing = await asyncio.gather(*(p.benefits.post(f"/claims/{claim['id']}/decisions", headers=p.reviewer(who),
                                                        json={"decision": "approve", "reason": "同意",
                                                              "level": "first_review"})
                                        for who in (REVIEWER_1, "reviewer.other")))
        assert sorted(r.status_code for r in racing) == [200, 409]
        assert {error_code(r) for r in racing if r.status_code == 409} <= {"WRONG_LEVEL", "CONCURRENT_DECISION"}
        # 复审 by someone else, who rejects: the claim ends there.
        rejected = await p.decide(claim["id"], p.reviewer(REVIEWER_2), decision="reject")
        assert (rejected["status"], rejected["next_level"], rejected["entitlement_id"]) == ("rejected", None, None)
        later = await p.decide(claim["id"], p.approver(APPROVER_1), expected=409)
        assert error_code_of(later) == "CLAIM_NOT_IN_REVIEW"
        assert outbox(p.benefits, "benefits.entitlement.granted.v1") == []
        # A new claim may be made after a rejection (it is not a benefit held).
        fresh = await p.claim({"kind": "basic_pension", "person_id": person, "effective_period": 202612})
        assert fresh["status"] == "in_review"


# -- checks that block ------------------------------------------------------------------------------------------------


async def test_failed_checks_block_the_claim_with_the_reason(settings, make_settings, nats_server):
    # 004 第10项: enrolment and contributions verified online with accounts before the claim proceeds.
    async with platform(settings, make_settings, nats_server) as p:
        unenrolled = await p.person(born=date(1960, 5, 5), name="陈明")
        claim = await p.claim({"kind": "basic_pension", "person_id": unenrolled, "effective_period": 202612})
        assert claim["status"] == "blocked"
        assert claim["blocked_checks"] == ["NOT_ENROLLED", "INSUFFICIENT_CONTRIBUTION", "NO_CONTRIBUTION_INDEX"]
        assert claim["blocked_reason"].startswith("NOT_ENROLLED: 202612 未参加 PEN_EMP")
        assert claim["monthly_amount_fen"] is None and claim["computation"]["flags"]["not_computed"]
        assert claim["next_level"] is None

        deceased = await p.person(born=date(1958, 3, 3), name="赵强", enrol={"PEN_EMP": 201101},
                                  months={"PEN_EMP": (201101, 202611)}, balance="1000.00",
                                  index=[(191, 600_000, 600_000)], life_status="deceased")
        dead = await p.claim({"kind": "basic_pension", "person_id": deceased, "effective_period": 202612})
        assert dead["status"] == "blocked" and dead["blocked_checks"] == ["DECEASED"]
        assert "死亡" in dead["blocked_reason"]

        # Below the statutory age without an early-retirement basis.
        young = await p.person(born=date(1971, 6, 20), name="孙立", enrol={"PEN_EMP": 201101},
                               months={"PEN_EMP": (201101, 202611)}, balance="1000.00",
                               index=[(191, 600_000, 600_000)])
        early = await p.claim({"kind": "basic_pension", "person_id": young, "effective_period": 202612})
        assert early["blocked_checks"] == ["UNDER_RETIREMENT_AGE"] and early["age_at_effective"] == 55

        submitted = {e["claim_id"]: e for e in outbox(p.benefits, "benefits.claim.submitted.v1")}
        assert {submitted[c["id"]]["status"] for c in (claim, dead, early)} == {"blocked"}
        assert submitted[dead["id"]]["blocked_reason"] == dead["blocked_reason"]

        # Input errors are refused, not stored.
        unknown = await p.benefits.post("/claims", headers=p.clerk, json={
            "kind": "basic_pension", "person_id": new_event_id(), "effective_period": 202612})
        assert unknown.status_code == 404 and error_code(unknown) == "PERSON_NOT_FOUND"
        other_region = await p.benefits.post("/claims", headers=p.headers("agency_clerk", subject="c2",
                                                                          region="150200"),
                                             json={"kind": "basic_pension", "person_id": young,
                                                   "effective_period": 202612})
        assert other_region.status_code == 403 and error_code(other_region) == "OUT_OF_REGION"
        typed = await p.benefits.post("/claims", headers=p.clerk, json={
            "kind": "basic_pension", "person_id": young, "effective_period": 202612, "monthly_amount": "9999.00"})
        assert typed.status_code == 422 and error_code(typed) == "AMOUNT_COMPUTED_BY_SYSTEM"
        no_documents = await p.benefits.post("/claims", headers=p.clerk, json={
            "kind": "one_off", "fund": "PEN_EMP", "person_id": young, "effective_period": 202612,
            "one_off_amount": "100.00"})
        assert no_documents.status_code == 422 and error_code(no_documents) == "DOCUMENTS_REQUIRED"
        float_amount = await p.benefits.post("/claims", headers=p.clerk, json={
            "kind": "injury", "person_id": young, "effective_period": 202612, "one_off_amount": 100.5,
            "documents": [{"kind": "工伤认定决定书", "reference": "呼人社工认〔2026〕1号"}]})
        assert float_amount.status_code == 422
        with Session(engine_of(p.benefits)) as session:
            assert session.execute(select(func.count()).select_from(Claim)).scalar_one() == 3


async def test_accounts_unreachable_is_503_and_nothing_is_stored(settings, make_settings, nats_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{s.getsockname()[1]}"
    benefits_settings = make_settings(nats_server.url, accounts_url=nowhere)
    async with running_app(create_service_app(catalogue.spec("benefits"), benefits_settings)) as benefits:
        await approved_benefit_parameters(benefits, _auth_for(settings), valid_from=202401)
        p = Platform(settings=settings, benefits=benefits, accounts=None, accounts_app=None)
        person = await p.person(born=date(1966, 1, 1), name="周杰", in_accounts=False)
        response = await benefits.post("/claims", headers=p.clerk, json={
            "kind": "basic_pension", "person_id": person, "effective_period": 202612})
        assert response.status_code == 503 and error_code(response) == "DEPENDENCY_UNAVAILABLE"
        with Session(engine_of(benefits)) as session:
            assert session.execute(select(func.count()).select_from(Claim)).scalar_one() == 0
        assert outbox(benefits, "benefits.claim.submitted.v1") == []


# -- special business ------------------------------------------------------------------------------------------------


async def test_large_single_payment_needs_the_extra_review(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        person = await p.person(born=date(1980, 2, 2), name="吴芳", sex="F", enrol={"PEN_EMP": 201501},
                                months={"PEN_EMP": (201501, 202611)})
        documents = [{"kind": "一次性待遇审批表", "reference": "呼社保一〔2026〕88号", "issued_on": "2026-11-20"}]
        large = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person, "effective_period": 202612,
                               "one_off_amount": "60000.00", "documents": documents})
        assert (large["status"], large["large_amount"], large["importance"]) == ("in_review", True, "ordinary")
        assert (large["one_off_amount_fen"], large["one_off_amount"]) == (6_000_000, "60000.00")
        assert [lv["level"] for lv in large["levels"]] == ["first_review", "second_review", "large_amount_review"]
        assert large["computation"]["flags"]["large_amount_threshold_fen"] == 5_000_000

        await p.decide(large["id"], p.reviewer(REVIEWER_1))
        reviewed = await p.decide(large["id"], p.approver(APPROVER_1))
        # Two ordinary levels passed, but not payable yet: the large-amount review is still due.
        assert (reviewed["status"], reviewed["next_level"], reviewed["entitlement_id"]) == \
            ("in_review", "large_amount_review", None)
        assert outbox(p.benefits, "benefits.entitlement.granted.v1") == []
        by_reviewer = await p.decide(large["id"], p.reviewer(REVIEWER_2), expected=403)
        assert error_code_of(by_reviewer) == "ROLE_NOT_ALLOWED_AT_LEVEL"
        same = await p.decide(large["id"], p.approver(APPROVER_1), expected=403)
        assert error_code_of(same) == "SAME_PERSON_TWO_LEVELS"
        paid = await p.decide(large["id"], p.approver(APPROVER_2), level="large_amount_review")
        assert paid["status"] == "approved"
        granted = outbox(p.benefits, "benefits.entitlement.granted.v1")
        assert [(e["monthly_amount_fen"], e["start_period"], e["end_period"], e["levels"], e["large_amount_reviewed"])
                for e in granted] == [(6_000_000, 202612, 202612,
                                       ["first_review", "second_review", "large_amount_review"], True)]

        # Exactly the threshold is not "above" it; the same document cannot pay twice.
        at_threshold = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person,
                                      "effective_period": 202612, "one_off_amount": "50000.00",
                                      "documents": [{"kind": "一次性待遇审批表", "reference": "呼社保一〔2026〕89号"}]})
        assert at_threshold["large_amount"] is False and len(at_threshold["levels"]) == 2
        reused = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person,
                                "effective_period": 202701, "one_off_amount": "100.00", "documents": documents})
        assert reused["status"] == "blocked" and reused["blocked_checks"] == ["DOCUMENTS_ALREADY_USED"]

        # A one-off back payment is important business (3 levels) and says how many months it covers (S09).
        back = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person, "effective_period": 202612,
                              "one_off_amount": "12000.00", "back_payment_from": 202401, "back_payment_to": 202512,
                              "documents": [{"kind": "补发审批表", "reference": "呼社保补〔2026〕3号"}]})
        assert (back["importance"], back["back_payment_months"], len(back["levels"])) == ("important", 24, 3)
        event = next(e for e in outbox(p.benefits, "benefits.claim.submitted.v1") if e["claim_id"] == back["id"])
        assert event["back_payment_months"] == 24 and event["importance"] == "important"


async def test_early_retirement_is_flagged_and_women_retire_by_post(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        # A man of 55 with an approved special-work-type basis (特殊工种).
        miner = await p.person(born=date(1971, 6, 20), name="钱勇", enrol={"PEN_EMP": 201101},
                               months={"PEN_EMP": (201101, 202611)}, balance="17000.00",
                               index=[(191, 600_000, 600_000)])
        basis = "特殊工种（井下作业满 9 年），呼人社特审〔2026〕12号"
        claim = await p.claim({"kind": "basic_pension", "person_id": miner, "effective_period": 202612,
                               "early_retirement_basis": basis})
        assert claim["status"] == "in_review" and claim["early_retirement"] is True
        assert claim["importance"] == "important" and claim["age_at_effective"] == 55
        flags = claim["computation"]["flags"]
        assert (flags["early_retirement_basis"], flags["statutory_age"]) == (basis, 60)
        # The divisor of his actual age: 1 700 000 ÷ 170 = 10 000 fen exactly.
        assert claim["computation"]["inputs"]["account_divisor"] == 170
        assert step(claim, "account_pension_fen") == 10_000
        event = next(e for e in outbox(p.benefits, "benefits.claim.submitted.v1") if e["claim_id"] == claim["id"])
        assert event["age_at_effective"] == 55  # oversight's S08

        # A woman in a worker post retires at 50, in a cadre post at 55; without the post type the age is unknown.
        worker = await p.person(born=date(1976, 3, 1), name="郑丽", sex="F", enrol={"PEN_EMP": 201101},
                                months={"PEN_EMP": (201101, 202611)}, balance="19500.00",
                                index=[(191, 600_000, 600_000)])
        unknown = await p.benefits.post("/claims", headers=p.clerk, json={
            "kind": "basic_pension", "person_id": worker, "effective_period": 202612})
        assert unknown.status_code == 422 and error_code(unknown) == "POST_TYPE_REQUIRED"
        as_worker = await p.claim({"kind": "basic_pension", "person_id": worker, "effective_period": 202612,
                                   "post_type": "worker"})
        assert as_worker["status"] == "in_review" and as_worker["early_retirement"] is False
        assert as_worker["computation"]["inputs"]["account_divisor"] == 195
        assert step(as_worker, "account_pension_fen") == 10_000  # 1 950 000 ÷ 195

        cadre = await p.person(born=date(1976, 3, 2), name="冯静", sex="F", enrol={"PEN_EMP": 201101},
                               months={"PEN_EMP": (201101, 202611)}, index=[(191, 600_000, 600_000)])
        as_cadre = await p.claim({"kind": "basic_pension", "person_id": cadre, "effective_period": 202612,
                                  "post_type": "cadre"})
        assert as_cadre["blocked_checks"] == ["UNDER_RETIREMENT_AGE"]


@pytest.mark.unit
def test_age_is_completed_years_on_the_first_day_of_the_month():
    assert age_at(date(1966, 11, 5), 202611) == 59
    assert age_at(date(1966, 11, 5), 202612) == 60
    assert age_at(date(1966, 12, 1), 202612) == 60
    assert age_at(date(1966, 12, 2), 202612) == 59


# -- unemployment and payment accounts --------------------------------------------------------------------------------


async def test_unemployment_months_by_contribution_years(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        cases = {}
        for months, name in ((30, "甲"), (84, "乙"), (130, "丙"), (8, "丁")):
            first = add_months(202611, -(months - 1))
            person = await p.person(born=date(1990, 1, 1), name=f"失业{name}", enrol={"UNEMP": first},
                                    months={"UNEMP": (first, 202611)})
            cases[months] = await p.claim({"kind": "unemployment", "person_id": person, "effective_period": 202612})

        # 2.5 years → 12 months, 7 → 18, 10.8 → 24; 8 months is less than a year: none.
        expected = {30: (12, 202711), 84: (18, 202805), 130: (24, 202811)}
        for months, (entitlement_months, end) in expected.items():
            claim = cases[months]
            assert claim["status"] == "in_review", claim
            assert step(claim, "entitlement_months") == entitlement_months and claim["end_period"] == end
            assert (claim["monthly_amount_fen"], claim["importance"]) == (180_000, "ordinary")
            assert claim["verification"]["enrolment_period"] == 202611  # the last insured month
        assert cases[8]["status"] == "blocked" and cases[8]["blocked_checks"] == ["INSUFFICIENT_CONTRIBUTION"]

        claim = cases[84]
        assert [lv["level"] for lv in claim["levels"]] == ["first_review", "second_review"]
        await p.decide(claim["id"], p.reviewer(REVIEWER_1))
        approved = await p.decide(claim["id"], p.approver(APPROVER_1))
        assert approved["status"] == "approved"
        with Session(engine_of(p.benefits)) as session:
            entitlement = session.get(Entitlement, approved["entitlement_id"])
        assert (entitlement.start_period, entitlement.end_period, entitlement.monthly_amount_fen) == \
            (202612, 202805, 180_000)


async def test_no_approval_without_an_account_in_the_beneficiarys_name(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        person = await p.person(born=date(1988, 8, 8), name="王磊", enrol={"UNEMP": 202001},
                                months={"UNEMP": (202001, 202611)},
                                payment_accounts=[("bank_account", "王某某", "active"), ("ss_card", "王磊", "closed")])
        claim = await p.claim({"kind": "unemployment", "person_id": person, "effective_period": 202612})
        await p.decide(claim["id"], p.reviewer(REVIEWER_1))
        refused = await p.decide(claim["id"], p.approver(APPROVER_1), expected=409)
        assert error_code_of(refused) == "NO_OWN_ACCOUNT"
        # Nothing of the refused approval was recorded.
        current = (await p.benefits.get(f"/claims/{claim['id']}", headers=p.clerk)).json()
        assert (current["status"], current["next_level"], len(current["decisions"])) == \
            ("in_review", "second_review", 1)
        with Session(engine_of(p.benefits)) as session:
            assert session.execute(select(func.count()).select_from(Entitlement)).scalar_one() == 0
            assert session.execute(select(func.count()).select_from(ClaimDecision)).scalar_one() == 1
            own = BeneficiaryAccount(bank_account_id=new_event_id(), person_id=person, kind="bank_account",
                                     bank_name="中国银行", account_no=make_card(999), holder_name="王磊",
                                     status="active")
            session.add(own)
            session.commit()
            own_id = own.bank_account_id
        approved = await p.decide(claim["id"], p.approver(APPROVER_1))
        assert approved["status"] == "approved"
        with Session(engine_of(p.benefits)) as session:
            assert session.get(Entitlement, approved["entitlement_id"]).bank_account_id == own_id


async def test_resident_pension_and_injury(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        # 城乡居民: basic amount 200.00 yuan + 13 900.00 ÷ 139 = 100.00 yuan → 300.00 yuan a month; 2 levels.
        resident = await p.person(born=date(1966, 5, 5), name="农民李", enrol={"PEN_RES": 201101},
                                  months={"PEN_RES": (201101, 202611)}, balance="13900.00")
        claim = await p.claim({"kind": "resident_pension", "person_id": resident, "effective_period": 202612})
        assert claim["status"] == "in_review" and claim["fund"] == "PEN_RES"
        assert (step(claim, "basic_pension_fen"), step(claim, "account_pension_fen"), claim["monthly_amount_fen"]) == \
            (20_000, 10_000, 30_000)
        assert claim["importance"] == "ordinary" and len(claim["levels"]) == 2
        young = await p.person(born=date(1970, 5, 5), name="农民赵", enrol={"PEN_RES": 201101},
                               months={"PEN_RES": (201101, 202611)})
        under = await p.claim({"kind": "resident_pension", "person_id": young, "effective_period": 202612})
        assert under["blocked_checks"] == ["UNDER_PENSION_AGE"]

        # Work injury: the amount comes from the determination documents; important business (3 levels).
        injured = await p.person(born=date(1985, 6, 15), name="工伤王", enrol={"INJURY": 202001})
        documents = [{"kind": "工伤认定决定书", "reference": "呼人社工认〔2026〕15号"},
                     {"kind": "劳动能力鉴定结论书", "reference": "呼劳鉴〔2026〕7号"}]
        monthly = await p.claim({"kind": "injury", "person_id": injured, "effective_period": 202612,
                                 "monthly_amount": "3200.00", "documents": documents})
        assert (monthly["status"], monthly["monthly_amount_fen"], monthly["importance"]) == \
            ("in_review", 320_000, "important")
        assert monthly["computation"]["method"] == "injury_entered" and len(monthly["documents"]) == 2
        # A lump sum on other documents may run alongside; a second monthly injury benefit may not.
        lump = await p.claim({"kind": "injury", "person_id": injured, "effective_period": 202612,
                              "one_off_amount": "45000.00",
                              "documents": [{"kind": "一次性伤残补助金核定表", "reference": "呼工核〔2026〕2号"}]})
        assert lump["status"] == "in_review" and lump["end_period"] == 202612
        second = await p.claim({"kind": "injury", "person_id": injured, "effective_period": 202701,
                                "monthly_amount": "3300.00",
                                "documents": [{"kind": "工伤认定决定书", "reference": "呼人社工认〔2026〕16号"}]})
        assert second["blocked_checks"] == ["DOUBLE_BENEFIT"]
        not_insured = await p.person(born=date(1985, 6, 16), name="未参保", enrol={"PEN_EMP": 202001})
        refused = await p.claim({"kind": "injury", "person_id": not_insured, "effective_period": 202612,
                                 "monthly_amount": "3200.00",
                                 "documents": [{"kind": "工伤认定决定书", "reference": "呼人社工认〔2026〕17号"}]})
        assert refused["blocked_checks"] == ["NOT_ENROLLED"]


# -- 退回 (return for correction) -------------------------------------------------------------------------------------


async def test_a_claim_is_returned_corrected_resubmitted_and_decided_again(settings, make_settings, nats_server):
    async with platform(settings, make_settings, nats_server) as p:
        person = await p.person(born=date(1980, 2, 2), name="吴芳", sex="F", enrol={"PEN_EMP": 201501},
                                months={"PEN_EMP": (201501, 202611)})
        documents = [{"kind": "一次性待遇审批表", "reference": "呼社保一〔2026〕90号", "issued_on": "2026-11-20"}]
        claim = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person, "effective_period": 202612,
                               "one_off_amount": "60000.00", "documents": documents})
        assert claim["large_amount"] is True and len(claim["levels"]) == 3
        url = f"/claims/{claim['id']}"
        dual = p.headers("agency_reviewer", "agency_approver", subject="dual.person")

        async def send_back(headers: dict, expected: int = 200, **body) -> dict:  # noqa: ANN001
            response = await p.benefits.post(f"{url}/returns", headers=headers,
                                             json={"reason": "缺少银行流水", **body})
            assert response.status_code == expected, response.text
            return response.json()

        first_level = await send_back(p.reviewer(REVIEWER_1), 409, to="previous_level")
        assert error_code_of(first_level) == "NO_PREVIOUS_LEVEL"
        await p.decide(claim["id"], dual)  # 初审 by a person holding both roles
        # 复核 sends it back to 初审: that decision is void, 初审 is the next level again
        back_one = await send_back(p.approver(APPROVER_1), to="previous_level")
        assert (back_one["status"], back_one["next_level"]) == ("in_review", "first_review")
        assert [(d["level"], d["decision"], d["returned_to"], d["voided_at"] is not None)
                for d in back_one["decisions"]] == [("first_review", "approve", None, True),
                                                    ("second_review", "return", "first_review", False)]
        wrong_role = await p.decide(claim["id"], p.approver(APPROVER_2), expected=403)
        assert error_code_of(wrong_role) == "ROLE_NOT_ALLOWED_AT_LEVEL"
        returner = await p.decide(claim["id"], p.approver(APPROVER_1), expected=403)  # returning was acting at 复核
        assert error_code_of(returner) == "SAME_PERSON_TWO_LEVELS"
        await p.decide(claim["id"], dual)  # its own level again: allowed
        # 复核 sends it back to the clerk: every decision so far is void, the claim waits for the correction
        returned = await send_back(p.approver(APPROVER_1), level="second_review")
        assert (returned["status"], returned["next_level"]) == ("returned", None)
        assert await send_back(p.approver(APPROVER_1), level="second_review") == returned  # a lost answer's repeat
        assert all(lv["done"] is False for lv in returned["levels"])
        listed = (await p.benefits.get("/claims", params={"status": "returned"}, headers=p.clerk)).json()
        assert [c["id"] for c in listed["items"]] == [claim["id"]]
        closed = await p.decide(claim["id"], p.approver(APPROVER_2), expected=409)
        assert error_code_of(closed) == "CLAIM_NOT_IN_REVIEW"
        assert error_code_of(await send_back(p.approver(APPROVER_2), 409)) == "CLAIM_NOT_IN_REVIEW"
        # a second claim cannot use the same documents while this one is only returned
        reused = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person, "effective_period": 202701,
                                "one_off_amount": "100.00", "documents": documents})
        assert reused["blocked_checks"] == ["DOCUMENTS_ALREADY_USED"]

        # the clerk corrects: refusals first
        for body, status, code in (({"one_off_amount": "40000.00"}, 422, "VALIDATION_ERROR"),
                                   ({"reason": "改金额", "monthly_amount": "100.00"}, 422, "AMOUNT_NOT_ENTERED"),
                                   ({"reason": "改材料", "documents": []}, 422, "DOCUMENTS_REQUIRED"),
                                   ({"reason": "改金额", "one_off_amount": 40000.5}, 422, None)):
            refused = await p.benefits.post(f"{url}/resubmission", headers=p.clerk, json=body)
            assert refused.status_code == status, (body, refused.text)
            assert code is None or error_code(refused) == code, (body, refused.text)
        by_reviewer = await p.benefits.post(f"{url}/resubmission", headers=p.reviewer(REVIEWER_2),
                                            json={"reason": "越权"})
        assert by_reviewer.status_code == 403
        corrected = await p.benefits.post(f"{url}/resubmission", headers=p.clerk, json={
            "reason": "按银行流水更正金额", "one_off_amount": "40000.00",
            "documents": [*documents, {"kind": "银行流水", "reference": "流水-2026-11"}]})
        assert corrected.status_code == 200, corrected.text
        again = corrected.json()
        assert (again["status"], again["next_level"], again["one_off_amount"], again["large_amount"]) == \
            ("in_review", "first_review", "40000.00", False)
        assert [lv["level"] for lv in again["levels"]] == ["first_review", "second_review"]  # no longer large
        assert len(again["documents"]) == 2 and again["decisions"][-1]["decision"] == "resubmit"
        twice = await p.benefits.post(f"{url}/resubmission", headers=p.clerk, json={"reason": "再次"})
        assert twice.status_code == 409 and error_code(twice) == "CLAIM_NOT_RETURNED"

        # decided again from 初审; the person who acted at 初审 before still cannot take 复核
        await p.decide(claim["id"], p.reviewer(REVIEWER_1))
        two_levels = await p.decide(claim["id"], dual, expected=403)
        assert error_code_of(two_levels) == "SAME_PERSON_TWO_LEVELS"
        approved = await p.decide(claim["id"], p.approver(APPROVER_1))  # who returned it at 复核 decides 复核
        assert approved["status"] == "approved" and approved["entitlement_id"]
        assert [(d["level"], d["decision"], d["voided_at"] is None) for d in approved["decisions"]] == [
            ("first_review", "approve", False), ("second_review", "return", True),
            ("first_review", "approve", False), ("second_review", "return", True),
            ("submission", "resubmit", True), ("first_review", "approve", True), ("second_review", "approve", True)]
        granted = outbox(p.benefits, "benefits.entitlement.granted.v1")
        assert [(e["monthly_amount_fen"], e["levels"]) for e in granted] == [(4_000_000,
                                                                             ["first_review", "second_review"])]

        with Session(engine_of(p.benefits)) as session:
            actions = session.execute(select(AuditEntry.action).where(AuditEntry.entity_id == claim["id"])
                                      .order_by(AuditEntry.seq)).scalars().all()
        assert actions == ["claim.submit", "claim.approve", "claim.return", "claim.approve", "claim.return",
                           "claim.resubmit", "claim.approve", "claim.approve"]
        filed = [item for event in outbox(p.benefits, "benefits.archive_items.filed.v1") for item in event["items"]
                 if item["item_type"] == "claim_decision" and item["act_id"].startswith(claim["id"])]
        assert len({item["act_id"] for item in filed}) == len(filed) == 7  # each step its own act
        assert sum("退回" in item["decision"] for item in filed) == 2

        # only deciders return; a return needs its reason
        other = await p.claim({"kind": "one_off", "fund": "PEN_EMP", "person_id": person, "effective_period": 202701,
                               "one_off_amount": "100.00",
                               "documents": [{"kind": "一次性待遇审批表", "reference": "呼社保一〔2026〕91号"}]})
        by_clerk = await p.benefits.post(f"/claims/{other['id']}/returns", headers=p.clerk, json={"reason": "x"})
        assert by_clerk.status_code == 403
        no_reason = await p.benefits.post(f"/claims/{other['id']}/returns", headers=p.reviewer(REVIEWER_1),
                                          json={"reason": " "})
        assert no_reason.status_code == 422
        bad_target = await p.benefits.post(f"/claims/{other['id']}/returns", headers=p.reviewer(REVIEWER_1),
                                           json={"reason": "缺材料", "to": "nobody"})
        assert bad_target.status_code == 422
