"""Kind switches (控) in every direction the product allows, on the real control plane.

Each row walks one middleware through a path of kinds on one DataService (its own namespace and
operator), so one installation covers several directed switches; every switch is checked by
:func:`tests.integration.kindswitch.switch` from the API server's watch events: Ready at the end, old
workload gone, on mysql's shared claim the old workload and its pods gone before the new workload
exists (claim UID kept), otherwise the new form and the re-wired dependents ready before the old goes.

mysql allows 0, 1, 3 (a DaemonSet would give each node its own data); uuc and eureka allow all four;
each path walks every direction among its component's kinds (checked by tests/unit/test_kindswitch_paths.py).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.kindswitch")
from .kindswitch import set_kind, switch  # noqa: E402
from .standin import Env, StandIn, figures_out  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

PATHS = {
    # 1->0, 0->1, 1->3, 3->0, 0->3, 3->1: every direction among mysql's kinds
    "mysql": (1, 0, 1, 3, 0, 3, 1),
    # Eulerian circuits of the complete directed graph on 0..3: each of the 12 directions exactly once,
    # kind 1 (StatefulSet) passed through three times (an earlier table crossed it only for uuc, once)
    "eureka": (0, 1, 0, 2, 0, 3, 1, 2, 1, 3, 2, 3, 0),
    "uuc": (3, 0, 1, 0, 2, 0, 3, 1, 2, 1, 3, 2, 3),
}


@pytest.mark.parametrize("comp", list(PATHS))
def test_kind_switch_path(env: Env, sample: dict[str, Any], comp: str) -> None:
    path = PATHS[comp]
    with contextlib.ExitStack() as stack:
        # a third party of this component answers here (uuc's own stand-in is the sample's)
        standin = env.uuc if comp == "uuc" else stack.enter_context(StandIn(path="/"))
        spec = set_kind(sample, comp, path[0], standin) if comp != "uuc" else sample
        env.apply(spec)
        env.wait_ready()
        figures = []
        for old, new in itertools.pairwise(path):
            after = set_kind(spec, comp, new, standin)
            done = switch(env, spec, after, comp)
            figures.append({"switch": f"{comp} {old}->{new}", "seconds": round(done.seconds, 1),
                            "rolled": len(done.rolled)})
            spec = after
    figures_out(f"kind_switch_{comp}", figures)
