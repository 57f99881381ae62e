"""compose.yaml, .env.example and the monitoring profile's files: what running convsync
with compose promises. Run for real by ``make docker-check`` (deploy/docker-check.sh)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load(ROOT / "compose.yaml")
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def test_convsync_runs_the_schedule_after_postgres_is_healthy(services: dict[str, Any]) -> None:
    convsync = services["convsync"]
    assert convsync["command"] == ["run"]
    assert convsync["build"] == "."
    assert convsync["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    check = services["postgres"]["healthcheck"]
    assert "pg_isready" in " ".join(check["test"])
    assert {"interval", "timeout", "retries", "start_period"} <= set(check)


def test_restart_unless_stopped(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name


def test_the_ledger_is_postgres_in_a_named_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    url = services["convsync"]["environment"]["CONVSYNC_DATABASE_URL"]
    assert re.fullmatch(
        r"postgresql://\$\{POSTGRES_USER.*\}:\$\{POSTGRES_PASSWORD:\?.*\}"
        r"@postgres:5432/\$\{POSTGRES_DB.*\}",
        url,
    )
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert "pgdata" in compose["volumes"]
    # the platforms' tokens of .env reach convsync only
    assert "env_file" not in postgres
    assert set(postgres["environment"]) == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_secrets_from_env_file_and_config_read_only(services: dict[str, Any]) -> None:
    convsync = services["convsync"]
    assert convsync["env_file"] == ".env"
    mounts = [volume.rsplit(":", 2) for volume in convsync["volumes"]]
    assert [(target, mode) for _, target, mode in mounts] == [("/config", "ro")]
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_ports(services: dict[str, Any]) -> None:
    from convsync.config.webhooks import WebhookServerConfig

    ports = {port.split(":")[-1] for port in services["convsync"]["ports"]}
    assert ports == {"8080", str(WebhookServerConfig().port)}
    assert "ports" not in services["postgres"]  # reached by convsync only


def test_env_example_sets_every_variable_compose_needs(compose: dict[str, Any]) -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
        if re.match(r"^[A-Z_]+=", line)
    }
    assert required == {"POSTGRES_PASSWORD"}
    assert required <= example
    assert "GRAFANA_ADMIN_PASSWORD" in example


def test_monitoring_profile(compose: dict[str, Any], services: dict[str, Any]) -> None:
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == {"prometheus", "grafana"}
    assert all(services[name]["profiles"] == ["monitoring"] for name in profiled)
    mounts = dict(volume.split(":")[:2] for volume in services["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert {"prometheus-data", "grafana-data"} <= set(compose["volumes"])


def test_prometheus_scrapes_convsync_metrics() -> None:
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    [job] = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"] == [{"targets": ["convsync:8080"]}]


def test_grafana_provisions_the_datasource_and_the_dashboard(
    services: dict[str, Any], tmp_path: Path
) -> None:
    grafana = services["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/convsync.json"] == "/etc/convsync/convsync.json"
    script = mounts["./deploy/grafana/grafana-start.sh"]
    assert grafana["entrypoint"] == ["/bin/sh", script]

    [source] = load(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )
    [provider] = load(DEPLOY / "grafana/provisioning/dashboards/convsync.yml")["providers"]
    folder = provider["options"]["path"]

    # the start script writes the dashboard there with the datasource's uid for its input
    subprocess.run(
        ["sh", str(DEPLOY / "grafana/grafana-start.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "CONVSYNC_DASHBOARD": str(DEPLOY / "grafana/convsync.json"),
            "CONVSYNC_DASHBOARD_DIR": str(tmp_path),
            "GRAFANA_RUN": "true",
        },
        check=True,
    )
    assert folder == "/var/lib/grafana/dashboards"
    dashboard = json.loads((tmp_path / "convsync.json").read_text(encoding="utf-8"))
    refs = [p["datasource"] for p in dashboard["panels"] if p.get("datasource")]
    assert refs and all(ref == {"type": "prometheus", "uid": source["uid"]} for ref in refs)
    assert "${DS_PROMETHEUS}" not in json.dumps(dashboard)
