"""Claims and their approval levels.

Submission (``agency_clerk``, in the person's region) runs in three steps, so that nothing is stored on unverified
data: ``prepare`` (the person from the local registry mirror, region check, the parameters in force), the online
verification with accounts (``verification.ask_accounts``: 503 DEPENDENCY_UNAVAILABLE if accounts cannot answer,
nothing stored), then ``store``: the local checks, the computation, and the claim with its audit entry and
``ClaimSubmitted`` in one transaction.

Checks (each recorded in ``verification.checks``; every failed one is a reason):

- ``person``: accounts finds the citizen id, under the same person id as the mirror;
- ``life_status``: deceased (or imprisoned) in the mirror or in accounts' answer → blocked;
- ``enrolment``: an enrolment of the claim's fund covers the effective month (unemployment: the month before it,
  the last insured month of the job just lost);
- ``contribution_months``: months posted up to the month before the effective month; pensions need
  ``pension_min_contribution_months`` (180), unemployment the first band's years (12 months);
- ``existing_benefit``: no double benefit — an active or suspended entitlement, or a claim in review, of the same
  kind (the two pensions count as one kind); one-off payments: no document reference already used by another claim;
- ``age`` at the effective month (completed years on its first day, from the birth date): a basic pension below the
  statutory age (men; women by ``post_type``) needs an ``early_retirement_basis`` and is flagged (S08); a resident
  pension needs the resident pension age;
- ``computable``: the basic pension needs contribution index rows and a divisor for the age.

A failed check does not refuse the request: the claim is stored with status ``blocked``, ``blocked_reason`` (each
failed check as ``CODE: message``) and 201, so the attempt and its reasons stay on record and reach oversight
(``ClaimSubmitted`` with status blocked). A blocked claim is final; once the cause is remedied a new claim is made.
Input errors (unknown person, a woman's basic pension without ``post_type``, no parameters) are 4xx, not stored.

Levels (004 第4项; 001 第十八条、第二十一条):

- ordinary (resident pension, unemployment, one-off without back payment): ``first_review`` (初审, agency_reviewer)
  → ``second_review`` (复核, agency_approver);
- important (basic pension = retirement incl. early retirement, work injury, one-off back payment):
  ``first_review`` (初审, agency_reviewer) → ``second_review`` (复审, agency_reviewer, another person) →
  ``approval`` (审批, agency_approver);
- a single payment (monthly amount or one-off amount) above the large-amount threshold adds
  ``large_amount_review`` (大额复核) by an ``agency_approver`` — another person than every earlier level — before the
  claim becomes payable. Internal control (``internal_auditor``) is deliberately kept out of the decision so that it
  can audit the same claim afterwards.

Nobody acts at two levels of one claim (403 SAME_PERSON_TWO_LEVELS, also enforced by a unique constraint), the
submitter decides no level (403 SUBMITTER_CANNOT_DECIDE), each level needs its role (403 ROLE_NOT_ALLOWED_AT_LEVEL).
A rejection at any level ends the claim. The last approval re-checks life status and double benefit and grants the
``Entitlement`` into the person's own active account (social security card first, then bank account, holder name =
the person's name; none → 409 NO_OWN_ACCOUNT, nothing recorded: cash is never a method), with
``EntitlementGranted``. A one-off payment becomes an entitlement of one month (start = end = effective month).
"""

import json
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.benefits.claims import computation
from services.benefits.claims.schemas import (
    ENTERED_KINDS,
    ClaimRequest,
    DecisionRequest,
    ResubmissionRequest,
    ReturnRequest,
)
from services.benefits.claims.verification import AccountsAnswers
from services.benefits.models import (
    BeneficiaryAccount,
    BeneficiaryPerson,
    Claim,
    ClaimDecision,
    ContributionIndex,
    Entitlement,
)
from services.benefits.parameters.service import Parameters, parameters_for
from services.contracts.benefits import ClaimDecided, ClaimSubmitted, EntitlementGranted
from services.kernel import archives, clock, context
from services.kernel.audit import append_audit, canonical_json
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from services.kernel.money import yuan_to_fen
from services.kernel.outbox import record_event
from services.kernel.paging import SortKeys
from services.kernel.periods import add_months, months_between

SOURCE = "benefits"
ENTITY = "claim"
PENSION_KINDS = frozenset({"basic_pension", "resident_pension"})
ORDINARY_LEVELS = (("first_review", "agency_reviewer"), ("second_review", "agency_approver"))
IMPORTANT_LEVELS = (("first_review", "agency_reviewer"), ("second_review", "agency_reviewer"),
                    ("approval", "agency_approver"))
LARGE_AMOUNT_LEVEL = ("large_amount_review", "agency_approver")
LEVEL_NAMES = {"first_review": "初审", "second_review": "复核/复审", "approval": "审批", "large_amount_review": "大额复核"}
OPEN_ENTITLEMENT = ("active", "suspended")
OPEN_CLAIM = ("in_review", "returned")  # a returned claim comes back: it still counts as the person's claim
LEVEL_DECISIONS = ("approve", "reject")
CLERK_LEVEL = "submission"  # the level of a resubmission step in a claim's history


