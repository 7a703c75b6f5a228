"""The committed JSON schema of every event type (``snapshots/<type>.json``) and the check against it.

    python -m services.contracts.snapshots            # check: exit 1 and say what differs
    python -m services.contracts.snapshots --update   # refresh the snapshots after a compatible change

(``sifund docs events --update-snapshots`` does the same as ``--update``.) An incompatible change (``compat``) is
never written: publish a new version of the type instead (``….v2``: a new payload class, whose snapshot is new).
A snapshot whose type no longer exists is reported too: a consumer may still receive its events from the stream.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services import contracts
from services.contracts.compat import incompatibilities
from services.kernel.events import EVENT_TYPES

SNAPSHOT_DIR = Path(__file__).with_name("snapshots")
UPDATE_COMMAND = "sifund docs events --update-snapshots (or: python -m services.contracts.snapshots --update)"


def current_schemas() -> dict[str, dict[str, Any]]:
    """The schema of every event type of the contract modules (test-only types elsewhere are not contracts)."""
    names = {m.__name__ for m in contracts.modules()}
    return {t: cls.model_json_schema() for t, cls in sorted(EVENT_TYPES.items()) if cls.__module__ in names}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def snapshot_path(event_type: str, directory: Path = SNAPSHOT_DIR) -> Path:
    return directory / f"{event_type}.json"


@dataclass
class Report:
    incompatible: dict[str, list[str]] = field(default_factory=dict)  # type -> what breaks
    stale: list[str] = field(default_factory=list)  # compatible change: the snapshot needs refreshing
    missing: list[str] = field(default_factory=list)  # a new type without a snapshot
    orphaned: list[str] = field(default_factory=list)  # a snapshot of a type that no longer exists

    @property
    def ok(self) -> bool:
        return not (self.incompatible or self.stale or self.missing or self.orphaned)

    def explain(self) -> str:
        lines = []
        for event_type, problems in self.incompatible.items():
            lines.append(f"{event_type}: not backward compatible with its snapshot — publish a new version of the "
                         f"type (….v{_next_version(event_type)}) instead of changing it:")
            lines.extend(f"  - {p}" for p in problems)
        for event_type in self.orphaned:
            lines.append(f"{event_type}: snapshot of a type that no longer exists (events of it may still be in the "
                         f"stream); keep the type, or delete {snapshot_path(event_type).name} deliberately")
        if self.stale or self.missing:
            changed = ", ".join(self.stale + self.missing)
            lines.append(f"compatible change or new type ({changed}): refresh the snapshots with {UPDATE_COMMAND}")
        return "\n".join(lines)


def _next_version(event_type: str) -> int:
    return int(event_type.rsplit(".v", 1)[1]) + 1


def check(directory: Path = SNAPSHOT_DIR, schemas: dict[str, dict[str, Any]] | None = None) -> Report:
    schemas = current_schemas() if schemas is None else schemas
    report = Report()
    for event_type, schema in schemas.items():
        path = snapshot_path(event_type, directory)
        if not path.exists():
            report.missing.append(event_type)
            continue
        old = json.loads(path.read_text())
        problems = incompatibilities(old, schema)
        if problems:
            report.incompatible[event_type] = problems
        elif path.read_text() != render(schema):
            report.stale.append(event_type)
    report.orphaned = sorted(p.stem for p in directory.glob("*.json") if p.stem not in schemas)
    return report


def update(directory: Path = SNAPSHOT_DIR, schemas: dict[str, dict[str, Any]] | None = None) -> Report:
    """Write the snapshots of new types and of compatibly changed ones; an incompatible or orphaned one is left
    alone and reported."""
    schemas = current_schemas() if schemas is None else schemas
    report = check(directory, schemas)
    directory.mkdir(parents=True, exist_ok=True)
    for event_type in report.stale + report.missing:
        snapshot_path(event_type, directory).write_text(render(schemas[event_type]))
    return Report(incompatible=report.incompatible, orphaned=report.orphaned)


def main(argv: list[str]) -> int:
    report = update() if "--update" in argv else check()
    if not report.ok:
        print(report.explain(), file=sys.stderr)
        return 1
    print(f"{len(current_schemas())} event types match their snapshots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
