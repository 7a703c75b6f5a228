"""Declarations (申报) and assessments (核定): request and response bodies, and the upload columns.

A declaration line names the person by ``person_id`` or ``citizen_id`` (or both, which must agree) and gives the
monthly contribution base in yuan as a decimal string ("5432.10"); a JSON float, a negative or zero base and a base
with more than two decimal places are refused (``kernel.money.Yuan``).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import CitizenId
from services.kernel.money import Yuan, yuan_type
from services.kernel.periods import Period
from services.kernel.schemas import Reason
from services.kernel.strict import RequestModel
from services.kernel.tabular import Column

MAX_LINES = 100_000
MAX_BATCH_LINES = 10_000  # lines over all the declarations of a batch (a tax batch's size)
MAX_BATCH_DECLARATIONS = 1_000


def positive_base(value: Decimal) -> Decimal:
    if value <= 0:
        raise PydanticCustomError("INVALID_BASE", "缴费基数须大于零")
    return value


Base = yuan_type(positive_base, minimum=Decimal(0), exclusive=True)


class DeclarationLineIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str | None = Field(default=None, min_length=1, max_length=36, description="人员编号")
    citizen_id: CitizenId | None = Field(default=None, description="公民身份号码 (instead of, or with, person_id)")
    base: Base = Field(description="月缴费基数, yuan as a decimal string, e.g. \"5432.10\"")

    @model_validator(mode="after")
    def _someone(self) -> "DeclarationLineIn":
        if self.person_id is None and self.citizen_id is None:
            raise PydanticCustomError("PERSON_REQUIRED", "每行须填写人员编号（person_id）或公民身份号码（citizen_id）")
        return self


class DeclarationIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    period: Period = Field(description="费款所属期 YYYYMM (not in the future)")
    lines: list[DeclarationLineIn] = Field(min_length=1, max_length=MAX_LINES)


class EmployerDeclarationIn(RequestModel):
    """One employer's declaration in a batch: the same lines as ``DeclarationIn``."""

    model_config = ConfigDict(extra="forbid")

    employer_id: str = Field(min_length=1, max_length=36, description="单位编号")
    lines: list[DeclarationLineIn] = Field(min_length=1, max_length=MAX_BATCH_LINES)


class DeclarationBatchIn(RequestModel):
    """Many employers' declarations of one month at once (the month's declarations as the agency receives them)."""

    model_config = ConfigDict(extra="forbid")

    period: Period = Field(description="费款所属期 YYYYMM (not in the future), for every declaration of the batch")
    declarations: list[EmployerDeclarationIn] = Field(
        min_length=1, max_length=MAX_BATCH_DECLARATIONS,
        description=f"at most {MAX_BATCH_DECLARATIONS} employers and {MAX_BATCH_LINES} lines in all")


class SupersedeIn(RequestModel):
    """A correction: a complete new declaration for the same employer and period, and why."""

    model_config = ConfigDict(extra="forbid")

    period: Period | None = Field(default=None, description="must be the superseded assessment's period if given")
    lines: list[DeclarationLineIn] = Field(min_length=1, max_length=MAX_LINES)
    reason: Reason


# -- upload ----------------------------------------------------------------------------------------------------------

COLUMNS: tuple[Column, ...] = (
    Column("citizen_id", "公民身份号码", ("身份证号码", "身份证号", "社会保障号码", "社会保障号", "id_number"), False,
           "18 characters; this or 人员编号 on every row"),
    Column("person_id", "人员编号", ("个人编号",), False, "the registry's person id"),
    Column("name", "姓名", ("person_name",), False, "checked against the registry when given"),
    Column("base", "缴费基数", ("申报基数", "申报工资", "月缴费基数", "工资基数", "contribution_base"), True,
           "yuan, at most two decimals (5432.10)"),
)
COLUMNS_DOC = "\n".join(
    f"- `{c.header}` ({'/'.join(c.aliases + (c.field,))}){' **required**' if c.required else ''}: {c.description}"
    for c in COLUMNS
)


