"""Schemathesis against the whole platform, in-process: the four services and the gateway run with their lifespans
(real SQLite or PostgreSQL, a real nats-server) in one event loop on a background thread, their internal HTTP calls
(benefits → accounts, oversight → gateway) routed to each other over ASGI. Every operation of the five published
OpenAPI documents is fuzzed, authenticated as each role its ``x-sifund-roles`` allow, and every answer is checked:
no 5xx, a declared status, a declared content type, a body that conforms to the declared schema.

Request schemas are annotated by field name before generation (``annotate_requests``) so that identifiers, periods,
regions, amounts and dates are mostly *valid* (tests/fuzz/strategies.py) and requests reach the deep write paths;
the published documents themselves are not changed. Used by tests/fuzz/test_fuzz.py (a bounded profile in the
suite) and by ``python -m tests.fuzz.run`` (``make fuzz``, as long as asked, findings written to a JSON file).
"""

import copy
import functools
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import create_app as create_gateway
from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES, Settings
from sifund import services as catalogue
from tests.support.apps import bearer
from tests.fuzz import strategies

COMPONENTS = (*SERVICES, "gateway")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
INTERNAL_HOST = "http://{name}.fuzz"  # where the in-process components reach each other
TOKEN_REGION = "150100"  # the test tokens' region (Hohhot): the generated districts are inside it, 110101 is not

# Fuzzing must not be throttled: the platform's rate limits are tested on their own.
FUZZ_SETTINGS = {
    "rate_limit_token_per_ip_per_minute": 1_000_000,
    "rate_limit_per_ip_per_minute": 1_000_000,
    "rate_limit_per_principal_per_minute": 1_000_000,
    **{f"{name}_url": INTERNAL_HOST.format(name=name) for name in COMPONENTS},
}

# -- request annotation: field name → strategy ----------------------------------------------------------------------

FORMATS = {
    "sifund-citizen-id": strategies.citizen_ids(),
    "sifund-uscc": strategies.usccs(),
    "sifund-bank-card": strategies.bank_cards(),
    "sifund-region": strategies.regions(),
    "sifund-yuan": strategies.yuan_amounts(),
    "date": strategies.plausible_dates(),  # overrides schemathesis' own: mostly dates near the present
}
STRING_FIELDS = (
    (re.compile(r"(^|_)citizen_id$"), "sifund-citizen-id"),
    (re.compile(r"(^|_)uscc$"), "sifund-uscc"),
    (re.compile(r"(^|_)(account_no|card_no)$"), "sifund-bank-card"),
    (re.compile(r"(^|_)region$"), "sifund-region"),
)
MONEY_FIELD = re.compile(r"(^|_)(amount|base|wage|salary|fee|total|principal|balance)(_|$)")
PERIOD_FIELD = re.compile(r"(^|_)period$|^(month|until)$")
VALID_PERIODS = [y * 100 + m for y in range(strategies.FIRST_PERIOD_YEAR, strategies.LAST_PERIOD_YEAR + 1)
                 for m in range(1, 13)]


def register_formats() -> None:
    for name, strategy in FORMATS.items():
        schemathesis.openapi.format(name, strategy)


class KnownIds:
    """Ids the platform handed out in this campaign (2xx bodies), by the path parameter they fill (``person_id``,
    ``run_id`` …), so that path parameters name existing resources and requests get past the 404 to the rules."""

    FORMAT_PREFIX = "sifund-known-id:"

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}
        self._seen: set[tuple[str, str]] = set()

    def strategy(self, parameter: str) -> st.SearchStrategy[str]:
        known = st.integers(0, 2**31).map(functools.partial(self.pick, parameter))
        return st.one_of(known, known, known, st.text(min_size=1, max_size=40))

    def pick(self, parameter: str, index: int) -> str:
        ids = self.ids.get(parameter)
        return ids[index % len(ids)] if ids else f"00000000-0000-7000-8000-{index:012d}"

    def add(self, parameter: str, value: object) -> None:
        if isinstance(value, str) and 0 < len(value) <= 64 and (parameter, value) not in self._seen:
            self._seen.add((parameter, value))
            self.ids.setdefault(parameter, []).append(value)

    def harvest(self, path: str, body: object) -> None:
        """``{"id": …}`` at the top names the resource of the path's last literal segment (``/payroll/runs`` →
        ``run_id``); nested ``{"run": {"id": …}}`` → ``run_id``; any ``…_id`` key fills that parameter."""
        literal = [seg for seg in path.split("/") if seg and not seg.startswith("{")]
        self._walk(_singular(literal[-1]) if literal else "", body, depth=0)

    def _walk(self, resource: str, node: object, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(node, list):
            for item in node[:50]:
                self._walk(resource, item, depth + 1)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "id" and resource:
                    self.add(f"{resource}_id", value)
                elif key.endswith("_id"):
                    self.add(key, value)
                elif isinstance(value, dict | list):
                    self._walk(_singular(key) if isinstance(value, dict) else resource, value, depth + 1)


def _singular(word: str) -> str:
    word = word.replace("-", "_")
    for plural, single in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("s", "")):
        if word.endswith(plural):
            return word[: -len(plural)] + single
    return word


