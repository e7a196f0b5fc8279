"""Issue 13 on the local control plane: progress deadlines for a StatefulSet that cannot be scheduled and
for a third party that is down; an upgrade that cannot schedule, rolled back automatically; ``d3os
history`` and ``d3os rollback --to-revision 1``; suspend, then resume.

The deadline is small (10 s) so the tests are short; the assertions allow a few seconds of slack for a
loaded machine (the operator wakes up at the deadline itself, not at its 30 s safety resync).
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable
from typing import Any

import pytest

from d3os_core import api
from d3os_operator import usercli
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from .apiwatch import ApiWatch, Event  # noqa: E402
from .standin import CHAIN, Env, events_for, figures_out, list_kind, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

DEADLINE = 10
SLACK = 8.0
"""Seconds past the deadline a Degraded condition may take to show (plan, status write, watch delivery)."""
NAME = "dataservice-sample"


def _with(sample: dict[str, Any], **spec: Any) -> dict[str, Any]:
    ds = copy.deepcopy(sample)
    ds["spec"].update(spec)
    return ds


def _degraded(env: Env, reason: str) -> dict[str, Any] | None:
    env.operator.check_alive()
    ds = env.ds()
    cond = harness.condition(ds, "Degraded")
    return ds if cond.get("status") == "True" and cond.get("reason") == reason else None


def _first(env: Env, what: str, **match: Any) -> float:
    for r in env.operator.trace(what):
        if all(r.get(k) == v for k, v in match.items()):
            return float(r["t"])
    raise AssertionError(f"no {what} record matching {match}")


def _kubectl_describe_conditions(env: Env) -> str:
    return env.cluster.kubectl(
        "get", "dataservice", NAME, "-n", env.namespace, "-o",
        "jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}",
    ).stdout


def revisions(env: Env) -> list[dict[str, Any]]:
    """The DataService's ControllerRevisions (mysql's StatefulSet keeps its own, with the same labels)."""
    return [
        o for o in list_kind(env.client, "ControllerRevision", env.namespace, "apps/v1",
                             {"app.kubernetes.io/instance": NAME})
        if any(r["kind"] == "DataService" for r in o["metadata"].get("ownerReferences") or [])
    ]


def d3os(env: Env, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = usercli.main([*args, "-n", env.namespace, "--kubeconfig", str(env.cluster.kubeconfig)], out=out)
    return code, out.getvalue()


def test_an_unschedulable_statefulset_reaches_its_deadline_with_the_schedulers_reason(
    env: Env, sample: dict[str, Any]
) -> None:
    ds = _with(sample, progressDeadlineSeconds=DEADLINE)
    ds["spec"]["mysql"]["resources"] = {"requests": {"cpu": "5000"}}
    env.apply(ds)
    found = wait_for("Degraded ProgressDeadlineExceeded", lambda: _degraded(env, "ProgressDeadlineExceeded"),
                     DEADLINE + 60)
    seen_at = time.monotonic()
    applied_at = _first(env, "apply", kind="StatefulSet", component="mysql")
    took = seen_at - applied_at
    deg = harness.condition(found, "Degraded")
    print("\n$ kubectl get dsvc -o jsonpath=… (conditions)\n" + _kubectl_describe_conditions(env))
    figures_out("deadline_statefulset", {"deadline_s": DEADLINE, "apply_to_degraded_s": round(took, 2),
                                         "message": deg["message"]})
    assert took <= DEADLINE + SLACK, f"Degraded {took:.1f} s after the first apply (deadline {DEADLINE} s)"
    assert took >= DEADLINE - 1.5, f"Degraded too early: {took:.1f} s"
    msg = deg["message"]
    assert msg.startswith("mysql: 0 of 1 pods ready: mysql-dataservice-0 Pending: 0/"), msg
    assert "Insufficient cpu" in msg and "more than 10 s" in msg, msg
    # the unnormalised quantity is rendered as the server stores it ("5k"): applied once, not in a loop
    sts = env.obj("StatefulSet", "mysql-dataservice")
    assert sts["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "5k"
    assert len([r for r in env.operator.trace("apply") if r["kind"] == "StatefulSet"]) == 1
    mysql = next(c for c in found["status"]["components"] if c["name"] == "mysql")
    assert mysql["state"] == "Failed" and mysql["reason"] == "ProgressDeadlineExceeded"
    assert env.obj("Deployment", "eureka") is None, "the rollout keeps waiting: nothing after mysql started"
    evs = wait_for("a Warning Event", lambda: [e for e in events_for(env.client, env.namespace, NAME)
                                              if e["reason"] == "ProgressDeadlineExceeded"], 30)
    assert evs[0]["type"] == "Warning" and "Insufficient cpu" in evs[0]["message"]


def test_a_third_party_that_is_down_reaches_its_deadline(env: Env, sample: dict[str, Any]) -> None:
    env.uuc.down()
    env.apply(_with(sample, progressDeadlineSeconds=DEADLINE))
    found = wait_for("Degraded ProgressDeadlineExceeded", lambda: _degraded(env, "ProgressDeadlineExceeded"),
                     DEADLINE + 120)
    seen_at = time.monotonic()
    failed_at = _first(env, "probe", component="uuc", ok=False)
    took = seen_at - failed_at
    deg = harness.condition(found, "Degraded")
    figures_out("deadline_third_party", {"deadline_s": DEADLINE, "first_failure_to_degraded_s": round(took, 2),
                                         "message": deg["message"]})
    assert took <= DEADLINE + SLACK, f"Degraded {took:.1f} s after the check first failed"
    assert deg["message"].startswith(f"uuc: HTTP HEAD {env.uuc.url}"), deg
    assert "refused" in deg["message"] and "failing for more than 10 s" in deg["message"], deg
    # it comes up: the rollout recovers by itself
    env.uuc.up()
    env.wait_ready()
    assert harness.condition(env.ds(), "Degraded")["status"] == "False"


def test_an_upgrade_that_cannot_schedule_is_rolled_back(env: Env, sample: dict[str, Any]) -> None:
    env.apply(_with(sample, progressDeadlineSeconds=DEADLINE, rollbackOnFailure=True))
    ready = env.wait_ready()
    good = ready["status"]["currentRevision"]
    before = {k: copy.deepcopy(env.obj("Deployment", k)["spec"]["template"]) for k in ("api-manager", "auth")}
    upgrade = _with(sample, progressDeadlineSeconds=DEADLINE, rollbackOnFailure=True)
    for k in CHAIN:
        if "image" in upgrade["spec"][k]:
            upgrade["spec"][k]["image"] = upgrade["spec"][k]["image"].replace(":v1.4", ":v1.5")
    upgrade["spec"]["api-manager"]["resources"] = {"requests": {"cpu": "5000"}}
    env.apply(upgrade)
    t0 = time.monotonic()
    gen = ready["metadata"]["generation"] + 1

    def rolled_back() -> dict[str, Any] | None:
        env.operator.check_alive()
        ds = env.ds()
        prog = harness.condition(ds, "Progressing")
        if ds and ds["status"].get("observedGeneration") == gen and prog.get("reason") == "RolledBack":
            return ds
        return None

    ds = wait_for("RolledBack", rolled_back, DEADLINE + 120)
    took = time.monotonic() - t0
    print("\n$ kubectl get dsvc -o jsonpath=… (conditions)\n" + _kubectl_describe_conditions(env))
    figures_out("rollback_on_failure", {"deadline_s": DEADLINE, "apply_to_rolled_back_s": round(took, 2)})
    # the user's spec is exactly as applied
    assert ds["spec"]["api-manager"]["resources"] == {"requests": {"cpu": "5000"}}
    assert ds["spec"]["web"]["image"].endswith(":v1.5")
    assert ds["metadata"]["generation"] == gen
    # the objects are at the last Ready revision, and every component is ready there
    for k, template in before.items():
        live = env.obj("Deployment", k)
        assert live is not None and live["spec"]["template"] == template, k
    assert all(c["ready"] for c in ds["status"]["components"])
    deg, rdy = harness.condition(ds, "Degraded"), harness.condition(ds, "Ready")
    assert deg["status"] == "True" and deg["reason"] == "RolledBack", deg
    assert "api-manager" in deg["message"] and ds["status"]["rollback"]["from"] in deg["message"]
    assert rdy["status"] == "False" and rdy["reason"] == "RolledBack"
    assert ds["status"]["currentRevision"] == good and ds["status"]["rollback"]["to"] == good
    reasons = [e["reason"] for e in events_for(env.client, env.namespace, NAME)]
    assert "RollingBack" in reasons and "RolledBack" in reasons, reasons


def test_history_and_rollback_to_revision_1(env: Env, sample: dict[str, Any]) -> None:
    env.apply(sample)
    first = env.wait_ready()["spec"]
    v15 = copy.deepcopy(sample)
    v15["spec"]["web"]["image"] = v15["spec"]["web"]["image"].replace(":v1.4", ":v1.5")
    v15["spec"]["api-manager"]["env"] = {"writer": "draven", "LOG_LEVEL": "debug"}
    env.apply(v15)
    env.wait_ready(generation=2)
    wait_for("revision 2 recorded", lambda: len(revisions(env)) == 2, 30)
    code, text = d3os(env, "history", NAME)
    print("\n$ d3os history " + NAME + "\n" + text)
    assert code == 0
    lines = text.splitlines()
    assert lines[0].split() == ["REVISION", "CURRENT", "READY", "AT", "GENERATION", "CHANGE"]
    assert lines[1].split()[0] == "1" and lines[1].rstrip().endswith("initial")
    assert lines[2].split()[:2] == ["2", "*"]
    assert "web image registry-edge.cosmoplat.com/dataservice/dataservice-web:v1.4 -> " in lines[2]
    assert "api-manager env +LOG_LEVEL" in lines[2]

    code, text = d3os(env, "rollback", NAME, "--to-revision", "1", "--wait", "--timeout", "180")
    print("\n$ d3os rollback " + NAME + " --to-revision 1 --wait\n" + text)
    assert code == 0, text
    assert "rolled back to revision 1" in text
    ds = env.ds()
    assert ds is not None
    assert ds["spec"] == first, "the spec is revision 1's, exactly"
    managers = {m["manager"] for m in ds["metadata"]["managedFields"]}
    assert "kubectl-d3os" in managers
    assert env.obj("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.4")
    wait_for("revision 1 renumbered 3", lambda: sorted(o["revision"] for o in revisions(env)) == [2, 3], 30)
    code, text = d3os(env, "history", NAME)
    print("\n$ d3os history " + NAME + "\n" + text)
    assert [ln.split()[0] for ln in text.splitlines()[1:]] == ["2", "3"]
    assert text.splitlines()[1].rstrip().endswith("(first revision kept)")
    assert "web image registry-edge.cosmoplat.com/dataservice/dataservice-web:v1.5 -> " in text.splitlines()[2]
    assert ds["metadata"]["generation"] == 3, "one write: the spec went straight to revision 1's"
    assert text.splitlines()[2].split()[1] == "*"


def test_suspend_then_resume(env: Env, sample: dict[str, Any]) -> None:
    env.apply(sample)
    env.wait_ready()
    held = copy.deepcopy(sample)
    held["spec"]["suspend"] = True
    held["spec"]["web"]["image"] = held["spec"]["web"]["image"].replace(":v1.4", ":v1.5")

    def suspended(generation: int) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            ds = env.ds()
            prog = harness.condition(ds, "Progressing")
            if ds and ds["status"].get("observedGeneration") == generation and prog.get("reason") == "Suspended":
                return ds
            return None

        return check

    with ApiWatch(env.cluster.kubeconfig, env.namespace) as watch:
        env.apply(held)
        ds = wait_for("Progressing=False Suspended", suspended(2), 60)
        print("\n$ kubectl get dsvc -o jsonpath=… (conditions)\n" + _kubectl_describe_conditions(env))
        web = next(c for c in ds["status"]["components"] if c["name"] == "web")
        assert web["state"] == "Waiting" and "would apply Deployment/web" in web["message"], web
        # no fixed pause: a second suspended generation, planned in turn, proves the operator went on planning
        held["spec"]["web"]["env"] = {"touch": "1"}
        env.apply(held)
        wait_for("generation 3 planned, still Suspended", suspended(3), 60)
        watch.sync()
        timeline = watch.timeline()
    # from the API server: no child created, deleted, or changed in spec or annotations while suspended
    last: dict[tuple[str, str], Event] = {}
    writes = []
    for e in timeline:
        if e.kind in ("Pod", api.KIND) or e.name.startswith("apiwatch-sync-"):
            continue
        prev = last.get((e.kind, e.name))
        last[(e.kind, e.name)] = e
        if e.type == "LISTED":
            continue
        if prev is None or e.type != "MODIFIED" or (
            e.meta.get("generation") != prev.meta.get("generation")
            or e.meta.get("annotations") != prev.meta.get("annotations")
        ):
            writes.append(str(e))
    assert writes == [], writes
    assert env.obj("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.4")
    held["spec"]["suspend"] = False
    env.apply(held)
    env.wait_ready(generation=4)
    assert env.obj("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.5")
    reasons = [e["reason"] for e in events_for(env.client, env.namespace, NAME)]
    assert "Suspended" in reasons and "Resumed" in reasons, reasons
