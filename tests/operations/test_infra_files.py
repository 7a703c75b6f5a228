"""infra/prometheus and infra/grafana parse, point at the ports the settings give, and carry the alerts the
operators and supervisors need (the metric names they use are checked against a running platform in
test_metrics_and_logs.py)."""

import pytest

from services.kernel.settings import SERVICES, Settings
from tests.operations.infra_files import alert_rules, dashboards, metric_names, prometheus_configurations

pytestmark = pytest.mark.unit

REQUIRED_ALERTS = {"SifundProcessDown", "SifundOutboxLag", "SifundConsumerLagGrowing", "SifundDeadLetter",
                   "SifundAuditChainBroken", "SifundReconciliationUnmatchedAfterClose", "SifundMajorIncidentOverdue"}


def test_the_embedded_scrape_configuration_lists_every_process_on_its_port():
    configuration = prometheus_configurations()["prometheus.yml"]
    assert configuration["rule_files"] == ["alerts.yml"]
    [sifund] = [job for job in configuration["scrape_configs"] if job["job_name"] == "sifund"]
    targets = {group["labels"]["process"]: group["targets"] for group in sifund["static_configs"]}
    defaults = Settings()
    assert targets == {c: [f"127.0.0.1:{defaults.port(c)}"] for c in ["gateway", *SERVICES]}


def test_the_cluster_scrape_configuration_reads_the_targets_sifund_up_writes():
    configuration = prometheus_configurations()["prometheus-cluster.yml"]
    [sifund] = [job for job in configuration["scrape_configs"] if job["job_name"] == "sifund"]
    [discovery] = sifund["file_sd_configs"]
    assert discovery["files"] == ["../../var/prometheus-targets.json"]


def test_the_alert_rules_cover_what_must_wake_someone():
    rules = alert_rules()
    assert REQUIRED_ALERTS <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"] in {"critical", "warning", "info"}, rule
        assert rule["annotations"]["summary"], rule
        assert metric_names(rule["expr"]), rule


def test_one_dashboard_for_operators_and_one_for_supervisors():
    boards = dashboards()
    assert set(boards) == {"sifund-operators.json", "sifund-supervisors.json"}
    for board in boards.values():
        assert board["uid"] and board["title"] and board["panels"]
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["expr"] and target["refId"], panel