def annotate(schema: Any, name: str | None) -> Any:
    """A copy of ``schema`` (refs already inlined) where fields named like identifiers, periods and amounts get the
    formats / enums of the valid-value strategies."""
    if not isinstance(schema, dict):
        return schema
    schema = dict(schema)
    if name and not name.endswith("_fen") and MONEY_FIELD.search(name) and _takes_string(schema):
        nullable = [b for b in schema.get("anyOf", []) if b.get("type") == "null"]
        money = {"type": "string", "format": "sifund-yuan"}
        return {"anyOf": [money, *nullable]} if nullable else money
    if name and schema.get("type") == "integer" and PERIOD_FIELD.search(name):
        return {"type": "integer", "enum": VALID_PERIODS}
    if name and schema.get("type") == "string" and "enum" not in schema:
        for pattern, fmt in STRING_FIELDS:
            if pattern.search(name):
                schema.pop("pattern", None)
                return {**schema, "format": fmt}
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            schema[key] = [annotate(branch, name) for branch in schema[key]]
    if "items" in schema:
        schema["items"] = annotate(schema["items"], name)
    if isinstance(schema.get("properties"), dict):
        schema["properties"] = {k: annotate(v, k) for k, v in schema["properties"].items()}
    return schema


def _takes_string(schema: dict) -> bool:
    if schema.get("type") == "string":
        return True
    return any(b.get("type") == "string" for b in schema.get("anyOf", []))


