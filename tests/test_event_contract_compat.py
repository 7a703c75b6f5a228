"""The backward-compatibility checker of event schemas (services/contracts/compat.py, snapshots.py), on synthetic
changes of a payload: each incompatible change is caught, compatible ones pass and only ask for a refreshed
snapshot."""

from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from services.contracts import snapshots
from services.contracts.compat import incompatibilities
from services.kernel.events import CompactLine


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Narrow(StrEnum):
    red = "red"


class Wide(StrEnum):
    red = "red"
    blue = "blue"
    green = "green"


class Line(BaseModel):
    item_id: str
    amount_fen: int


class V1(BaseModel):
    case_id: str
    amount_fen: int
    colour: Colour
    note: str | None = None
    lines: list[Line] = Field(default_factory=list)


def schema(model: type[BaseModel]) -> dict:
    return model.model_json_schema()


def changed(**fields) -> type[BaseModel]:  # noqa: ANN003
    """V1 with some fields replaced (a value None removes the field)."""
    annotations = {k: v for k, v in V1.__annotations__.items() if k not in fields}
    defaults = {k: V1.model_fields[k].default for k in annotations if not V1.model_fields[k].is_required()
                and V1.model_fields[k].default_factory is None}
    defaults.update({k: Field(default_factory=list) for k in annotations if V1.model_fields[k].default_factory})
    for name, spec in fields.items():
        if spec is None:
            continue
        annotation, *default = spec
        annotations[name] = annotation
        if default:
            defaults[name] = default[0]
    return type("V1", (BaseModel,), {"__annotations__": annotations, **defaults})


def test_an_unchanged_schema_is_compatible():
    assert incompatibilities(schema(V1), schema(V1)) == []


@pytest.mark.parametrize(("change", "expected"), [
    (dict(note=None), "note: field removed"),
    (dict(amount_fen=None), "amount_fen: field removed"),
    (dict(region=(str,)), "region: required field added"),
    (dict(note=(str,)), "note: optional field made required"),
    (dict(case_id=(str | None, None)), "case_id: required field made optional"),
    (dict(amount_fen=(str,)), "amount_fen: type changed from integer to string"),
    (dict(note=(int | None, None)), "note: type changed from null | string to integer | null"),
    (dict(colour=(Narrow,)), "colour: enum narrowed, ['blue'] removed"),
    (dict(colour=(str,)), "colour: type changed from enum ['blue', 'red'] to string"),
], ids=["optional field removed", "required field removed", "required field added", "made required",
        "made optional", "type changed", "nullable type changed", "enum narrowed", "enum to plain string"])
def test_an_incompatible_change_is_caught(change: dict, expected: str):
    assert expected in incompatibilities(schema(V1), schema(changed(**change)))


def test_a_change_inside_a_line_model_is_caught_with_its_path():
    class NewLine(BaseModel):
        item_id: str

    assert incompatibilities(schema(V1), schema(changed(lines=(list[NewLine], Field(default_factory=list))))) == \
        ["lines[].amount_fen: field removed"]


@pytest.mark.parametrize("change", [dict(region=(str | None, None)), dict(colour=(Wide,))],
                         ids=["new optional field", "enum widened"])
def test_a_compatible_change_passes(change: dict):
    assert incompatibilities(schema(V1), schema(changed(**change))) == []


class CompactV1(CompactLine, Line):
    pass


def test_a_compact_line_keeps_each_value_at_its_position_and_only_appends_optional_ones():
    class Moved(CompactLine):
        amount_fen: int
        item_id: str

    class Appended(CompactLine, Line):
        note: str | None = None

    class Required(CompactLine, Line):
        note: str

    def lines_of(line: type[BaseModel]) -> dict:
        return schema(changed(lines=(list[line], Field(default_factory=list))))

    assert incompatibilities(lines_of(CompactV1), lines_of(Appended)) == []
    assert incompatibilities(lines_of(CompactV1), lines_of(Moved)) == [
        "lines[][0](item_id): value moved or renamed to amount_fen",
        "lines[][1](amount_fen): value moved or renamed to item_id"]
    assert incompatibilities(lines_of(CompactV1), lines_of(Required)) == ["lines[]: 3 values required instead of 2"]
    assert "lines[][1](amount_fen): value removed" in incompatibilities(lines_of(CompactV1), lines_of(type(
        "Short", (CompactLine,), {"__annotations__": {"item_id": str}})))


def test_snapshots_report_incompatible_stale_missing_and_orphaned_types_and_update_only_compatible_ones(
        tmp_path: Path):
    t1, t2, t3 = "oversight.thing.done.v1", "oversight.other.done.v1", "oversight.gone.done.v1"
    assert snapshots.update(tmp_path, {t1: schema(V1), t2: schema(V1), t3: schema(V1)}).ok
    assert snapshots.check(tmp_path, {t1: schema(V1), t2: schema(V1), t3: schema(V1)}).ok

    now = {t1: schema(changed(amount_fen=(str,))), t2: schema(changed(region=(str | None, None))),
           "oversight.new.done.v1": schema(V1)}
    report = snapshots.check(tmp_path, now)
    assert list(report.incompatible) == [t1] and report.stale == [t2]
    assert report.missing == ["oversight.new.done.v1"] and report.orphaned == [t3]
    explained = report.explain()
    assert "publish a new version of the type (….v2)" in explained and "amount_fen: type changed" in explained
    assert "sifund docs events --update-snapshots" in explained

    left = snapshots.update(tmp_path, now)
    assert list(left.incompatible) == [t1] and left.orphaned == [t3]  # never overwritten by an update
    assert snapshots.snapshot_path(t1, tmp_path).read_text() == snapshots.render(schema(V1))
    assert snapshots.snapshot_path(t2, tmp_path).read_text() == snapshots.render(now[t2])
    assert snapshots.snapshot_path("oversight.new.done.v1", tmp_path).exists()