# -- responses -------------------------------------------------------------------------------------------------------


class RejectedLine(BaseModel):
    line_no: int = Field(description="position in the request (1-based) or the row number in the file")
    person_id: str | None = None
    citizen_id: str | None = None
    code: str
    message: str


class AssessmentOut(BaseModel):
    id: str
    declaration_id: str | None
    employer_id: str | None
    period: int
    parameters_id: str
    status: str
    supersedes_id: str | None
    superseded_by_id: str | None
    due_date: date
    lines: int
    employer_total_fen: int
    individual_total_fen: int
    employer_total: Yuan
    individual_total: Yuan
    total: Yuan
    issued_at: datetime
    issued_by: str
    reason: str | None


class AssessmentLineOut(BaseModel):
    id: str
    person_id: str
    fund: str
    period: int
    base_fen: int
    employer_rate: str
    individual_rate: str
    employer_fen: int
    individual_fen: int
    base: Yuan
    employer_amount: Yuan
    individual_amount: Yuan
    due_date: date
    status: str
    paid_principal_fen: int
    paid_late_fee_fen: int


class AssessmentDetail(BaseModel):
    assessment: AssessmentOut
    items: list[AssessmentLineOut] = Field(description="a page of the lines, ordered by line id")
    next_cursor: str | None = Field(description="pass as ?after= to get the next page of lines")


class AssessmentPage(BaseModel):
    items: list[AssessmentOut]
    next_cursor: str | None


class DeclarationLineOut(BaseModel):
    person_id: str
    declared_base_fen: int
    base_fen: int
    declared_base: Yuan
    base: Yuan
    clamp: str | None = Field(description="floor | cap when the declared base was outside the limits")


class DeclarationOut(BaseModel):
    id: str
    employer_id: str
    period: int
    status: str
    source: str
    lines: int
    submitted_at: datetime
    submitted_by: str


class DeclarationDetail(BaseModel):
    declaration: DeclarationOut
    items: list[DeclarationLineOut]
    next_cursor: str | None


class Refusal(BaseModel):
    """Why one declaration of a batch was refused: the code, message and details the single declaration's 4xx
    answer carries."""

    status: int = Field(description="the HTTP status the declaration alone would have been answered with")
    code: str
    message: str
    details: Any = None


class DeclarationOutcome(BaseModel):
    employer_id: str
    status: Literal["issued", "refused"]
    declaration_id: str | None = None
    assessment: AssessmentOut | None = None
    clamped: dict[str, int] | None = None
    refusal: Refusal | None = None


class DeclarationBatchResult(BaseModel):
    """Each declaration of a batch, in the order sent: issued (with its assessment) or refused (with why)."""

    period: int
    declarations: int
    issued: int
    refused: int
    assessed_lines: int = Field(description="assessment lines issued by the batch")
    items: list[DeclarationOutcome]


class PeriodLineOut(BaseModel):
    """A line of a month's collection plan: what the tax bureau collects for one person and fund (the line's rates,
    due date and what was paid on it: ``GET /assessments/{assessment_id}``)."""

    id: str
    assessment_id: str
    employer_id: str | None
    person_id: str
    fund: str
    base_fen: int
    employer_fen: int
    individual_fen: int
    employer_amount: Yuan
    individual_amount: Yuan
    status: str


class PeriodLinePage(BaseModel):
    items: list[PeriodLineOut] = Field(description="a page of the month's issued lines, by assessment then line id")
    next_cursor: str | None = Field(description="pass as ?after= to get the next page")


class IssueResult(BaseModel):
    """What a declaration (or a correction) produced: the declaration, the assessment and how many bases were
    clamped."""

    declaration: DeclarationOut
    assessment: AssessmentOut
    clamped: dict[str, int] = Field(description="lines whose base was raised to the floor / lowered to the cap")
    superseded: AssessmentOut | None = None
