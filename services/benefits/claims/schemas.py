"""Request and response bodies of the claims API.

Amounts at this edge are yuan as decimal strings (``"60000.00"``; JSON floats refused) and integer fen alongside in
responses; periods are ``YYYYMM``. Pension and unemployment amounts are computed by the system and cannot be entered
(004 第20项); injury and one-off amounts are entered together with the documents that determine them.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.contracts import codes
from services.kernel.identifiers import CitizenId
from services.kernel.money import Yuan
from services.kernel.periods import Period
from services.kernel.schemas import Reason
from services.kernel.strict import RequestModel

Kind = Literal["basic_pension", "resident_pension", "unemployment", "injury", "one_off"]
Fund = codes.FundCode
Level = Literal["first_review", "second_review", "approval", "large_amount_review"]

KIND_FUNDS: dict[str, tuple[str, ...]] = {
    "basic_pension": codes.WAGE_PENSION_FUNDS,
    "resident_pension": (codes.Fund.PEN_RES,),
    "unemployment": (codes.Fund.UNEMP,),
    "injury": (codes.Fund.INJURY,),
    "one_off": codes.FUNDS,
}
COMPUTED_KINDS = frozenset({"basic_pension", "resident_pension", "unemployment"})
ENTERED_KINDS = frozenset({"injury", "one_off"})

Text = Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]


class DocumentRef(RequestModel):
    """A supporting document (工伤认定决定书, 劳动能力鉴定结论, 补发审批表, 特殊工种审批 …) by its reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Annotated[Text, Field(min_length=1, max_length=100, description="document type, e.g. 工伤认定决定书")]
    reference: Annotated[Text, Field(min_length=1, max_length=200, description="document number (文号)")]
    issued_on: date | None = None


def _fail(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


class ClaimRequest(RequestModel):
    """A claim for a benefit. The person is named by ``person_id`` or ``citizen_id`` (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    person_id: str | None = Field(default=None, min_length=1, max_length=36)
    citizen_id: CitizenId | None = None
    fund: Fund | None = Field(default=None, description="basic_pension: PEN_EMP (default) or PEN_GOV; one_off: "
                                                        "required; other kinds: implied")
    effective_period: Period = Field(description="first month of entitlement (one-off: the month it is paid)")
    post_type: Literal["cadre", "worker"] | None = Field(
        default=None, description="a woman's basic pension: 干部 (cadre) or 工人 (worker) post, for the statutory age")
    early_retirement_basis: Annotated[Text | None, Field(min_length=1, max_length=500)] = Field(
        default=None, description="提前退休 basis (特殊工种 / 因病完全丧失劳动能力 …, with its approval number)")
    monthly_amount: Yuan | None = Field(default=None, description="injury only: 伤残津贴 etc., yuan per month")
    one_off_amount: Yuan | None = Field(default=None, description="injury or one_off: the single payment, yuan")
    back_payment_from: Period | None = Field(default=None, description="one_off back payment (补发): first month covered")
    back_payment_to: Period | None = Field(default=None, description="one_off back payment: last month covered")
    documents: list[DocumentRef] = Field(default_factory=list, max_length=20,
                                         description="required for injury and one_off")
    note: Annotated[Text | None, Field(max_length=1000)] = None

    @model_validator(mode="after")
    def _consistent(self) -> "ClaimRequest":
        if (self.person_id is None) == (self.citizen_id is None):
            raise _fail("PERSON_REQUIRED", "须且只能填写 person_id 或 citizen_id 之一")
        allowed = KIND_FUNDS[self.kind]
        if self.fund is None:
            if self.kind == "one_off":
                raise _fail("FUND_REQUIRED", "一次性待遇须写明险种（fund）")
            self.fund = allowed[0]
        elif self.fund not in allowed:
            raise _fail("FUND_MISMATCH", f"{self.kind} 的险种只能是 {'、'.join(allowed)}，收到 {self.fund}")
        for amount in (self.monthly_amount, self.one_off_amount):
            if amount is not None and amount <= 0:
                raise _fail("INVALID_AMOUNT", "金额须大于 0")
        if self.kind in COMPUTED_KINDS and (self.monthly_amount is not None or self.one_off_amount is not None):
            raise _fail("AMOUNT_COMPUTED_BY_SYSTEM", "养老金、失业保险金由系统按参数计发，不能手工录入金额")
        if self.kind == "injury" and (self.monthly_amount is None) == (self.one_off_amount is None):
            raise _fail("AMOUNT_REQUIRED", "工伤待遇须录入按月金额（monthly_amount）或一次性金额（one_off_amount）之一")
        if self.kind == "one_off" and (self.one_off_amount is None or self.monthly_amount is not None):
            raise _fail("AMOUNT_REQUIRED", "一次性待遇须录入一次性金额（one_off_amount），不设按月金额")
        if self.kind in ENTERED_KINDS and not self.documents:
            raise _fail("DOCUMENTS_REQUIRED", "工伤和一次性待遇须附确定金额的材料（documents）")
        if (self.back_payment_from is None) != (self.back_payment_to is None):
            raise _fail("BACK_PAYMENT_INVALID", "补发须同时填写起止月份（back_payment_from、back_payment_to）")
        if self.back_payment_from is not None:
            if self.kind != "one_off":
                raise _fail("BACK_PAYMENT_INVALID", "补发只能以一次性待遇（one_off）申请")
            if self.back_payment_from > self.back_payment_to:
                raise _fail("BACK_PAYMENT_INVALID", "补发起始月份不能晚于截止月份")
            if self.back_payment_to > self.effective_period:
                raise _fail("BACK_PAYMENT_INVALID", "补发截止月份不能晚于支付月份")
        if self.early_retirement_basis is not None and self.kind != "basic_pension":
            raise _fail("EARLY_RETIREMENT_INVALID", "提前退休依据只适用于基本养老金申请")
        if self.post_type is not None and self.kind != "basic_pension":
            raise _fail("POST_TYPE_INVALID", "岗位类型（post_type）只用于确定女职工的法定退休年龄")
        return self


class DecisionRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Reason
    level: Level | None = Field(default=None, description="the level decided; when given it must be the claim's "
                                                          "next level (409 WRONG_LEVEL otherwise)")


class ReturnRequest(RequestModel):
    """退回: the claim's next level sends it back, with the reason, to the clerk (to correct and resubmit) or to the
    level before (to decide again)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="what is to be corrected")
    to: Literal["clerk", "previous_level"] = "clerk"
    level: Level | None = Field(default=None, description="the level returning; when given it must be the claim's "
                                                          "next level (409 WRONG_LEVEL otherwise)")


