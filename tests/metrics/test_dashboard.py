"""The Grafana dashboard ``deploy/grafana/convsync.json``: importable (a datasource
input, a recent schema) and built only on metrics that ``/metrics`` serves."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from convsync.service.metrics import count_webhooks
from tests.integration.conftest import write_orders

from .conftest import Served
from .test_metrics import ORDERS, set_states

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "convsync.json"
METRIC = re.compile(r"\bconvsync_[a-z0-9_]+")
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression: the panels' targets and the template variables' queries."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        yield variable["query"]["query"]


def test_the_dashboard_imports_with_a_prometheus_datasource_input() -> None:
    dashboard = load()
    assert dashboard["schemaVersion"] >= 36
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"] and all(t["datasource"] == DATASOURCE for t in panel["targets"])


def test_every_metric_the_dashboard_uses_is_served_after_a_run(
    workdir: Path, served: Served, ledger_url: str
) -> None:
    write_orders(workdir, ORDERS)
    served.scheduler.tick()
    set_states(ledger_url, [("matched", timedelta(hours=1))], served)
    count_webhooks(served.registry, lambda: {"requests": 1, "transactions": 1})
    exposed = set(served.scrape().samples)

    used = {name for query in queries(load()) for name in METRIC.findall(query)}
    assert used - exposed == set()
    # and every family served has a panel (a histogram counts through its buckets)
    assert {family(name) for name in exposed} <= {family(name) for name in used}


def family(sample: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", sample)
