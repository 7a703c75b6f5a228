"""The event catalogue, rendered into docs/events.md (``sifund docs events``) and checked current by a test.

Everything is read from the code: the types and their fields from the contract modules (``services.contracts``),
the producer from the contract module a type lives in, the consumers from the handler registries every service
declares (``ServiceSpec.consumers``: the domain package whose handler receives the type), and the seed clauses
from the payload's docstring.
"""

import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from services import contracts
from services.kernel.events import EVENT_TYPES, EventPayload, stream_for
from services.kernel.settings import SERVICES
from sifund import services as catalogue

DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "events.md"
COMMAND = "sifund docs events"

# A seed citation: the seed's number, then 第…条 or a section numeral, then any (…) / （…） / .N / N qualifiers:
# 001 第二十七条, 000 二(二), 003 三.5, 000 二(四)1, 002 (一), 001 第十一条(三).
_NUMERAL = "一二三四五六七八九十百"
CLAUSE = re.compile(rf"\b0\d\d (?:第[{_NUMERAL}]+条|[{_NUMERAL}]+|(?=[(（]))(?:[(（][{_NUMERAL}\d]+[)）]|\.\d+|\d+)*")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    default: str | None = None


@dataclass(frozen=True)
class EventEntry:
    type: str
    stream: str
    producer: str
    consumers: tuple[str, ...]
    summary: str
    clauses: tuple[str, ...]
    fields: tuple[Field, ...]
    nested: tuple[tuple[str, tuple[Field, ...]], ...]  # line models: name -> fields


def consumers_by_type() -> dict[str, set[str]]:
    """Event type -> the consuming ``service.package``s, from each service's declared consumer specs."""
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        for consumer in catalogue.spec(service).consumers:
            for event_type, handler in consumer.handlers.items():
                found.setdefault(event_type, set()).add(_package_of(handler, service))
    return found


def _package_of(handler: Any, service: str) -> str:
    module = getattr(handler, "__module__", None) or getattr(getattr(handler, "func", None), "__module__", "")
    parts = module.split(".")
    if len(parts) >= 3 and parts[0] == "services" and parts[1] == service and parts[2] not in ("handlers", "app"):
        return f"{service}.{parts[2]}"
    return service


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _fields(model: type[BaseModel]) -> tuple[Field, ...]:
    out = []
    for name, info in model.model_fields.items():
        default = None
        if not info.is_required():
            default = "[]" if info.default_factory is list else repr(info.default)
        out.append(Field(name, type_name(info.annotation), info.is_required(), default))
    return tuple(out)


def _nested_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.append(annotation)
            return
        for arg in typing.get_args(annotation):
            walk(arg)

    for info in model.model_fields.values():
        walk(info.annotation)
    return found


def _summary(doc: str | None) -> str:
    if not doc:
        return ""
    return " ".join(doc.split())


def entries() -> list[EventEntry]:
    modules = {m.__name__: m.__name__.rsplit(".", 1)[1] for m in contracts.modules()}
    consumers = consumers_by_type()
    out = []
    for event_type, model in sorted(EVENT_TYPES.items()):
        if model.__module__ not in modules:
            continue  # a test's or a benchmark's type, not a contract
        doc = model.__doc__ if model.__doc__ != EventPayload.__doc__ else None
        out.append(EventEntry(
            type=event_type, stream=stream_for(event_type), producer=modules[model.__module__],
            consumers=tuple(sorted(consumers.get(event_type, ()))), summary=_summary(doc),
            clauses=tuple(dict.fromkeys(CLAUSE.findall(doc or ""))), fields=_fields(model),
            nested=tuple((m.__name__, _fields(m)) for m in _nested_models(model)),
        ))
    return out


def _field_rows(fields: tuple[Field, ...]) -> list[str]:
    rows = ["| field | type | required |", "|---|---|---|"]
    for f in fields:
        required = "yes" if f.required else f"no (default {f.default})"
        rows.append(f"| `{f.name}` | `{f.type}` | {required} |")
    return rows


def render() -> str:
    items = entries()
    lines = [
        "# Event catalogue",
        "",
        f"<!-- Generated by `{COMMAND}` from services/contracts and the services' consumer registries; do not edit."
        " tests/test_event_catalogue.py fails when this file is not current. -->",
        "",
        "Every integration event: its type (the NATS subject), stream, producing service, the consuming",
        "`service.package`s, the seed clauses its docstring cites, and its payload fields. Payload models live in",
        "`services/contracts/<producer>.py`; codes (funds, statuses, case classes) in `services/contracts/codes.py`;",
        "the committed JSON schema of each type in `services/contracts/snapshots/`. Producers are strict (an unknown",
        "field fails); consumers ignore unknown fields. A change that is not backward compatible needs a new version",
        "of the type (`….v2`).",
        "",
        "Compact lines. The bulk line events (`collection.assessment.issued`, `collection.payments.collected`,",
        "`accounts.contributions.posted`, from v2) write each line as a JSON array of its values in the order its",
        "`Compact…Line` table lists them (the fields of the v1 line), not as an object: a line no longer repeats its",
        "keys. The order is the contract: a later version may only append optional values; a consumer drops values",
        "beyond the ones it knows, as it drops unknown keys. Producers publish v2 only (the class they name, e.g.",
        "`PaymentsCollected`, is v2). The v1 class (`…V1`, lines as objects, its subclass) stays registered: an old",
        "event in a stream, or one replayed by oversight's rebuild, is read through the same payload class and view",
        "(the same attribute names), and every consumer registers its handler for both versions",
        "(`dict.fromkeys(PaymentsCollected.versions(), handler)`). A stored envelope's lines read as objects through",
        "`services.kernel.events.plain_data`.",
        "",
        "| type | stream | producer | consumers | seed clauses |",
        "|---|---|---|---|---|",
    ]
    for e in items:
        lines.append(f"| [`{e.type}`](#{_anchor(e.type)}) | {e.stream} | {e.producer} | "
                     f"{', '.join(e.consumers) or '—'} | {'; '.join(e.clauses) or '—'} |")
    for e in items:
        lines += ["", f"## {e.type}", ""]
        if e.summary:
            lines += [e.summary, ""]
        lines.append(f"Stream {e.stream}; producer {e.producer}; consumers: {', '.join(e.consumers) or 'none'}.")
        lines += ["", *_field_rows(e.fields)]
        for name, fields in e.nested:
            lines += ["", f"`{name}`:", "", *_field_rows(fields)]
    return "\n".join(lines) + "\n"


def _anchor(event_type: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", event_type.lower())


def write(path: Path | None = None) -> Path:
    path = path or DOCS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path
