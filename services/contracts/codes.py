"""The codes event payloads carry: funds, statuses, case classes. One declaration each; every fund list in the
services is this enum or a named subset of it. The values are the wire values (a ``StrEnum`` member equals its
string), so payloads, tables and API answers read the same as before the enums existed.
"""

from enum import IntEnum, StrEnum
from typing import Literal


class Fund(StrEnum):
    """The five funds in scope (docs/domain.md, Funds in scope)."""

    PEN_EMP = "PEN_EMP"  # 企业职工基本养老保险
    PEN_GOV = "PEN_GOV"  # 机关事业单位基本养老保险
    PEN_RES = "PEN_RES"  # 城乡居民基本养老保险
    UNEMP = "UNEMP"  # 失业保险
    INJURY = "INJURY"  # 工伤保险


FUNDS: tuple[Fund, ...] = tuple(Fund)
PENSION_FUNDS: tuple[Fund, ...] = (Fund.PEN_EMP, Fund.PEN_GOV, Fund.PEN_RES)
# The wage-based pension schemes of the employed: an individual account fed by contributions on a declared base,
# whose base is the pension's contribution index.
WAGE_PENSION_FUNDS: tuple[Fund, ...] = (Fund.PEN_EMP, Fund.PEN_GOV)

# The fund codes as a ``Literal`` for API models: the OpenAPI documents keep their inline ``enum`` of strings.
FundCode = Literal[tuple(f.value for f in FUNDS)]  # type: ignore[valid-type]
WagePensionFundCode = Literal[tuple(f.value for f in WAGE_PENSION_FUNDS)]  # type: ignore[valid-type]


class EmployerStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    deregistered = "deregistered"


class LifeStatus(StrEnum):
    alive = "alive"
    deceased = "deceased"
    imprisoned = "imprisoned"


class EnrolmentStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    stopped = "stopped"


class MatchStatus(StrEnum):
    matched = "matched"  # settled an assessment line (or, employer-level, all of an employer's fund × period)
    unmatched = "unmatched"  # kept for a reviewer: no assessment line found, payer not registered, partial, …
    resolved = "resolved"  # matched later by a reviewer


class ClaimStatus(StrEnum):
    submitted = "submitted"
    blocked = "blocked"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class PaymentResult(StrEnum):
    paid = "paid"
    failed = "failed"


class CaseStatus(StrEnum):
    """The case workflow's statuses (OVERSIGHT.md, Case workflow; ``services/oversight/cases/workflow.py``)."""

    issued = "issued"  # 下发
    investigating = "investigating"
    classified = "classified"
    rectifying = "rectifying"
    closed = "closed"  # 销号
    dismissed = "dismissed"


class Severity(StrEnum):
    """In ascending order: escalation raises a case one step."""

    low = "low"
    medium = "medium"
    high = "high"
    severe = "severe"


class CaseClass(IntEnum):
    """The six classes of finding of 001 第二十九条 (一)…(六)."""

    DATA_ENTRY_ERROR = 1  # 经办操作或后台修改导致数据错误
    DATA_CONVERSION_ERROR = 2  # 数据转换导致数据错误
    EMPLOYER_NOT_REGISTERED = 3  # 用人单位不依法办理社会保险登记
    NOT_ENTITLED = 4  # 不符合待遇领取条件
    LARGE_UNRETURNED = 5  # 违规领取金额较大且限期内未退还
    SUSPECTED_FRAUD = 6  # 涉嫌欺诈骗保
