"""The deployment files (Dockerfile, infra/compose.yaml, infra/k8s/) read for tests: the variables Settings reads,
the parsed files, and the probe paths a running platform must answer."""

import re
from pathlib import Path

import yaml

from services.kernel.settings import PORT_OFFSETS, SERVICES, Settings
from services.kernel.settings_sections import Section

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPONENTS = (*SERVICES, "gateway")
FACTORIES = {**{s: f"services.{s}.app:create_app" for s in SERVICES}, "gateway": "gateway.app:create_app"}
PORTS = {c: 8000 + PORT_OFFSETS[c] for c in COMPONENTS}


def setting_variables() -> set[str]:
    """Every environment variable Settings reads."""
    names = set()
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, Section):
            names |= {f"{section.env_prefix}{f}".upper() for f in section.model_fields}
        else:
            names.add(f"SIFUND_{name}".upper())
    return names


def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def k8s_documents() -> list[dict]:
    return [doc for path in sorted((INFRA / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def command_component(command: list[str]) -> str:
    return next(c for c, factory in FACTORIES.items() if factory in command)


def probe_paths() -> set[tuple[str, str]]:
    """(component, path) of every HTTP probe of a sifund container in compose.yaml and the Kubernetes manifests."""
    found = set()
    for service in compose()["services"].values():
        if service.get("image", "").startswith("sifund"):
            test = " ".join(service["healthcheck"]["test"])
            path = re.search(r"127\.0\.0\.1:\d+(/[\w/]+)", test)[1]
            found.add((command_component(service["command"]), path))
    for doc in k8s_documents():
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    found.add((command_component(container["args"]), container[probe]["httpGet"]["path"]))
    return found
