import json
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request, status
from sqlmodel import Session

from services.benefits.claims import service
from services.benefits.claims.schemas import (
    ClaimOut,
    ClaimPage,
    ClaimRequest,
    DecisionOut,
    DecisionRequest,
    LevelOut,
    ResubmissionRequest,
    ReturnRequest,
)
from services.benefits.claims.verification import ask_accounts
from services.benefits.models import Claim
from services.kernel.auth import allow
from services.kernel.db import unit_of_work
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep
from services.kernel.settings import SettingsDep
from services.kernel.paging import SortQuery

CLERK = allow("agency_clerk")
DECIDERS = allow("agency_reviewer", "agency_approver")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor", "oversight_officer")

router = APIRouter(prefix="/claims", tags=["claims"])


def claim_out(session: Session, claim: Claim) -> ClaimOut:
    decisions = service.decisions_of(session, claim.id)
    done = {d.level for d in service.live(decisions)}
    pending = service.next_level(claim, decisions)
    entitlement = service.entitlement_of(session, claim.id) if claim.status == "approved" else None
    computation = json.loads(claim.computation)
    verification = json.loads(claim.verification)
    flags = computation.get("flags", {})
    return ClaimOut(
        id=claim.id, person_id=claim.person_id, kind=claim.kind, fund=claim.fund, importance=claim.importance,
        region=claim.region, status=claim.status, blocked_reason=claim.blocked_reason,
        blocked_checks=[c["code"] for c in verification.get("checks", []) if not c.get("ok")],
        effective_period=claim.effective_period, end_period=claim.end_period,
        monthly_amount_fen=claim.monthly_amount_fen,
        monthly_amount=None if claim.monthly_amount_fen is None else fen_to_yuan(claim.monthly_amount_fen),
        one_off_amount_fen=claim.one_off_amount_fen,
        one_off_amount=None if claim.one_off_amount_fen is None else fen_to_yuan(claim.one_off_amount_fen),
        large_amount=claim.large_amount, early_retirement=bool(flags.get("early_retirement")),
        age_at_effective=flags.get("age_at_effective"), back_payment_months=flags.get("back_payment_months"),
        computation=computation, verification=verification, documents=json.loads(claim.documents or "[]"),
        submitted_at=claim.submitted_at, submitted_by=claim.submitted_by, decided_at=claim.decided_at,
        levels=[LevelOut(level=level, role=role, done=level in done) for level, role in service.levels_of(claim)],
        next_level=pending[0] if pending else None,
        decisions=[DecisionOut.model_validate(d, from_attributes=True) for d in decisions],
        entitlement_id=entitlement.id if entitlement else None,
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ClaimOut, dependencies=[CLERK],
    summary="Submit a claim (待遇申请); verified online with accounts before it proceeds",
    description="The person (``person_id`` or ``citizen_id``) must be in benefits' registry mirror and in the clerk's "
                "region. Benefits asks accounts — forwarding the caller's token — whether the person is found and "
                "enrolled in the fund and how many contribution months are posted (pensions: the individual account "
                "balance too), and checks life status, existing benefits and age itself. **A failed check still "
                "answers 201**: the claim is stored with `status: \"blocked\"`, `blocked_reason` and "
                "`blocked_checks` (codes such as NOT_ENROLLED, DECEASED, DOUBLE_BENEFIT, INSUFFICIENT_CONTRIBUTION, "
                "UNDER_RETIREMENT_AGE), so the attempt stays on record. Accounts unreachable: 503 "
                "`DEPENDENCY_UNAVAILABLE` (naming accounts), nothing stored. Pension and unemployment amounts are computed by the "
                "system (each step in `computation`); injury and one-off amounts are entered with documents.",
)
async def submit_claim(body: ClaimRequest, request: Request, settings: SettingsDep) -> ClaimOut:
    engine = request.app.state.engine

    def prepare() -> service.Prepared:
        with Session(engine, expire_on_commit=False) as session:
            return service.prepare(session, body)

    prepared = await anyio.to_thread.run_sync(prepare)
    answers = await ask_accounts(request, settings, citizen_id=prepared.person.citizen_id, person_id=prepared.person.person_id,
                                 fund=body.fund, enrolment_period=prepared.enrolment_period,
                                 months_until=prepared.months_until, with_balance=prepared.with_balance)

    def store() -> ClaimOut:
        with unit_of_work(engine) as session:  # its own transaction: none is held while accounts is asked
            return claim_out(session, service.store(session, prepared, answers))

    return await anyio.to_thread.run_sync(store)