def _actor():  # noqa: ANN202
    return context.current().actor


# -- preparation -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonSnapshot:
    person_id: str
    citizen_id: str
    name: str
    sex: str
    birth_date: date
    region: str
    life_status: str


@dataclass(frozen=True)
class Prepared:
    request: ClaimRequest
    person: PersonSnapshot
    parameters: Parameters
    enrolment_period: int  # the month whose enrolment is verified
    months_until: int  # contribution months are counted up to this month

    @property
    def with_balance(self) -> bool:
        return self.request.kind in PENSION_KINDS


def _find_person(session: Session, request: ClaimRequest) -> BeneficiaryPerson:
    if request.person_id is not None:
        person = session.get(BeneficiaryPerson, request.person_id)
    else:
        person = session.execute(
            select(BeneficiaryPerson).where(BeneficiaryPerson.citizen_id == request.citizen_id)
        ).scalar_one_or_none()
    if person is None:
        raise NotFound("PERSON_NOT_FOUND", "待遇系统尚未收到该人员的参保登记信息")
    return person


def prepare(session: Session, request: ClaimRequest) -> Prepared:
    person = _find_person(session, request)
    ensure_in_region(_actor(), person.region)
    parameters = parameters_for(session, person.region, request.effective_period)
    if request.kind == "basic_pension" and person.sex != "M" and request.post_type is None:
        raise Invalid("POST_TYPE_REQUIRED", "女职工申领基本养老金须写明岗位类型（post_type：cadre 干部 / worker 工人），"
                                            "以确定法定退休年龄")
    before = add_months(request.effective_period, -1)
    snapshot = PersonSnapshot(person_id=person.person_id, citizen_id=person.citizen_id, name=person.name,
                              sex=person.sex, birth_date=person.birth_date, region=person.region,
                              life_status=person.life_status)
    return Prepared(request=request, person=snapshot, parameters=parameters,
                    enrolment_period=before if request.kind == "unemployment" else request.effective_period,
                    months_until=before)


# -- checks ----------------------------------------------------------------------------------------------------------


def age_at(birth_date: date, period: int) -> int:
    """Completed years on the first day of the month ``period``."""
    year, month = divmod(period, 100)
    return year - birth_date.year - ((month, 1) < (birth_date.month, birth_date.day))


@dataclass
class Checks:
    items: list[dict[str, Any]] = field(default_factory=list)

    def ok(self, check: str, **detail: Any) -> None:
        self.items.append({"check": check, "ok": True, **detail})

    def fail(self, check: str, code: str, message: str, **detail: Any) -> None:
        self.items.append({"check": check, "ok": False, "code": code, "message": message, **detail})

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.items if not c["ok"]]

    @property
    def reason(self) -> str | None:
        return "; ".join(f"{c['code']}: {c['message']}" for c in self.failed) or None


def _kinds_excluding(kind: str) -> list[str]:
    """Kinds that may not run alongside a new claim of ``kind`` (the two pensions exclude each other)."""
    return sorted(PENSION_KINDS) if kind in PENSION_KINDS else [kind]


def _is_one_off(kind: str, monthly_fen: int | None) -> bool:
    return kind == "one_off" or (kind == "injury" and monthly_fen is None)


def _open_benefits(session: Session, person_id: str, kind: str, *, exclude_claim: str | None = None) -> list[str]:
    """Recurring benefits excluding a new one of ``kind``, already granted (active or suspended) or in review, as
    "entitlement:id" / "claim:id". One-off payments (one-off claims, injury lump sums) never count."""
    kinds = _kinds_excluding(kind)
    granted = session.execute(
        select(Entitlement, Claim).join(Claim, Claim.id == Entitlement.claim_id)
        .where(Entitlement.person_id == person_id, Entitlement.kind.in_(kinds),
               Entitlement.status.in_(OPEN_ENTITLEMENT))
    ).all()
    found = [f"entitlement:{e.id}" for e, c in granted if not _is_one_off(c.kind, c.monthly_amount_fen)]
    found += [f"claim:{c.id}" for c in session.execute(
        select(Claim).where(Claim.person_id == person_id, Claim.kind.in_(kinds), Claim.status.in_(OPEN_CLAIM))
    ).scalars() if c.id != exclude_claim and not _is_one_off(c.kind, c.monthly_amount_fen)]
    return found


def _used_documents(session: Session, person_id: str, references: set[str]) -> list[str]:
    """Document references of ``references`` already used by another claim of the person in review or approved."""
    used: list[str] = []
    for claim in session.execute(
        select(Claim).where(Claim.person_id == person_id, Claim.status.in_((*OPEN_CLAIM, "approved")),
                            Claim.documents.is_not(None))
    ).scalars():
        for document in json.loads(claim.documents or "[]"):
            if document.get("reference") in references:
                used.append(f"{document['reference']} (claim {claim.id})")
    return used


