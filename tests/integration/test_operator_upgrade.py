"""Issue 4, "Done when" 3: change every image tag; each component is updated only after its predecessor
is ready at its new version; no two components roll at once in the default chain."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from d3os_core.readiness import rollout

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import CHAIN, Env, figures_out  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def _image(obj: dict[str, Any]) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def test_upgrade_rolls_one_component_at_a_time_in_order(deployed: Env, sample: dict[str, Any]) -> None:
    env = deployed
    micro = [k for k in CHAIN if "image" in (sample["spec"].get(k) or {})]
    assert len(micro) == 9
    new = copy.deepcopy(sample)
    for k in micro:
        new["spec"][k]["image"] = new["spec"][k]["image"].replace(":v1.4", ":v1.5")
    rec = env.record()
    mark = len(env.operator.records)
    old_gen = env.ds()["metadata"]["generation"]  # type: ignore[index]
    env.apply(new)
    env.wait_ready(generation=old_gen + 1)

    records = env.operator.records[mark:]
    first_apply: dict[str, float] = {}
    ready_new: dict[str, float] = {}
    for r in records:
        if r["what"] == "apply" and r["kind"] == "Deployment" and r["component"] not in first_apply:
            first_apply[r["component"]] = r["t"]
        elif r["what"] == "event" and r["kind"] == "Deployment" and r["type"] != "DELETED":
            obj = r["obj"]
            comp = obj["metadata"]["labels"].get("app.kubernetes.io/component")
            if (
                comp in micro
                and comp not in ready_new
                and _image(obj).endswith(":v1.5")
                and rollout(obj, "Deployment").ready
            ):
                ready_new[comp] = r["t"]
    assert list(first_apply) == micro, f"upgrade order {list(first_apply)}"
    gaps = []
    for prev, comp in itertools.pairwise(micro):
        assert prev in ready_new, f"{prev} never observed ready at v1.5"
        assert first_apply[comp] > ready_new[prev], f"{comp} was updated before {prev} was ready at v1.5"
        gaps.append({"step": f"{prev} -> {comp}", "latency_ms": round((first_apply[comp] - ready_new[prev]) * 1000, 1)})
    # independently, from the status the API showed: never two components rolling at once
    for change in rec.changes:
        rolling = [c["name"] for c in change["status"].get("components", []) if c["state"] == "Progressing"]
        assert len(rolling) <= 1, rolling
    for k in micro:
        dep = env.obj("Deployment", sample["spec"][k]["name"])
        assert dep is not None and _image(dep).endswith(":v1.5"), k
    figures_out("upgrade_steps", gaps)
