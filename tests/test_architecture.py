"""The architecture as a test: the import contracts of pyproject.toml ([tool.importlinter], checked by import-linter)
hold, each of them fails on a tree that breaks it, and no test module imports another test module or a conftest
(shared factories live in tests/support/)."""

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from sifund.natsd import NatsServer

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def lint_imports(tree: Path, *contracts: str) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages under ``tree`` with its pyproject.toml (only ``contracts`` if named)."""
    script = Path(sys.executable).with_name("lint-imports")
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    command += ["--no-cache", "--no-logo", *[a for c in contracts for a in ("--contract", c)]]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def test_the_import_contracts_hold():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


# One import per contract that breaks it: (file in a copy of the tree, line added).
BREAKS = {
    "services-independent": ("services/accounts/_probe.py", "import services.collection.models"),
    "contracts-import-no-service": ("services/contracts/_probe.py", "import services.accounts.models"),
    "kernel-imports-no-service": ("services/kernel/_probe.py", "import services.benefits.models"),
    "gateway-imports-no-service": ("gateway/_probe.py", "import services.oversight.models"),
    "services-import-no-gateway": ("services/oversight/_probe.py", "import gateway.app"),
    "pure-rules-no-database": ("services/collection/arrears/latefee.py", "import sqlalchemy"),
    "no-cycles-inside-a-package": ("services/benefits/registry/service.py", "import services.benefits.recovery.service"),
}


def test_every_contract_has_a_probe():
    assert sorted(BREAKS) == sorted(c["id"] for c in CONTRACTS)


def test_each_contract_fails_on_a_tree_that_breaks_it(tmp_path):
    tree = tmp_path / "tree"
    for top in ("services", "gateway", "sifund"):
        shutil.copytree(ROOT / top, tree / top, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    (tree / "services/contracts").mkdir(exist_ok=True)
    (tree / "services/contracts/__init__.py").touch()
    assert lint_imports(tree).returncode == 0  # the copy holds, as the tree does
    for path, line in BREAKS.values():
        with (tree / path).open("a") as f:
            f.write(f"\n{line}  # probe\n")
    for contract in BREAKS:
        run = lint_imports(tree, contract)
        assert run.returncode != 0 and "BROKEN" in run.stdout, (contract, run.stdout + run.stderr)


def imports_of_test_modules(source: str, module: str) -> list[str]:
    """The modules ``source`` (the text of ``module``) imports that are test modules or conftests."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            last = name.rsplit(".", 1)[-1]
            if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                found.append(name)
    return found


def test_no_test_module_imports_another_test_module_or_a_conftest():
    offenders = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found = imports_of_test_modules(path.read_text(encoding="utf-8"), module)
        if found:
            offenders[module] = found
    assert offenders == {}, "shared helpers belong in tests/support/"


def test_the_import_scan_sees_every_form():
    assert imports_of_test_modules("from tests.accounts.test_persons import person_body", "tests.x") == [
        "tests.accounts.test_persons"]
    assert imports_of_test_modules("import tests.conftest", "tests.x") == ["tests.conftest"]
    assert imports_of_test_modules("from tests.gateway import conftest", "tests.x") == ["tests.gateway.conftest"]
    assert imports_of_test_modules("from .test_ledger import feed", "tests.oversight.test_rules") == [
        "tests.oversight.test_ledger"]
    assert imports_of_test_modules("from tests.support.oversight import feed", "tests.x") == []


def test_a_unit_test_cannot_start_a_nats_server(tmp_path):
    with pytest.raises(AssertionError, match="without NATS"):
        NatsServer(tmp_path / "nats").start()


def test_a_deprecated_call_in_the_tests_fails_the_test():
    """pyproject's filterwarnings: no blanket ignore, and a DeprecationWarning raised from test code is an error."""
    with pytest.raises(DeprecationWarning):
        warnings.warn("deprecated", DeprecationWarning, stacklevel=1)
