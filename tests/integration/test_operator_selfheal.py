"""Issue 4, "Done when" 5: a deleted Deployment and a hand-edited Service port are restored."""

from __future__ import annotations

import json
import time

import pytest

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import Env, figures_out, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


def test_deleted_deployment_is_restored(deployed: Env) -> None:
    env = deployed
    old = env.obj("Deployment", "auth")
    assert old is not None
    t0 = time.monotonic()
    env.cluster.kubectl("delete", "deployment", "auth", "-n", env.namespace, "--wait=false")

    def recreated() -> dict | None:
        d = env.obj("Deployment", "auth")
        return d if d is not None and d["metadata"]["uid"] != old["metadata"]["uid"] else None

    wait_for("auth to be re-created", recreated, 60)
    restored_s = time.monotonic() - t0
    env.wait_ready()
    figures_out("self_heal_deployment", {"deleted_to_recreated_s": round(restored_s, 3)})


def test_hand_edited_service_port_is_restored(deployed: Env) -> None:
    env = deployed
    patch = json.dumps([{"op": "replace", "path": "/spec/ports/0/port", "value": 9999}])
    t0 = time.monotonic()
    env.cluster.kubectl("patch", "service", "api-manager", "-n", env.namespace, "--type=json", "-p", patch)

    def ports() -> list[int] | None:
        svc = env.obj("Service", "api-manager")
        got = [p["port"] for p in svc["spec"]["ports"]] if svc else None
        return got if got == [9085] else None

    wait_for("the api-manager Service ports to be [9085] again", ports, 30)
    figures_out("self_heal_service", {"edited_to_restored_s": round(time.monotonic() - t0, 3)})
    env.wait_ready()
