"""The error catalogue: every error code the platform answers with, read from the code.

Collected by reading the source (``ast``) of services/, gateway/ and sifund/:

- each construction of ``DomainError`` or one of its subclasses (``Invalid``, ``Conflict``, ``NotFound``,
  ``Forbidden`` …, and subclasses declared elsewhere such as ``ImportFileError``), raised or returned;
- each ``HTTPException(status, detail={"code": …, "message": …})``, the gateway guard's ``_reply(send, status, code,
  message)`` and the generic answers of ``errors._HTTP_CODES``.

The rules checked:

- a refusal is raised as the class of its kind: ``DomainError`` itself only relays a refusal of another service with
  the status that service answered (``status=`` not a literal); a kind takes no ``status=``;
- one code, one status, wherever it is raised;
- every message is Chinese: the literal text of the message (or, when the message is a parameter of a small helper,
  of each call of that helper and of its default) contains CJK characters;
- every 4xx status the catalogue holds is one the OpenAPI documents declare for every route
  (``openapi.COMMON_ERRORS`` / ``GUARDED_ERRORS``).
"""

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from services.kernel import errors, openapi

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("services", "gateway", "sifund")
CJK = re.compile(r"[\u4e00-\u9fff]")

# Codes that are not a literal at their raise site: where they come from.
DYNAMIC_CODES: dict[tuple[str, str], list[str]] = {
    # _check_employer_active: EMPLOYER_STATES.get(status, ("EMPLOYER_NOT_ACTIVE", …))
    ("services/collection/assessments/service.py", "_check_employer_active"):
        ["EMPLOYER_SUSPENDED", "EMPLOYER_DEREGISTERED", "EMPLOYER_NOT_ACTIVE"],
    # save_upload(upload, limit, code, message): each upload endpoint names its own 413
    ("services/kernel/jobs.py", "save_upload"): ["FILE_TOO_LARGE", "IMPORT_FILE_TOO_LARGE"],
}
# Messages that are computed, not written at the raise site, and where their Chinese text is written instead.
COMPUTED_MESSAGES = {
    "INVALID_PERIOD": "services/kernel/periods.py: validate_period's PydanticCustomError messages",
    "USAGE_RULE_VIOLATION": "services/collection/treasury/rules.py: the texts of the usage rules violated",
}


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    code: str
    status: int
    message: ast.expr | None
    function: ast.FunctionDef | ast.AsyncFunctionDef | None

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.code} {self.status}"


@dataclass
class Catalogue:
    sites: list[Site]
    problems: list[str]


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(encoding="utf-8"), str(p))
            for source in SOURCES for p in sorted((ROOT / source).rglob("*.py"))}


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _error_classes(modules: dict[str, ast.Module]) -> dict[str, int]:
    """Error class name → its status: the kernel's, and subclasses declared in the code base."""
    known: dict[str, int] = {}

    def walk(cls: type) -> None:
        known[cls.__name__] = cls.status
        for sub in cls.__subclasses__():
            walk(sub)

    walk(errors.DomainError)
    changed = True
    while changed:
        changed = False
        for tree in modules.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in known:
                    bases = [_name(b) for b in node.bases]
                    base = next((b for b in bases if b in known), None)
                    if base is not None:
                        own = [s.value.value for s in node.body if isinstance(s, ast.Assign)
                               and [_name(t) for t in s.targets] == ["status"] and isinstance(s.value, ast.Constant)]
                        known[node.name] = own[0] if own else known[base]
                        changed = True
    return known


