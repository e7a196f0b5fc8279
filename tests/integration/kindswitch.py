"""Switching a middleware's kind (控), judged from what the API server showed.

:func:`switch` applies a spec that changes one middleware's kind inside an :class:`~.apiwatch.ApiWatch`,
waits for Ready and checks, from the watch's events (in resourceVersion order) and the final objects:

* the old workload is gone and the new form is there (a workload rolled out, or a third party Ready);
* on a claim both forms share (mysql between Deployment and StatefulSet), the old workload and every
  pod it ran are gone before the new workload is created: two workloads never run on one claim;
* otherwise the new form is ready, and every dependent re-wired and rolled out, before the old workload
  starts going (the DaemonSet ready before eureka's Deployment goes);
* each dependent's ConfigMap names the new address, its pods roll exactly when that changed, in the
  seed's order;
* the claim keeps its UID, and nothing deletes a claim.

The addresses and the dependents are this test's own table (from the product's wiring), not the
operator's code.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from d3os_core import api
from d3os_core.readiness import rollout

from .apiwatch import WORKLOADS, ApiWatch, Event, created, deleted, first, template_annotation
from .standin import CHAIN, Env, StandIn

K8S = {0: "Deployment", 1: "StatefulSet", 2: "DaemonSet", 3: None}
"""The seed's kinds: 0 Deployment, 1 StatefulSet, 2 DaemonSet, 3 third party (nothing runs in the cluster)."""

DEPENDENTS = {
    "mysql": ("api-manager", "auth", "ds-adapter", "trd-adapter"),
    "uuc": ("api-manager", "auth", "gateway-master", "gateway-web"),
    "eureka": ("api-manager", "auth", "ds-adapter", "es-adapter", "trd-adapter", "gateway-master", "gateway-web",
               "proxy"),
}
"""Microservices whose configuration names the middleware (the product's wiring)."""

PORTS = {"mysql": 3306, "uuc": 8080, "eureka": 8761}
CLAIMS = {"mysql"}
"""Middlewares with data (a claim every workload kind of theirs mounts)."""


def set_kind(spec: Mapping[str, Any], comp: str, kind: int, standin: StandIn | None) -> dict[str, Any]:
    """A copy of ``spec`` with ``comp`` of ``kind``; a third party is checked against ``standin``."""
    out = copy.deepcopy(dict(spec))
    mw = out["spec"][comp]
    mw["kind"] = kind
    if kind == 3:
        assert standin is not None
        if comp == "mysql":
            mw["thirdParty"] = {"checkCMD": f"nc -z -w 2 {standin.host} {standin.port}"}
        else:
            mw["thirdParty"] = {"checkCMD": standin.check_cmd, "url": standin.url}
    else:
        mw["thirdParty"] = None
    return out


def address(env: Env, comp: str, spec: Mapping[str, Any]) -> str:
    """Where dependents must find ``comp`` under ``spec``: its Service, or its third party's host:port."""
    mw = spec["spec"][comp]
    if mw["kind"] == 3:
        words = mw["thirdParty"]["checkCMD"].split()
        if words[0] == "nc":
            return f"{words[-2]}:{words[-1]}"
        return words[-1].split("://", 1)[1].split("/", 1)[0]
    return f"{mw['name']}.{env.namespace}.svc:{PORTS[comp]}"


@dataclasses.dataclass
class Switch:
    """What one switch showed (for the caller's own checks and figures)."""

    timeline: list[Event]
    start_rv: int
    seconds: float
    rolled: list[str]
    """Dependents whose pods rolled, in the order their new template reached the API server."""


def _claims(env: Env) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")}


def _cm_data(env: Env, name: str) -> dict[str, Any]:
    cm = env.obj("ConfigMap", name)
    assert cm is not None, f"ConfigMap/{name}"
    return dict(cm.get("data") or {})


def _hash(env: Env, name: str) -> str:
    dep = env.obj("Deployment", name)
    assert dep is not None, f"Deployment/{name}"
    return template_annotation(dep, api.ANNOTATION_CONFIG_HASH)


