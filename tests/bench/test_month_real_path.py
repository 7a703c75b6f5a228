"""The real-path month benchmark: its plan, files and verdict as pure code, and one tiny month end to end through
``sifund up`` (the figures are not checked — speed is the benchmark's business — only that the run ends fully matched
and the result has its documented fields)."""

import json
import os
from pathlib import Path

import pytest

from bench import month_real_path as bench
from bench.month_real_path import FUNDS, Calendar, Employer, Month, build_plan, import_files, top_frames
from services.kernel.identifiers import validate_citizen_id


@pytest.mark.unit
def test_the_plan_has_the_lines_asked_for_in_employers_of_10_to_190_with_distinct_valid_citizen_ids():
    plan = build_plan(20_000, seed=7)
    persons = [cid for employer in plan for cid, _base in employer.staff]
    assert len(persons) * len(FUNDS) == 20_001  # a third as many persons, rounded up
    assert all(10 <= len(e.staff) <= 190 for e in plan[:-1]) and 1 <= len(plan[-1].staff) <= 190
    assert len(set(persons)) == len(persons) and all(validate_citizen_id(cid) == cid for cid in persons)
    assert len({e.uscc for e in plan}) == len(plan)


@pytest.mark.unit
def test_the_import_files_hold_every_row_once_in_files_of_the_size_asked_for():
    plan = build_plan(3_000, seed=1)
    files = import_files(plan, Calendar(202610), rows_per_file=400)
    rows = {kind: sum(len(f.decode().splitlines()) - 1 for f in chunks) for kind, chunks in files.items()}
    assert rows == {"employers": len(plan), "persons": 1_000, "enrolments": 3_000}
    assert all(len(f.decode().splitlines()) - 1 <= 400 for chunks in files.values() for f in chunks)
    assert files["enrolments"][0].decode().splitlines()[1].split(",")[1:] == ["PEN_EMP", plan[0].uscc, "202601"]


@pytest.mark.unit
def test_the_calendar_pays_remits_and_receives_in_the_month_after_the_period():
    calendar = Calendar(202612)
    assert (calendar.remittance_month, calendar.paid_on, calendar.remitted_on, calendar.received_on,
            calendar.year_start) == (202701, "2027-01-12", "2027-01-16", "2027-01-20", 202601)


def _report(month: int, cells: dict[str, list[dict]]) -> dict:
    return {"month": month, "checks": [
        {"check": check, "cells": listed, "summary": {"cells": len(listed),
                                                      "matched": sum(c["status"] == "matched" for c in listed)}}
        for check, listed in cells.items()]}


@pytest.mark.unit
def test_fully_matched_needs_every_leg_equal_to_what_was_posted_every_employer_cell_and_the_remittances():
    month = Month(parties={}, plan=[Employer(1, [("x", 1)])], calendar=Calendar(202610), options=None)
    month.collected_fen = {"PEN_EMP": 300, "UNEMP": 20, "INJURY": 10}
    r1 = [{"fund": f, "status": "matched", "amounts": {leg: bench.yuan(n) for leg in ("tax", "finance", "agency")}}
          for f, n in month.collected_fen.items()]
    matched = {"status": "matched"}
    report = _report(202610, {"R1": r1, "R2": [matched] * 3})
    later = _report(202611, {"R3": [matched] * 3})
    assert month.matched(report, later)["matched"]

    behind = [{**cell, "amounts": {**cell["amounts"], "agency": "0.01"}, "status": "mismatch"} for cell in r1]
    state = month.matched(_report(202610, {"R1": behind, "R2": [matched] * 3}), later)
    assert not state["matched"] and not state["agency_complete"] and state["unmatched_cells"] == {"202610/R1": 3}
    assert not month.matched(_report(202610, {"R1": r1, "R2": [matched] * 2}), later)["matched"]
    assert not month.matched(report, _report(202611, {"R3": [matched, matched, {"status": "late"}]}))["matched"]



@pytest.mark.unit
def test_the_database_servers_cpu_is_shown_apart_from_the_platforms_total():
    cpu = {"collection": 2.0, "gateway": 1.0, "postgres": 4.0, "postgres.collection": 3.0}
    figures = bench.cost(10.0, 1000, cpu, 0.5)
    assert figures["cpu_seconds_total"] == 3.0 and figures["cpu_us_per_line_total"] == 3000.0
    assert figures["cpu_us_per_line_with_database"] == 7000.0  # postgres.<service> is part of postgres
    assert figures["cpu_us_per_line"]["postgres.collection"] == 3000.0
    assert "cpu_us_per_line_with_database" not in bench.cost(10.0, 1000, {"collection": 2.0}, 0.5)  # SQLite

@pytest.mark.unit
def test_top_frames_count_own_samples_at_the_leaf_and_total_samples_once_per_stack():
    collapsed = "main (a.py);apply (b.py);get (orm.py) 6\nmain (a.py);apply (b.py) 2\nmain (a.py);get (orm.py);get (orm.py) 2\n"
    top = top_frames(collapsed)
    assert top["samples"] == 10
    assert top["own_percent"][0] == ["get (orm.py)", 80.0]
    assert dict(map(tuple, top["total_percent"]))["main (a.py)"] == 100.0
    assert dict(map(tuple, top["total_percent"]))["get (orm.py)"] == 80.0


@pytest.mark.skipif(not os.environ.get("SIFUND_CHAOS"),
                    reason="a whole platform and a month: the long profile, run by make test-cluster")
def test_a_tiny_month_through_the_gateway_ends_fully_matched_and_reports_its_figures(tmp_path: Path):
    output = tmp_path / "month.json"
    # Small pages and batches: the tax bureau pays its first batches while it still reads its plan.
    assert bench.main(["--lines", "300", "--idle-seconds", "0.5", "--poll-seconds", "0.3", "--timeout", "120",
                       "--read-lines", "100", "--batch-lines", "120", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["matched"] is True and result["month"]["lines"] == 300
    assert set(result["stages"]) == {"import", "registry", "assessment", "tax", "finance", "settle"}
    processes = {"nats", "accounts", "collection", "benefits", "oversight", "gateway", "launcher"}
    for figures in [*result["stages"].values(), result["end_to_end"]]:
        assert {"wall_seconds", "lines_per_s", "cpu_seconds", "cpu_us_per_line", "cpu_us_per_line_total"} <= set(figures)
        assert set(figures["cpu_seconds"]) == processes
    assert set(result["peak_rss_mb"]) == processes and all(mb > 0 for mb in result["peak_rss_mb"].values())
    assert result["lag_seconds"] >= 0 and result["settle"]["final"]["matched"] is True
    assert result["stages"]["assessment"]["declaration_batches"] == 1
    assert result["stages"]["tax"]["pages_read"] >= 3 and result["stages"]["tax"]["batches"] == 3
    r1 = result["settle"]["final"]["r1"]
    assert {fund: r1[fund]["tax"] for fund in FUNDS} == result["month"]["collected_fen"]
    assert {"before", "after"} <= set(result["load"]) and "money_in" in result["in_process"]
    assert result["server_errors"] == sum(n for s, n in result["answers"].items() if s.startswith("5"))
