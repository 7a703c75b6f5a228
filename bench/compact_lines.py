"""The bulk line events in both wire forms, in-process: ``python -m bench.compact_lines [--events N] [--rounds R]``.

For ``collection.assessment.issued``, ``collection.payments.collected`` and ``accounts.contributions.posted``, v1
(lines as objects) against v2 (lines as arrays, docs/events.md), 1 000 lines an event, the month's values:

- **bytes**: the outbox row (the envelope NATS carries) per line;
- **encode**: ``build_encoded_envelope`` of the payload given as fields (``PayloadFields``: the twin's check and
  write, what ``record_events`` pays per event before its insert);
- **decode**: ``EventEnvelope.from_bytes`` of that row, then ``payload_view`` (what a consumer pays before its
  handler reads the lines).

The figure is the median round's CPU (``process_time``) per line, so a loaded machine disturbs it less. Checks: the
v1 and v2 views of a payload carry the same values. Prints JSON; nothing is written.
"""

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from datetime import date

from msgspec.structs import asdict

from services.contracts import accounts as acc
from services.contracts import collection as col
from services.kernel.events import EventActor, EventEnvelope, EventPayload, PayloadFields, build_encoded_envelope

LINES = 1000
ACTOR = EventActor(id="bench", role="tax_system")


def assessed(n: int) -> dict:
    return {"assessment_id": f"as-{n:06d}", "employer_id": f"emp-{n:06d}", "period": 202609,
            "due_date": date(2026, 10, 15), "supersedes_id": None, "part": 1, "parts": 1,
            "employer_total_fen": 128_000_000, "individual_total_fen": 64_000_000, "lines": [
                {"line_id": f"0193a1b2-c3d4-7e5f-8a9b-{n:06d}{i:06d}", "person_id": f"per-{n:04d}{i:06d}",
                 "fund": "PEN_EMP", "declared_base_fen": 640_000 + i, "base_fen": 640_000 + i,
                 "clamp": "floor" if i % 50 == 0 else None, "employer_fen": 102_400 + i, "individual_fen": 51_200}
                for i in range(LINES)]}


def collected(n: int) -> dict:
    return {"batch_id": f"tb-{n:06d}", "part": 1, "parts": 1, "lines": [
        {"payment_id": f"0193a1b2-c3d4-7e5f-8a9b-{n:06d}{i:06d}", "tax_line_id": f"TL{n:06d}{i:06d}",
         "payer_uscc": "91150100MA0N00001X", "employer_id": f"emp-{n:06d}", "person_id": f"per-{n:04d}{i:06d}",
         "citizen_id": f"15010219800101{i:04d}", "fund": "PEN_EMP", "period": 202609, "employer_fen": 102_400 + i,
         "individual_fen": 51_200, "late_fee_fen": 0, "method": "bank_transfer", "voucher_no": f"V{n:06d}{i:06d}",
         "paid_date": date(2026, 10, 12), "assessment_line_id": f"0193a1b2-c3d4-7e5f-8a9b-{n:06d}{i:06d}",
         "match_status": "matched"} for i in range(LINES)]}


def posted(n: int) -> dict:
    return {"source_batch_id": f"tb-{n:06d}", "lines": [
        {"payment_id": f"0193a1b2-c3d4-7e5f-8a9b-{n:06d}{i:06d}", "person_id": f"per-{n:04d}{i:06d}",
         "employer_id": f"emp-{n:06d}", "fund": "PEN_EMP", "period": 202609, "employer_fen": 102_400 + i,
         "individual_fen": 51_200, "credited_fen": 51_200 if i % 3 else 0,
         "entry_id": f"0193a1b2-c3d4-7e5f-8a9b-{n:06d}{i:06d}" if i % 3 else None} for i in range(LINES)]}


KINDS: dict[str, tuple[Callable[[int], dict], type[EventPayload], type[EventPayload]]] = {
    "collection.assessment.issued": (assessed, col.AssessmentIssuedV1, col.AssessmentIssued),
    "collection.payments.collected": (collected, col.PaymentsCollectedV1, col.PaymentsCollected),
    "accounts.contributions.posted": (posted, acc.ContributionsPostedV1, acc.ContributionsPosted),
}


def encode(model: type[EventPayload], fields: dict) -> bytes:
    _, row = build_encoded_envelope(PayloadFields(model, fields), source="bench", subject="s", actor=ACTOR,
                                    correlation_id=None, causation_id=None)
    return row.encode()


def decode(view_of: type[EventPayload], raw: bytes) -> object:
    return EventEnvelope.from_bytes(raw).payload_view(view_of)


def cpu_us_per_line(step: Callable[[], object], events: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(events):
            step()
        times.append(time.process_time() - start)
    return round(statistics.median(times) / (events * LINES) * 1e6, 3)


def measure(events: int, rounds: int) -> dict:
    gc.freeze()
    results = {}
    for family, (make, v1, v2) in KINDS.items():
        fields = make(1)
        rows = {model: encode(model, fields) for model in (v1, v2)}
        views = {model: [asdict(line) for line in decode(v2, rows[model]).lines] for model in (v1, v2)}
        assert views[v1] == views[v2], f"{family}: v1 and v2 read differently"
        results[family] = {model.event_type.rsplit(".", 1)[1]: {
            "bytes_per_line": round(len(rows[model]) / LINES, 1),
            "encode_cpu_us_per_line": cpu_us_per_line(lambda m=model: encode(m, fields), events, rounds),
            "decode_cpu_us_per_line": cpu_us_per_line(lambda m=model: decode(v2, rows[m]), events, rounds),
        } for model in (v1, v2)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(measure(args.events, args.rounds), indent=1))


if __name__ == "__main__":
    main()
