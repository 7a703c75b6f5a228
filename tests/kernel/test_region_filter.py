"""The region rule (staff act only on objects of their own area) is written once, in services/kernel/auth.py:
``region_covers`` for one object in Python, ``region_filter`` for a query in SQL. They agree on
every combination of levels (province 15xxxx, city 1501xx, district 150102), on missing regions and on LIKE
wildcards; and no other module writes the rule by hand."""

import ast
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from services.kernel import context
from services.kernel.auth import region_covers, region_filter
from services.kernel.context import Actor

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("services", "gateway", "sifund")
AUTH = Path("services/kernel/auth.py")

ACTOR_REGIONS = [None, "", "150000", "150100", "150102", "110000", "110100", "15%", "1_0100"]
OBJECT_REGIONS = [None, "", "150000", "150100", "150102", "150199", "150200", "159999", "110101", "15%x", "120100"]

# (actor region, object region, covered): the levels of the 行政区划代码.
EXPECTED = [
    ("150000", "150102", True),   # a province covers its cities' districts
    ("150000", "159999", True),
    ("150000", "110101", False),  # … not another province's
    ("150100", "150102", True),   # a city covers its districts
    ("150100", "150100", True),   # … and itself
    ("150100", "150200", False),  # … not another city
    ("150100", "150000", False),  # … nor the province above it
    ("150102", "150102", True),   # a district covers itself
    ("150102", "150199", False),  # … not a sibling district
    ("150102", "150100", False),  # … nor its city
    (None, "150102", False),      # no region: nothing
    ("", "150102", False),
    ("150100", None, False),      # an object without a region: no one
    ("150100", "", False),
    ("15%", "150102", False),     # a wildcard in a region is a character, not a pattern
    ("1_0100", "150102", False),
]


@pytest.fixture(scope="module")
def objects():  # noqa: ANN201
    engine = create_engine("sqlite://")
    table = Table("obj", MetaData(), Column("id", String, primary_key=True), Column("region", String))
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": str(i), "region": r} for i, r in enumerate(OBJECT_REGIONS)])
    return engine, table


def _seen(objects, actor: Actor) -> set[str | None]:  # noqa: ANN001
    engine, table = objects
    with engine.connect() as connection:
        return set(connection.execute(select(table.c.region).where(region_filter(table.c.region, actor))).scalars())


@pytest.mark.parametrize(("actor_region", "object_region", "covered"), EXPECTED)
def test_the_levels_of_the_region_codes(objects, actor_region, object_region, covered):  # noqa: ANN001
    assert region_covers(actor_region, object_region) is covered
    assert (object_region in _seen(objects, Actor(id="u", region=actor_region))) is covered


@pytest.mark.parametrize("actor_region", ACTOR_REGIONS)
def test_the_sql_filter_agrees_with_the_python_check(objects, actor_region):  # noqa: ANN001
    expected = {r for r in OBJECT_REGIONS if region_covers(actor_region, r)}
    assert _seen(objects, Actor(id="u", region=actor_region)) == expected


def test_the_filter_defaults_to_the_current_actor(objects):  # noqa: ANN001
    engine, table = objects
    with context.trace(actor=Actor(id="clerk", region="150102")), engine.connect() as connection:
        seen = set(connection.execute(select(table.c.region).where(region_filter(table.c.region))).scalars())
    assert seen == {"150102"}


def _hand_written(path: Path) -> list[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", None)) \
                == "region_prefix":
            found.append(f"{path}:{node.lineno}: region_prefix — filter with region_filter(column) or check with "
                         f"region_covers / ensure_in_region (services/kernel/auth.py)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "istartswith", "like", "ilike", "contains", "endswith") \
                and "region" in ast.unparse(node.func.value).lower():
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)[:80]} — a hand-written region filter; use "
                         f"region_filter(column) (SQL) or region_covers (Python) from services/kernel/auth.py")
    return found


def test_no_module_writes_the_region_rule_by_hand():
    offences = [o for top in PRODUCTION for p in sorted((ROOT / top).rglob("*.py")) if p.relative_to(ROOT) != AUTH
                for o in _hand_written(p.relative_to(ROOT))]
    assert not offences, "the region rule is written once, in services/kernel/auth.py:\n" + "\n".join(offences)
