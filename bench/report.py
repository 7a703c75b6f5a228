"""What every benchmark's result ends with (the machine, its load, when) and where it goes: printed, and written to
``bench/results/<name>.json`` unless ``--no-write``."""

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def measured(result: dict[str, Any], load_before: float) -> dict[str, Any]:
    """``result`` with the machine's load before and now, the machine and the time of measuring."""
    return result | {"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                     "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def publish(result: dict[str, Any], path: Path, *, write: bool) -> None:
    text = json.dumps(result, ensure_ascii=False, indent=1)
    print(text)
    if write:
        path.write_text(text + "\n")
