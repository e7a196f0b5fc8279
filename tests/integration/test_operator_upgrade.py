"""Issue 4, "Done when" 3: change every image tag; each component is updated only after its predecessor
is ready at its new version; no two components roll at once in the default chain.

Order is judged from what the API server showed (a watch opened before the change, events in
resourceVersion order: :mod:`tests.integration.apiwatch`), not from the operator's own trace.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from d3os_core.readiness import rollout

pytest.register_assert_rewrite("tests.integration.standin")
from .apiwatch import ApiWatch, Event, image  # noqa: E402
from .standin import CHAIN, Env, figures_out  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def test_upgrade_rolls_one_component_at_a_time_in_order(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    micro = [k for k in CHAIN if "image" in (sample["spec"].get(k) or {})]
    assert len(micro) == 9
    new = copy.deepcopy(sample)
    for k in micro:
        new["spec"][k]["image"] = new["spec"][k]["image"].replace(":v1.4", ":v1.5")
    rec = env.record()
    old_gen = env.ds()["metadata"]["generation"]  # type: ignore[index]
    with ApiWatch(env.cluster.kubeconfig, env.namespace) as watch:
        env.apply(new)
        env.wait_ready(generation=old_gen + 1)
        watch.sync()
        timeline = watch.timeline()

    def deployment_of(e: Event) -> str | None:
        comp = e.component
        return comp if e.kind == "Deployment" and e.type in ("ADDED", "MODIFIED") and comp in micro else None

    updated: dict[str, Event] = {}  # the first event showing the component's Deployment asking for v1.5
    ready_new: dict[str, Event] = {}  # the first showing it rolled out at v1.5 (kubectl rollout status rules)
    for e in timeline:
        comp = deployment_of(e)
        if comp is None or not image(e.obj).endswith(":v1.5"):
            continue
        updated.setdefault(comp, e)
        if comp not in ready_new and rollout(e.obj, "Deployment").ready:
            ready_new[comp] = e
    assert list(updated) == micro, f"upgrade order as the API server saw it: {[str(e) for e in updated.values()]}"
    gaps = []
    for prev, comp in itertools.pairwise(micro):
        assert prev in ready_new, f"{prev} never shown ready at v1.5"
        assert updated[comp].rv > ready_new[prev].rv, (
            f"{comp} was updated ({updated[comp]}) before {prev} was ready at v1.5 ({ready_new[prev]})"
        )
        gaps.append({"step": f"{prev} -> {comp}", "latency_ms": round((updated[comp].t - ready_new[prev].t) * 1000, 1)})
    # never two Deployments rolling at once: at each update, every other component is rolled out (or untouched)
    rolled_out: dict[str, bool] = {}
    for e in timeline:
        comp = deployment_of(e)
        if comp is None:
            continue
        if e is updated.get(comp):
            busy = [c for c, ok in rolled_out.items() if not ok and c != comp]
            assert busy == [], f"{comp} began rolling while {busy} were still rolling ({e})"
        rolled_out[comp] = rollout(e.obj, "Deployment").ready
    # independently, from the status the API showed: never two components rolling at once
    for change in rec.changes:
        rolling = [c["name"] for c in change["status"].get("components", []) if c["state"] == "Progressing"]
        assert len(rolling) <= 1, rolling
    for k in micro:
        dep = env.obj("Deployment", sample["spec"][k]["name"])
        assert dep is not None and image(dep).endswith(":v1.5"), k
    figures_out("upgrade_steps", gaps)
