"""``sifund docs trace``: the traceability table docs/traceability.md — each seed clause the platform enforces → the
code that cites it → the tests that cite it.

How a line of the table is found (the rule is stated at the top of the generated file as well):

- **code**: every canonical citation (``services.kernel.citations``) in a comment, docstring or string of a module
  under ``services/``, ``gateway/`` or ``sifund/`` (migrations excepted: they quote old forms on purpose). Its
  location is ``module:name`` — the innermost function or class around it, or the module-level name it is assigned
  to (a rule table such as ``RULES``), or ``module`` for the module's docstring and comments.
- **tests**: a test function under ``tests/`` whose name, docstring, comments or strings cite the clause, or an item
  of it (a test of 001 第二十九条(五) is a test of 001 第二十九条); ``tests/…py`` alone when only the test module's docstring
  or module-level comments cite it. A test that exercises citing code without saying so is not counted: the table
  lists what a reader can check by opening the test, not a guess from coverage.

``python -m sifund docs trace --check`` (and ``tests/test_traceability.py``) fails when the file is not current.
"""

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from services.kernel.citations import SEEDS, clauses, find_citations_at, sort_key

ROOT = Path(__file__).resolve().parent.parent
CODE_ROOTS = ("services", "gateway", "sifund")
TEST_ROOTS = ("tests",)
OUTPUT = Path("docs/traceability.md")
# Modules that handle citations as data (the format, its tests, the migrations' tests): their examples are not
# obligations nor proofs.
NOT_TRACED = frozenset({"services/kernel/citations.py", "sifund/docs_trace.py", "tests/test_citations.py",
                        "tests/test_traceability.py", "tests/kernel/test_citation_migrations.py"})


@dataclass
class Trace:
    code: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    tests: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    test_modules: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def python_files(root: Path, tops: tuple[str, ...]) -> list[Path]:
    files = []
    for top in tops:
        files += [p for p in (root / top).rglob("*.py") if "migrations" not in p.parts or "versions" not in p.parts]
    return sorted(files)


def _scopes(tree: ast.Module) -> list[tuple[int, int, str, bool]]:
    """(first line, last line, qualified name, is a function) of every function, class and module-level or
    class-level assignment, outermost first."""
    out: list[tuple[int, int, str, bool]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                out.append((first, child.end_lineno or child.lineno, name, not isinstance(child, ast.ClassDef)))
                visit(child, f"{name}.")
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and isinstance(node, (ast.Module, ast.ClassDef)):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names:
                    out.append((child.lineno, child.end_lineno or child.lineno, f"{prefix}{names[0]}", False))

    visit(tree, "")
    return out


def citations_in(path: Path) -> list[tuple[str, str, bool]]:
    """(atomic clause, enclosing name or "", enclosing is a function) of every canonical citation in ``path``
    (citations are only ever written in comments and strings, so the source is read as text)."""
    source = path.read_text(encoding="utf-8")
    citations = [c for c in find_citations_at(source) if c[1].canonical]  # the others: tests/test_citations.py
    if not citations:
        return []
    scopes = _scopes(ast.parse(source))
    found = []
    for offset, citation in citations:
        line = source.count("\n", 0, offset) + 1
        inner = [s for s in scopes if s[0] <= line <= s[1]]
        name, is_function = (inner[-1][2], inner[-1][3]) if inner else ("", False)
        for clause in clauses(citation.text):
            found.append((clause, name, is_function))
    return found


def _module(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def collect(root: Path = ROOT) -> Trace:
    trace = Trace()
    for path in python_files(root, CODE_ROOTS):
        if path.relative_to(root).as_posix() in NOT_TRACED:
            continue
        module = _module(path, root)
        for clause, name, _ in citations_in(path):
            trace.code[clause].add(f"{module}:{name}" if name else module)
    for path in python_files(root, TEST_ROOTS):
        if path.relative_to(root).as_posix() in NOT_TRACED:
            continue
        module, relative = _module(path, root), path.relative_to(root).as_posix()
        for clause, name, is_function in citations_in(path):
            test_name = name.split(".")[-1] if is_function else ""
            if test_name.startswith("test"):
                trace.tests[clause].add(f"{module}::{name.replace('.', '::')}")
            elif not name or not is_function:
                trace.test_modules[clause].add(relative)
    return trace


def _proof(trace: Trace, clause: str) -> tuple[list[str], list[str]]:
    """The test functions and test modules citing ``clause`` or an item of it."""
    tests: set[str] = set()
    modules: set[str] = set()
    for cited, names in trace.tests.items():
        if cited == clause or cited.startswith(clause + "("):
            tests |= names
    for cited, names in trace.test_modules.items():
        if cited == clause or cited.startswith(clause + "("):
            modules |= names
    return sorted(tests), sorted(modules)


def untested(trace: Trace) -> list[str]:
    """Clauses cited in code that no test cites."""
    return [c for c in sorted(trace.code, key=sort_key) if _proof(trace, c) == ([], [])]


def render(trace: Trace) -> str:
    lines = [
        "# Traceability: seed clause → code → tests",
        "",
        "Generated by `sifund docs trace` from the citations in the code (`services/kernel/citations.py`, "
        "[citations.md](citations.md)); do not edit by hand. `tests/test_traceability.py` fails when this file is "
        "not current.",
        "",
        "- **code**: where a comment, docstring or string under `services/`, `gateway/` or `sifund/` cites the "
        "clause, as `module:name` (the innermost function or class, or the module-level name a rule table is "
        "assigned to; `module` alone for the module's docstring).",
        "- **tests**: the test functions whose name, docstring, comments or strings cite the clause or an item of "
        "it; a test module in *italics* when only its docstring does. A test that runs the citing code without "
        "naming the clause is not listed: the table shows what a reader can check by opening the test.",
        "- Seed texts and what the platform takes from each: [seeds.md](seeds.md).",
        "",
    ]
    by_seed: dict[str, list[str]] = defaultdict(list)
    for clause in sorted(set(trace.code) | set(trace.tests) | set(trace.test_modules), key=sort_key):
        by_seed[clause[:3]].append(clause)
    for seed, title in SEEDS.items():
        if seed not in by_seed:
            continue
        lines += [f"## {seed} {title}", "", "| clause | code | tests |", "|---|---|---|"]
        for clause in by_seed[seed]:
            code = "<br>".join(f"`{c}`" for c in sorted(trace.code.get(clause, ())))
            tests, modules = _proof(trace, clause)
            proof = [f"`{t}`" for t in tests] + [f"*`{m}`*" for m in modules]
            lines.append(f"| {clause} | {code or '—'} | {'<br>'.join(proof) or '**none**'} |")
        lines.append("")
    missing = untested(trace)
    lines += ["## Clauses cited in code with no test citing them", ""]
    lines += [f"- {clause}" for clause in missing] or ["None."]
    lines.append("")
    return "\n".join(lines)


def write(root: Path = ROOT) -> Path:
    target = root / OUTPUT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(collect(root)), encoding="utf-8")
    return target


def is_current(root: Path = ROOT) -> bool:
    target = root / OUTPUT
    return target.exists() and target.read_text(encoding="utf-8") == render(collect(root))
