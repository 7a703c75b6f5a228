"""Rules on staff: S20 (high-risk post held more than 5 years, 001 第十六条) and the role half of S18 (one user holding
roles of an incompatible pair, 004 第3项、第22项).

Oversight has no copy of the gateway's users. The sweep endpoint pulls the gateway's
``GET /identity/reports/long-tenure?years=1`` (high-risk posts — accountant, cashier, agency reviewer, agency approver
— held at least a year, by active users) and ``GET /identity/conflict-rules`` with the calling officer's token, and
passes the rows here, so these functions are plain functions of their input.

- **S20**: a row whose role was granted more than ``tenure_years`` (5) years before ``as_of`` (the same calendar day
  five years later is still within) — ``S20:<username>:<role>:<granted day>``: a re-grant after rotation is a new fact.
- **S18 roles**: a user whose rows name roles on both sides of a conflict rule — ``S18:roles:<username>:<rule code>``.
  *Limit*: only high-risk roles held for at least a year are visible this way (the report's minimum), so a conflict
  involving an agency clerk, IT or internal-control role, or a role granted within the year, is not seen by
  oversight; the gateway refuses to grant conflicting roles in the first place.
"""

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from services.oversight.rules.registry import Finding
from services.kernel.settings import get_settings

BUSINESS = ("agency_clerk", "agency_reviewer", "agency_approver")
FINANCE = ("accountant", "cashier")
# Used when the gateway's own rules could not be read (the same defaults as gateway/identity/conflicts.py).
DEFAULT_CONFLICT_RULES: list[dict[str, Any]] = [
    {"code": "BUSINESS_FINANCE", "roles_a": list(BUSINESS), "roles_b": list(FINANCE),
     "message": "业务经办与财务岗位不相容", "basis": "004 第3项、第22项；001 第十六条"},
    {"code": "BUSINESS_IT", "roles_a": list(BUSINESS), "roles_b": ["it_admin"],
     "message": "业务经办与信息岗位不相容", "basis": "004 第3项、第22项；001 第十六条"},
    {"code": "ACCOUNTANT_CASHIER", "roles_a": ["accountant"], "roles_b": ["cashier"],
     "message": "会计与出纳岗位不相容", "basis": "004 第3项；001 第十六条"},
]


def _granted(row: dict[str, Any]) -> datetime:
    value = row["granted_at"]
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def find_s20(rows: list[dict[str, Any]], as_of: date) -> list[Finding]:
    years = get_settings().oversight_rules.tenure_years
    findings = []
    for row in rows:
        granted = _granted(row).date()
        if _years_later(granted, years) >= as_of:
            continue
        tenure = (as_of - granted).days
        findings.append(Finding(
            key=f"{row['username']}:{row['role']}:{granted.isoformat()}", subject_type="user",
            subject_id=row["username"], unit=row.get("unit") or None, region=row.get("region") or None,
            title=f"高风险岗位连续任职超过{years}年：{row.get('display_name') or row['username']}（{row['role']}，"
                  f"自 {granted.isoformat()}，{tenure // 365} 年）",
            details={"username": row["username"], "display_name": row.get("display_name"), "role": row["role"],
                     "unit": row.get("unit"), "region": row.get("region"), "granted_at": _granted(row).isoformat(),
                     "limit_years": years}))
    return findings


def find_s18_roles(rows: list[dict[str, Any]], conflict_rules: list[dict[str, Any]] | None) -> list[Finding]:
    rules = conflict_rules if conflict_rules else DEFAULT_CONFLICT_RULES
    roles: dict[str, set[str]] = defaultdict(set)
    users: dict[str, dict[str, Any]] = {}
    for row in rows:
        roles[row["username"]].add(row["role"])
        users.setdefault(row["username"], row)
    findings = []
    for username in sorted(roles):
        held = roles[username]
        for rule in rules:
            side_a = held & set(rule["roles_a"])
            side_b = held & set(rule["roles_b"])
            if not side_a or not side_b:
                continue
            user = users[username]
            findings.append(Finding(
                key=f"roles:{username}:{rule['code']}", subject_type="user", subject_id=username,
                unit=user.get("unit") or None, region=user.get("region") or None,
                title=f"兼任不相容岗位：{user.get('display_name') or username} 同时担任 "
                      f"{'、'.join(sorted(side_a))} 与 {'、'.join(sorted(side_b))}（{rule.get('message', rule['code'])}）",
                details={"username": username, "rule": rule["code"], "roles": sorted(held),
                         "conflicting": [sorted(side_a), sorted(side_b)], "basis": rule.get("basis"),
                         "seen_in": "long-tenure report (high-risk posts held ≥ 1 year)"}))
    return findings