def inline_refs(node: Any, document: dict, seen: frozenset[str] = frozenset()) -> Any:
    if isinstance(node, list):
        return [inline_refs(v, document, seen) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/") and ref not in seen:
        target = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return inline_refs(target, document, seen | {ref})
    return {k: inline_refs(v, document, seen) for k, v in node.items()}


def annotate_requests(document: dict, known: KnownIds | None = None) -> dict:
    """The document with its request side (parameters, JSON bodies) annotated; responses keep the published
    schemas, so conformance is checked against what the platform promises. Security requirements are dropped: the
    harness sends a real token for a role the operation allows (forged tokens are tests/test_authorization_matrix.py's
    job), so negative mode spends its examples on parameters and bodies rather than on the Authorization header."""
    document = copy.deepcopy(document)
    document.get("components", {}).pop("securitySchemes", None)
    document.pop("security", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
            for parameter in operation.get("parameters", []):
                parameter["schema"] = annotate(inline_refs(parameter.get("schema", {}), document), parameter["name"])
                name = parameter["name"]
                if known is not None and parameter["in"] == "path" and name.endswith("_id") \
                        and parameter["schema"].get("type") == "string":
                    parameter["schema"] = {**parameter["schema"], "format": KnownIds.FORMAT_PREFIX + name}
                    schemathesis.openapi.format(KnownIds.FORMAT_PREFIX + name, known.strategy(name))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body and "schema" in body:
                body["schema"] = annotate(inline_refs(body["schema"], document), None)
    return document


# -- the platform, in-process ----------------------------------------------------------------------------------------


def build(component: str, settings: Settings):
    if component == "gateway":
        return create_gateway(settings)
    return create_service_app(catalogue.spec(component), settings)


@asynccontextmanager
async def running_app(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, behind a client that gets a crash as the 500 a server would send (the suite's
    ``tests.support.apps.running_app`` re-raises it in the test instead, which would hide it from the checks)."""
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class Platform:
    """``with Platform(settings) as platform:`` the five components started; ``platform.send(...)`` one request."""

    def __init__(self, settings: Settings, *, nats_monitor_url: str | None = None):
        update = {**FUZZ_SETTINGS, **({"nats_monitor_url": nats_monitor_url} if nats_monitor_url else {})}
        self.settings = settings.model_copy(update=update)
        self.clients: dict[str, httpx.AsyncClient] = {}
        self._stack = ExitStack()
        self.portal: BlockingPortal | None = None

    def __enter__(self) -> "Platform":  # noqa: PYI034
        try:
            self.portal = self._stack.enter_context(start_blocking_portal())
            for component in COMPONENTS:
                cm = self.portal.wrap_async_context_manager(running_app(build(component, self.settings)))
                self.clients[component] = self._stack.enter_context(cm)
            self.portal.call(self._wire)
            self._stack.callback(self.portal.call, self._unwire)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    async def _wire(self) -> None:
        """Services call each other through their shared ``app.state.http``, the gateway its services through
        ``app.state.upstream``: route both to the in-process apps (other URLs, e.g. NATS monitoring, stay real)."""
        mounts = {INTERNAL_HOST.format(name=name): httpx.ASGITransport(app=client.app,  # type: ignore[attr-defined]
                                                                       raise_app_exceptions=False)
                  for name, client in self.clients.items()}
        for name in SERVICES:
            state = self.clients[name].app.state  # type: ignore[attr-defined]
            original = state.http
            state.http = httpx.AsyncClient(mounts=mounts, timeout=original.timeout, trust_env=False)
            await original.aclose()  # the lifespan closes the replacement on shutdown
        gateway = self.clients["gateway"].app.state  # type: ignore[attr-defined]
        self._gateway_upstream = gateway.upstream  # the lifespan closes this one
        gateway.upstream = httpx.AsyncClient(mounts=mounts, timeout=gateway.upstream.timeout, trust_env=False)

    async def _unwire(self) -> None:
        gateway = self.clients["gateway"].app.state  # type: ignore[attr-defined]
        replacement, gateway.upstream = gateway.upstream, self._gateway_upstream
        await replacement.aclose()

    def document(self, component: str) -> dict:
        return self.portal.call(self._get_json, component, "/openapi.json")

    async def _get_json(self, component: str, path: str) -> dict:
        response = await self.clients[component].get(path)
        response.raise_for_status()
        return response.json()

    def send(self, component: str, request: dict[str, Any]) -> httpx.Response:
        return self.portal.call(functools.partial(self._send, component, request))

    async def _send(self, component: str, request: dict[str, Any]) -> httpx.Response:
        client = self.clients[component]
        kwargs: dict[str, Any] = {"headers": request.get("headers"), "params": request.get("params") or None,
                                  "cookies": request.get("cookies") or None}
        if "json" in request:
            kwargs["json"] = request["json"]
        data = request.get("data")
        if isinstance(data, str | bytes):
            kwargs["content"] = data
        elif data is not None:
            kwargs["data"] = data
        if request.get("files"):
            kwargs["files"] = request["files"]
        response = await client.request(request["method"], request["url"], **kwargs)
        await response.aread()
        try:
            response.request.read()  # multipart bodies are streams: schemathesis' report reads the request again
        except Exception:  # noqa: BLE001, S110 — a stream that cannot be replayed only shortens the report
            pass
        return response


# -- fuzzing ---------------------------------------------------------------------------------------------------------


@dataclass
class OperationResult:
    component: str
    operation: str
    roles: list[str]
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: dict[tuple[str, str], dict] = field(default_factory=dict)  # (check, status) → first example + count
    errors: list[str] = field(default_factory=list)  # the harness could not generate or send (not a finding)

    def record_failure(self, check: str, title: str, message: str, status: int, request: dict) -> None:
        key = (check, str(status))
        if key in self.failures:
            self.failures[key]["count"] += 1
            return
        self.failures[key] = {"component": self.component, "operation": self.operation, "check": check,
                              "title": title, "status": status, "message": message[:1500],
                              "request": request, "count": 1}

    def as_dict(self) -> dict:
        return {"component": self.component, "operation": self.operation, "roles": self.roles,
                "requests": self.requests, "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "failures": sum(f["count"] for f in self.failures.values()), "harness_errors": self.errors[:5]}


def loaded_schemas(platform: Platform, components: tuple[str, ...] = COMPONENTS,
                   known: KnownIds | None = None) -> dict[str, Any]:
    register_formats()
    return {c: schemathesis.openapi.from_dict(annotate_requests(platform.document(c), known)) for c in components}


def operations(schema: Any) -> list[Any]:
    """Creating operations (no path parameter) first, so that the ids they hand out are known to the others."""
    ops = [result.ok() for result in schema.get_all_operations()]
    return sorted(ops, key=lambda op: "{" in op.path)


def fuzz_operation(platform: Platform, component: str, operation: Any, *, examples: int,
                   modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                   derandomize: bool = False, known: KnownIds | None = None) -> OperationResult:
    raw = operation.definition.raw
    roles = list(raw.get("x-sifund-roles") or [])
    result = OperationResult(component=component, operation=operation.label, roles=roles)
    role_strategy = st.sampled_from(roles) if roles else st.none()

    def exchange(case: Any, role: str | None) -> None:
        headers = bearer(platform.settings, role, region=TOKEN_REGION) if role else {}
        request = case.as_transport_kwargs(base_url="http://test", headers=headers)
        try:
            response = platform.send(component, request)
        except Exception as exc:  # noqa: BLE001 — e.g. a generated body httpx cannot encode: nothing was sent
            result.errors.append(f"not sent: {type(exc).__name__}: {exc}"[:300])
            return
        result.requests += 1
        result.statuses[response.status_code] += 1
        if known is not None and 200 <= response.status_code < 300 \
                and response.headers.get("content-type", "").startswith("application/json"):
            known.harvest(operation.path, response.json())
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                if response.status_code >= 500 and _check_name(failure) == "status_code_conformance":
                    continue  # a 5xx is reported once, as a server error
                result.record_failure(_check_name(failure), failure.title, str(failure.message), response.status_code,
                                      _describe(request, role, response))

    for mode in modes:
        try:
            strategy = operation.as_strategy(generation_mode=mode)
        except Exception as exc:  # noqa: BLE001
            result.errors.append(f"{mode.value}: no strategy: {type(exc).__name__}: {exc}"[:300])
            continue

        @hypothesis_settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                             suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                             report_multiple_bugs=False)
        @given(case=strategy, role=role_strategy)
        def run(case: Any, role: str | None) -> None:
            exchange(case, role)

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                result.errors.append("positive: no example satisfies the schema")
            # negative: nothing to violate (no parameters, no body)
        except Exception as exc:  # noqa: BLE001 — generation or the harness failed: noted, not a finding
            result.errors.append(f"{mode.value}: {type(exc).__name__}: {exc}"[:300])
    return result


def _check_name(failure: Any) -> str:
    names = {"ServerError": "not_a_server_error", "UndefinedStatusCode": "status_code_conformance",
             "UndefinedContentType": "content_type_conformance", "MalformedMediaType": "content_type_conformance",
             "JsonSchemaError": "response_schema_conformance", "MalformedJson": "response_schema_conformance"}
    return names.get(type(failure).__name__, type(failure).__name__)


def _describe(request: dict, role: str | None, response: httpx.Response) -> dict:
    body = request.get("json", request.get("data"))
    if request.get("files"):
        body = {"multipart": str(request["files"])[:500]}
    return {"method": request["method"], "url": request["url"], "params": request.get("params") or None,
            "role": role, "body": _truncate(body), "response": response.text[:500]}


def _truncate(value: Any, limit: int = 2000) -> Any:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= limit else text[:limit] + "…"


@dataclass
class Campaign:
    """A fuzz run over several documents: per-operation results and a summary, as the findings file holds them."""

    examples: int
    started: float = field(default_factory=time.time)
    results: list[OperationResult] = field(default_factory=list)
    known: KnownIds = field(default_factory=KnownIds)

    def run(self, platform: Platform, components: tuple[str, ...] = COMPONENTS, *, derandomize: bool = False,
            progress: Any = None) -> "Campaign":
        for component, schema in loaded_schemas(platform, components, self.known).items():
            for operation in operations(schema):
                result = fuzz_operation(platform, component, operation, examples=self.examples,
                                        derandomize=derandomize, known=self.known)
                self.results.append(result)
                if progress:
                    progress(result)
        return self

    def failures(self) -> list[dict]:
        return [f for r in self.results for f in r.failures.values()]

    def as_dict(self) -> dict:
        failures = self.failures()
        by_check = Counter()
        for f in failures:
            by_check[f["check"]] += f["count"]
        return {
            "examples_per_operation_and_mode": self.examples,
            "modes": ["positive", "negative"],
            "seconds": round(time.time() - self.started, 1),
            "documents": sorted({r.component for r in self.results}),
            "operations": len(self.results),
            "requests": sum(r.requests for r in self.results),
            "statuses": {str(k): v for k, v in sorted(sum((r.statuses for r in self.results), Counter()).items())},
            "server_errors": by_check["not_a_server_error"],
            "schema_violations": sum(v for k, v in by_check.items() if k != "not_a_server_error"),
            "failures_by_check": dict(by_check),
            "failures": failures,
            "known_ids": {name: len(ids) for name, ids in sorted(self.known.ids.items())},
            "per_operation": [r.as_dict() for r in self.results],
        }