def _check_life(checks: Checks, person: PersonSnapshot, answers: AccountsAnswers) -> None:
    statuses = {person.life_status, answers.enrolment.get("life_status") or "alive"}
    if "deceased" in statuses:
        checks.fail("life_status", "DECEASED", "登记为死亡，不能申领待遇", mirror=person.life_status,
                    accounts=answers.enrolment.get("life_status"))
    elif "imprisoned" in statuses:
        checks.fail("life_status", "IMPRISONED", "登记为服刑在押，暂不能申领待遇（001 第二十七条）",
                    mirror=person.life_status, accounts=answers.enrolment.get("life_status"))
    else:
        checks.ok("life_status", mirror=person.life_status, accounts=answers.enrolment.get("life_status"))


def _min_months(prepared: Prepared) -> int:
    kind, document = prepared.request.kind, prepared.parameters.document
    if kind in PENSION_KINDS:
        return document.pension_min_contribution_months
    if kind == "unemployment":
        return document.unemployment_min_months
    return 0


def run_checks(session: Session, prepared: Prepared, answers: AccountsAnswers) -> tuple[Checks, dict[str, Any]]:
    """Every check of the module docstring; returns them and the facts the computation needs."""
    request, person, document = prepared.request, prepared.person, prepared.parameters.document
    checks, facts = Checks(), {}
    enrolment, months = answers.enrolment, answers.contribution_months

    if not enrolment.get("person_found") or enrolment.get("person_id") != person.person_id:
        checks.fail("person", "PERSON_NOT_FOUND_IN_ACCOUNTS", "参保登记系统中没有该人员（或编号不一致）",
                    accounts_person_id=enrolment.get("person_id"))
    else:
        checks.ok("person", person_id=person.person_id)

    _check_life(checks, person, answers)

    if enrolment.get("enrolled"):
        checks.ok("enrolment", fund=request.fund, period=prepared.enrolment_period,
                  enrolment_id=enrolment.get("enrolment_id"), status=enrolment.get("status"))
    else:
        checks.fail("enrolment", "NOT_ENROLLED", f"{prepared.enrolment_period} 未参加 {request.fund}",
                    fund=request.fund, period=prepared.enrolment_period)

    contribution_months = int(months.get("months") or 0)
    facts["contribution_months"] = contribution_months
    needed = _min_months(prepared)
    if contribution_months < needed:
        checks.fail("contribution_months", "INSUFFICIENT_CONTRIBUTION",
                    f"截至 {prepared.months_until} 累计缴费 {contribution_months} 个月，不足 {needed} 个月",
                    months=contribution_months, needed=needed)
    else:
        checks.ok("contribution_months", months=contribution_months, needed=needed, until=prepared.months_until)

    monthly_entered = yuan_to_fen(request.monthly_amount) if request.monthly_amount is not None else None
    if _is_one_off(request.kind, monthly_entered):
        references = {d.reference for d in request.documents}
        used = _used_documents(session, person.person_id, references)
        if used:
            checks.fail("existing_benefit", "DOCUMENTS_ALREADY_USED",
                        f"材料已用于其他待遇申请：{'、'.join(used)}（不得重复支付）", used=used)
        else:
            checks.ok("existing_benefit", one_off=True)
    else:
        existing = _open_benefits(session, person.person_id, request.kind)
        if existing:
            checks.fail("existing_benefit", "DOUBLE_BENEFIT", "已享受（或正在审核）同类待遇，不得重复享受",
                        existing=existing)
        else:
            checks.ok("existing_benefit", existing=[])

    age = age_at(person.birth_date, request.effective_period)
    facts["age"], facts["early_retirement"] = age, False
    if request.kind == "basic_pension":
        statutory = document.retirement_age(person.sex, request.post_type)
        facts["statutory_age"] = statutory
        if age >= statutory:
            checks.ok("age", age=age, statutory_age=statutory)
        elif request.early_retirement_basis:
            facts["early_retirement"] = True
            checks.ok("age", age=age, statutory_age=statutory, early_retirement=True,
                      basis=request.early_retirement_basis)
        else:
            checks.fail("age", "UNDER_RETIREMENT_AGE",
                        f"{request.effective_period} 时 {age} 岁，未到法定退休年龄 {statutory} 岁，且未提供提前退休依据",
                        age=age, statutory_age=statutory)
    elif request.kind == "resident_pension":
        if age >= document.resident_pension_age:
            checks.ok("age", age=age, pension_age=document.resident_pension_age)
        else:
            checks.fail("age", "UNDER_PENSION_AGE",
                        f"{request.effective_period} 时 {age} 岁，未到城乡居民养老保险领取年龄 {document.resident_pension_age} 岁",
                        age=age, pension_age=document.resident_pension_age)
    else:
        checks.ok("age", age=age)

    if request.kind == "basic_pension":
        rows = session.execute(
            select(ContributionIndex).where(ContributionIndex.person_id == person.person_id,
                                            ContributionIndex.fund == request.fund,
                                            ContributionIndex.period < request.effective_period)
        ).scalars().all()
        facts["index_rows"] = [computation.IndexRow(r.period, r.base_fen, r.average_wage_fen) for r in rows]
        divisor = document.divisor_for(age)
        facts["divisor"] = divisor
        problems = []
        if not rows:
            problems.append(("NO_CONTRIBUTION_INDEX", "没有缴费指数记录，无法计算指数化月平均缴费工资"))
        if divisor is None:
            problems.append(("NO_DIVISOR_FOR_AGE", f"计发月数表中没有 {age} 岁的计发月数"))
        for code, message in problems:
            checks.fail("computable", code, message)
        if not problems:
            checks.ok("computable", index_months=len(rows), divisor=divisor)
    elif request.kind == "unemployment":
        facts["entitlement_months"] = document.unemployment_months_for(contribution_months)
    return checks, facts


