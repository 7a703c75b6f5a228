"""No full citizen id or bank account in any log file the suite wrote. The scan recognises
numbers by their own check characters (GB 11643 for citizen ids, Luhn for bank cards), so that it finds any
person's number, not just the ones a test planted; a masked number (``110105********0153``) is not one."""

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

_CITIZEN_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9A-Za-z])\d{16,19}(?![0-9A-Za-z])")
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _is_citizen_id(text: str) -> bool:
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= 2100:
        return False
    total = sum(int(c) * w for c, w in zip(text[:17], _RIC_WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == text[17].upper()


def _is_card(text: str) -> bool:
    digits = [int(c) for c in reversed(text)]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
    # Card numbers start with an issuer digit 3–6 (ISO/IEC 7812); ids, nanosecond clocks and sequence numbers
    # that happen to pass Luhn mostly do not.
    return total % 10 == 0 and text[0] in "3456"


def personal_numbers(text: str) -> Iterator[tuple[str, str]]:
    """(kind, number) for every full citizen id or bank card number in ``text``."""
    for match in _CITIZEN_ID.finditer(text):
        if _is_citizen_id(match.group(0)):
            yield "citizen id", match.group(0)
    for match in _CARD.finditer(text):
        if _is_card(match.group(0)):
            yield "bank account", match.group(0)


def scan_logs(root: Path) -> list[str]:
    """One line per leak in the ``*.log`` files under ``root`` and their rotated copies (``*.log.1`` …): file, line
    number, kind (the number masked)."""
    leaks = []
    for path in sorted([*root.rglob("*.log"), *root.rglob("*.log.[0-9]*")]):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            for kind, value in personal_numbers(line):
                leaks.append(f"{path}:{number}: full {kind} {value[:6]}…{value[-4:]}")
    return leaks


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001
    """Hook (imported by tests/conftest.py): after the run, scan the log files every test wrote under this
    session's temporary directory (``sifund up`` data directories, …) and fail the run on a leak."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    leaks = scan_logs(factory.getbasetemp())
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "personal numbers in log files written by this run:\n" + "\n".join(leaks[:50])
    if reporter is not None:
        reporter.write_sep("=", "LOG LEAK", red=True)
        reporter.write_line(message)
    session.exitstatus = 1
