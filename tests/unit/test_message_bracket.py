"""MESSAGE (the seed's printer column) brackets the component in trouble, not merely the last one started.

After a full install every component has started, so a rule that forgot a Failed or Conflict component
would fall back to the last one, ``[web]``, and point the reader at a healthy component.
"""

from __future__ import annotations

from typing import Any

import pytest

from d3os_core.status import ComponentStatus, State, phase_and_message

from .helpers import ORDER, condition
from .test_plan_changes import foreign
from .test_plan_lifecycle import World, unschedulable, with_deadline


def chain(*marked: str) -> str:
    """The expected MESSAGE, written out by hand from ORDER."""
    return "->".join(f"[{k}]" if k in marked else k for k in ORDER)


def upgrade_api_manager(spec: dict[str, Any]) -> None:
    spec["api-manager"]["image"] = spec["api-manager"]["image"].replace(":v1.4", ":v1.5")


def test_an_upgrade_past_its_deadline_brackets_the_failed_component() -> None:
    w = World(with_deadline(10))
    w.converge()
    assert w.ds["status"]["message"] == chain("web")
    w.change(upgrade_api_manager)
    w.stuck = {"api-manager"}
    w.pods = {"api-manager": (unschedulable("api-manager-0"),)}
    w.step()
    assert w.component("api-manager")["state"] == "Progressing"
    assert w.ds["status"]["message"] == chain("api-manager")
    w.step(11.0)
    assert w.component("api-manager")["state"] == "Failed", w.component("api-manager")
    assert condition(w.ds, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert [c["name"] for c in w.ds["status"]["components"] if c["state"] != "Ready"] == ["api-manager"]
    assert w.ds["status"]["message"] == chain("api-manager")


def test_a_conflict_after_install_brackets_the_component_in_conflict() -> None:
    w = World(with_deadline(600))
    w.converge()
    # someone else's object takes the name of api-manager's ConfigMap
    w.fc.objects[("ConfigMap", "api-manager")] = foreign("ConfigMap", "api-manager")
    w.step()
    assert w.component("api-manager")["state"] == "Conflict", w.component("api-manager")
    assert [c["name"] for c in w.ds["status"]["components"] if c["state"] != "Ready"] == ["api-manager"]
    assert w.ds["status"]["message"] == chain("api-manager")


def comps(states: dict[str, State]) -> dict[str, ComponentStatus]:
    return {k: ComponentStatus(k, "Deployment", k, states.get(k, "Ready"), "", "") for k in ORDER}


@pytest.mark.parametrize(("states", "marked"), [
    ({}, ["web"]),
    ({"api-manager": "Failed"}, ["api-manager"]),
    ({"api-manager": "Conflict"}, ["api-manager"]),
    ({"api-manager": "Progressing"}, ["api-manager"]),
    ({"uuc": "Failed", "proxy": "Conflict"}, ["uuc", "proxy"]),
    ({"eureka": "Failed", **{k: "Waiting" for k in ORDER[3:]}}, ["eureka"]),
    ({"mysql": "Progressing", **{k: "Waiting" for k in ORDER[1:]}}, ["mysql"]),
])
def test_the_bracket_marks_components_in_trouble(states: dict[str, State], marked: list[str]) -> None:
    assert phase_and_message(ORDER, comps(states))[1] == chain(*marked)
