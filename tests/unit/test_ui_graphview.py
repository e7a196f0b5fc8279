"""The picture's content (d3os_core.graphview): layers from the planner's own dependencies, states and the
current step from the status, judged against outside oracles -- the synthetic product's construction, the
product files' ``dependsOn``, the MESSAGE column's brackets written by the planner."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import itertools

import synthetic

from d3os_core.graphview import instance_graph, instance_state, layers, node_state
from d3os_operator.products import installed_product

from .helpers import DATASERVICE, ORDER, Driver, sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n", [1, 12, 50, 200])
def test_layers_of_the_synthetic_product_are_the_layers_it_was_built_from(n: int) -> None:
    built = [[synthetic.key(i) for i in layer] for layer in synthetic.layers(n)]
    prod = synthetic.product(n)
    graph = instance_graph(synthetic.dataservice(n), prod)
    assert [list(layer) for layer in graph.layers] == built
    assert sorted(graph.edges) == sorted((d, k) for k, ds in synthetic.dependencies(n).items() for d in ds)


def test_analytics_layers_follow_its_product_file() -> None:
    doc = yaml.safe_load((ROOT / "products/analytics/product.yaml").read_text(encoding="utf-8"))
    deps = {c["key"]: c.get("dependsOn", []) for c in doc["components"]}
    assert deps["dashboard"] == ["ingest-api", "stream-processor"]  # what the expectation below reads
    instance = yaml.safe_load((ROOT / "examples/analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    graph = instance_graph(instance, installed_product("analytics"))
    assert [list(x) for x in graph.layers] == [["kafka"], ["ingest-api", "stream-processor"], ["dashboard"]]
    assert sorted(graph.edges) == sorted((d, k) for k, ds in deps.items() for d in ds)


def test_the_seed_sample_is_one_chain_in_the_seed_order() -> None:
    graph = instance_graph(sample(), DATASERVICE)
    assert [list(layer) for layer in graph.layers] == [[k] for k in ORDER]
    assert graph.edges == tuple(itertools.pairwise(ORDER))
    assert all(n.state == "Pending" for n in graph.nodes.values())


def test_a_layer_is_one_past_its_deepest_dependency() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a", "b"], "d": []}
    assert layers(["a", "b", "c", "d"], deps) == [["a", "d"], ["b"], ["c"]]


def _brackets(message: str) -> set[str]:
    return set(re.findall(r"\[([^\]]+)\]", message))


def test_the_marked_step_is_the_one_message_brackets_at_every_pass() -> None:
    d = Driver(sample())
    seen = set()
    for _ in range(40):
        d.step()
        graph = instance_graph(d.ds, DATASERVICE)
        status = d.ds["status"]
        assert (graph.phase, graph.message) == (status["phase"], status["message"])
        for c in status["components"]:
            assert graph.nodes[c["name"]].state == c["state"]
            assert graph.nodes[c["name"]].message == c["message"]
            assert graph.nodes[c["name"]].kind == c["kind"]
        if d.ready:
            assert graph.current == ()  # nothing is waited on
            break
        assert set(graph.current) == _brackets(status["message"]), status["message"]
        seen |= set(graph.current)
    assert d.ready
    assert {"mysql", "uuc", "web"} <= seen


def test_replicas_come_from_the_spec_and_kinds_from_the_status() -> None:
    ds = sample()
    ds["spec"]["eureka"]["replica"] = 3
    ds["spec"]["eureka"]["kind"] = 2  # DaemonSet
    ds["spec"]["api-manager"]["replica"] = 2
    graph = instance_graph(ds, DATASERVICE)
    assert graph.nodes["eureka"].kind == "DaemonSet" and graph.nodes["eureka"].replicas == "per node"
    assert graph.nodes["api-manager"].replicas == "2"
    assert graph.nodes["uuc"].kind == "ThirdParty" and graph.nodes["uuc"].replicas == ""
    assert graph.nodes["mysql"].kind == "StatefulSet" and graph.nodes["mysql"].replicas == "1"


def test_suspended_components_and_instances() -> None:
    d = Driver(sample())
    d.change(lambda spec: spec.update(suspend=True))
    d.step()
    graph = instance_graph(d.ds, DATASERVICE)
    held = [c["name"] for c in d.ds["status"]["components"] if c.get("reason") == "Suspended"]
    assert held and all(graph.nodes[k].state == "Suspended" for k in held)
    assert instance_state(d.ds) == "Suspended"
    assert node_state({"state": "Waiting", "reason": ""}) == "Waiting"
    assert node_state(None) == "Pending"


def test_instance_state_reads_the_conditions() -> None:
    d = Driver(sample())
    assert instance_state(d.ds) == "Unknown"
    d.step()
    assert instance_state(d.ds) == "Progressing"
    d.converge()
    assert instance_state(d.ds) == "Ready"
    failed = copy.deepcopy(d.ds)
    for c in failed["status"]["conditions"]:
        c["status"] = {"Ready": "False", "Degraded": "True"}.get(c["type"], c["status"])
    assert instance_state(failed) == "Degraded"


def test_an_invalid_spec_draws_the_products_chain_and_says_why() -> None:
    ds = sample()
    ds["spec"]["mysql"]["kind"] = 9
    graph = instance_graph(ds, DATASERVICE)
    assert [list(x) for x in graph.layers] == [[k] for k in ORDER]
    assert "spec.mysql.kind" in graph.spec_problem


def test_the_converged_synthetic_product_is_all_ready_with_no_current_step() -> None:
    ds, _ = synthetic.converged(synthetic.dataservice(30), synthetic.product(30))
    graph = instance_graph(ds, synthetic.product(30))
    assert {n.state for n in graph.nodes.values()} == {"Ready"} and graph.current == ()


def test_mid_kind_switch_the_node_shows_the_kind_the_operator_reports() -> None:
    d = Driver(sample())
    d.converge()
    d.change(lambda spec: spec["mysql"].update(kind=3, thirdParty={"url": "mysql://db.example:3306"}))
    graph = instance_graph(d.ds, DATASERVICE)  # the status is the operator's last word: still StatefulSet
    assert graph.nodes["mysql"].kind == "StatefulSet"
    d.step()
    assert instance_graph(d.ds, DATASERVICE).nodes["mysql"].kind == "ThirdParty"