# -- computation -----------------------------------------------------------------------------------------------------


def _compute(prepared: Prepared, answers: AccountsAnswers, facts: dict[str, Any]) -> computation.Computation:
    request, document = prepared.request, prepared.parameters.document
    if request.kind == "basic_pension":
        return computation.basic_pension(
            average_wage_fen=document.average_monthly_wage_fen, rate_per_year=document.basic_pension_rate_per_year,
            index_rows=facts["index_rows"], contribution_months=facts["contribution_months"],
            balance_fen=answers.balance_fen or 0, retirement_age=facts["age"], divisor=facts["divisor"])
    if request.kind == "resident_pension":
        age = document.resident_pension_age
        return computation.resident_pension(basic_amount_fen=document.resident_basic_pension_fen,
                                            balance_fen=answers.balance_fen or 0, pension_age=age,
                                            divisor=document.divisor_for(age))
    if request.kind == "unemployment":
        months = facts["entitlement_months"]
        return computation.unemployment(monthly_fen=document.unemployment_monthly_fen,
                                        contribution_months=facts["contribution_months"], entitlement_months=months,
                                        effective_period=request.effective_period,
                                        end_period=add_months(request.effective_period, months - 1))
    return computation.entered(
        kind=request.kind,
        monthly_fen=yuan_to_fen(request.monthly_amount) if request.monthly_amount is not None else None,
        one_off_fen=yuan_to_fen(request.one_off_amount) if request.one_off_amount is not None else None,
        documents=[d.model_dump(mode="json") for d in request.documents])


def store(session: Session, prepared: Prepared, answers: AccountsAnswers) -> Claim:
    """Checks, computation, the claim, its audit entry and ClaimSubmitted, in one transaction."""
    request, person, parameters = prepared.request, prepared.person, prepared.parameters
    _lock_person(session, person.person_id)  # one submission per person at a time: the double-benefit check holds
    checks, facts = run_checks(session, prepared, answers)
    blocked = bool(checks.failed)
    if blocked and request.kind not in ENTERED_KINDS:
        result = computation.Computation(method=request.kind)
        result.flags["not_computed"] = "blocked before computation"
    else:
        result = _compute(prepared, answers, facts)
    result.inputs["parameters_id"] = parameters.id
    result.inputs["parameters_valid_from"] = parameters.valid_from

    back_payment_months = (months_between(request.back_payment_from, request.back_payment_to)
                           if request.back_payment_from is not None else None)
    early = bool(facts.get("early_retirement"))
    result.flags.update({"early_retirement": early, "age_at_effective": facts["age"],
                         "back_payment_months": back_payment_months})
    if early:
        result.flags["early_retirement_basis"] = request.early_retirement_basis
        result.flags["statutory_age"] = facts.get("statutory_age")
    if back_payment_months is not None:
        result.flags["back_payment"] = {"from": request.back_payment_from, "to": request.back_payment_to}
    if request.post_type:
        result.inputs["post_type"] = request.post_type

    threshold = parameters.document.large_amount_threshold_fen
    payments = [a for a in (result.monthly_amount_fen, result.one_off_amount_fen) if a is not None]
    large = any(a > threshold for a in payments)
    result.flags["large_amount_threshold_fen"] = threshold
    important = (request.kind in ("basic_pension", "injury") or early or back_payment_months is not None)
    one_off = result.one_off_amount_fen is not None
    end_period = request.effective_period if one_off else result.end_period

    verification = {**answers.as_dict(), "checked_at": clock.utc_now().isoformat(), "mirror": {
        "life_status": person.life_status, "birth_date": person.birth_date.isoformat(), "sex": person.sex},
        "enrolment_period": prepared.enrolment_period, "months_until": prepared.months_until,
        "checks": checks.items}
    now, actor = clock.utc_now(), _actor()
    claim = Claim(
        id=new_event_id(), person_id=person.person_id, kind=request.kind, fund=request.fund,
        importance="important" if important else "ordinary", region=person.region,
        status="blocked" if blocked else "in_review", blocked_reason=checks.reason,
        effective_period=request.effective_period, end_period=end_period,
        monthly_amount_fen=result.monthly_amount_fen, one_off_amount_fen=result.one_off_amount_fen,
        computation=canonical_json(result.as_dict()), verification=canonical_json(verification), large_amount=large,
        documents=canonical_json([d.model_dump(mode="json") for d in request.documents]) if request.documents else None,
        submitted_at=now, submitted_by=actor.id,
    )
    session.add(claim)
    append_audit(session, action="claim.submit", entity_type=ENTITY, entity_id=claim.id,
                 detail={"person_id": claim.person_id, "kind": claim.kind, "fund": claim.fund, "status": claim.status,
                         "blocked_reason": claim.blocked_reason, "monthly_amount_fen": claim.monthly_amount_fen,
                         "one_off_amount_fen": claim.one_off_amount_fen, "large_amount": large,
                         "early_retirement": early, "back_payment_months": back_payment_months},
                 reason=request.note)
    record_event(session, ClaimSubmitted(
        claim_id=claim.id, person_id=claim.person_id, kind=claim.kind, fund=claim.fund, importance=claim.importance,
        status=claim.status, blocked_reason=claim.blocked_reason, effective_period=claim.effective_period,
        monthly_amount_fen=claim.monthly_amount_fen, one_off_amount_fen=claim.one_off_amount_fen, large_amount=large,
        age_at_effective=facts["age"], back_payment_months=back_payment_months,
    ), source=SOURCE, subject=claim.id)
    session.flush()
    return claim


