"""Is a workload rolled out? The rules of ``kubectl rollout status`` (k8s.io/kubectl polymorphichelpers).

A status is trusted only once the controller has observed the current generation; a Deployment whose
Progressing condition says ``ProgressDeadlineExceeded`` has failed, it is not merely slow.
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


def _generation_observed(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return _int(status, "observedGeneration", -1) >= _int(meta, "generation", 0)


def deployment_rollout(obj: Mapping[str, Any]) -> Rollout:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not _generation_observed(obj):
        return Rollout(False, False, "waiting for the deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Rollout(False, True, f"deployment exceeded its progress deadline: {cond.get('message', '')}")
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
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not _generation_observed(obj):
        return Rollout(False, False, "waiting for the statefulset spec update to be observed")
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return Rollout(True, False, "OnDelete strategy: not tracked")
    desired = _int(spec, "replicas", 1)
    ready = _int(status, "readyReplicas")
    if ready < desired:
        return Rollout(False, False, f"{ready} of {desired} pods ready")
    partition = _int((strategy.get("rollingUpdate") or {}), "partition")
    if partition > 0:
        updated = _int(status, "updatedReplicas")
        if updated < desired - partition:
            return Rollout(False, False, f"{updated} of {desired - partition} partitioned pods updated")
        return Rollout(True, False, f"{ready}/{desired} ready (partition {partition})")
    if status.get("updateRevision") != status.get("currentRevision"):
        return Rollout(False, False, f"{_int(status, 'updatedReplicas')} of {desired} pods at the new revision")
    return Rollout(True, False, f"{ready}/{desired} ready")


def daemonset_rollout(obj: Mapping[str, Any]) -> Rollout:
    status = obj.get("status") or {}
    if not _generation_observed(obj):
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
