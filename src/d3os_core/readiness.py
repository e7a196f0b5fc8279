"""Is a workload rolled out? The verdicts of ``kubectl rollout status`` (k8s.io/kubectl polymorphichelpers).

Each step waits on these rules, so they are kubectl's, not ours: tests/unit/test_readiness.py holds them
to kubectl's verdict case by case. An object is read as the API server stores it: a field the server
always defaults (``spec.replicas``, a StatefulSet's update strategy) is read with that default when absent,
so objects built by hand (the fake cluster) are judged like live ones. Where kubectl exits with an error
(a Deployment past its progress deadline, an ``OnDelete`` strategy it cannot follow) the rollout has
failed: waiting would never end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rollout:
    """Where a workload's rollout stands."""

    ready: bool
    failed: bool
    message: str


def _int(obj: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) else default


def _map(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _parts(obj: Mapping[str, Any]) -> tuple[int, Mapping[str, Any], Mapping[str, Any]]:
    return _int(_map(obj, "metadata"), "generation"), _map(obj, "spec"), _map(obj, "status")


def _untracked(what: str, strategy: str) -> Rollout:
    return Rollout(False, True, f"{what} updateStrategy {strategy}: its rollout cannot be followed "
                   "(nor can kubectl rollout status); set it back to RollingUpdate")


def deployment_rollout(obj: Mapping[str, Any]) -> Rollout:
    generation, spec, status = _parts(obj)
    if generation > _int(status, "observedGeneration"):
        return Rollout(False, False, "waiting for the deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing":  # the first one, as kubectl reads it
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return Rollout(False, True, f"deployment exceeded its progress deadline: {cond.get('message', '')}")
            break
    desired = _int(spec, "replicas", 1)
    updated = _int(status, "updatedReplicas")
    total = _int(status, "replicas")
    available = _int(status, "availableReplicas")
    if updated < desired:
        return Rollout(False, False, f"{updated} of {desired} updated replicas")
    if total > updated:
        return Rollout(False, False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return Rollout(False, False, f"{available} of {updated} updated replicas available")
    return Rollout(True, False, f"{available}/{desired} available")


def statefulset_rollout(obj: Mapping[str, Any]) -> Rollout:
    generation, spec, status = _parts(obj)
    strategy = _map(spec, "updateStrategy")
    kind = strategy.get("type") or "RollingUpdate"
    if kind != "RollingUpdate":
        return _untracked("statefulset", str(kind))
    # The server gives a strategy without a type ``rollingUpdate: {partition: 0}``; one created with
    # ``type: RollingUpdate`` alone keeps none, and only then does kubectl compare revisions.
    rolling = strategy.get("rollingUpdate") if strategy.get("type") else (strategy.get("rollingUpdate") or {})
    observed = _int(status, "observedGeneration")
    if observed == 0 or generation > observed:
        return Rollout(False, False, "waiting for the statefulset spec update to be observed")
    desired = _int(spec, "replicas", 1)
    ready = _int(status, "readyReplicas")
    updated = _int(status, "updatedReplicas")
    if ready < desired:
        return Rollout(False, False, f"{ready} of {desired} pods ready")
    if isinstance(rolling, Mapping):
        partition = _int(rolling, "partition")
        if updated < desired - partition:
            return Rollout(False, False, f"{updated} of {desired - partition} pods updated"
                           + (f" (partition {partition})" if partition else ""))
        return Rollout(True, False, f"{ready}/{desired} ready" + (f" (partition {partition})" if partition else ""))
    if status.get("updateRevision") != status.get("currentRevision"):
        return Rollout(False, False, f"{updated} of {desired} pods at the new revision")
    return Rollout(True, False, f"{ready}/{desired} ready")


def daemonset_rollout(obj: Mapping[str, Any]) -> Rollout:
    generation, spec, status = _parts(obj)
    kind = _map(spec, "updateStrategy").get("type") or "RollingUpdate"
    if kind != "RollingUpdate":
        return _untracked("daemonset", str(kind))
    if generation > _int(status, "observedGeneration"):
        return Rollout(False, False, "waiting for the daemonset spec update to be observed")
    desired = _int(status, "desiredNumberScheduled")
    updated = _int(status, "updatedNumberScheduled")
    available = _int(status, "numberAvailable")
    if updated < desired:
        return Rollout(False, False, f"{updated} of {desired} updated pods scheduled")
    if available < desired:
        return Rollout(False, False, f"{available} of {desired} updated pods available")
    return Rollout(True, False, f"{available}/{desired} available")


_BY_KIND = {
    "Deployment": deployment_rollout,
    "StatefulSet": statefulset_rollout,
    "DaemonSet": daemonset_rollout,
}


def rollout(obj: Mapping[str, Any], kind: str | None = None) -> Rollout:
    """Rollout state of a Deployment, StatefulSet or DaemonSet given as an API dict."""
    kind = kind or str(obj.get("kind"))
    fn = _BY_KIND.get(kind)
    if fn is None:
        raise ValueError(f"not a workload kind: {kind!r}")
    return fn(obj)