# -- levels and decisions --------------------------------------------------------------------------------------------


def levels_of(claim: Claim) -> list[tuple[str, str]]:
    """(level, role) in order for this claim."""
    levels = list(IMPORTANT_LEVELS if claim.importance == "important" else ORDINARY_LEVELS)
    if claim.large_amount:
        levels.append(LARGE_AMOUNT_LEVEL)
    return levels


def decisions_of(session: Session, claim_id: str) -> list[ClaimDecision]:
    return list(session.execute(
        select(ClaimDecision).where(ClaimDecision.claim_id == claim_id).order_by(ClaimDecision.id)
    ).scalars())


def live(decisions: list[ClaimDecision]) -> list[ClaimDecision]:
    """The level decisions that count: not made void by a return, not a return or resubmission step."""
    return [d for d in decisions if d.voided_at is None and d.decision in LEVEL_DECISIONS]


def next_level(claim: Claim, decisions: list[ClaimDecision]) -> tuple[str, str] | None:
    if claim.status != "in_review":
        return None
    done = {d.level for d in live(decisions)}
    return next(((level, role) for level, role in levels_of(claim) if level not in done), None)


def get_claim(session: Session, claim_id: str, *, for_update: bool = False) -> Claim:
    query = select(Claim).where(Claim.id == claim_id)
    if for_update:
        query = query.with_for_update()
    claim = session.execute(query).scalar_one_or_none()
    if claim is None:
        raise NotFound("CLAIM_NOT_FOUND", "待遇申请不存在")
    ensure_in_region(_actor(), claim.region)
    return claim


def _own_account(session: Session, person: BeneficiaryPerson) -> BeneficiaryAccount:
    """The person's own active account: social security card first (001 第二十六条), then a bank account."""
    accounts = session.execute(
        select(BeneficiaryAccount).where(BeneficiaryAccount.person_id == person.person_id,
                                         BeneficiaryAccount.status == "active",
                                         BeneficiaryAccount.kind.in_(("ss_card", "bank_account")))
        .order_by(BeneficiaryAccount.bank_account_id)
    ).scalars().all()
    own = [a for a in accounts if a.holder_name.strip() == person.name.strip()]
    if not own:
        raise Conflict("NO_OWN_ACCOUNT", "该人员没有本人名下的有效社保卡或银行账户，待遇只能发放到本人账户（不得现金发放），"
                                         "不能审批通过")
    return sorted(own, key=lambda a: (a.kind != "ss_card", a.bank_account_id))[0]


def _lock_person(session: Session, person_id: str) -> BeneficiaryPerson | None:
    """The mirror row of the person, locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers), so
    that two submissions or two final approvals for one person run one after the other."""
    return session.execute(
        select(BeneficiaryPerson).where(BeneficiaryPerson.person_id == person_id).with_for_update()
    ).scalar_one_or_none()


