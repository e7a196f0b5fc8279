"""Issue 25 for every product the operator serves, not only DataService: an AnalyticsService read by kstatus
(the real library: the ``kstatus`` tool), by Argo CD's health.lua (gopher-lua: the ``luahealth`` tool) and by
Helm 4's ``--wait`` -- before the operator has seen it, while it rolls out, Ready, and stalled past its
deadline. Every object is read from the API server.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from d3os_operator.kube import product_kind
from d3os_operator.products import installed
from d3os_testenv import harness

from .standin import ensure_volumes, wait_for
from .verdicts import argocd_health, kstatus, kstatus_of_json

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = next(p for p in installed() if p.name == "analytics")
KIND = PRODUCT.names.kind
RES = product_kind(PRODUCT.names).res


def _sample(name: str) -> dict[str, Any]:
    obj = yaml.safe_load((ROOT / "examples" / "analyticsservice-sample.yaml").read_text(encoding="utf-8"))
    obj["metadata"] = {"name": name}
    obj["spec"]["dashboard"]["nodePort"] = None
    return dict(obj)


def _stuck(name: str) -> dict[str, Any]:
    """kafka as a third party nobody answers for (a closed loopback port): Stalled once 10 s have passed."""
    obj = _sample(name)
    obj["spec"]["progressDeadlineSeconds"] = 10
    obj["spec"]["kafka"] = {"name": "kafka-gone", "kind": 3, "thirdParty": {"url": "http://127.0.0.1:9/"}}
    for key in ("ingest-api", "stream-processor", "dashboard"):  # names of its own, beside another instance
        obj["spec"][key]["name"] = f"{key}-{name}"[:63]
    return obj


def _get(client: Client, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.get(RES, name, namespace=ns))
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


def _cond(obj: Any, type_: str) -> dict[str, Any]:
    return harness.condition(obj, type_)


def _observed(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]


@pytest.fixture
def namespace(k8s_cluster: Any, client: Client, crd: None) -> Iterator[str]:
    ns = f"t-asvc-status-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    ensure_volumes(client, 4)
    try:
        yield ns
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_kstatus_and_argo_cd_on_every_state_of_an_analytics_service(
    k8s_cluster: Any, client: Client, namespace: str, kstatus_binary: str, luahealth_binary: str, tmp_path: Path,
) -> None:
    ns, name = namespace, "asvc-states"
    k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(_sample(name)))
    raw = k8s_cluster.kubectl("get", "analyticsservice", name, "-n", ns, "-o", "json").stdout
    assert json.loads(raw)["status"] == {"observedGeneration": -1}, "the CRD's status defaults hold for every kind"
    assert kstatus_of_json(kstatus_binary, raw)[0]["status"] == "InProgress"
    seen: list[dict[str, Any]] = [json.loads(raw)]
    with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[ns]) as op:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # every status the API server shows, until Ready
            obj = _get(client, ns, name)
            assert obj is not None
            if obj != seen[-1]:
                seen.append(obj)
            if _observed(obj) and _cond(obj, "Ready").get("status") == "True":
                break
            time.sleep(0.05)
        stuck = _stuck("asvc-stuck")
        k8s_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(stuck))
        stalled = wait_for("Stalled", lambda: (o := _get(client, ns, "asvc-stuck")) and _observed(o)
                           and _cond(o, "Stalled").get("status") == "True" and o, 90)
        op.check_alive()
        for n in (name, "asvc-stuck"):
            client.delete(RES, n, namespace=ns)
        wait_for("both gone", lambda: _get(client, ns, name) is None and _get(client, ns, "asvc-stuck") is None, 120)

    verdicts = kstatus(kstatus_binary, seen)
    health = argocd_health(luahealth_binary, seen, tmp_path)
    story = [v["status"] for v in verdicts]
    print(f"\nkstatus on each {KIND} status seen until Ready:", " ".join(story))
    for obj, v, h in zip(seen, verdicts, health, strict=True):
        done = _observed(obj) and _cond(obj, "Ready").get("status") == "True"
        assert (v["status"] == "Current") == done, (v, obj.get("status"))
        assert (h["status"] == "Healthy") == done, (h, obj.get("status"))
        if not done:
            assert v["status"] == "InProgress" and h["status"] == "Progressing", (v, h)
    assert story[0] == "InProgress" and story[-1] == "Current" and len(story) >= 3, story
    assert any(_cond(o, "Reconciling").get("reason") == "RollingOut" for o in seen), "each step is Reconciling"
    (v,) = kstatus(kstatus_binary, [stalled])
    (h,) = argocd_health(luahealth_binary, [stalled], tmp_path)
    assert v["status"] == "Failed" and v["message"] == _cond(stalled, "Stalled")["message"], v
    assert h["status"] == "Degraded" and "ProgressDeadlineExceeded" in h["message"], h


def test_helm_4_wait_on_a_chart_with_an_analytics_service(
    k8s_cluster: Any, client: Client, namespace: str, helm_binary: str, tmp_path: Path,
) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: analytics\nversion: 0.1.0\n")
    (chart / "templates" / "instance.yaml").write_text("{{ toYaml .Values.instance }}\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(k8s_cluster.kubeconfig),
           "HELM_CACHE_HOME": str(tmp_path / "c"), "HELM_CONFIG_HOME": str(tmp_path / "k"),
           "HELM_DATA_HOME": str(tmp_path / "d")}

    def install(release: str, instance: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], float]:
        values = tmp_path / f"{release}.yaml"
        values.write_text(yaml.safe_dump({"instance": instance}))
        t0 = time.monotonic()
        out = subprocess.run([helm_binary, "install", release, str(chart), "-n", namespace, "--wait",
                              "--timeout", "120s", "-f", str(values)], capture_output=True, text=True, env=env,
                             timeout=300)
        return out, time.monotonic() - t0

    with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[namespace]):
        done, took = install("good", _sample("asvc-helm"))
        assert done.returncode == 0, done.stderr
        obj = _get(client, namespace, "asvc-helm")
        assert obj is not None and _observed(obj) and _cond(obj, "Ready").get("status") == "True", (
            "helm returned before the AnalyticsService was Ready")
        print(f"\nhelm install --wait ({KIND}): Ready after {took:.1f} s")
        failed, took = install("bad", copy.deepcopy(_stuck("asvc-helm-stuck")))
        print(f"helm install --wait on a stalling {KIND}: exit {failed.returncode} after {took:.1f} s\n"
              f"{failed.stderr.strip()}")
        assert failed.returncode != 0
        assert took < 60, f"helm waited {took:.0f} s: it should fail as soon as the instance is Stalled"
        assert f"{KIND}/{namespace}/asvc-helm-stuck not ready. status: Failed" in failed.stderr, failed.stderr
        for n in ("asvc-helm", "asvc-helm-stuck"):
            client.delete(RES, n, namespace=namespace)
        wait_for("gone", lambda: _get(client, namespace, "asvc-helm") is None
                 and _get(client, namespace, "asvc-helm-stuck") is None, 120)