def switch(env: Env, before: Mapping[str, Any], after: Mapping[str, Any], comp: str) -> Switch:
    """Apply ``after`` (``before`` is live and Ready) and check the switch of ``comp``; see the module docstring."""
    import time

    old, new = before["spec"][comp]["kind"], after["spec"][comp]["kind"]
    name = after["spec"][comp]["name"]
    assert old != new and before["spec"][comp]["name"] == name
    old_kind, new_kind = K8S[old], K8S[new]
    label = f"{comp} {old}->{new}"
    claims0 = _claims(env)
    if comp in CLAIMS:
        assert claims0, f"{label}: mysql's claim exists before"
    deps = DEPENDENTS[comp]
    spec_of = {d: after["spec"][d]["name"] for d in deps}
    cm0 = {d: _cm_data(env, n) for d, n in spec_of.items()}
    hash0 = {d: _hash(env, n) for d, n in spec_of.items()}
    gen = env.ds()["metadata"]["generation"]  # type: ignore[index]

    t0 = time.monotonic()
    with ApiWatch(env.cluster.kubeconfig, env.namespace) as watch:
        env.apply(after)
        env.wait_ready(generation=gen + 1)
        if old_kind is not None:  # converged; the old form may still be finishing its foreground delete
            watch.wait_for(f"{label}: {old_kind}/{name} deleted",
                           lambda e: e.type == "DELETED" and e.kind == old_kind and e.name == name)
        watch.sync()
        timeline = watch.timeline()
        start = watch.start_rv
    seconds = time.monotonic() - t0

    # the old workload is gone, the new form is there
    if old_kind is not None:
        assert env.obj(old_kind, name) is None, f"{label}: {old_kind}/{name} is still there"
    if new_kind is not None:
        live = env.obj(new_kind, name)
        assert live is not None and rollout(live, new_kind).ready, f"{label}: {new_kind}/{name} not rolled out"
    for kind in WORKLOADS:
        if kind != new_kind:
            assert env.obj(kind, name) is None, f"{label}: a {kind}/{name} is left"
    comp_status = {c["name"]: c for c in (env.ds() or {})["status"]["components"]}[comp]
    assert comp_status["state"] == "Ready" and comp_status["kind"] == (new_kind or "ThirdParty"), comp_status

    old_goes = first(timeline, lambda e: e.rv > start and e.kind == old_kind and e.name == name and e.terminating)
    if old_kind is not None:
        assert old_goes is not None, f"{label}: the API server never showed {old_kind}/{name} going"
    born = created(timeline, new_kind, name, start) if new_kind is not None else None
    if new_kind is not None:
        assert born is not None, f"{label}: {new_kind}/{name} was never created"

    if comp in CLAIMS and old_kind is not None and new_kind is not None:
        # one claim, two workload kinds: the old one and its pods are gone before the new one exists
        assert old_goes is not None and born is not None
        gone = deleted(timeline, old_kind, name, start)
        assert gone is not None and gone.rv < born.rv, f"{label}: {born} before the old workload was gone ({gone})"
        pods = {e.name for e in timeline if e.kind == "Pod" and e.component == comp and e.rv < born.rv}
        for pod in pods:
            pod_gone = deleted(timeline, "Pod", pod)
            assert pod_gone is not None and pod_gone.rv < born.rv, f"{label}: pod {pod} still ran at {born}"
    elif old_goes is not None:
        # the new form is ready first
        if new_kind is not None:
            ready = first(timeline, lambda e: e.rv > start and e.kind == new_kind and e.name == name
                          and e.type != "DELETED" and rollout(e.obj, new_kind).ready)
        else:
            ready = first(timeline, lambda e: e.rv > start and e.kind == api.KIND and any(
                c["name"] == comp and c["kind"] == "ThirdParty" and c["state"] == "Ready"
                for c in (e.obj.get("status") or {}).get("components") or []))
        assert ready is not None and ready.rv < old_goes.rv, (
            f"{label}: the old {old_kind} began going ({old_goes}) before the new form was ready ({ready})")

    # dependents: re-wired to the new address, rolled exactly when their configuration changed, in order
    want, was = address(env, comp, after), address(env, comp, before)
    rolled: dict[str, Event] = {}
    for d, n in spec_of.items():
        data = _cm_data(env, n)
        assert want in str(data), f"{label}: ConfigMap/{n} does not name {want}: {data}"
        if was != want:
            assert was not in str(data), f"{label}: ConfigMap/{n} still names {was}"
        h = _hash(env, n)
        if data == cm0[d]:
            assert h == hash0[d], f"{label}: {d} rolled though its configuration did not change"
            continue
        assert h != hash0[d], f"{label}: {d}'s configuration changed but its pods did not roll"
        dep = env.obj("Deployment", n)
        assert dep is not None and rollout(dep, "Deployment").ready, f"{label}: {d} not rolled out"
        ev = first(timeline, lambda e, n=n, h=h: e.rv > start and e.kind == "Deployment" and e.name == n
                   and template_annotation(e.obj, api.ANNOTATION_CONFIG_HASH) == h)
        assert ev is not None, f"{label}: the API server never showed {d}'s new template"
        rolled[d] = ev
        if old_goes is not None and not (comp in CLAIMS and new_kind is not None):
            done = first(timeline, lambda e, n=n, h=h: e.kind == "Deployment" and e.name == n and e.rv > start
                         and template_annotation(e.obj, api.ANNOTATION_CONFIG_HASH) == h
                         and rollout(e.obj, "Deployment").ready)
            assert done is not None and done.rv < old_goes.rv, (
                f"{label}: the old {old_kind} began going ({old_goes}) before {d} rolled out re-wired ({done})")
    order = sorted(rolled, key=lambda d: rolled[d].rv)
    assert order == [k for k in CHAIN if k in rolled], f"{label}: dependents rolled out of order: {order}"
    if (old == 3) != (new == 3):
        assert set(rolled) == set(deps), f"{label}: every dependent re-wired: {set(deps) - set(rolled)}"

    # data: the claim keeps its UID; nothing deletes a claim
    assert _claims(env) == claims0, f"{label}: claims changed {claims0} -> {_claims(env)}"
    assert not [e for e in timeline if e.kind == "PersistentVolumeClaim" and e.terminating], label
    return Switch(timeline, start, seconds, order)
