"""Events of whistleblower reports (stream OVERSIGHT). They never carry the reporter's identity nor the report's
text: a notification channel learns that a report needs attention and where to look, nothing more."""

from services.kernel.events import EventPayload


class WhistleblowerReportFlagged(EventPayload, event_type="oversight.whistleblower_report.flagged.v1"):
    """A major or urgent report: an officer must be alerted at once (000 三(四))."""

    report_id: str
    alert_id: str
    channel: str
    category: str
    region: str | None
    reasons: list[str]  # codes: URGENT_REQUESTED, KEYWORD, LARGE_AMOUNT, OFFICER


class WhistleblowerRewardGranted(EventPayload, event_type="oversight.whistleblower_reward.granted.v1"):
    """A reward decided (001 第三十八条); payment is made by finance against the decision id."""

    reward_id: str
    report_id: str
    matter_id: str
    kind: str  # main | supplementary
    amount_fen: int
    verified_amount_fen: int
    standard: str
