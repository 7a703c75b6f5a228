"""Backward compatibility of an event type's JSON schema with its committed snapshot.

An event type is a promise to every consumer and to every event already in a stream (consumers replay them). So a
new schema of the *same* type (``….v1``) may only add optional fields and widen enums. Everything else needs a new
version of the type (``….v2``, a new class with its own snapshot):

- a field removed (a consumer reads it);
- a field added as required, or an optional field made required (events already in the stream lack it);
- a required field made optional (a consumer counts on it);
- a field's type changed, including ``X`` ↔ ``X | None`` and ``str`` → enum;
- an enum narrowed (events already in the stream carry the value removed);
- in a compact line (an array of values, ``prefixItems``): a value removed, moved or renamed, or more values
  required (only optional values may be appended).

``incompatibilities(old, new)`` compares two JSON schemas (as pydantic writes them: ``$defs``/``$ref``, ``anyOf``)
and lists what breaks, with the path of each field. Pure: no files, no models.
"""

from typing import Any

Schema = dict[str, Any]


def incompatibilities(old: Schema, new: Schema) -> list[str]:
    problems: list[str] = []
    _compare(_Resolver(old), old, _Resolver(new), new, "", problems)
    return problems


class _Resolver:
    def __init__(self, root: Schema):
        self.defs: dict[str, Schema] = root.get("$defs", {})

    def __call__(self, schema: Schema) -> Schema:
        seen = set()
        while "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                break
            seen.add(ref)
            schema = self.defs[ref.rsplit("/", 1)[-1]]
        return schema


def _kind(schema: Schema) -> str:
    if "anyOf" in schema or "oneOf" in schema:
        return "union"
    if "enum" in schema:
        return f"enum:{schema.get('type', 'any')}"
    if "const" in schema:
        return f"enum:{schema.get('type', 'any')}"
    kind = schema.get("type", "any")
    if kind == "object" and "properties" not in schema:
        return "map"
    if kind == "string" and "format" in schema:
        return f"string:{schema['format']}"
    return kind


def _enum_values(schema: Schema) -> set[Any]:
    return set(schema["enum"]) if "enum" in schema else {schema["const"]}


def _describe(schema: Schema) -> str:
    kind = _kind(schema)
    if kind.startswith("enum:"):
        return f"enum {sorted(map(str, _enum_values(schema)))}"
    return kind


def _compare(old_r: _Resolver, old: Schema, new_r: _Resolver, new: Schema, path: str, problems: list[str]) -> None:
    old, new = old_r(old), new_r(new)
    where = path or "(payload)"
    old_kind, new_kind = _kind(old), _kind(new)
    if old_kind != new_kind:
        problems.append(f"{where}: type changed from {_describe(old)} to {_describe(new)}")
        return
    if old_kind == "union":
        _compare_union(old_r, old, new_r, new, path, problems)
    elif old_kind.startswith("enum:"):
        removed = _enum_values(old) - _enum_values(new)
        if removed:
            problems.append(f"{where}: enum narrowed, {sorted(map(str, removed))} removed")
    elif old_kind == "object":
        _compare_object(old_r, old, new_r, new, path, problems)
    elif old_kind == "array":
        _compare(old_r, old.get("items", {}), new_r, new.get("items", {}), f"{path}[]", problems)
        _compare_positions(old_r, old, new_r, new, path, problems)
    elif old_kind == "map":
        old_values, new_values = old.get("additionalProperties", {}), new.get("additionalProperties", {})
        if isinstance(old_values, dict) and isinstance(new_values, dict):
            _compare(old_r, old_values, new_r, new_values, f"{path}{{}}", problems)


def _compare_object(old_r: _Resolver, old: Schema, new_r: _Resolver, new: Schema, path: str,
                    problems: list[str]) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    prefix = f"{path}." if path else ""
    for name in old_props:
        if name not in new_props:
            problems.append(f"{prefix}{name}: field removed")
            continue
        if name in new_required and name not in old_required:
            problems.append(f"{prefix}{name}: optional field made required")
        elif name in old_required and name not in new_required:
            problems.append(f"{prefix}{name}: required field made optional")
        _compare(old_r, old_props[name], new_r, new_props[name], f"{prefix}{name}", problems)
    for name in new_props.keys() - old_props.keys():
        if name in new_required:
            problems.append(f"{prefix}{name}: required field added")


def _compare_union(old_r: _Resolver, old: Schema, new_r: _Resolver, new: Schema, path: str,
                   problems: list[str]) -> None:
    def options(resolver: _Resolver, schema: Schema) -> dict[str, Schema]:
        found = [resolver(s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return {_kind(s): s for s in found}

    old_options, new_options = options(old_r, old), options(new_r, new)
    where = path or "(payload)"
    if old_options.keys() != new_options.keys():
        problems.append(f"{where}: type changed from {' | '.join(sorted(old_options))} to "
                        f"{' | '.join(sorted(new_options))}")
        return
    for kind, schema in old_options.items():
        _compare(old_r, schema, new_r, new_options[kind], path, problems)


def _compare_positions(old_r: _Resolver, old: Schema, new_r: _Resolver, new: Schema, path: str,
                       problems: list[str]) -> None:
    """A compact line: each value stays at its position, and values are only appended (optional ones)."""
    old_items, new_items = old.get("prefixItems", []), new.get("prefixItems", [])
    for i, item in enumerate(old_items):
        where = f"{path}[{i}]({item.get('title', '')})"
        if i >= len(new_items):
            problems.append(f"{where}: value removed")
        elif item.get("title") != new_items[i].get("title"):
            problems.append(f"{where}: value moved or renamed to {new_items[i].get('title')}")
        else:
            _compare(old_r, item, new_r, new_items[i], where, problems)
    if new.get("minItems", 0) > old.get("minItems", 0):
        problems.append(f"{path or '(payload)'}: {new['minItems']} values required instead of {old.get('minItems', 0)}")
