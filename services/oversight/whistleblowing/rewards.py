"""Whistleblower rewards: eligibility (001 第三十三条、第三十六条、第三十七条) and amount (001 第三十八条), as pure functions.

Eligibility — every condition is checked and listed, passed or not (a refusal names each reason):

| code | condition | source | from |
|---|---|---|---|
| NAMED | named report, every (joint) reporter named with a citizen id | 001 第三十六条(一) | the report |
| FULL_CIVIL_CAPACITY | the reporter has full civil capacity | 001 第三十六条(一) | the officer's finding |
| CLEAR_SUBJECT | a clearly named reported party (被举报主体) | 001 第三十六条(二) | the report |
| WITHIN_SCOPE | about the fund's income, expenditure, management, use or investment | 001 第三十三条、第三十六条(三) | the report's category |
| NEW_FACTS | the main facts and evidence were not already known to the supervisor | 001 第三十六条(四) | the officer's finding |
| VERIFIED | the report was investigated and found true, with a verified amount | 001 第三十六条(五) | the report's answer |
| NO_STATUTORY_DUTY | the reporter has no statutory duty over the fund (management, operation, finance, supervision) | 001 第三十三条第二款 | the officer's finding |
| FIRST_REPORTER | first reporter of the fact (the main beneficiary); a later reporter only with a substantial contribution, as a supplementary reward | 001 第三十七条 | the matter's reports |

A joint report (联名举报) is one report and gets one reward (001 第三十七条). A later report of the same fact does not
bring new facts (the first report did); it may get a *supplementary* reward when the officer finds it contributed
substantially to the investigation, and then NEW_FACTS is not required.

Amount (001 第三十八条: a share of the verified amount, the standard set by the province). A standard is a row of
``STANDARDS``: marginal bands (the rate applies to the part of the verified amount inside the band), a floor and a cap
per matter. The exact product is summed over the bands and rounded half-up to the fen once; then the floor, then the
cap apply. The cap is per matter: a supplementary reward gets at most what the matter's cap leaves.

| standard | bands | floor | cap per matter | applies to |
|---|---|---|---|---|
| default | 2 % of the whole verified amount | 200 yuan | 100 000 yuan | every region without its own row |

A province's own standard is a new row keyed by its two-digit code (e.g. ``"36"`` for Jiangxi) — tiers such as
"3 % up to 1 M yuan, 1 % above" are bands ``((100_000_000, "0.03"), (None, "0.01"))``.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from services.kernel.money import fen_to_yuan

SCOPE_CATEGORIES = frozenset({"collection", "payment", "management", "investment"})


@dataclass(frozen=True)
class Band:
    up_to_fen: int | None  # upper bound of the band (inclusive) in fen; None: no bound
    rate: Decimal


@dataclass(frozen=True)
class RewardStandard:
    name: str
    bands: tuple[Band, ...]
    floor_fen: int
    cap_fen: int  # per matter
    description: str = ""


DEFAULT_STANDARD = RewardStandard(
    name="default",
    bands=(Band(None, Decimal("0.02")),),
    floor_fen=20_000,  # 200 yuan
    cap_fen=10_000_000,  # 100 000 yuan
    description="查证属实金额的 2%，最低 200 元，每一事项最高 100 000 元",
)

# Province code (first two digits of the region) → its standard. Regions without a row use the default.
STANDARDS: dict[str, RewardStandard] = {}


def standard_for(region: str | None) -> RewardStandard:
    return STANDARDS.get((region or "")[:2], DEFAULT_STANDARD)


@dataclass(frozen=True)
class Amount:
    computed_fen: int  # the bands' share, rounded half-up once
    amount_fen: int  # after floor and cap
    floor_applied: bool
    cap_applied: bool
    steps: list[str] = field(default_factory=list)


def exact_share(verified_fen: int, standard: RewardStandard) -> Decimal:
    """The bands' share of ``verified_fen`` as an exact Decimal of fen (not rounded)."""
    total, lower = Decimal(0), 0
    for band in standard.bands:
        upper = verified_fen if band.up_to_fen is None else min(verified_fen, band.up_to_fen)
        if upper > lower:
            total += Decimal(upper - lower) * band.rate
        if band.up_to_fen is None or verified_fen <= band.up_to_fen:
            break
        lower = band.up_to_fen
    return total


