"""Integration events: the envelope of ARCHITECTURE.md (Events), typed payloads and the registry of types.

A payload class (in ``services.contracts``) names its type once::

    class EmployerRegistered(EventPayload, event_type="accounts.employer.registered.v1"):
        employer_id: str
        ...

and ``EVENT_TYPES`` maps every type string to its model, so producers validate what they emit and consumers
parse what they receive with the same class. Producers are strict: a payload (or a line model, ``ContractModel``)
built with a field it does not declare fails. Consumers are lenient: ``EventEnvelope.payload`` drops the fields it
does not know, so a field added by a newer producer during a rolling deploy does not dead-letter the event. This
module is mechanics only: it imports no service and no contract.

A consumer decodes an envelope's head only (``from_bytes``: msgspec skips over ``data`` and keeps its JSON text);
``payload()`` validates that text straight into the typed payload (one pydantic ``model_validate_json``, no
intermediate dict), and ``data`` is parsed into a dict only when someone reads it. A 1 000-line event's decode and
payload cost about a third of a full parse into a dict and a validation of that dict.
"""

import types
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

import msgspec
import annotated_types
import pydantic_core
import uuid_utils
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    model_serializer,
    model_validator,
)

from services.kernel import clock

# One stream per producing domain (ARCHITECTURE.md, Streams). The NATS subject of an event is its type.
STREAMS: dict[str, str] = {
    "ACCOUNTS": "accounts",
    "COLLECTION": "collection",
    "BENEFITS": "benefits",
    "OVERSIGHT": "oversight",
    "EXCHANGE": "exchange",
}
_STREAM_BY_PREFIX = {prefix: name for name, prefix in STREAMS.items()}

EVENT_TYPES: dict[str, type["EventPayload"]] = {}
P = TypeVar("P", bound="EventPayload")


class UnknownEventType(KeyError):
    pass


def new_event_id() -> str:
    """UUIDv7: globally unique and time-ordered; also the ``Nats-Msg-Id``. Its 48-bit millisecond timestamp is the
    platform clock's (a case reads when the event that opened it was minted from it): the library's monotonic id is
    moved by the clock's fixed offset, which keeps the order."""
    return new_event_ids(1)[0]


def new_event_ids(count: int) -> list[str]:
    """``count`` ids of ``new_event_id`` at once (the lines of a batch), the clock's offset read once."""
    shift_ms = clock.anchor() // _MILLISECOND
    if not shift_ms:
        return [str(uuid_utils.uuid7()) for _ in range(count)]
    shift = shift_ms << 80
    return [str(uuid.UUID(int=uuid_utils.uuid7().int + shift)) for _ in range(count)]


_MILLISECOND = timedelta(milliseconds=1)


def stream_for(event_type: str) -> str:
    try:
        return _STREAM_BY_PREFIX[event_type.split(".", 1)[0]]
    except KeyError:
        raise UnknownEventType(f"no stream carries events of type {event_type!r}") from None


class ContractModel(BaseModel):
    """Base of the models nested in event payloads (the lines of a batch): strict when a producer builds them."""

    model_config = ConfigDict(extra="forbid")