def _grant(session: Session, claim: Claim, decisions: list[ClaimDecision]) -> Entitlement:
    person = _lock_person(session, claim.person_id)
    if person is None:
        raise NotFound("PERSON_NOT_FOUND", "待遇系统中没有该人员")
    if person.life_status == "deceased":
        raise Conflict("PERSON_DECEASED", "该人员已登记死亡，不能审批通过")
    if not _is_one_off(claim.kind, claim.monthly_amount_fen):
        existing = _open_benefits(session, claim.person_id, claim.kind, exclude_claim=claim.id)
        existing = [e for e in existing if e.startswith("entitlement:")]
        if existing:
            raise Conflict("DOUBLE_BENEFIT", f"该人员已享受同类待遇（{'、'.join(existing)}），不得重复享受")
    account = _own_account(session, person)
    one_off = claim.one_off_amount_fen is not None
    entitlement = Entitlement(
        id=new_event_id(), claim_id=claim.id, person_id=claim.person_id, kind=claim.kind, fund=claim.fund,
        monthly_amount_fen=claim.one_off_amount_fen if one_off else claim.monthly_amount_fen,
        start_period=claim.effective_period, end_period=claim.effective_period if one_off else claim.end_period,
        status="active", bank_account_id=account.bank_account_id, region=claim.region, created_at=clock.utc_now(),
    )
    session.add(entitlement)
    levels = [d.level for d in live(decisions)]
    append_audit(session, action="entitlement.grant", entity_type="entitlement", entity_id=entitlement.id,
                 detail={"claim_id": claim.id, "person_id": claim.person_id, "kind": claim.kind,
                         "monthly_amount_fen": entitlement.monthly_amount_fen,
                         "start_period": entitlement.start_period, "end_period": entitlement.end_period,
                         "bank_account_id": account.bank_account_id, "levels": levels})
    record_event(session, EntitlementGranted(
        entitlement_id=entitlement.id, claim_id=claim.id, person_id=claim.person_id, kind=claim.kind,
        fund=claim.fund, monthly_amount_fen=entitlement.monthly_amount_fen, start_period=entitlement.start_period,
        end_period=entitlement.end_period, levels=levels, large_amount_reviewed="large_amount_review" in levels,
    ), source=SOURCE, subject=entitlement.id)
    return entitlement


def _pending_for(claim: Claim, decisions: list[ClaimDecision], wanted: str | None) -> tuple[str, str]:
    """The claim's next (level, role), given its ``decisions``, if the current actor may act there: not the
    submitter or a resubmitting clerk, nobody who acted at another level of this claim (returns and void decisions
    count too: 001 第十八条), the level's role; ``wanted``, when given, must be that level."""
    actor = _actor()
    if claim.status != "in_review":
        raise Conflict("CLAIM_NOT_IN_REVIEW", f"该申请状态为 {claim.status}，不在审核中")
    if claim.submitted_by == actor.id:
        raise Forbidden("SUBMITTER_CANNOT_DECIDE", "经办（提交）人不能审核本人提交的申请")
    pending = next_level(claim, decisions)
    if pending is None:  # in review with every level done cannot happen; be safe
        raise Conflict("CLAIM_NOT_IN_REVIEW", "该申请没有待办的审核环节")
    level, role = pending
    elsewhere = next((d for d in decisions if d.decided_by == actor.id and d.level != level), None)
    if elsewhere is not None:
        done = "经办补正" if elsewhere.level == CLERK_LEVEL else LEVEL_NAMES[elsewhere.level]
        raise Forbidden("SAME_PERSON_TWO_LEVELS", f"同一人不能在同一申请中办理两个审核环节（已办理 {done}）")
    if wanted is not None and wanted != level:
        raise Conflict("WRONG_LEVEL", f"该申请当前待办环节为 {level}（{LEVEL_NAMES[level]}），不是 {wanted}")
    if role not in actor.roles:
        raise Forbidden("ROLE_NOT_ALLOWED_AT_LEVEL",
                        f"{LEVEL_NAMES[level]}（{level}）须由 {role} 办理")
    context.set_actor(replace(actor, role=role))
    return level, role