def reward_amount(verified_fen: int, standard: RewardStandard = DEFAULT_STANDARD, *,
                  cap_left_fen: int | None = None) -> Amount:
    """The main reward for ``verified_fen``: share rounded half-up to the fen, at least the floor, at most the cap
    (or what the matter's cap leaves, ``cap_left_fen``)."""
    if verified_fen <= 0:
        raise ValueError("the verified amount must be positive")
    share = exact_share(verified_fen, standard)
    computed = int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    steps = [f"查证属实金额 {fen_to_yuan(verified_fen)} 元 × 比例 = {share / 100} 元，四舍五入到分 {fen_to_yuan(computed)} 元"]
    amount, floor_applied, cap_applied = computed, False, False
    if amount < standard.floor_fen:
        amount, floor_applied = standard.floor_fen, True
        steps.append(f"低于最低奖励 {fen_to_yuan(standard.floor_fen)} 元，按最低奖励")
    cap = standard.cap_fen if cap_left_fen is None else min(standard.cap_fen, cap_left_fen)
    if amount > cap:
        amount, cap_applied = cap, True
        steps.append(f"超过每一事项最高奖励（本事项尚可奖励 {fen_to_yuan(cap)} 元），按上限")
    return Amount(computed_fen=computed, amount_fen=amount, floor_applied=floor_applied, cap_applied=cap_applied,
                  steps=steps)


@dataclass(frozen=True)
class Check:
    code: str
    ok: bool
    clause: str
    detail: str

    def as_dict(self) -> dict:
        return {"code": self.code, "ok": self.ok, "clause": self.clause, "detail": self.detail}


@dataclass(frozen=True)
class ReportFacts:
    """What the report and its matter say (derived, not declared)."""

    anonymous: bool
    reporters: int
    reporters_identified: int  # reporters with a name and a citizen id
    subject_name: str | None
    category: str
    outcome: str | None  # the answer's outcome
    is_first_in_matter: bool
    first_report_id: str


@dataclass(frozen=True)
class OfficerFindings:
    """What the officer found and declares (recorded with the decision)."""

    full_civil_capacity: bool
    facts_already_known: bool
    statutory_duty: bool
    substantial_contribution: bool = False


def eligibility(facts: ReportFacts, findings: OfficerFindings, verified_fen: int) -> tuple[list[Check], str | None]:
    """Every check, and the kind of reward the report qualifies for (``main``, ``supplementary``) or None."""
    named = not facts.anonymous and facts.reporters > 0 and facts.reporters_identified == facts.reporters
    checks = [
        Check("NAMED", named, "001 第三十六条(一)",
              "实名举报" + (f"（联名 {facts.reporters} 人，视为一位举报人）" if facts.reporters > 1 else "") if named
              else "匿名举报，或举报人未提供姓名和公民身份号码"),
        Check("FULL_CIVIL_CAPACITY", findings.full_civil_capacity, "001 第三十六条(一)",
              "举报人具有完全民事行为能力" if findings.full_civil_capacity else "举报人不具有完全民事行为能力"),
        Check("CLEAR_SUBJECT", bool(facts.subject_name and facts.subject_name.strip()), "001 第三十六条(二)",
              f"被举报主体：{facts.subject_name}" if facts.subject_name else "没有明确的被举报主体"),
        Check("WITHIN_SCOPE", facts.category in SCOPE_CATEGORIES, "001 第三十三条、第三十六条(三)",
              "举报内容属于社会保险基金收支、管理、使用或投资运营方面的违规事项" if facts.category in SCOPE_CATEGORIES
              else "举报内容不属于违反社会保险基金有关规定的事项"),
    ]
    first = facts.is_first_in_matter
    if first:
        checks.append(Check("NEW_FACTS", not findings.facts_already_known, "001 第三十六条(四)",
                            "主要事实、证据此前未被基金监督管理机构掌握" if not findings.facts_already_known
                            else "主要事实、证据已被基金监督管理机构掌握"))
    verified = facts.outcome in ("substantiated", "partly_substantiated") and verified_fen > 0
    checks += [
        Check("VERIFIED", verified, "001 第三十六条(五)",
              f"经查证属实，违法违规金额 {fen_to_yuan(verified_fen)} 元" if verified
              else "举报尚未办结，或经查不属实，或查证属实金额为零"),
        Check("NO_STATUTORY_DUTY", not findings.statutory_duty, "001 第三十三条第二款",
              "举报人不负有社会保险基金管理、经办、财务、监督等法定职责" if not findings.statutory_duty
              else "举报人负有社会保险基金管理、经办、财务、监督等法定职责，不适用举报奖励"),
    ]
    if first:
        checks.append(Check("FIRST_REPORTER", True, "001 第三十七条", "同一事实的第一举报人（主要奖励对象）"))
    else:
        checks.append(Check("FIRST_REPORTER", findings.substantial_contribution, "001 第三十七条",
                            f"同一事实的第一举报为 {facts.first_report_id}；本举报对查处作出实质性贡献，可适当奖励"
                            if findings.substantial_contribution
                            else f"同一事实的第一举报为 {facts.first_report_id}，本举报人不是第一举报人，"
                                 "且未认定对查处作出实质性贡献"))
    if not all(c.ok for c in checks):
        return checks, None
    return checks, "main" if first else "supplementary"
