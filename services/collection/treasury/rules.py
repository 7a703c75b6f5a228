"""Usage rules of the fund bank accounts (财政专户 / 收入户 / 支出户), as data.

Each rule names the account kind and direction it governs, the flows it allows (counterparty kind × purposes) and
the seed clause it enforces. ``check`` is applied to EVERY movement the treasury package records, whatever its
path (a receipt, an allocation, interest, a hand-entered transaction, a bank statement line):

- entered by hand (source ``manual``): a violation is refused, 409 ``USAGE_RULE_VIOLATION`` with the clause;
- from a bank statement (source ``bank_statement``): it already happened, so it is recorded with status
  ``flagged`` and the violation text, which also travels in ``BankTransactionRecorded.violation`` (S14/S16).

Decisions written down here (000 leaves them implicit):

- The income account receives contributions from payers (it exists "因负责城乡居民社保费征缴工作") and its own
  interest (收入户……分别计息); it pays only to the special account of its own fund.
- The expenditure account receives from the special account and its own interest; money coming back through the
  original channel (a failed or recovered benefit payment, "原渠道收回") is the seed's own exception and needs the
  agency's formal authorisation as ``reference``. It pays benefits to beneficiaries (with the authorisation) and may
  return unspent money to the special account of its fund.
- The special account pays only the expenditure account of its fund (拨付) or back to the treasury (退库, or 上解
  to the higher level, which also goes through the treasury), the latter with a reference. It receives treasury
  money only against a recorded remittance (000 二(二)), transfers from the income account, returns from the
  expenditure account, and its interest.
- Nothing moves between different funds' books (000 二(一)); the counterparty's fund is known for our own accounts
  (from the registry), for treasury receipts (the remittance's fund) and for interest (the account's own fund).
"""

from dataclasses import dataclass

ACCOUNT_KINDS = ("special", "income", "expenditure")
COUNTERPARTIES = ("treasury", "special", "income", "expenditure", "interest", "payer", "beneficiary", "other")
PURPOSES = ("receipt", "transfer", "allocation", "interest", "payment", "return", "other")
FUND_ACCOUNT_KINDS = frozenset(ACCOUNT_KINDS)  # counterparties that are one of our registered accounts

KIND_NAMES = {"special": "财政专户", "income": "收入户", "expenditure": "支出户"}
COUNTERPARTY_NAMES = {
    "treasury": "国库", "special": "财政专户", "income": "收入户", "expenditure": "支出户", "interest": "利息",
    "payer": "缴费人", "beneficiary": "待遇领取人", "other": "其他账户",
}
DIRECTION_NAMES = {"in": "收入", "out": "支出"}


@dataclass(frozen=True)
class Flow:
    """One allowed (counterparty, purposes) pair; some need a reference (an authorisation) or a remittance."""

    counterparty: str
    purposes: frozenset[str]
    needs_reference: bool = False
    needs_remittance: bool = False


@dataclass(frozen=True)
class UsageRule:
    id: str
    account_kind: str | None  # None: every account
    direction: str | None  # None: both directions
    allowed: tuple[Flow, ...]  # empty for the cross-fund rule, which compares funds instead
    clause: str
    seed_text: str
    summary: str
    suspicion: str | None  # the OVERSIGHT.md rule that watches it, where one does


def _flow(counterparty: str, *purposes: str, **options: bool) -> Flow:
    return Flow(counterparty, frozenset(purposes), **options)


