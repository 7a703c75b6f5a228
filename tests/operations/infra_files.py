"""The monitoring files of infra/ (Prometheus configurations and alert rules, Grafana dashboards), loaded and their
PromQL expressions read for the metric names they use (``promtool`` is not available here: a regex over each
expression, with PromQL's functions, keywords, label names and quoted strings taken out)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
# Series Prometheus makes itself, not exported by a process.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group", "by", "without",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "rate", "irate",
    "increase", "delta", "idelta", "deriv", "predict_linear", "histogram_quantile", "abs", "absent", "ceil", "floor",
    "round", "clamp_min", "clamp_max", "time", "timestamp", "vector", "scalar", "label_replace", "label_join",
    "sort", "sort_desc", "min_over_time", "max_over_time", "avg_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "changes", "resets", "le", "inf", "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_LABELS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w(])")


def prometheus_configurations() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(PROMETHEUS.glob("prometheus*.yml"))}


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(GRAFANA.glob("*.json"))}


def _panel_targets(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield from panel.get("targets", [])
        yield from _panel_targets(panel.get("panels", []))


def expressions() -> Iterator[str]:
    for rule in alert_rules():
        yield rule["expr"]
    for board in dashboards().values():
        for target in _panel_targets(board["panels"]):
            yield target["expr"]


def metric_names(expression: str) -> set[str]:
    text = _STRING.sub(" ", expression)
    text = _LABELS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in PROMQL_WORDS}


def metric_names_in_infra() -> set[str]:
    """Every metric an alert rule or a dashboard panel reads, Prometheus's own series left out."""
    return {name for expression in expressions() for name in metric_names(expression)} - SYNTHETIC