@router.get("", response_model=ClaimPage, dependencies=[READERS], summary="Claims of my area, newest first")
def list_claims(
    session: SessionDep,
    person_id: str | None = None,
    status_: Annotated[str | None, Query(alias="status",
                                         pattern="^(in_review|blocked|approved|rejected|withdrawn|returned)$")] = None,
    kind: Annotated[str | None, Query(pattern="^(basic_pension|resident_pension|unemployment|injury|one_off)$")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    sort: SortQuery = None,
) -> ClaimPage:
    rows, next_cursor = service.list_claims(session, person_id=person_id, status=status_, kind=kind, after=after,
                                            limit=limit, sort=sort)
    return ClaimPage(items=[claim_out(session, c) for c in rows], next_cursor=next_cursor)


@router.get("/{claim_id}", response_model=ClaimOut, dependencies=[READERS],
            summary="One claim with its verification, computation, levels and decisions")
def get_claim(claim_id: str, session: SessionDep) -> ClaimOut:
    return claim_out(session, service.get_claim(session, claim_id))


@router.post(
    "/{claim_id}/decisions", response_model=ClaimOut, dependencies=[DECIDERS],
    summary="Decide the claim's next level (初审/复核/复审/审批/大额复核), with the reason",
    description="Ordinary claims: first_review (agency_reviewer) → second_review (agency_approver). Important claims "
                "(basic pension, early retirement, injury, one-off back payment): first_review (agency_reviewer) → "
                "second_review (agency_reviewer) → approval (agency_approver). Above the large-amount threshold: "
                "then large_amount_review (agency_approver). One person never decides two levels of a claim (403 "
                "SAME_PERSON_TWO_LEVELS); the submitter decides none (403 SUBMITTER_CANNOT_DECIDE). A rejection ends "
                "the claim. The last approval grants the entitlement into the person's own account (409 "
                "NO_OWN_ACCOUNT when there is none) and publishes EntitlementGranted.",
)
def decide_claim(claim_id: str, body: DecisionRequest, session: SessionDep) -> ClaimOut:
    return claim_out(session, service.decide(session, claim_id, body))


@router.post(
    "/{claim_id}/returns", response_model=ClaimOut, dependencies=[DECIDERS],
    summary="退回: the claim's next level sends it back with the reason, to the clerk or to the level before",
    description="Taken at the claim's next level by its role, under the decision rules (403 SUBMITTER_CANNOT_DECIDE, "
                "SAME_PERSON_TWO_LEVELS — a return counts as acting at that level —, ROLE_NOT_ALLOWED_AT_LEVEL; 409 "
                "WRONG_LEVEL, CLAIM_NOT_IN_REVIEW). `to: clerk`: the decisions so far become void and the claim is "
                "`returned` until the clerk resubmits it (it then starts again at 初审). `to: previous_level`: the "
                "level before's decision becomes void and that level decides again (409 NO_PREVIOUS_LEVEL at 初审). "
                "The return is kept in `decisions` (`decision: return`, `returned_to`), audited and archived.",
)
def return_claim(claim_id: str, body: ReturnRequest, session: SessionDep) -> ClaimOut:
    return claim_out(session, service.return_claim(session, claim_id, body))


@router.post(
    "/{claim_id}/resubmission", response_model=ClaimOut, dependencies=[CLERK],
    summary="The clerk corrects a returned claim and sends it to review again (from 初审)",
    description="Only a `returned` claim (409 CLAIM_NOT_RETURNED). `reason` says what was corrected; `documents` "
                "replace the claim's documents when given; injury and one-off amounts may be corrected (computed "
                "amounts cannot: 422 AMOUNT_NOT_ENTERED). The resubmitting clerk decides no level of the claim.",
)
def resubmit_claim(claim_id: str, body: ResubmissionRequest, session: SessionDep) -> ClaimOut:
    return claim_out(session, service.resubmit(session, claim_id, body))