def _flush_step(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:  # a concurrent decision took the level (or this person decided another one)
        session.rollback()
        raise Conflict("CONCURRENT_DECISION", "该环节已由他人同时办理，请刷新后重试") from None


def _file_step(session: Session, claim: Claim, act_id: str, level: str, what: str, entry: AuditEntry) -> None:
    """The step, filed into the person's dossier as a claim decision act, as every level's decision is."""
    name = "经办补正" if level == CLERK_LEVEL else LEVEL_NAMES[level]
    archives.file_act(session, [(archives.PERSON, claim.person_id)], "claim_decision", act_id,
                      f"待遇申请（{claim.kind}）{name}", f"{what}；申请状态 {claim.status}", audit=entry, level=level,
                      references=_risk_references(claim))


def _act_id(claim: Claim, level: str, step: ClaimDecision, decisions: list[ClaimDecision]) -> str:
    """The archive's act: ``claim/level`` for a level's first step (as always), with the step's id for a later one."""
    first = not any(d.level == level and d is not step for d in decisions)
    return f"{claim.id}/{level}" if first else f"{claim.id}/{level}/{step.id}"


def _repeated_decision(decisions: list[ClaimDecision], body: DecisionRequest) -> bool:
    """Whether the request repeats a decision this actor already took at the level it names, with the same verdict
    and reason, still in force: the answer to the first was lost (a timeout, a restarted gateway), so the claim as
    it stands is the answer and nothing is recorded twice. A request naming no level cannot be recognised and meets
    the usual refusals (SAME_PERSON_TWO_LEVELS, CLAIM_NOT_IN_REVIEW)."""
    actor = _actor()
    return body.level is not None and any(
        d.decided_by == actor.id and d.level == body.level and d.voided_at is None
        and (d.decision, d.reason) == (body.decision, body.reason) for d in decisions)


def _repeated_return(decisions: list[ClaimDecision], body: ReturnRequest) -> bool:
    """Whether the claim's latest step is this very return by this actor (its answer was lost): see
    ``_repeated_decision``."""
    if body.level is None:
        return False
    latest = decisions[-1] if decisions else None
    return (latest is not None and latest.decision == "return" and latest.decided_by == _actor().id
            and (latest.level, latest.reason) == (body.level, body.reason)
            and (latest.returned_to == "clerk") == (body.to == "clerk"))


def decide(session: Session, claim_id: str, body: DecisionRequest) -> Claim:
    claim = get_claim(session, claim_id, for_update=True)
    decisions = decisions_of(session, claim.id)
    if _repeated_decision(decisions, body):
        return claim
    level, role = _pending_for(claim, decisions, body.level)
    actor = _actor()
    now = clock.utc_now()
    decision = ClaimDecision(claim_id=claim.id, level=level, decision=body.decision, reason=body.reason,
                             decided_at=now, decided_by=actor.id, role=role)
    session.add(decision)
    decisions.append(decision)
    final = body.decision == "reject" or next_level(claim, decisions) is None
    if body.decision == "reject":
        claim.status, claim.decided_at = "rejected", now
    elif final:
        _grant(session, claim, decisions)
        claim.status, claim.decided_at = "approved", now
    session.add(claim)
    entry = append_audit(session, action=f"claim.{body.decision}", entity_type=ENTITY, entity_id=claim.id,
                         detail={"level": level, "role": role, "claim_status": claim.status}, reason=body.reason)
    record_event(session, ClaimDecided(claim_id=claim.id, person_id=claim.person_id, level=level,
                                       decision=body.decision, decided_by=actor.id, role=role,
                                       claim_status=claim.status), source=SOURCE, subject=claim.id)
    _flush_step(session)
    verdict = "同意" if body.decision == "approve" else "不同意"
    _file_step(session, claim, _act_id(claim, level, decision, decisions), level,
               f"{LEVEL_NAMES[level]}{verdict}{'：' + body.reason if body.reason else ''}", entry)
    return claim


def return_claim(session: Session, claim_id: str, body: ReturnRequest) -> Claim:
    """退回: the next level sends the claim back with its reason. To the clerk: every live decision is made void
    (the claim will change) and the claim is ``returned`` until resubmitted; to the level before: that level's
    decision is made void and it is the claim's next level again. Whoever returns has acted at this level."""
    claim = get_claim(session, claim_id, for_update=True)
    decisions = decisions_of(session, claim.id)
    if _repeated_return(decisions, body):
        return claim
    level, role = _pending_for(claim, decisions, body.level)
    now, actor = clock.utc_now(), _actor()
    counted = live(decisions)
    if body.to == "previous_level":
        if not counted:
            raise Conflict("NO_PREVIOUS_LEVEL", f"{LEVEL_NAMES[level]}是第一个审核环节，没有上一环节，只能退回经办人员")
        voided, returned_to = [counted[-1]], counted[-1].level
    else:
        voided, returned_to = counted, "clerk"
        claim.status = "returned"
    for decision in voided:
        decision.voided_at = now
        session.add(decision)
    step = ClaimDecision(claim_id=claim.id, level=level, decision="return", reason=body.reason, decided_at=now,
                         decided_by=actor.id, role=role, returned_to=returned_to)
    session.add(step)
    session.add(claim)
    decisions.append(step)
    entry = append_audit(session, action="claim.return", entity_type=ENTITY, entity_id=claim.id,
                         detail={"level": level, "role": role, "returned_to": returned_to,
                                 "voided_levels": [d.level for d in voided], "claim_status": claim.status},
                         reason=body.reason)
    _flush_step(session)
    to = "经办人员" if returned_to == "clerk" else LEVEL_NAMES[returned_to]
    _file_step(session, claim, _act_id(claim, level, step, decisions), level,
               f"{LEVEL_NAMES[level]}退回{to}：{body.reason}", entry)
    return claim


def resubmit(session: Session, claim_id: str, body: ResubmissionRequest) -> Claim:
    """The clerk corrects a returned claim and sends it to review again, from its first level. Only injury and
    one-off amounts are entered (and so corrected here); a computed amount that is wrong needs a new claim."""
    claim = get_claim(session, claim_id, for_update=True)
    if claim.status != "returned":
        raise Conflict("CLAIM_NOT_RETURNED", f"该申请状态为 {claim.status}，未被退回，不能补正重报")
    entered = claim.kind in ENTERED_KINDS
    if not entered and (body.monthly_amount is not None or body.one_off_amount is not None):
        raise Invalid("AMOUNT_NOT_ENTERED", "养老、失业待遇金额由系统计算，不能录入；计算依据有误须重新申请")
    if claim.kind == "one_off" and body.monthly_amount is not None:
        raise Invalid("AMOUNT_NOT_ENTERED", "一次性待遇只有一次性金额（one_off_amount），没有月发放金额")
    if entered and body.documents == []:
        raise Invalid("DOCUMENTS_REQUIRED", "工伤和一次性待遇须附确定金额的材料（documents）")
    now, actor = clock.utc_now(), _actor()
    changed: dict[str, Any] = {}
    if body.documents is not None:
        claim.documents = canonical_json([d.model_dump(mode="json") for d in body.documents])
        changed["documents"] = len(body.documents)
    if entered and (body.monthly_amount is not None or body.one_off_amount is not None):
        _correct_amounts(claim, body, changed)
    step = ClaimDecision(claim_id=claim.id, level=CLERK_LEVEL, decision="resubmit", reason=body.reason,
                         decided_at=now, decided_by=actor.id, role="agency_clerk")
    claim.status = "in_review"
    session.add_all([step, claim])
    entry = append_audit(session, action="claim.resubmit", entity_type=ENTITY, entity_id=claim.id,
                         detail={"claim_status": claim.status, **changed}, reason=body.reason)
    _flush_step(session)
    _file_step(session, claim, f"{claim.id}/{CLERK_LEVEL}/{step.id}", CLERK_LEVEL, f"补正后重新提交：{body.reason}",
               entry)
    return claim


def _correct_amounts(claim: Claim, body: ResubmissionRequest, changed: dict[str, Any]) -> None:
    """The entered amounts corrected, the computation written again from them and the large-amount flag with it
    (a claim that becomes large gets its 大额复核 level)."""
    document = json.loads(claim.computation)
    monthly = yuan_to_fen(body.monthly_amount) if body.monthly_amount is not None else claim.monthly_amount_fen
    one_off = yuan_to_fen(body.one_off_amount) if body.one_off_amount is not None else claim.one_off_amount_fen
    result = computation.entered(kind=claim.kind, monthly_fen=monthly, one_off_fen=one_off,
                                 documents=json.loads(claim.documents or "[]"))
    result.inputs.update({k: v for k, v in document.get("inputs", {}).items() if k.startswith("parameters_")})
    result.flags.update(document.get("flags", {}))
    threshold = result.flags.get("large_amount_threshold_fen")
    if threshold is not None:
        claim.large_amount = any(a is not None and a > threshold for a in (monthly, one_off))
    changed.update({"monthly_amount_fen": [claim.monthly_amount_fen, monthly],
                    "one_off_amount_fen": [claim.one_off_amount_fen, one_off], "large_amount": claim.large_amount})
    claim.monthly_amount_fen, claim.one_off_amount_fen = monthly, one_off
    claim.computation = canonical_json(result.as_dict())


def _risk_references(claim: Claim) -> dict[str, str]:
    """What the agency's internal control samples on (accounts' internal_control.risk): the claim's kind and its
    high-risk traits (004 第6项: high-risk business checked first)."""
    flags = json.loads(claim.computation).get("flags", {})
    return {"claim_id": claim.id, "claim_kind": claim.kind, "large_amount": str(claim.large_amount).lower(),
            "early_retirement": str(bool(flags.get("early_retirement"))).lower(),
            "back_payment": str(flags.get("back_payment_months") is not None).lower()}


# -- reading ---------------------------------------------------------------------------------------------------------


def entitlement_of(session: Session, claim_id: str) -> Entitlement | None:
    return session.execute(select(Entitlement).where(Entitlement.claim_id == claim_id)).scalar_one_or_none()


CLAIM_SORT = SortKeys(Claim.id, descending_by_default=True, submitted_at=Claim.submitted_at, status=Claim.status,
                      kind=Claim.kind, fund=Claim.fund, person_id=Claim.person_id,
                      effective_period=Claim.effective_period)


def list_claims(session: Session, *, person_id: str | None = None, status: str | None = None,
                kind: str | None = None, after: str | None = None, limit: int = 50,
                sort: str | None = None) -> tuple[list[Claim], str | None]:
    """Claims of the caller's area, newest first by id, or by ``sort`` (CLAIM_SORT)."""
    query = select(Claim).where(region_filter(Claim.region))
    if person_id:
        query = query.where(Claim.person_id == person_id)
    if status:
        query = query.where(Claim.status == status)
    if kind:
        query = query.where(Claim.kind == kind)
    return CLAIM_SORT.page(session, query, sort=sort, after=after, limit=limit)
