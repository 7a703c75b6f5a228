"""Incompatible duties as data: the default rules of DOMAIN.md, loaded into ``role_conflict_rule``."""

from sqlalchemy import select
from sqlmodel import Session

from gateway.identity.models import RoleConflictRule

BUSINESS = ("agency_clerk", "agency_reviewer", "agency_approver")
FINANCE = ("accountant", "cashier")
OPERATING = (*BUSINESS, *FINANCE, "it_admin", "internal_auditor")

DEFAULT_RULES: tuple[RoleConflictRule, ...] = (
    RoleConflictRule(code="BUSINESS_FINANCE", roles_a=",".join(BUSINESS), roles_b=",".join(FINANCE),
                     message="业务经办与财务岗位不相容", basis="004 第3项、第22项；001 第十六条"),
    RoleConflictRule(code="BUSINESS_IT", roles_a=",".join(BUSINESS), roles_b="it_admin",
                     message="业务经办与信息岗位不相容", basis="004 第3项、第22项；001 第十六条"),
    RoleConflictRule(code="ACCOUNTANT_CASHIER", roles_a="accountant", roles_b="cashier",
                     message="会计与出纳岗位不相容", basis="004 第3项；001 第十六条"),
    RoleConflictRule(code="OPERATING_OVERSIGHT", roles_a=",".join(OPERATING), roles_b="oversight_officer",
                     message="经办机构岗位与基金监督岗位不相容（监管独立）", basis="003 二.3；001 第十六条"),
)


def seed_default_rules(session: Session) -> None:
    """Insert the default rules a region has not defined yet (a region may add its own rows)."""
    present = set(session.execute(select(RoleConflictRule.code)).scalars())
    for rule in DEFAULT_RULES:
        if rule.code not in present:
            session.add(RoleConflictRule.model_validate(rule.model_dump()))
    session.flush()


def find_conflict(session: Session, held: set[str], new_role: str) -> tuple[RoleConflictRule, str] | None:
    """The first rule that ``new_role`` breaks together with a role in ``held``, and that role."""
    for rule in session.execute(select(RoleConflictRule).order_by(RoleConflictRule.code)).scalars():
        group_a, group_b = set(rule.roles_a.split(",")), set(rule.roles_b.split(","))
        for mine, theirs in ((group_a, group_b), (group_b, group_a)):
            if new_role in mine:
                clash = sorted(held & theirs)
                if clash:
                    return rule, clash[0]
    return None
