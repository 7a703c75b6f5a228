"""Risk categories of archived acts, and their weights in a sample (data, with their basis).

004 第6项: 每月对上月业务随机抽取一定比例进行核查，高风险业务重点核查. The high-risk links of seed 004's working
principles (坚持重点突破: 一次性补缴、关系转移、提前退休和待遇支付) are weighted, and so are injury determinations, large
payments and data corrections, the acts whose error costs the fund most or hides a change of record. An act of a high-risk category is drawn with its weight: an act weighted 5 is five times as
likely to be drawn as an ordinary one (weighted sampling without replacement). The weights used are recorded with
each sample, so a change here never changes how an old sample redraws.

The category is read from the archive item alone (its type, its act id and the references its service filed), so
an act from any service is classified the same way wherever it was done.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

ORDINARY = "ordinary"
# 001 第十八条: a single payment above 50 000 yuan needs the extra review (大额复核); the same figure marks a payroll
# line as a large payment here (oversight's S06 uses it too).
LARGE_PAYMENT_FEN = 5_000_000


@dataclass(frozen=True)
class Risk:
    code: str
    label: str
    weight: int
    applies: Callable[[str, str, dict[str, str]], bool]  # (item_type, act_id, references)


def _claim(trait: str) -> Callable[[str, str, dict[str, str]], bool]:
    return lambda item_type, act_id, refs: item_type == "claim_decision" and refs.get(trait) == "true"


def _claim_kind(kind: str) -> Callable[[str, str, dict[str, str]], bool]:
    return lambda item_type, act_id, refs: item_type == "claim_decision" and refs.get("claim_kind") == kind


def _large_payment(item_type: str, act_id: str, refs: dict[str, str]) -> bool:
    if item_type == "claim_decision":
        return refs.get("large_amount") == "true"
    return item_type == "payroll_line" and refs.get("amount_fen", "").isdigit() \
        and int(refs["amount_fen"]) >= LARGE_PAYMENT_FEN


# In order: an act is of the first category that applies.
RISKS: tuple[Risk, ...] = (
    Risk("back_payment", "一次性补缴补发", 5,
         lambda t, a, r: _claim_kind("one_off")(t, a, r) or _claim("back_payment")(t, a, r)),
    Risk("early_retirement", "提前退休", 5, _claim("early_retirement")),
    Risk("transfer", "关系转移", 5,
         lambda t, a, r: t == "enrolment" and a.rsplit("/", 1)[-1] in ("transfer_in", "transfer_out")),
    Risk("injury", "工伤认定", 4, _claim_kind("injury")),
    Risk("large_payment", "大额支付", 4, _large_payment),
    Risk("correction", "数据更正", 3, lambda t, a, r: t == "correction"),
)
ORDINARY_WEIGHT = 1
LABELS = {risk.code: risk.label for risk in RISKS} | {ORDINARY: "一般业务"}
# Acts that are not the agency's business to check: oversight's case steps (its own), and issued documents (they
# follow the act they belong to, which is sampled itself).
NOT_SAMPLED = ("case_step", "issued_document")


def current_weights() -> dict[str, int]:
    return {risk.code: risk.weight for risk in RISKS} | {ORDINARY: ORDINARY_WEIGHT}


def classify(item_type: str, act_id: str, references: str) -> str:
    refs = json.loads(references) if references else {}
    for risk in RISKS:
        if risk.applies(item_type, act_id, refs):
            return risk.code
    return ORDINARY