class ResubmissionRequest(RequestModel):
    """The clerk's correction of a returned claim: what was corrected (``reason``), the documents again when they
    change, and — injury and one-off claims only, whose amounts are entered — the corrected amounts."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="what was corrected")
    documents: list[DocumentRef] | None = Field(default=None, max_length=20,
                                                description="replaces the claim's documents when given")
    monthly_amount: Yuan | None = Field(default=None, description="injury only, yuan per month")
    one_off_amount: Yuan | None = Field(default=None, description="injury or one_off, yuan")


class DecisionOut(BaseModel):
    level: str = Field(description="the level, or `submission` for the clerk's resubmission")
    decision: str = Field(description="approve | reject | return (退回) | resubmit")
    reason: str
    decided_at: datetime
    decided_by: str
    role: str
    returned_to: str | None = Field(default=None, description="a return: `clerk` or the level sent back to")
    voided_at: datetime | None = Field(default=None, description="made void by a later return: decided again")


class LevelOut(BaseModel):
    level: str
    role: str = Field(description="the role that decides this level")
    done: bool


class ClaimOut(BaseModel):
    id: str
    person_id: str
    kind: str
    fund: str
    importance: str = Field(description="ordinary: 2 levels; important: 3 levels (004 第4项)")
    region: str
    status: str = Field(description="in_review | blocked | approved | rejected | returned (退回经办, to be "
                                    "corrected and resubmitted)")
    blocked_reason: str | None
    blocked_checks: list[str] = Field(description="codes of the failed checks")
    effective_period: int
    end_period: int | None
    monthly_amount_fen: int | None
    monthly_amount: Yuan | None
    one_off_amount_fen: int | None
    one_off_amount: Yuan | None
    large_amount: bool
    early_retirement: bool
    age_at_effective: int | None
    back_payment_months: int | None
    computation: dict[str, Any]
    verification: dict[str, Any]
    documents: list[dict[str, Any]]
    submitted_at: datetime
    submitted_by: str
    decided_at: datetime | None
    levels: list[LevelOut]
    next_level: str | None
    decisions: list[DecisionOut]
    entitlement_id: str | None


class ClaimPage(BaseModel):
    items: list[ClaimOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")
