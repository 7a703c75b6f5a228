"""The deployment files (Dockerfile, infra/compose.yaml, infra/k8s/) parsed and checked against the code, since no
image can be built and no cluster started here: every ``SIFUND_*`` variable they set is a setting of ``Settings``,
every service runs with its factory on its port, probes are split into ``/health/live`` and ``/health/ready``, each
Deployment has resource requests and a PodDisruptionBudget, secrets come from a Kubernetes Secret, NATS is a
3-node StatefulSet with JetStream storage. That every probe path answers 200 on a running platform is checked by
tests/operations/test_backup_restore_and_rebuild.py (on its restored platform, with :func:`probe_paths`)."""

import re

import pytest
import yaml

from services.kernel.settings import SERVICES
from tests.support.deployment_files import (
    COMPONENTS, FACTORIES, INFRA, PORTS, ROOT, command_component, compose, k8s_documents, probe_paths, setting_variables,
)

pytestmark = pytest.mark.unit


def test_every_sifund_variable_in_the_files_is_a_setting():
    known = setting_variables()
    named = set(re.findall(r"\bSIFUND_[A-Z0-9_]+", (ROOT / "Dockerfile").read_text()))
    named |= set(re.findall(r"\bSIFUND_[A-Z0-9_]+", (INFRA / "compose.yaml").read_text()))
    for path in (INFRA / "k8s").glob("*.yaml"):
        named |= set(re.findall(r"\bSIFUND_[A-Z0-9_]+", path.read_text()))
    assert named, "no SIFUND_ variable found: the parser is wrong"
    assert named <= known, sorted(named - known)


def test_the_dockerfile_runs_one_image_whose_command_chooses_the_component():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.strip().startswith("#")]
    instructions = [line.split()[0] for line in lines if line.split()[0].isupper()]
    assert instructions.count("ENTRYPOINT") == 1 and instructions.count("CMD") == 1
    assert any(line.startswith("FROM python:3.11") for line in lines)
    entrypoint = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert '"uvicorn", "--factory"' in entrypoint
    assert FACTORIES["gateway"] in next(line for line in lines if line.startswith("CMD"))
    for line in lines:
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), line
    assert any("postgresql-client" in line for line in lines), "pg_dump for sifund backup"


def test_compose_runs_three_nats_nodes_postgres_each_service_twice_the_gateway_prometheus_and_grafana():
    services = compose()["services"]
    expected = {"nats-1", "nats-2", "nats-3", "postgres", "gateway", "prometheus", "grafana",
                *(f"{s}-{r}" for s in SERVICES for r in (1, 2))}
    assert expected <= set(services), sorted(expected - set(services))
    for name, service in services.items():
        if not service.get("image", "").startswith("sifund"):
            continue
        component = command_component(service["command"])
        assert name.split("-")[0] == component
        assert service["command"][service["command"].index("--port") + 1] == str(PORTS[component])
        environment = service["environment"]
        assert environment[f"SIFUND_{component.upper()}_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert len(environment["SIFUND_NATS_URL"].split(",")) == 3 and environment["SIFUND_NATS_REPLICAS"] == "3"
        for other in SERVICES:  # the gateway balances across both replicas of each service
            assert environment[f"SIFUND_{other.upper()}_URL"] == (
                f"http://{other}-1:{PORTS[other]},http://{other}-2:{PORTS[other]}")
    assert services["gateway"]["ports"] == [f"{PORTS['gateway']}:{PORTS['gateway']}"]
    assert "SIFUND_JWT_PRIVATE_KEY_PATH" in services["gateway"]["environment"]
    assert all("SIFUND_JWT_PRIVATE_KEY_PATH" not in services[f"{s}-1"]["environment"] for s in SERVICES)


def test_files_compose_mounts_exist():
    """The mounted configuration exists (infra/prometheus and infra/grafana come from the metrics work: checked once
    they are in the tree)."""
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = (INFRA / source).resolve()
                if path.relative_to(INFRA).parts[0] in ("prometheus", "grafana") and not (
                        INFRA / path.relative_to(INFRA).parts[0]).exists():
                    continue
                assert path.exists(), volume
    prometheus = INFRA / "prometheus" / "prometheus.yml"
    if prometheus.exists():
        assert yaml.safe_load(prometheus.read_text())


def test_kubernetes_deployments_have_split_probes_requests_a_budget_and_secrets_from_a_secret():
    documents = k8s_documents()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    secret = next(d for d in documents if d["kind"] == "Secret")
    config = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "sifund-config")
    for component in COMPONENTS:
        assert {("Deployment", component), ("Service", component), ("PodDisruptionBudget", component)} <= kinds
        deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == component)
        assert deployment["spec"]["replicas"] >= 2
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert command_component(container["args"]) == component
        assert container["ports"][0]["containerPort"] == PORTS[component]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        database = next(e for e in container["env"] if e["name"] == f"SIFUND_{component.upper()}_DATABASE_URL")
        reference = database["valueFrom"]["secretKeyRef"]
        assert reference["name"] == secret["metadata"]["name"] and reference["key"] in secret["stringData"]
        for volume in pod["volumes"]:
            if "secret" in volume:
                assert {i["key"] for i in volume["secret"]["items"]} <= set(secret["stringData"])
        budget = next(d for d in documents if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == component)
        assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        service = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == component)
        assert service["spec"]["ports"][0]["port"] == PORTS[component]
    for service in SERVICES:
        assert config["data"][f"SIFUND_{service.upper()}_URL"] == f"http://{service}:{PORTS[service]}"
    assert not any("DATABASE_URL" in key for key in config["data"]), "database URLs hold passwords: a Secret"


def test_nats_is_a_three_node_jetstream_statefulset():
    documents = k8s_documents()
    nats = next(d for d in documents if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats")
    assert nats["spec"]["replicas"] == 3 and nats["spec"]["volumeClaimTemplates"]
    conf = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nats-config")
    text = conf["data"]["nats.conf"]
    assert "jetstream" in text and all(f"nats-{i}.nats:6222" in text for i in range(3))
    config = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "sifund-config")
    assert config["data"]["SIFUND_NATS_REPLICAS"] == "3"
    assert ("PodDisruptionBudget", "nats") in {(d["kind"], d["metadata"]["name"]) for d in documents}


def test_every_probe_path_is_a_route_of_its_component():
    from gateway import health
    from services.kernel.service_app import _health_router

    routes = {"gateway": {route.path for route in health.router.routes}}
    for service in SERVICES:
        routes[service] = {route.path for route in _health_router(service).routes}
    for component, path in probe_paths():
        assert path in routes[component], (component, path)
