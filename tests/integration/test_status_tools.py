"""Issue 25 on the local control plane: what kstatus (Flux, kpt, Helm 4's ``--wait``, cli-utils) and Argo CD
(with our health.lua) conclude from a DataService in each state -- created, each step, Ready, spec changed,
suspended, deleting, a step past its deadline, a conflict, an invalid spec -- and waiting from the command
line (``kubectl wait``, ``d3os apply --wait``). kstatus is the real library (the ``kstatus`` tool), the
health script runs in gopher-lua (the ``luahealth`` tool), every object is read from the API server.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from tests.docsnippets import command  # noqa: E402

from .standin import Env, ensure_volumes, wait_for  # noqa: E402
from .verdicts import Recording, argocd_health, kstatus, kstatus_of_json  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

NAME = "dataservice-sample"
DEADLINE = 10
CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def get_json(cluster: Any, namespace: str, name: str | None = None) -> str:
    """``kubectl get dataservice [NAME] -o json``: what a person or a pipeline reads."""
    return str(cluster.kubectl("get", "dataservice", *([name] if name else []), "-n", namespace, "-o", "json").stdout)


def kubectl_apply(cluster: Any, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest, allow_unicode=True))


def cond(obj: Any, type_: str) -> dict[str, Any]:
    return harness.condition(obj, type_)


def observed(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]


def check_rules(objects: list[dict[str, Any]], verdicts: list[dict[str, str]]) -> None:
    """kstatus never says Current while Ready is not True, and says Failed whenever Stalled is True."""
    assert len(objects) == len(verdicts)
    for obj, v in zip(objects, verdicts, strict=True):
        if obj["metadata"].get("deletionTimestamp"):
            assert v["status"] == "Terminating", v
            continue
        if cond(obj, "Ready").get("status") != "True" or not observed(obj):
            assert v["status"] != "Current", (v, (obj.get("status") or {}).get("conditions"))
        if cond(obj, "Stalled").get("status") == "True" and observed(obj):
            assert v["status"] == "Failed" and v["message"] == cond(obj, "Stalled")["message"], v


def test_every_state_of_a_rollout_from_created_to_deleted(
    k8s_cluster: Any, k8s_namespace: str, client: Any, crd: None, sample: dict[str, Any], kstatus_binary: str,
    luahealth_binary: str, tmp_path: Path,
) -> None:
    cluster, ns = k8s_cluster, k8s_namespace
    rec = Recording()
    ensure_volumes(client)
    kubectl_apply(cluster, ns, sample)
    # created, and no operator has seen it: the CRD's status defaults make it lag its generation
    raw = get_json(cluster, ns, NAME)
    assert json.loads(raw)["status"] == {"observedGeneration": -1}
    (v,) = kstatus_of_json(kstatus_binary, raw)
    assert v["status"] == "InProgress", v
    assert v["message"] == "DataService generation is 1, but latest observed generation is -1"
    assert [x["status"] for x in kstatus_of_json(kstatus_binary, get_json(cluster, ns))] == ["InProgress"]
    rec.add("unobserved", json.loads(raw))
    if hasattr(cluster, "restart_component"):  # the defaults come from the schema, not from a write
        cluster.restart_component("kube-apiserver")
        raw = get_json(cluster, ns, NAME)
        assert json.loads(raw)["status"] == {"observedGeneration": -1}
        assert kstatus_of_json(kstatus_binary, raw)[0]["status"] == "InProgress"

    seen: list[dict[str, Any]] = []
    box: dict[str, harness.StatusRecorder] = {}
    recorder = harness.StatusRecorder(cluster.kubeconfig, ns, NAME,
                                      on_change=lambda _c: seen.append(copy.deepcopy(box["r"].latest or {})))
    box["r"] = recorder

    def ready(generation: int) -> dict[str, Any] | None:
        ds = harness.get_dataservice(client, ns, NAME)
        ok = ds is not None and harness.is_ready(ds) and observed(ds) and ds["metadata"]["generation"] >= generation
        return ds if ok else None

    with harness.RunningOperator(cluster.kubeconfig, namespaces=[ns]) as op, recorder:
        try:
            # docs/integrations.md: `kubectl wait dataservice/NAME --for=condition=Ready`
            # (a later --timeout wins: a broken test fails in minutes, not in the doc's 10)
            cluster.kubectl(*command("kubectl-wait-ready")[1:], "-n", ns, "--timeout=240s", timeout=300)
            rec.add("ready", wait_for("Ready", lambda: ready(1), 5))
            # spec changed: until the operator has seen it (and while it rolls it out), not Current
            changed = copy.deepcopy(sample)
            changed["spec"]["web"]["env"] = {"touch": "1"}
            kubectl_apply(cluster, ns, changed)
            raw = get_json(cluster, ns, NAME)
            now = json.loads(raw)
            # InProgress -- unless the operator observed the change and rolled it out already between the two
            # kubectl calls (a web env change takes about a second on kwok): then Current is right
            done = observed(now) and cond(now, "Ready").get("status") == "True"
            assert kstatus_of_json(kstatus_binary, raw)[0]["status"] == ("Current" if done else "InProgress"), now
            if not done:
                rec.add("spec-changed", now)
            wait_for("Ready at generation 2", lambda: ready(2), 240)
            # suspended with a change pending: InProgress for kstatus, Suspended for Argo CD
            held = copy.deepcopy(changed)
            held["spec"]["suspend"] = True
            held["spec"]["web"]["env"] = {"touch": "2"}
            kubectl_apply(cluster, ns, held)

            def suspended() -> dict[str, Any] | None:
                ds = harness.get_dataservice(client, ns, NAME)
                return ds if ds and observed(ds) and cond(ds, "Reconciling").get("reason") == "Suspended" else None

            ds = wait_for("Suspended", suspended, 60)
            assert kstatus(kstatus_binary, [ds])[0]["status"] == "InProgress"
            rec.add("suspended", ds)
            held["spec"]["suspend"] = False
            kubectl_apply(cluster, ns, held)
            wait_for("Ready at generation 4", lambda: ready(4), 240)
            cluster.kubectl("delete", "dataservice", NAME, "-n", ns, "--wait=false")
            recorder.wait_for(lambda o: recorder.deleted, 120, "the DataService gone")
            op.check_alive()
        finally:
            harness.delete_dataservices(client, ns)

    objects = [o for o in seen if o]
    verdicts = kstatus(kstatus_binary, objects)
    check_rules(objects, verdicts)
    story = [v["status"] for v in verdicts]
    print("\nkstatus, each status a watcher saw:", " ".join(story))
    assert story[0] == "InProgress" and story[-1] == "Terminating", story
    assert "Current" in story and "Failed" not in story, story
    rolling = [o for o in objects if cond(o, "Reconciling").get("reason") == "RollingOut"]
    assert rolling, "each step is Reconciling (RollingOut)"
    rec.add("rolling-out", rolling[len(rolling) // 2])
    rec.add("deleting", next(o for o in objects if o["metadata"].get("deletionTimestamp")))
    health = argocd_health(luahealth_binary, objects, tmp_path)
    for obj, h in zip(objects, health, strict=True):
        if h["status"] == "Healthy":
            assert cond(obj, "Ready")["status"] == "True" and observed(obj), h
        elif obj["spec"].get("suspend") and observed(obj):
            assert h["status"] == "Suspended", h
        else:
            assert h["status"] == "Progressing", (h, obj["status"].get("conditions"))
    assert {h["status"] for h in health} == {"Progressing", "Healthy", "Suspended"}
    expect = {"unobserved": "Progressing", "ready": "Healthy", "spec-changed": "Progressing",
              "suspended": "Suspended", "rolling-out": "Progressing", "deleting": "Progressing"}
    if "spec-changed" not in rec.states:  # the change was rolled out before it could be caught in flight
        del expect["spec-changed"]
    names = sorted(rec.states)
    got = argocd_health(luahealth_binary, [rec.states[n] for n in names], tmp_path)
    assert {n: h["status"] for n, h in zip(names, got, strict=True)} == expect
    if len(rec.states) == 6:  # a recording for Argo CD's test cases only when every state was caught
        rec.save()


def test_a_step_past_its_deadline_is_stalled_and_every_waiter_fails_fast(
    env: Env, sample: dict[str, Any], kstatus_binary: str, luahealth_binary: str, tmp_path: Path,
) -> None:
    ds = copy.deepcopy(sample)
    ds["spec"]["progressDeadlineSeconds"] = DEADLINE
    ds["spec"]["mysql"]["resources"] = {"requests": {"cpu": "5000"}}  # no node has that: never scheduled
    path = tmp_path / "ds.yaml"
    path.write_text(yaml.safe_dump(ds, allow_unicode=True))
    kubeconfig = str(env.cluster.kubeconfig)
    argv = [str(path) if a.endswith(".yaml") else a for a in command("d3os-apply-wait")[1:]]  # the doc's
    apply = subprocess.Popen(
        [sys.executable, "-m", "d3os_operator.usercli", *argv, "--timeout", "120", "-n", env.namespace,
         "--kubeconfig", kubeconfig],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for("the DataService created", lambda: env.ds() is not None, 60)

        def kubectl_wait() -> tuple[subprocess.CompletedProcess[str], float]:
            done = env.cluster.kubectl(*command("kubectl-wait-stalled")[1:], "-n", env.namespace, "--timeout=90s",
                                       timeout=120)
            return done, time.monotonic()

        with ThreadPoolExecutor(1) as pool:
            waited, returned_at = pool.submit(kubectl_wait).result(timeout=200)
        out, _ = apply.communicate(timeout=60)
    finally:
        if apply.poll() is None:
            apply.kill()
    applied_at = next(float(r["t"]) for r in env.operator.trace("apply")
                      if r.get("kind") == "StatefulSet" and r.get("component") == "mysql")
    late = returned_at - (applied_at + DEADLINE)
    print(f"\n$ kubectl wait --for=condition=Stalled: {waited.stdout.strip()} ({late:+.2f} s after the deadline)")
    print(f"$ d3os apply --wait (exit {apply.returncode}):\n{out}")
    assert late <= 5.0, f"kubectl wait returned {late:.1f} s after the deadline passed"
    assert late >= -1.0, f"Stalled before the deadline passed ({late:.1f} s)"
    assert apply.returncode == 1, out
    last = out.strip().splitlines()[-1]
    assert "Stalled (ProgressDeadlineExceeded): mysql: 0 of 1 pods ready: mysql-dataservice-0 Pending" in last, out
    obj = env.ds()
    assert obj is not None
    (v,) = kstatus(kstatus_binary, [obj])
    assert v["status"] == "Failed" and v["message"] == cond(obj, "Stalled")["message"], v
    assert "Insufficient cpu" in v["message"]
    (h,) = argocd_health(luahealth_binary, [obj], tmp_path)
    assert h["status"] == "Degraded" and h["message"].startswith("ProgressDeadlineExceeded: mysql: "), h
    rec = Recording()
    rec.add("deadline-passed", obj)
    rec.save()


def test_a_conflict_and_an_invalid_spec_are_failed(
    env: Env, sample: dict[str, Any], kstatus_binary: str, luahealth_binary: str, tmp_path: Path,
) -> None:
    rec = Recording()
    # another owner's object where mysql's Service goes: the rollout cannot start without someone's change
    env.cluster.kubectl("create", "service", "clusterip", "mysql-dataservice", "--tcp=3306:3306", "-n",
                        env.namespace)
    env.apply(sample)
    invalid = yaml.safe_load((CORPUS / "cycle-two.yaml").read_text())
    env.apply(invalid)

    def stalled(name: str, reason: str) -> dict[str, Any] | None:
        env.operator.check_alive()
        ds = env.ds(name)
        return ds if ds and observed(ds) and cond(ds, "Stalled").get("reason") == reason and \
            cond(ds, "Stalled").get("status") == "True" else None

    for name, reason, state, says in (
        (NAME, "Conflict", "conflict", "mysql-dataservice"),
        ("cycle-two", "InvalidSpec", "invalid-spec", "dependency cycle"),
    ):
        obj = wait_for(f"{name} Stalled ({reason})", lambda n=name, r=reason: stalled(n, r), 120)
        t0 = time.monotonic()
        env.cluster.kubectl("wait", "--for=condition=Stalled", f"dataservice/{name}", "-n", env.namespace,
                            "--timeout=30s")
        assert time.monotonic() - t0 < 5.0, "kubectl wait returns at once on a stalled DataService"
        (v,) = kstatus(kstatus_binary, [obj])
        assert v["status"] == "Failed" and says in v["message"], v
        (h,) = argocd_health(luahealth_binary, [obj], tmp_path)
        assert h["status"] == "Degraded" and h["message"].startswith(f"{reason}: "), h
        assert cond(obj, "Ready")["status"] == "False" and cond(obj, "Reconciling")["status"] == "False"
        rec.add(state, obj)
    rec.save()
