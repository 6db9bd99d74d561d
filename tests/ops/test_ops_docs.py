"""docs/configuration.md lists every key, generated from the dataclasses: it cannot drift."""

from __future__ import annotations

import json
import re

from ops.helpers import REPO
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from xmlchat import configdoc
from xmlchat.config import Metrics as MetricsConfig
from xmlchat.metrics import PrometheusMetrics

DOC = REPO / "docs" / "configuration.md"


def test_every_key_has_a_description() -> None:
    undocumented = [key.dotted for key in configdoc.all_keys() if key.dotted not in configdoc.DESCRIPTIONS]
    assert not undocumented, f"describe these in xmlchat/configdoc.py DESCRIPTIONS: {undocumented}"
    stale = set(configdoc.DESCRIPTIONS) - {key.dotted for key in configdoc.all_keys()}
    assert not stale, f"descriptions of keys that no longer exist: {sorted(stale)}"


def test_configuration_doc_is_up_to_date() -> None:
    text = DOC.read_text()
    assert configdoc.render(text) == text, "run: python -m xmlchat.configdoc docs/configuration.md"
    for key in configdoc.all_keys():
        assert f"| `{key.dotted}` |" in text and f"`{key.env}`" in text


def test_operations_doc_covers_the_container_and_the_tools() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    for needle in (
        "docker compose up -d",
        "docker compose exec xmlchat xmlchat adduser alice@localhost",
        "xmlchat health",
        "xmlchat check",
        "/metrics",
        'log.format = "json"',
        "Backups",
    ):
        assert needle in text


def test_the_grafana_dashboard_only_queries_metrics_the_server_exports() -> None:
    """Every ``xmlchat_*`` series a panel asks for is one the server registers
    (a renamed metric would leave a panel silently empty)."""
    metrics = PrometheusMetrics(MetricsConfig(enabled=True))
    exposition = generate_latest(metrics.registry).decode()
    families = list(text_string_to_metric_families(exposition))
    exported = {sample.name for family in families for sample in family.samples}
    # A labelled counter with no series yet (errors) is still declared.
    exported |= {f"{family.name}_total" for family in families if family.type == "counter"}
    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"  # importable: asks for the data source
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:xmlchat|process)_[a-z_]+", target["expr"])
    }
    assert {"xmlchat_sessions", "xmlchat_registered_users", "xmlchat_limits_hit_total"} <= queried
    assert queried <= exported, queried - exported