def _functions(tree: ast.Module) -> dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Each node → the innermost function around it."""
    owner: dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def visit(node: ast.AST, function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if inner is not None:
                owner[child] = inner
            visit(child, inner)

    visit(tree, None)
    return owner


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(call.args) > index and not any(isinstance(a, ast.Starred) for a in call.args[:index + 1]):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


@cache
def collect() -> Catalogue:
    modules = _modules()
    classes = _error_classes(modules)
    sites: list[Site] = []
    problems: list[str] = []
    for path, tree in modules.items():
        owner = _functions(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name, where = _name(node.func), f"{path}:{node.lineno}"
            function = owner.get(node)
            if name in classes and name != "DependencyUnavailable":
                status_given = next((k.value for k in node.keywords if k.arg == "status"), None)
                if name == "DomainError":
                    if status_given is None or isinstance(status_given, ast.Constant):
                        problems.append(f"{where}: DomainError(…) — raise the class of its kind (Invalid, Conflict, "
                                        "NotFound, Forbidden …); DomainError(status=…) only relays another service's")
                    continue  # a relay: the code and status are the other service's
                if status_given is not None:
                    problems.append(f"{where}: {name}(…, status=…) — the class fixes the status")
                code, message = _argument(node, 0, "code"), _argument(node, 1, "message")
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    codes = [code.value]
                else:
                    codes = DYNAMIC_CODES.get((path, function.name if function else ""), [])
                    if not codes:
                        problems.append(f"{where}: {name}(…) with a code that is not a literal — write it out or add "
                                        "it to DYNAMIC_CODES")
                sites += [Site(path, node.lineno, c, classes[name], message, function) for c in codes]
            elif name == "HTTPException" and node.args and isinstance(node.args[0], ast.Constant):
                detail = next((k.value for k in node.keywords if k.arg == "detail"), None)
                if isinstance(detail, ast.Dict):
                    fields = {k.value: v for k, v in zip(detail.keys, detail.values, strict=True)
                              if isinstance(k, ast.Constant)}
                    if isinstance(fields.get("code"), ast.Constant):
                        sites.append(Site(path, node.lineno, fields["code"].value, node.args[0].value,
                                          fields.get("message"), function))
            elif name == "_reply" and len(node.args) >= 4 and isinstance(node.args[1], ast.Constant) \
                    and isinstance(node.args[2], ast.Constant):
                sites.append(Site(path, node.lineno, node.args[2].value, node.args[1].value, node.args[3], function))
    for status, (code, message) in errors._HTTP_CODES.items():
        sites.append(Site("services/kernel/errors.py", 0, code, status, ast.Constant(message), None))
    unavailable = errors.DependencyUnavailable("x", "y")
    sites.append(Site("services/kernel/errors.py", 0, unavailable.code, unavailable.status,
                      ast.Constant(unavailable.message), None))
    _check_messages(modules, sites, problems)
    return Catalogue(sites, problems)


def _texts(node: ast.expr) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _is_chinese(node: ast.expr | None) -> bool:
    return node is not None and any(CJK.search(text) for text in _texts(node))


def _check_messages(modules: dict[str, ast.Module], sites: list[Site], problems: list[str]) -> None:
    calls: dict[str, list[ast.Call]] = defaultdict(list)
    for tree in modules.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func):
                calls[_name(node.func)].append(node)
    for site in sites:
        message = site.message
        if site.code in COMPUTED_MESSAGES or _is_chinese(message):
            continue
        parameters = site.function.args if site.function else None
        names = [a.arg for a in parameters.posonlyargs + parameters.args] if parameters else []
        if isinstance(message, ast.Name) and message.id in names:
            # a helper such as _not_allowed(message): each caller's text, and the default, must be Chinese
            index = names.index(message.id)
            defaults = dict(zip(names[len(names) - len(parameters.defaults):], parameters.defaults, strict=True))
            given = [_argument(c, index, message.id) for c in calls[site.function.name]]
            given = [g for g in given if g is not None] + ([defaults[message.id]] if message.id in defaults else [])
            bad = [g for g in given if not _is_chinese(g)]
            if given and not bad:
                continue
        problems.append(f"{site}: the message is not Chinese (or not written where it is raised)")


def test_every_refusal_is_raised_by_its_kind_with_a_code_and_a_chinese_message():
    catalogue = collect()
    assert not catalogue.problems, "\n".join(catalogue.problems)
    assert len({s.code for s in catalogue.sites}) > 250  # the reading found the code base's refusals


def test_one_status_per_code():
    statuses: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for site in collect().sites:
        statuses[site.code][site.status].append(str(site))
    twice = {code: dict(by) for code, by in statuses.items() if len(by) > 1}
    assert not twice, "codes raised with more than one status:\n" + "\n".join(
        f"{code}: {by}" for code, by in sorted(twice.items()))
    # the three the issue named, settled: not found is 404, a request the current state makes pointless is 409
    assert {c: set(statuses[c]) for c in ("PERSON_NOT_FOUND", "CORRECTION_CHANGES_NOTHING", "ACCOUNT_CLOSED")} == {
        "PERSON_NOT_FOUND": {404}, "CORRECTION_CHANGES_NOTHING": {409}, "ACCOUNT_CLOSED": {409}}


def test_every_client_error_status_is_declared_in_the_openapi_documents():
    declared = {int(s) for s in {**openapi.COMMON_ERRORS, **openapi.GUARDED_ERRORS}}
    declared.add(405)  # answered for a method a path does not have: there is no operation to declare it on
    undeclared = sorted({str(s) for s in collect().sites if 400 <= s.status < 500 and s.status not in declared})
    assert not undeclared, undeclared


def test_kinds_fix_their_status_and_keep_the_body():
    assert [(k.__name__, k.status) for k in (errors.BadRequest, errors.Forbidden, errors.NotFound, errors.Conflict,
                                             errors.TooLarge, errors.Invalid, errors.RateLimited, errors.BadGateway,
                                             errors.GatewayTimeout)] == [
        ("BadRequest", 400), ("Forbidden", 403), ("NotFound", 404), ("Conflict", 409), ("TooLarge", 413),
        ("Invalid", 422), ("RateLimited", 429), ("BadGateway", 502), ("GatewayTimeout", 504)]
    refusal = errors.Invalid("X_INVALID", "无效", details={"field": "x"})
    assert isinstance(refusal, errors.DomainError) and refusal.status == 422
    assert errors.error_body(refusal.code, refusal.message, refusal.details) == {
        "error": {"code": "X_INVALID", "message": "无效", "details": {"field": "x"}}}
    try:
        errors.Invalid("X_INVALID", "无效", status=409)  # type: ignore[call-arg]
    except TypeError:
        pass
    else:
        raise AssertionError("a kind must not take a status")
    relayed = errors.DomainError("FORBIDDEN", "参保登记系统拒绝核验", status=401)
    assert relayed.status == 401
