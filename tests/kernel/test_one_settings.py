"""One settings object: every knob is a field (or a section's field) of
``services.kernel.settings.Settings``, read from its documented ``SIFUND_*`` variable, overridable by arguments;
nothing else reads configuration from the environment, and endpoints take the app's settings as a dependency."""

import ast
from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from services.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("services", "gateway", "sifund")
SETTINGS_MODULE = Path("services/kernel/settings.py")

# Modules that may touch os.environ, and why (none of them reads a configuration value that Settings should hold).
ENVIRONMENT_ALLOWED = {
    # The test clock (SIFUND_TEST_CLOCK / _ANCHORED_AT) is read and exported before any Settings exists, at the first
    # reading of the time in any process, and must be process-wide (services/kernel/clock.py explains).
    Path("services/kernel/clock.py"): "test clock pin and anchor",
    # `sifund up` copies its own environment to the child processes it starts (and adds the topology it chose).
    Path("sifund/launcher.py"): "passes the environment through to child processes",
    # `sifund docs screenshots` starts `sifund up` and Chromium as child processes with its own environment (a
    # throwaway data directory and port base; Chromium's font configuration).
    Path("sifund/screenshots.py"): "passes the environment through to child processes",
    # PROMETHEUS_MULTIPROC_DIR is prometheus_client's own variable, read by the library at import (it picks how counters
    # are stored); the metrics module reads the same variable to find the uvicorn workers' files.
    Path("services/kernel/metrics.py"): "prometheus_client's multiprocess directory",
}

# (variable, value, section, field, expected): every section variable keeps the name it is documented under.
SECTION_VARIABLES = [
    ("SIFUND_BENEFITS_SURVIVAL_INTERVAL_MONTHS", "6", "benefits_upkeep", "survival_interval_months", 6),
    ("SIFUND_BENEFITS_SURVIVAL_NOTICE_DAYS", "15", "benefits_upkeep", "survival_notice_days", 15),
    ("SIFUND_BENEFITS_RECOVERY_DEADLINE_DAYS", "45", "benefits_upkeep", "recovery_deadline_days", 45),
    ("SIFUND_BENEFITS_OFFSET_WINDOW_MONTHS", "24", "benefits_upkeep", "offset_window_months", 24),
    ("SIFUND_OVERSIGHT_DEFAULT_DEADLINE_DAYS", "20", "oversight_cases", "default_deadline_days", 20),
    ("SIFUND_OVERSIGHT_SERIOUS_AMOUNT_FEN", "123", "oversight_cases", "serious_amount_fen", 123),
    ("SIFUND_OVERSIGHT_DEFAULT_UNIT", "某经办机构", "oversight_cases", "default_unit", "某经办机构"),
    ("SIFUND_OVERSIGHT_RECOVERY_CASE_DEADLINE_DAYS", "9", "oversight_cases", "recovery_case_deadline_days", 9),
    ("SIFUND_OVERSIGHT_SCHEDULER_ENABLED", "false", "oversight_scheduler", "enabled", False),
    ("SIFUND_OVERSIGHT_SCHEDULER_DISABLED_JOBS", '["sweep"]', "oversight_scheduler", "disabled_jobs",
     frozenset({"sweep"})),
    ("SIFUND_OVERSIGHT_SCHEDULER_SWEEP_AT", "03:15", "oversight_scheduler", "sweep_at", time(3, 15)),
    ("SIFUND_OVERSIGHT_SCHEDULER_CHAINS_INTERVAL_SECONDS", "60", "oversight_scheduler", "chains_interval_seconds",
     60.0),
    ("SIFUND_OVERSIGHT_SCHEDULER_CLIENT_ID", "oversight_scheduler", "oversight_scheduler", "client_id",
     "oversight_scheduler"),
    ("SIFUND_OVERSIGHT_BUDGET_WARNING_THRESHOLD_POINTS", "7.5", "oversight_budget", "warning_threshold_points",
     Decimal("7.5")),
    ("SIFUND_OVERSIGHT_RULES_LARGE_AMOUNT_THRESHOLD_FEN", "100", "oversight_rules", "large_amount_threshold_fen", 100),
    ("SIFUND_OVERSIGHT_RULES_TENURE_YEARS", "3", "oversight_rules", "tenure_years", 3),
    ("SIFUND_JOBS_CHUNK_ROWS", "25", "jobs", "chunk_rows", 25),
    ("SIFUND_JOBS_LEASE_SECONDS", "3", "jobs", "lease_seconds", 3.0),
    ("SIFUND_WHISTLEBLOWING_INTAKE_BURST", "2", "whistleblowing", "intake_burst", 2),
    ("SIFUND_WHISTLEBLOWING_TRACK_PER_HOUR", "10", "whistleblowing", "track_per_hour", 10),
]


