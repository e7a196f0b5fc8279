"""The two ways to install shards -- ``config/sharding`` (kustomize) and the chart's ``sharding.shards`` --
render Deployments whose selectors split every DataService labelling between them exactly once, each with its
own Lease and its own pods. (kubectl and helm from the toolchain cache; skipped without them.)"""

from __future__ import annotations

from typing import Any

from d3os_operator.sharding import SHARD_KEY, LabelSelector, lease_name, parse_selector

from .test_chart import CHART, by_kind, helm, template
from .test_kustomize import kustomize

LABELLINGS: list[dict[str, str]] = [
    {},
    {SHARD_KEY: "shard1"},
    {SHARD_KEY: "shard2"},
    {SHARD_KEY: "shard3"},
    {SHARD_KEY: ""},
    {"team": "a"},
]


def _selectors(docs: list[dict[str, Any]]) -> dict[str, LabelSelector | None]:
    out = {}
    for dep in by_kind(docs, "Deployment"):
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        flags = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--watch-label-selector=")]
        assert len(flags) <= 1
        out[dep["metadata"]["name"]] = parse_selector(flags[0]) if flags else None
    return out


def _check_split(docs: list[dict[str, Any]], shards: int) -> dict[str, LabelSelector | None]:
    sels = _selectors(docs)
    assert len(sels) == shards and all(s is not None for s in sels.values())
    for labels in LABELLINGS:
        takers = [name for name, s in sels.items() if s is not None and s.matches(labels)]
        assert len(takers) == 1, (labels, takers)
    assert len({lease_name(s) for s in sels.values()}) == shards, "one Lease per shard"
    deps = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    main = next(n for n in deps if n.endswith("-controller-manager"))
    for name, dep in deps.items():
        pod = dep["spec"]["template"]["metadata"]["labels"]
        owners = {n for n, d in deps.items() if d["spec"]["selector"]["matchLabels"].items() <= pod.items()}
        # a shard's Deployment selects only its own pods (the main one keeps its unsharded selector)
        assert owners == {name, main}, (name, owners)
        assert pod.get("sharding.d3os.io/shard") == ("default" if name == main else name.rsplit("-", 1)[1])
    accounts = {d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")}
    assert {d["spec"]["template"]["spec"]["serviceAccountName"] for d in deps.values()} <= accounts
    return sels


def test_kustomize_overlay_installs_two_shards() -> None:
    docs = kustomize("sharding")
    sels = _check_split(docs, 2)
    assert sels["d3os-operator-controller-manager-shard1"] == parse_selector(f"{SHARD_KEY}=shard1")
    assert sels["d3os-operator-controller-manager"] == parse_selector(f"{SHARD_KEY} notin (shard1)")
    # the rest is the default install: one Namespace, one metrics Service, the same RBAC
    default = kustomize("default")
    assert len(by_kind(docs, "Namespace")) == len(by_kind(docs, "Service")) == 1
    def others(ds: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in ds if d["kind"] != "Deployment"}

    assert others(docs) == others(default)
    (unsharded,) = by_kind(default, "Deployment")
    main = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == unsharded["metadata"]["name"])
    assert main["spec"]["selector"] == unsharded["spec"]["selector"], "default -> sharding: no immutable change"


def test_chart_shards_value_installs_one_deployment_per_shard() -> None:
    docs = template("sharding.shards={shard1,shard2}")
    sels = _check_split(docs, 3)
    assert sels["d3os-operator-controller-manager"] == parse_selector(f"{SHARD_KEY} notin (shard1,shard2)")
    (unsharded,) = by_kind(template(), "Deployment")
    main = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == unsharded["metadata"]["name"])
    assert main["spec"]["selector"] == unsharded["spec"]["selector"], "helm upgrade to shards: no immutable change"
    assert sels["d3os-operator-controller-manager-shard2"] == parse_selector(f"{SHARD_KEY}=shard2")
    # one set of RBAC, Service and CRD for all shards
    managers = [d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"].endswith("-manager-role")]
    assert len(managers) == len(by_kind(docs, "Service")) == 1


def test_chart_watch_label_selector_value() -> None:
    (dep,) = by_kind(template("watchLabelSelector=!sharding.d3os.io/key"), "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert "--watch-label-selector=!sharding.d3os.io/key" in c["args"]
    (dep,) = by_kind(template(), "Deployment")
    assert not [a for a in dep["spec"]["template"]["spec"]["containers"][0]["args"] if "selector" in a]


def test_chart_refuses_a_shard_name_that_cannot_name_a_deployment() -> None:
    out = helm("template", "x", str(CHART), "--set", "sharding.shards={Shard_1}")
    assert out.returncode != 0 and "at '/sharding/shards/0': 'Shard_1' does not match pattern" in out.stderr
    # and without the schema, the template's own check
    out = helm("template", "x", str(CHART), "--set", "sharding.shards={Shard_1}", "--skip-schema-validation")
    assert out.returncode != 0 and 'sharding.shards: "Shard_1" must be a DNS label' in out.stderr
