"""Benchmarks (``make bench``); results in ``bench/results/*.json``. Not a production path."""