class CompactLine(ContractModel):
    """Base of a line written as a JSON array of its values in the order its class declares its fields (a compact
    wire form: a bulk event's lines do not repeat their keys), made from a line model by ``compact_line``. The
    order is the contract: a later version of the line may only append optional fields (``compat`` checks it).

    It still validates a line given as an object (a producer's fields, a line model); an array longer than its
    fields is refused by the strict producer's model and its extra values dropped by the lenient consumer's (as
    unknown keys are). ``model_dump()`` (Python) gives an object; JSON (``model_dump(mode="json")``,
    ``model_dump_json``) gives the array; its JSON schema is the array's (``prefixItems``, one per field, its title
    the field's name). The msgspec twin and view of a compact line follow (``_twin``)."""

    @model_validator(mode="before")
    @classmethod
    def _from_values(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            names = tuple(cls.model_fields)
            fields = dict(zip(names, value))
            fields.update((f"#{i}", extra) for i, extra in enumerate(value[len(names):], len(names)))
            return fields
        if isinstance(value, ContractModel) and not isinstance(value, cls):
            return dict(value)  # the same line in its object form (``compact_line(X)`` of an ``X``)
        return value

    @model_serializer(mode="wrap")
    def _to_values(self, handler: Any, info: Any) -> Any:
        fields = handler(self)
        return list(fields.values()) if info.mode_is_json() else fields

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        schema = handler.resolve_ref_schema(handler(core_schema))
        properties, required = schema.pop("properties"), set(schema.pop("required", ()))
        schema.pop("additionalProperties", None)
        names = list(cls.model_fields)
        schema.update(type="array", prefixItems=[{**properties[name], "title": name} for name in names],
                      minItems=next((i for i, name in enumerate(names) if name not in required), len(names)))
        return schema


def compact_line(line: type[ContractModel], name: str, doc: str) -> type[CompactLine]:
    """The compact form of ``line``: its fields (names, types, defaults, order), written as an array. Not a subclass
    of ``line``: whoever checks ``isinstance(…, line)`` and writes it expects the object form."""
    fields: dict[str, Any] = {field: (info.annotation, info) for field, info in line.model_fields.items()}
    return create_model(name, __base__=CompactLine, __module__=line.__module__, __doc__=doc, **fields)


def compact_lists(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that are lists of compact lines."""
    return tuple(name for name, info in model.model_fields.items()
                 if get_origin(info.annotation) is list and isinstance(get_args(info.annotation)[0], type)
                 and issubclass(get_args(info.annotation)[0], CompactLine))


def plain_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event's ``data`` with its compact lines as objects (for readers of stored envelopes: tests, tools)."""
    model = EVENT_TYPES.get(event_type)
    if model is None:
        return data
    data = dict(data)
    for name in compact_lists(model):
        names = tuple(get_args(model.model_fields[name].annotation)[0].model_fields)
        data[name] = [dict(zip(names, line)) if isinstance(line, list) else line for line in data.get(name, ())]
    return data


class EventPayload(BaseModel):
    """Base of every event payload. Subclasses declare ``event_type=...`` in their class statement.

    A new version of a type whose meaning is unchanged (a new wire form) keeps the class name its producers and
    consumers use, now with the new type; the old version is declared as its subclass (``class XV1(X,
    event_type="….v1")``, overriding the fields whose form changed), so ``payload_view(X)`` reads both with the same
    attribute names and ``X.versions()`` lists both types for a consumer's handler map."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]

    def __init_subclass__(cls, event_type: str | None = None, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if event_type is None:
            return
        parts = event_type.split(".")
        if len(parts) != 4 or not parts[3].startswith("v") or not parts[3][1:].isdigit():
            raise ValueError(f"event type {event_type!r} is not <service>.<entity>.<verb-past>.v<N>")
        stream_for(event_type)
        if event_type in EVENT_TYPES and EVENT_TYPES[event_type].__qualname__ != cls.__qualname__:
            raise ValueError(f"event type {event_type!r} registered twice")
        cls.event_type = event_type
        EVENT_TYPES[event_type] = cls

    @classmethod
    def versions(cls) -> tuple[str, ...]:
        """This type and its older versions declared as subclasses (the same ``<service>.<entity>.<verb>``), newest
        first: what a consumer registers its handler (or its ignoring) for."""
        family = cls.event_type.rsplit(".", 1)[0]
        found = [t for t, model in EVENT_TYPES.items() if issubclass(model, cls) and t.rsplit(".", 1)[0] == family]
        return tuple(sorted(found, key=lambda t: -int(t.rsplit(".v", 1)[1])))


class EventActor(BaseModel):
    id: str
    role: str | None = None


class _WireEnvelope(msgspec.Struct):
    """An envelope as it crosses the bus, with ``data`` left as its JSON text (``msgspec.Raw``: checked to be well
    formed JSON, not decoded). The head's values are validated by ``EventEnvelope`` as before; unknown keys are
    ignored, as ``EventEnvelope`` ignores them."""

    id: Any = None
    type: Any = None
    source: Any = None
    subject: Any = None
    time: Any = None
    actor: Any = None
    correlation_id: Any = None
    causation_id: Any = None
    data: msgspec.Raw = msgspec.Raw(b"{}")


_WIRE = msgspec.json.Decoder(_WireEnvelope)
_HEAD_FIELDS = ("id", "type", "source", "subject", "time", "actor", "correlation_id", "causation_id")
_NOT_PARSED = object()


class EventEnvelope(BaseModel):
    """The JSON that crosses the bus. ``data`` is the payload as a plain object, versioned with ``type``."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime
    actor: EventActor
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    # The typed payload, validated on the first ``payload()`` and kept with the source it came from (the ``data``
    # object, or the JSON text of an envelope decoded by ``from_bytes`` whose ``data`` nobody read), so an event is
    # validated once however many handlers (merged consumers of one stream) ask for it. Payloads are frozen
    # models; handlers read them, never change them.
    _payload: tuple[object, EventPayload] | None = PrivateAttr(default=None)
    # ``data``'s JSON text while ``data`` is not parsed yet (``from_bytes``; a ``msgspec.Raw``, a view of the
    # received bytes, not a copy); ``data`` is then absent from the instance's ``__dict__`` until first read
    # (``__getattr__``).
    _data_json: msgspec.Raw | None = PrivateAttr(default=None)
    # The payload as a read-only view (``payload_view``), kept the same way.
    _view: tuple[object, Any] | None = PrivateAttr(default=None)

    def __getattr__(self, name: str) -> Any:
        if name == "data":
            return self._parsed_data()
        return super().__getattr__(name)  # type: ignore[misc]  # pydantic's (private attributes)

    def _parsed_data(self) -> dict[str, Any]:
        """``data`` as a dict (parsed from the kept JSON text on first use: the same parser and result as pydantic's
        ``dict[str, Any]`` gives when it parses the whole envelope)."""
        data = self.__dict__.get("data", _NOT_PARSED)
        if data is _NOT_PARSED:
            data = self.__dict__["data"] = pydantic_core.from_json(_text(self._data_json))
        return data

    def _source(self) -> tuple[Any, object]:
        """``data`` (or ``_NOT_PARSED``) and what a payload is read from: ``data``, or its kept JSON text. A payload
        is cached with its source, so it is read again only if ``data`` was parsed since."""
        data = self.__dict__.get("data", _NOT_PARSED)
        return data, (self._data_json if data is _NOT_PARSED else data)

    def payload(self) -> EventPayload:
        data, source = self._source()
        if self._payload is not None and self._payload[0] is source:
            return self._payload[1]
        try:
            model = EVENT_TYPES[self.type]
        except KeyError:
            raise UnknownEventType(self.type) from None
        # Lenient: unknown fields (at any depth) are dropped, not refused. A ValidationError is not kept: the next
        # call raises it again.
        if data is _NOT_PARSED:
            payload = model.model_validate_json(_text(source), extra="ignore")  # type: ignore[arg-type]
        else:
            payload = model.model_validate(data, extra="ignore")
        self._payload = (source, payload)
        return payload

    def payload_view(self, kind: type["P"]) -> "P":
        """The payload for a handler that only reads it, many lines at a time: for a model with a msgspec twin, a
        frozen struct with the model's fields, names, types and values (enums, dates, nested lines as structs;
        unknown fields dropped as ``payload()`` drops them), decoded from the JSON text in one pass, several times
        cheaper than the model's validation; for any other model, ``payload()`` itself. Whatever the strict decode
        refuses is left to the model: its ValidationError, or the value its lax rules accept, seen through the same
        view. Not a model: no ``model_dump``, no ``isinstance(…, kind)``."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise UnknownEventType(self.type)
        assert issubclass(model, kind), f"{self.type} is not {kind.__name__}"
        view = _twin_or_none(model, reading=True)
        if view is None:
            return self.payload()  # type: ignore[return-value]
        data, source = self._source()
        if self._view is not None and self._view[0] is source:
            return self._view[1]
        try:
            if data is _NOT_PARSED:
                result = _view_decoder(view).decode(source if source is not None else b"{}")
            else:
                result = msgspec.convert(data, view, strict=True)
        except msgspec.ValidationError:
            result = msgspec.convert(self.payload(), view, from_attributes=True)
        self._view = (source, result)
        return result

    def forget_payload(self) -> None:
        """Drop the validated payload and its view (the consumer does once the event's handlers ran, so a batch of
        bulk events does not keep every payload's lines alive until its commit)."""
        self._payload = None
        self._view = None

    def __eq__(self, other: object) -> bool:
        # The same event whether or not its payload was validated yet or its data parsed (pydantic would compare
        # the caches too).
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(self) is not type(other):
            return False
        self._parsed_data()
        other._parsed_data()  # type: ignore[attr-defined]
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, as pydantic's default

    # pydantic's serialisers and repr read ``__dict__``: ``data`` is parsed first.
    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        self._parsed_data()
        return super().model_dump(**kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        self._parsed_data()
        return super().model_dump_json(**kwargs)

    def __repr_args__(self) -> Any:
        self._parsed_data()
        return super().__repr_args__()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> "EventEnvelope":
        """The envelope of ``raw``: its head validated, ``data`` kept as JSON text (an object) until read."""
        try:
            wire = _WIRE.decode(raw)
        except msgspec.DecodeError as exc:  # a ValueError, as pydantic's JSON errors are ValidationErrors
            raise ValueError(f"invalid event envelope JSON: {exc}") from None
        if memoryview(wire.data)[:1] != b"{":
            # What pydantic says of a ``dict[str, Any]`` that is not an object (null, a list, a number, …).
            raise ValidationError.from_exception_data(cls.__name__, [{
                "type": "dict_type", "loc": ("data",), "input": pydantic_core.from_json(_text(wire.data))}])
        envelope = cls.model_validate({name: getattr(wire, name) for name in _HEAD_FIELDS
                                       if getattr(wire, name) is not None or name in _NULLABLE})
        del envelope.__dict__["data"]  # parsed on first read
        envelope.__pydantic_fields_set__.add("data")
        envelope._data_json = wire.data
        return envelope


def _text(raw: msgspec.Raw | None) -> bytes:
    """The JSON text of a kept ``data`` (a copy only while it is parsed: pydantic reads bytes, not buffers)."""
    return bytes(raw) if raw is not None else b"{}"


_NULLABLE = frozenset({"correlation_id", "causation_id"})


def build_envelope(
    payload: EventPayload,
    *,
    source: str,
    subject: str,
    actor: EventActor,
    correlation_id: str | None,
    causation_id: str | None,
) -> EventEnvelope:
    """The envelope of ``payload``. ``data`` is the payload in JSON types (``model_dump(mode="json")``: what a
    consumer parses off the wire), validated again by the payload's strict model, so an invalid payload (a line
    model changed after it was built, ``model_construct``) fails here, in the producer, not in every consumer."""
    data = payload.model_dump(mode="json")
    type(payload).model_validate(data)
    return EventEnvelope(
        id=new_event_id(),
        type=payload.event_type,
        source=source,
        subject=subject,
        time=clock.utc_now(),
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=data,
    )


@dataclass(frozen=True, slots=True)
class PayloadFields:
    """A payload not built yet: its model and its fields (nested lines as plain dicts), for bulk producers.

    ``build_encoded_envelope`` (so ``record_events``) validates it once, with the payload's strict model, and writes
    the validated payload's JSON: the same envelope and outbox row as for ``model(**fields)``, but one validation
    and one serialisation per line instead of a validation when the payload is built, a dump, a second validation
    and a second serialisation. An invalid field fails there, in the producer, and nothing is written."""

    model: type[EventPayload]
    fields: dict[str, Any]


def build_encoded_envelope(
    payload: EventPayload | PayloadFields,
    *,
    source: str,
    subject: str,
    actor: EventActor,
    correlation_id: str | None,
    causation_id: str | None,
) -> tuple[EventEnvelope, str]:
    """``build_envelope`` and the envelope's JSON (what ``to_bytes`` gives, as text; the outbox row): its other
    fields with ``data``'s JSON spliced in as the last field, the same bytes as ``model_dump_json`` with ``data``
    serialised once, as plain JSON types. A ``PayloadFields`` is validated once; its envelope keeps the payload and
    the JSON of ``data`` (parsed into a dict only if someone reads ``data``)."""
    if isinstance(payload, PayloadFields):
        return _build_from_fields(payload, source=source, subject=subject, actor=actor,
                                  correlation_id=correlation_id, causation_id=causation_id)
    envelope = build_envelope(payload, source=source, subject=subject, actor=actor, correlation_id=correlation_id,
                              causation_id=causation_id)
    head = envelope.model_dump_json(exclude=_DATA)
    return envelope, f'{head[:-1]},"data":{pydantic_core.to_json(envelope.data).decode()}}}'


def _build_from_fields(payload: PayloadFields, *, source: str, subject: str, actor: EventActor,
                       correlation_id: str | None, causation_id: str | None) -> tuple[EventEnvelope, str]:
    validated: EventPayload | None = None
    data_json = _checked_json(payload)
    if data_json is None:
        validated = payload.model.model_validate(payload.fields)
        data_json = validated.__pydantic_serializer__.to_json(validated)
    envelope = EventEnvelope(id=new_event_id(), type=payload.model.event_type, source=source, subject=subject,
                             time=clock.utc_now(), actor=actor, correlation_id=correlation_id,
                             causation_id=causation_id)
    head = envelope.model_dump_json(exclude=_DATA)
    # As ``from_bytes`` leaves it: ``data`` unparsed until read, the validated payload (if one was built) kept for
    # ``payload()``.
    del envelope.__dict__["data"]
    envelope.__pydantic_fields_set__.add("data")
    envelope._data_json = data_json  # type: ignore[assignment]  # bytes: what ``_text`` and ``memoryview`` read
    if validated is not None:
        envelope._payload = (data_json, validated)
    return envelope, f'{head[:-1]},"data":{data_json.decode()}}}'


# -- bulk payloads checked and written by msgspec ----------------------------------------------------------------------
# A 1 000-line payload given as fields costs pydantic a model instance per line to validate and a pass over them to
# serialise. A payload model made only of plain fields (text, integers, booleans, dates, string enums and literals,
# optional ones, lists of line models, a length limit) has an exact msgspec twin, derived from it here once: the
# fields are checked by the twin (types, required fields, unknown fields refused, the list's length) and written
# from it in one pass, several times faster, to the same JSON text (the model's field order; dates ISO, enums by
# value). Whatever the twin refuses is handed to the pydantic model, which answers as before: its own
# ValidationError, or the payload its lax rules accept. A model with anything else (validators, other
# constraints, aliases, datetimes, decimals, floats, dicts) has no twin and always goes through pydantic.

_PLAIN = (str, int, bool, date)
_ENCODER = msgspec.json.Encoder()


class _NoTwin(Exception):
    pass


def _twin_type(annotation: Any, metadata: list[Any], reading: bool) -> Any:
    limits = {}
    for item in metadata:
        if isinstance(item, annotated_types.MaxLen):
            limits["max_length"] = item.max_length
        elif isinstance(item, annotated_types.MinLen):
            limits["min_length"] = item.min_length
        else:
            raise _NoTwin
    kind = _twin_of_annotation(annotation, reading)
    return Annotated[kind, msgspec.Meta(**limits)] if limits else kind


def _twin_of_annotation(annotation: Any, reading: bool) -> Any:
    origin = get_origin(annotation)
    if annotation in _PLAIN or (isinstance(annotation, type) and issubclass(annotation, str)
                                and issubclass(annotation, Enum)):
        return annotation
    if origin is Literal and all(type(value) is str for value in get_args(annotation)):
        return annotation
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        if len(args) == 2 and type(None) in args:
            (inner,) = (a for a in args if a is not type(None))
            return _twin_of_annotation(inner, reading) | None
    if origin is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, ContractModel):
            return list[_twin(item, reading)]
    raise _NoTwin


@cache
def _twin(model: type[BaseModel], reading: bool = False) -> type[msgspec.Struct]:
    """The model's twin: for writing, unknown fields refused (as the strict producer's model refuses them); for
    reading, unknown fields ignored (as ``payload()`` ignores them), frozen and not tracked by the garbage collector
    (a 1 000-line payload is a thousand small objects that hold no cycle)."""
    decorators = model.__pydantic_decorators__
    compact = issubclass(model, CompactLine)
    if any((decorators.validators, decorators.field_validators, decorators.root_validators,
            decorators.model_validators.keys() - (_COMPACT_DECORATORS if compact else ()),
            decorators.model_serializers.keys() - (_COMPACT_DECORATORS if compact else ()),
            decorators.computed_fields)):
        raise _NoTwin
    if set(model.model_config) - {"extra", "frozen"} or model.model_config.get("extra") != "forbid":
        raise _NoTwin
    fields = []
    for name, info in model.model_fields.items():
        if info.alias not in (None, name) or info.default_factory is not None:
            raise _NoTwin
        kind = _twin_type(info.annotation, info.metadata, reading)
        default = msgspec.NODEFAULT if info.is_required() else info.default
        if default is not msgspec.NODEFAULT and not isinstance(default, (*_PLAIN, type(None))):
            raise _NoTwin
        fields.append((name, kind, default))
    if reading:
        # A compact line's view decodes its array (extra trailing values ignored, as unknown keys are).
        return msgspec.defstruct(f"{model.__name__}View", fields, kw_only=True, frozen=True, gc=False,
                                 array_like=compact)
    # A compact line's twin is checked from the producer's object (``convert`` fills an array-like struct from an
    # array only); its payload's twin turns the checked lines into tuples, written as arrays.
    lists = compact_lists(model)
    namespace = {"__post_init__": _values_of(lists)} if lists else None
    return msgspec.defstruct(f"{model.__name__}Twin", fields, forbid_unknown_fields=True, kw_only=True,
                             namespace=namespace)


_COMPACT_DECORATORS = frozenset({"_from_values", "_to_values"})


def _values_of(names: tuple[str, ...]) -> Any:
    def __post_init__(self: msgspec.Struct) -> None:  # noqa: N807  # msgspec's hook
        for name in names:
            setattr(self, name, [msgspec.structs.astuple(line) for line in getattr(self, name)])
    return __post_init__


@cache
def _twin_or_none(model: type[EventPayload], reading: bool = False) -> type[msgspec.Struct] | None:
    try:
        return _twin(model, reading)
    except _NoTwin:
        return None


@cache
def _view_decoder(view: type[msgspec.Struct]) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(view, strict=True)


def _checked_json(payload: PayloadFields) -> bytes | None:
    """The payload's JSON, checked by the model's msgspec twin; None: no twin, or the twin refused a field (the
    pydantic model then decides)."""
    twin = _twin_or_none(payload.model)
    if twin is None:
        return None
    try:
        return _ENCODER.encode(msgspec.convert(payload.fields, twin, strict=True))
    except msgspec.ValidationError:
        return None


_DATA = frozenset({"data"})