@pytest.mark.parametrize(("variable", "value", "section", "name", "expected"), SECTION_VARIABLES,
                         ids=[v[0] for v in SECTION_VARIABLES])
def test_a_section_figure_is_read_from_its_documented_variable(monkeypatch, tmp_path, variable, value, section,
                                                              name, expected):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv(variable, value)
    assert getattr(getattr(Settings(), section), name) == expected


def test_arguments_override_the_environment_field_by_field(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIFUND_OVERSIGHT_SCHEDULER_ENABLED", "false")
    monkeypatch.setenv("SIFUND_OVERSIGHT_SCHEDULER_POLL_SECONDS", "5")
    (tmp_path / ".env").write_text("SIFUND_OVERSIGHT_SCHEDULER_LEASE_SECONDS=42\nSIFUND_OVERSIGHT_SCHEDULER_POLL_SECONDS=9\n")
    scheduler = Settings(oversight_scheduler={"enabled": True}).oversight_scheduler
    # The argument wins; the environment beats .env; .env fills in the rest.
    assert (scheduler.enabled, scheduler.poll_seconds, scheduler.lease_seconds) == (True, 5.0, 42.0)
    assert Settings().oversight_scheduler.enabled is False


def _production_modules() -> list[Path]:
    return sorted(p.relative_to(ROOT) for top in PRODUCTION for p in (ROOT / top).rglob("*.py"))


def _state_settings(node: ast.AST) -> bool:
    """``….state.settings`` or ``state.settings``."""
    if not (isinstance(node, ast.Attribute) and node.attr == "settings"):
        return False
    owner = node.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "state") or (isinstance(owner, ast.Name)
                                                                             and owner.id == "state")


def test_only_the_kernel_settings_read_configuration_from_the_environment():
    offences = []
    for path in _production_modules():
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and path != SETTINGS_MODULE:
                for base in node.bases:
                    if (base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)) == "BaseSettings":
                        offences.append(f"{path}:{node.lineno}: class {node.name}(BaseSettings) — make it a Section "
                                        f"of Settings (services/kernel/settings_sections.py)")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                    and node.attr in ("environ", "getenv") and path not in ENVIRONMENT_ALLOWED:
                offences.append(f"{path}:{node.lineno}: os.{node.attr} — configuration belongs in "
                                f"services/kernel/settings.py (or allow-list the module here, with the reason)")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and path != SETTINGS_MODULE \
                    and any(a.annotation is not None and "Request" in ast.unparse(a.annotation)
                            for a in node.args.args + node.args.kwonlyargs):
                offences += [f"{path}:{read.lineno}: {node.name} reads the app's settings from the request's state "
                             f"— take `settings: SettingsDep` (services/kernel/settings.py) instead"
                             for read in ast.walk(node) if _state_settings(read)]
            if isinstance(node, ast.FunctionDef) and path != SETTINGS_MODULE and "settings" in node.name.lower():
                decorators = [ast.unparse(d) for d in node.decorator_list]
                if any("cache" in d for d in decorators):
                    offences.append(f"{path}:{node.lineno}: cached settings factory {node.name} — settings are "
                                    f"passed to create_service_app, not cached per module")
    assert not offences, "settings read outside the one Settings:\n" + "\n".join(offences)
