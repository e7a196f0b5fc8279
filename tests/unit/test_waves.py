"""Which of a plan's applies travel together (d3os_core.waves)."""

from __future__ import annotations

from d3os_core import api, apply_waves
from d3os_core.types import Apply


def _step(kind: str, name: str, component: str) -> Apply:
    manifest = {"apiVersion": api.kind_def(kind).api_version, "kind": kind,
                "metadata": {"name": name, "namespace": "ns"}}
    return Apply(manifest, component, create=True)


def _names(waves: list[list[Apply]]) -> list[list[str]]:
    return [[f"{s.manifest['kind']}/{s.manifest['metadata']['name']}" for s in w] for w in waves]


def test_the_leaves_are_the_kinds_that_refer_to_no_other_object() -> None:
    assert {k.kind for k in api.KINDS if k.leaf} == {"ConfigMap", "Service", "Secret"}


def test_waves_send_a_components_leaves_first_and_keep_the_plans_order_for_the_rest() -> None:
    mysql = [_step("Secret", "creds", "mysql"), _step("ConfigMap", "mysql", "mysql"),
             _step("ConfigMap", "init", "mysql"), _step("PersistentVolumeClaim", "data", "mysql"),
             _step("Service", "mysql", "mysql"), _step("StatefulSet", "mysql", "mysql")]
    assert _names(apply_waves(mysql)) == [
        ["Secret/creds", "ConfigMap/mysql", "ConfigMap/init", "Service/mysql"],
        ["PersistentVolumeClaim/data"],  # after the Secret it records
        ["StatefulSet/mysql"],  # after everything it mounts
    ]


def test_a_components_objects_never_go_before_the_component_before_it() -> None:
    two = [_step("ConfigMap", "a", "a"), _step("Service", "a", "a"), _step("Deployment", "a", "a"),
           _step("ConfigMap", "b", "b"), _step("Deployment", "b", "b"), _step("ControllerRevision", "r1", "")]
    assert _names(apply_waves(two)) == [["ConfigMap/a", "Service/a"], ["Deployment/a"],
                                        ["ConfigMap/b"], ["Deployment/b"], ["ControllerRevision/r1"]]


def test_a_leaf_after_workloads_joins_its_components_first_wave_and_workloads_go_one_by_one() -> None:
    workloads = [_step("Deployment", "x", "x"), _step("StatefulSet", "x", "x"), _step("ConfigMap", "x", "x")]
    assert _names(apply_waves(workloads)) == [["ConfigMap/x"], ["Deployment/x"], ["StatefulSet/x"]]
    assert apply_waves([]) == []


def test_a_kind_outside_the_table_is_never_sent_early() -> None:
    odd = Apply({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, "x", create=True)
    assert _names(apply_waves([_step("Deployment", "x", "x"), odd])) == [["Deployment/x"], ["Widget/w"]]
