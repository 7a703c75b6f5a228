"""The data migrations that rewrite stored seed citations to the form of docs/citations.md: rows written in an old
form read in the canonical form after the upgrade; every canonical text stays as it was. SQLite and PostgreSQL."""

import importlib.util
import json
from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from gateway.identity.conflicts import DEFAULT_RULES
from gateway.identity.models import RoleConflictRule
from gateway.identity.models import metadata as gateway_metadata
from services.kernel.citations import find_citations
from services.kernel.db import make_engine
from services.kernel.migrations import alembic_config, upgrade_database, versions_dir
from services.oversight import models as oversight_models
from services.oversight.cases.models import Case


def migration(branch: str, revision: str):  # noqa: ANN201
    path = next(versions_dir(branch).glob(f"{revision}_*.py"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_canonical(value: str) -> bool:
    return all(c.canonical for c in find_citations(value))


def test_oversight_rows_are_rewritten(database_urls):
    module = migration("oversight", "c1a7e0d5f012")
    olds = [old for old, _ in module.REWRITES]
    engine = make_engine(database_urls["oversight"])
    try:
        upgrade_database(engine, "oversight", oversight_models.metadata)
        command.downgrade(alembic_config(engine, "oversight", oversight_models.metadata), module.down_revision)
        now = datetime(2026, 12, 3, 1, 30, tzinfo=UTC)
        old_item = "001 第二十九条" + olds[-2].removeprefix("条")
        details = json.dumps({"basis": f"{olds[1]}；001 第十六条", "class": old_item}, ensure_ascii=False)
        with Session(engine) as session:
            session.add(Case(id="c-1", rule_id="CHAIN", fact_key="CHAIN:x", severity="severe",
                             subject_type="audit_chain", subject_id="x", title="t", details=details,
                             seed_clause=olds[0], unit="u", status="issued",
                             deadline_days=7, deadline=date(2026, 12, 10), current_deadline=date(2026, 12, 10),
                             first_seen_at=now, last_seen_at=now, opened_at=now, opened_by="test", updated_at=now,
                             status_changed_at=now))
            session.add(Case(id="c-2", rule_id="S06", fact_key="S06:x", severity="high", subject_type="payment",
                             subject_id="x", title="t", details="{}", seed_clause="001 第十八条", unit="u",
                             status="issued", deadline_days=7, deadline=date(2026, 12, 10),
                             current_deadline=date(2026, 12, 10), first_seen_at=now, last_seen_at=now, opened_at=now,
                             opened_by="test", status_changed_at=now, updated_at=now))
            session.commit()
        assert not all_canonical(details)
        upgrade_database(engine, "oversight", oversight_models.metadata)
        with engine.connect() as connection:
            rows = dict(connection.execute(text("SELECT id, seed_clause FROM oversight_case")).all())
            stored = connection.execute(text("SELECT details FROM oversight_case WHERE id = 'c-1'")).scalar_one()
        assert rows == {"c-1": "004 第24项", "c-2": "001 第十八条"}
        assert json.loads(stored) == {"basis": "004 第3项、第22项；001 第十六条", "class": "001 第二十九条(五)"}
        assert all_canonical(stored)
    finally:
        engine.dispose()


def test_gateway_default_rules_are_rewritten_and_a_regions_own_rule_is_not(database_urls):
    module = migration("gateway", "d4b2f6a8c310")
    engine = make_engine(database_urls["gateway"])
    try:
        upgrade_database(engine, "gateway", gateway_metadata)
        command.downgrade(alembic_config(engine, "gateway", gateway_metadata), module.down_revision)
        with Session(engine) as session:
            for (old, _), rule in zip(module.REWRITES, (DEFAULT_RULES[0], DEFAULT_RULES[3]), strict=True):
                session.add(RoleConflictRule(code=rule.code, roles_a=rule.roles_a, roles_b=rule.roles_b,
                                             message=rule.message, basis=old))
            session.add(RoleConflictRule(code="REGION_OWN", roles_a="cashier", roles_b="it_admin", message="m",
                                         basis=f"本地规定；{module.REWRITES[0][0]}（补充）"))
            session.commit()
        upgrade_database(engine, "gateway", gateway_metadata)
        with engine.connect() as connection:
            basis = dict(connection.execute(text("SELECT code, basis FROM role_conflict_rule")).all())
        assert basis[DEFAULT_RULES[0].code] == DEFAULT_RULES[0].basis == "004 第3项、第22项；001 第十六条"
        assert basis[DEFAULT_RULES[3].code] == DEFAULT_RULES[3].basis == "003 二.3；001 第十六条"
        assert basis["REGION_OWN"].startswith("本地规定；")  # a region's own text is the region's to change
    finally:
        engine.dispose()
