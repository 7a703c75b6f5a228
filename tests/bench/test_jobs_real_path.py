"""bench/jobs_real_path.py: its pure parts (the ETA's error, thinning the progress), and a tiny run through a real
platform in the long profile (make test-cluster)."""

import json
import os
from pathlib import Path

import pytest

from bench import jobs_real_path as bench


@pytest.mark.unit
def test_the_eta_error_compares_what_the_job_said_with_when_it_really_ended():
    samples = [{"t": 1.0, "percent": 10.0, "eta_s": 50.0}, {"t": 4.0, "percent": 30.0, "eta_s": 20.0},
               {"t": 6.0, "percent": 55.0, "eta_s": None}, {"t": 7.0, "percent": 60.0, "eta_s": 5.0},
               {"t": 9.0, "percent": 80.0, "eta_s": 0.5}]
    errors = bench.eta_errors(samples, wall=10.0)
    assert errors == {"at_25_percent": {"eta_s": 20.0, "real_s": 6.0, "error_s": 14.0},
                      "at_50_percent": {"eta_s": 5.0, "real_s": 3.0, "error_s": 2.0},
                      "at_75_percent": {"eta_s": 0.5, "real_s": 1.0, "error_s": -0.5}}
    assert bench.thin(samples, 2) == [samples[0], samples[2], samples[4]] and bench.thin(samples, 9) == samples


@pytest.mark.skipif(not os.environ.get("SIFUND_CHAOS"),
                    reason="a whole platform: the long profile, run by make test-cluster")
def test_a_tiny_import_and_tax_file_go_through_the_gateway_as_jobs_and_report_their_figures(tmp_path: Path):
    output = tmp_path / "jobs.json"
    assert bench.main(["--rows", "600", "--xlsx-rows", "50", "--poll-seconds", "0.3", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert set(result["jobs"]) == {"import_persons", "import_enrolments", "tax_file", "import_persons_xlsx"}
    assert result["jobs"]["import_enrolments"]["rows"] == 600 and result["jobs"]["tax_file"]["rows"] == 600
    for figures in result["jobs"].values():
        assert figures["upload"]["status"] == 202 and figures["rows_rejected"] == 0
        assert {"nats", "accounts", "collection", "gateway"} <= set(figures["cpu_us_per_row"])
        assert figures["peak_rss_mb_during"]["accounts"] > 0 and figures["result"]
    assert result["jobs"]["tax_file"]["result"]["totals"]["matched"] == 600
    assert result["server_errors"] == 0 and {"before", "after"} <= set(result["load"])
    assert not output.with_suffix(".partial.json").exists()
