"""One clock and one actor helper: every "now" and "today" reads services/kernel/clock.py, China
time is defined there only, and who is acting is asked of ``context.actor_id()``; no module keeps its own wrapper."""

import ast
from pathlib import Path

from services.kernel import context

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("services", "gateway", "sifund")
CLOCK = Path("services/kernel/clock.py")
CONTEXT = Path("services/kernel/context.py")

# Names of the wrappers that used to be copied into each module (`def _now(): return clock.utc_now()` and the like).
WRAPPERS = {"now", "_now", "utcnow", "_utcnow", "utc_now", "today", "_today", "china_today", "china_now",
            "actor_id", "_actor_id"}
# Reading the system clock directly bypasses the test clock (SIFUND_TEST_CLOCK).
SYSTEM_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("datetime", "today")}


def _offences(path: Path) -> list[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in WRAPPERS \
                and path not in (CLOCK, CONTEXT):
            found.append(f"{where}: def {node.name}() — call services.kernel.clock (utc_now, china_now, china_today) "
                         f"or context.actor_id() directly")
        if isinstance(node, ast.Call) and path != CLOCK:
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and (func.value.id, func.attr) in SYSTEM_CLOCK:
                found.append(f"{where}: {func.value.id}.{func.attr}() — read services.kernel.clock instead (it "
                             f"follows SIFUND_TEST_CLOCK)")
            if isinstance(func, ast.Name | ast.Attribute) and getattr(func, "id", getattr(func, "attr", "")) \
                    == "ZoneInfo":
                found.append(f"{where}: ZoneInfo(...) — China time is services.kernel.clock.CHINA")
            if ast.unparse(node).replace(" ", "") in ("timedelta(hours=8)", "timedelta(hours=+8)"):
                found.append(f"{where}: a UTC+8 offset — China time is services.kernel.clock.CHINA")
        if isinstance(node, ast.Assign) and path != CLOCK and any(
                isinstance(t, ast.Name) and t.id in ("CHINA", "CHINA_TZ", "TZ", "SHANGHAI") for t in node.targets):
            found.append(f"{where}: a China time zone alias — use services.kernel.clock.CHINA")
        if isinstance(node, ast.Attribute) and node.attr == "id" and path != CONTEXT \
                and ast.unparse(node.value).endswith("current().actor"):
            found.append(f"{where}: current().actor.id — use context.actor_id()")
    return found


def test_no_module_keeps_its_own_clock_time_zone_or_actor_helper():
    offences = [o for top in PRODUCTION for p in sorted((ROOT / top).rglob("*.py"))
                for o in _offences(p.relative_to(ROOT))]
    assert not offences, "one clock, one actor helper:\n" + "\n".join(offences)


def test_actor_id_is_the_current_actor():
    assert context.actor_id() == "anonymous"
    with context.trace(actor=context.Actor(id="clerk-1", role="agency_clerk")):
        assert context.actor_id() == "clerk-1"
    assert context.actor_id() == "anonymous"
