"""The chart's alert rules and dashboard: well formed, and the metric names their queries read (which
tests/integration/test_monitoring.py compares with what the operator serves)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .promql import metric_names

FILES = Path(__file__).resolve().parents[2] / "charts" / "d3os-operator" / "files"


def rule_exprs() -> list[str]:
    groups = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    board = json.loads((FILES / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def test_metric_names_of_promql() -> None:
    assert metric_names('sum by (le) (rate(d3os_step_latency_seconds_bucket{name="x"}[5m]))') == {
        "d3os_step_latency_seconds_bucket"}
    assert metric_names('histogram_quantile(0.95, sum by (le, verb) (rate(a_bucket[5m]))) > 0.5') == {"a_bucket"}
    assert metric_names('absent(up{job="a"}) or max by (name) (b) == 0 unless on (x) c') == {"up", "b", "c"}
    assert metric_names('increase(d3os_events_total{outcome="dropped"}[15m]) > 0') == {"d3os_events_total"}


def test_every_alert_the_issue_asks_for_and_each_reads_a_metric() -> None:
    groups = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"]}
    assert alerts == {"D3osDataServiceNotReady", "D3osDataServiceStalled", "D3osOperatorDown",
                      "D3osOperatorNotLeading", "D3osThirdPartyCheckFailing", "D3osEventsDropped"}
    assert all(metric_names(e) for e in rule_exprs())
    assert all(metric_names(e) for e in dashboard_exprs())
    assert len(dashboard_exprs()) >= 10
