"""The case workflow as data: statuses, the allowed steps, the six classes of 001 第二十九条 and the follow-up each
class requires before a case may be closed (销号). Pure: no database, no HTTP.

::

    issued ──investigate──▶ investigating ──classify──▶ classified ──rectify──▶ rectifying ──close──▶ closed
       │                        │                         │  ▲ (re-classify)
       └──────── dismissal proposed by one officer, confirmed by another ──────────────▶ dismissed

``issued`` (下发): the case is with its responsible unit, with a deadline. ``classified``: the finding is one of the
six classes. ``rectifying``: an entry in the rectification ledger (整改台账, 001 第十三条) with measures and a due
date. ``closed``: an oversight officer verified the rectification and the class's follow-up is confirmed.
"""

from dataclasses import dataclass

from services.contracts import codes

STATUSES = tuple(codes.CaseStatus)
ISSUED, INVESTIGATING, CLASSIFIED, RECTIFYING, CLOSED, DISMISSED = STATUSES
OPEN_STATUSES = (ISSUED, INVESTIGATING, CLASSIFIED, RECTIFYING)
TERMINAL_STATUSES = (CLOSED, DISMISSED)

STATUS_NAMES = {
    ISSUED: "已下发", INVESTIGATING: "核查中", CLASSIFIED: "已分类", RECTIFYING: "整改中", CLOSED: "已销号",
    DISMISSED: "已排除",
}

# action -> the statuses it may start from, and the status it leads to (None: unchanged).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "investigate": ((ISSUED,), INVESTIGATING),
    "classify": ((INVESTIGATING, CLASSIFIED), CLASSIFIED),
    "rectify": ((CLASSIFIED,), RECTIFYING),
    "close": ((RECTIFYING,), CLOSED),
    "propose_dismissal": ((ISSUED, INVESTIGATING, CLASSIFIED), None),
    "confirm_dismissal": ((ISSUED, INVESTIGATING, CLASSIFIED), DISMISSED),
    "reject_dismissal": ((ISSUED, INVESTIGATING, CLASSIFIED), None),
}

# -- severity --------------------------------------------------------------------------------------------------------

SEVERITIES = tuple(codes.Severity)  # ascending


def raise_severity(severity: str) -> str:
    """One step up, capped at ``severe`` (escalation of an overdue case)."""
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]


# -- the six classes of 001 第二十九条 and their follow-up ------------------------------------------------------------

# Follow-up kinds. The two benefits kinds are never entered by hand: they are confirmed by benefits' own events
# (EntitlementSuspended, RecoveryNoticeIssued for the case's person), see ``cases/handlers.py``.
FOLLOW_UP_KINDS: dict[str, str] = {
    "data_corrected": "业务/财务/信息数据部门已按程序修改数据",
    "extraction_fixed": "信息数据部门已更正并校验联网数据抽取程序",
    "employer_notified": "已书面/短信告知用人单位办理参保登记并申报缴费",
    "employer_registered": "用人单位经告知后已办理社会保险登记",
    "referred_to_labour_inspection": "已汇总佐证材料提交劳动保障监察部门",
    "benefit_suspended": "待遇已暂停发放（待遇系统事件确认）",
    "recovery_notice_issued": "已下达《追回社会保险待遇告知书》（待遇系统事件确认）",
    "audit_conducted": "经办机构已开展稽核检查",
    "referred_to_police": "涉嫌社会保险欺诈犯罪，已移送公安机关",
}
EVENT_CONFIRMED_KINDS = frozenset({"benefit_suspended", "recovery_notice_issued"})


@dataclass(frozen=True)
class CaseClass:
    code: int
    name: str
    clause: str
    # Every group must be satisfied by at least one of its kinds.
    required: tuple[tuple[str, ...], ...]
    needs: str | None = None  # "person" | "employer": the subject the follow-up acts on

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(k for group in self.required for k in group)


CLASSES: dict[int, CaseClass] = {c.code: c for c in (
    CaseClass(1, "经办操作或后台修改导致数据错误", "001 第二十九条(一)", (("data_corrected",),)),
    CaseClass(2, "数据转换导致数据错误", "001 第二十九条(二)", (("extraction_fixed",),)),
    # Notify first; refer to labour inspection only if the employer still does not register (经告知仍不办理).
    CaseClass(3, "用人单位不依法办理社会保险登记", "001 第二十九条(三)",
              (("employer_notified",), ("referred_to_labour_inspection", "employer_registered")), needs="employer"),
    CaseClass(4, "不符合待遇领取条件", "001 第二十九条(四)",
              (("benefit_suspended",), ("recovery_notice_issued",)), needs="person"),
    CaseClass(5, "违规领取金额较大且限期内未退还", "001 第二十九条(五)", (("audit_conducted",),)),
    CaseClass(6, "涉嫌欺诈骗保", "001 第二十九条(六)", (("referred_to_labour_inspection", "referred_to_police"),)),
)}


def missing_follow_ups(class_code: int, confirmed: set[str]) -> list[list[str]]:
    """The requirement groups of the class that no confirmed follow-up satisfies yet (empty: complete)."""
    return [list(group) for group in CLASSES[class_code].required if not confirmed.intersection(group)]