RULES: tuple[UsageRule, ...] = (
    UsageRule(
        id="U1", account_kind="income", direction="out",
        allowed=(_flow("special", "transfer"),),
        clause="000 二(四)1",
        seed_text="收入户除向财政专户划转资金外不得发生其它支付业务",
        summary="收入户只能向本险种财政专户划转资金",
        suspicion="S16",
    ),
    UsageRule(
        id="U2", account_kind="income", direction="in",
        allowed=(_flow("payer", "receipt"), _flow("interest", "interest")),
        clause="000 二(四)1",
        seed_text="因负责城乡居民社保费征缴工作而开设社保基金收入户；收入户、支出户中不同险种的资金应分账核算、分别计息",
        summary="收入户只能收取缴费人缴纳的社保费及本账户利息",
        suspicion=None,
    ),
    UsageRule(
        id="U3", account_kind="expenditure", direction="in",
        allowed=(_flow("special", "allocation"), _flow("interest", "interest"),
                 _flow("beneficiary", "return", needs_reference=True)),
        clause="000 二(四)1",
        seed_text="支出户除接受财政专户拨付的基金及该账户利息收入外不得发生其他收入业务；因特殊情况出现多支付资金……"
                  "需原渠道收回、退回的，开户银行须经社保经办机构正式授权方可发生收付业务",
        summary="支出户只能接受本险种财政专户拨付的基金和本账户利息（原渠道退回须有经办机构正式授权）",
        suspicion="S16",
    ),
    UsageRule(
        id="U4", account_kind="expenditure", direction="out",
        allowed=(_flow("beneficiary", "payment", needs_reference=True),
                 _flow("special", "return", needs_reference=True)),
        clause="000 二(四)1",
        seed_text="对于基金支付，开户银行要有社保经办机构正式授权方可支付；支出户的支出要严格按照社保基金财务制度规定"
                  "列出详细支出项目",
        summary="支出户只能凭经办机构授权向待遇领取人支付，或将结余退回本险种财政专户",
        suspicion=None,
    ),
    UsageRule(
        id="U5", account_kind="special", direction="out",
        allowed=(_flow("expenditure", "allocation"), _flow("treasury", "return", needs_reference=True)),
        clause="000 二(一)、二(四)1",
        seed_text="专款专用……不得将基金截留、挤占、挪用；支出户除接受财政专户拨付的基金……外不得发生其他收入业务",
        summary="财政专户只能向本险种支出户拨付，或凭文件退回国库（退库、上解上级）",
        suspicion=None,
    ),
    UsageRule(
        id="U6", account_kind="special", direction="in",
        allowed=(_flow("treasury", "receipt", needs_remittance=True), _flow("income", "transfer"),
                 _flow("expenditure", "return"), _flow("interest", "interest")),
        clause="000 二(二)、二(四)1",
        seed_text="将缴入国库的各项社保费及时……足额划入社会保险财政专户；收入户除向财政专户划转资金外不得发生其它支付业务",
        summary="财政专户只能收取对应国库缴款记录的划款、本险种收入户划转、支出户退回及本账户利息",
        suspicion=None,
    ),
    UsageRule(
        id="U7", account_kind=None, direction=None, allowed=(),
        clause="000 二(一)",
        seed_text="各险种基金专户储存、分账核算、分别计息、专款专用、不得相互挤占或调剂",
        summary="不同险种基金之间不得划转资金",
        suspicion="S14",
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
CROSS_FUND = RULES_BY_ID["U7"]


@dataclass(frozen=True)
class Movement:
    """What the rules look at. ``counterparty_fund`` is None when the counterparty keeps no fund books."""

    account_kind: str
    account_fund: str
    direction: str
    counterparty: str
    counterparty_fund: str | None
    purpose: str
    has_reference: bool
    has_remittance: bool


@dataclass(frozen=True)
class Violation:
    rule: UsageRule
    detail: str

    @property
    def text(self) -> str:
        return f"{self.rule.id}（{self.rule.clause}“{self.rule.seed_text}”）{self.rule.summary}：{self.detail}"

    def as_dict(self) -> dict[str, str | None]:
        return {"rule": self.rule.id, "clause": self.rule.clause, "seed_text": self.rule.seed_text,
                "summary": self.rule.summary, "suspicion": self.rule.suspicion, "detail": self.detail}


def _describe(m: Movement) -> str:
    return (f"本笔为{KIND_NAMES[m.account_kind]}{DIRECTION_NAMES[m.direction]}，对方为"
            f"{COUNTERPARTY_NAMES.get(m.counterparty, m.counterparty)}，用途 {m.purpose}")


def check(m: Movement) -> list[Violation]:
    """Every rule the movement breaks (empty when it is allowed), cross-fund first."""
    found: list[Violation] = []
    if m.counterparty_fund is not None and m.counterparty_fund != m.account_fund:
        found.append(Violation(CROSS_FUND, f"本账户属 {m.account_fund}，对方属 {m.counterparty_fund}"))
    for rule in RULES:
        if rule.account_kind != m.account_kind or rule.direction != m.direction:
            continue
        flow = next((f for f in rule.allowed if f.counterparty == m.counterparty and m.purpose in f.purposes), None)
        if flow is None:
            found.append(Violation(rule, _describe(m)))
        elif flow.needs_reference and not m.has_reference:
            found.append(Violation(rule, _describe(m) + "，缺少经办机构授权或文件编号（reference）"))
        elif flow.needs_remittance and not m.has_remittance:
            found.append(Violation(rule, _describe(m) + "，未对应国库缴款记录"))
    return found
