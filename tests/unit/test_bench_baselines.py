"""The bench's baselines measure what they claim: the core's objects, and goals computed from the right runs.

No cluster and no timing here (DESIGN.md §4): the objects the cluster-alone and Helm baselines send are
the core's rendered objects minus ownerReferences, the workloads they wait for are the core's, and the
report's ratios and goals come from the runs they name.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import baselines
import footprint
import run
import yaml

from d3os_core import parse_spec
from d3os_core.product import WorkloadKind
from d3os_core.render import Parent, resolve

from .helpers import DATASERVICE as PRODUCT

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataservice-sample.yaml"


def sample() -> dict:
    return yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))


def test_rendered_objects_are_the_cores_without_owner_references() -> None:
    objects = baselines.rendered_objects(sample(), "ns-a")
    assert objects and all(o["metadata"]["namespace"] == "ns-a" for o in objects)
    assert not [o for o in objects if "ownerReferences" in o["metadata"]]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert len(names) == len(objects)  # nothing rendered twice
    assert {"ConfigMap", "Service", "Deployment", "StatefulSet"} <= {o["kind"] for o in objects}


def test_the_workloads_waited_for_are_every_non_third_party_component() -> None:
    manifest = sample()
    spec = parse_spec(manifest["spec"], PRODUCT)
    states = resolve(Parent(manifest["metadata"]["name"], "ns-a", "u"), spec, PRODUCT)
    want = {(st.kind.k8s_kind, "ns-a", st.name) for st in states.values() if st.kind is not WorkloadKind.THIRD_PARTY}
    assert baselines.workloads(baselines.rendered_objects(manifest, "ns-a")) == want


def test_rendering_is_per_namespace_and_does_not_share_objects() -> None:
    a, b = baselines.rendered_objects(sample(), "ns-a"), baselines.rendered_objects(sample(), "ns-b")
    a[0]["metadata"]["name"] = "changed"
    assert b[0]["metadata"]["name"] != "changed"
    assert baselines.rendered_objects(sample(), "ns-a")[0]["metadata"]["name"] != "changed"


def test_chart_template_prints_the_values_objects(tmp_path: Path) -> None:
    chart = baselines.write_chart(tmp_path)
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["apiVersion"] == "v2"
    assert ".Values.objects" in (chart / "templates" / "objects.yaml").read_text()


def results(ours_s: float, alone_s: float, helm_s: float, total_requests: int, n: int = 50) -> dict:
    return {
        "rollout": {"apply_to_ready_s": {"p50": 3.0}, "ratio": {"p50": 1.1},
                    "added_ms_per_step": {"p50": 20.0, "p95": 60.0}},
        "alone": {"sample": {"all_ready_s": {"p50": 2.0}}, str(n): {"all_ready_s": alone_s}},
        "helm": {"sample": {"all_installed_s": {"p50": 6.0}, "core_rules_all_ready_s": {"p50": 5.0}},
                 str(n): {"all_installed": True, "all_installed_s": helm_s, "core_rules_all_ready_s": helm_s - 1}},
        "scale": {str(n): {"n": n, "all_ready_s": ours_s, "peak_rss_bytes": 140_000_000,
                           "requests_during_rollout": {"total": total_requests,
                                                       "by_verb_resource": {"patch configmaps": total_requests}}}},
        "steady": {"writes": 0, "non_watch_reads": 2, "window_s": 60.0},
    }


def test_goals_are_ratios_to_the_baselines_of_the_same_run() -> None:
    goals = {g["goal"]: g for g in run.goals(results(60.0, 40.0, 80.0, 2500), [50], 50)}
    ratio = goals["N=50 all Ready / cluster alone (same run)"]
    assert ratio["measured"] == 1.5 and ratio["met"] is False
    assert goals["operator requests per DataService, N=50"]["measured"] == 50.0
    assert goals["operator requests per DataService, N=50"]["met"] is True
    assert goals["operator peak RSS at N=50"]["met"] is True
    assert goals["steady state: writes and polling (non-watch) reads"]["met"] is False  # 2 polling reads
    assert goals["operator-added latency per step, p95"]["met"] is False


def test_side_by_side_rows_name_sample_and_n() -> None:
    rows = {r["n"]: r for r in run.side_by_side(results(60.0, 40.0, 80.0, 2500), [50])}
    assert rows[1]["ours_over_alone"] == 1.5 and rows[1]["ours_over_helm"] == 0.5
    assert rows[50]["ours_over_helm"] == 0.75 and rows[50]["helm_core_rules_s"] == 79.0
    table = run.baseline_table({**results(60.0, 40.0, 80.0, 2500), "machine": {}}, [50])
    assert any("| 50 | 40.0 s | 80.0 s | 79.0 s | 60.0 s | 1.50× | 0.75× |" in line for line in table)


def test_a_failed_helm_run_has_no_ratio() -> None:
    res = results(60.0, 40.0, 80.0, 2500)
    res["helm"]["50"]["all_installed"] = False
    assert run.side_by_side(res, [50])[1]["ours_over_helm"] is None


def test_shared_strings_are_counted_once() -> None:
    table: dict[str, str] = {}
    a = footprint.interned({"metadata": {"labels": {"app": "x" * 10}}}, table)
    b = footprint.interned({"metadata": {"labels": {"app": "x" * 10}}}, table)
    seen: set[int] = set()
    first = footprint.deep_size(a, seen)
    assert footprint.deep_size(b, seen) < first  # the keys and the value are a's
    assert footprint.deep_size(b) == first  # alone, b weighs what a does


def test_write_cost_uses_the_statuses_and_objects_of_a_real_rollout() -> None:
    """The ``writes`` part times the statuses the core writes step by step (the seed's transcript: one per
    component, then Ready) and objects it renders, not made-up bodies."""
    import write_cost

    statuses, objects = write_cost.rollout_statuses(sample())
    phases = [s.get("phase") for s in statuses]
    order = [c.key for c in PRODUCT.components]
    assert [p for i, p in enumerate(phases) if p and p not in phases[:i]] == [f"{k}已部署" for k in order]
    assert any(c.get("type") == "Ready" and c.get("status") == "True" for c in statuses[-1]["conditions"])
    kinds = {o["kind"] for o in objects}
    assert {"ConfigMap", "Service", "Deployment", "StatefulSet"} <= kinds


def test_writes_table_shows_each_write_relative_to_a_configmap() -> None:
    w = {"n": 10, "writes": {
        "DataService status: apply (next step)": {"apiserver_cpu_ms": 30.0, "etcd_cpu_ms": 2.0, "wall_ms": 40.0},
        "ConfigMap apply (create)": {"apiserver_cpu_ms": 3.0, "etcd_cpu_ms": 1.0, "wall_ms": 5.0},
    }}
    text = "\n".join(run.writes_table(w))
    assert "| DataService status: apply (next step) | 30.0 ms | 10.0× |" in text
    assert run.writes_table(None) == [] and run.writes_table({"skipped": "x"}) == []
