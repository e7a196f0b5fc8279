"""What the page is sent, built from objects the API server returned: an overview row per instance, an
instance's picture (the core's graph, drawn), its Events. Nothing here orders or judges: the core does.

Only what the page shows is copied out of an object (never a whole object: managedFields, annotations and
anything else stay on the server, and the kubeconfig never leaves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from d3os_core.graphview import instance_graph, instance_state
from d3os_core.product import ProductDef

from .draw import svg

CONDITIONS = ("Ready", "Progressing", "Degraded")
EVENTS_SHOWN = 60


def key_of(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def _conditions(status: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{k: str(c.get(k) or "") for k in ("type", "status", "reason", "message", "lastTransitionTime")}
            for c in status.get("conditions") or [] if isinstance(c, Mapping)]


def row(instance: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """One line of the overview: what ``kubectl get`` prints (PHASE, MESSAGE, READY, AGE) and the conditions."""
    meta = instance.get("metadata") or {}
    status = instance.get("status") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    return {"key": key_of(kind, ns, name), "kind": kind, "namespace": ns, "name": name,
            "phase": str(status.get("phase") or ""), "message": str(status.get("message") or ""),
            "ready": str(status.get("ready") or ""), "state": instance_state(instance),
            "created": str(meta.get("creationTimestamp") or ""),
            "conditions": [c for c in _conditions(status) if c["type"] in CONDITIONS]}


def instance(obj: Mapping[str, Any], product: ProductDef) -> dict[str, Any]:
    """One instance: its row, its conditions, its graph (the core's layers) and the drawing of it."""
    graph = instance_graph(obj, product)
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    kind = product.names.kind
    return {**row(obj, kind), "graph": graph.to_json(), "svg": svg(graph),
            "conditions": _conditions(status), "generation": meta.get("generation"),
            "observedGeneration": status.get("observedGeneration"),
            "currentRevision": str(status.get("currentRevision") or ""),
            "suspend": (obj.get("spec") or {}).get("suspend") is True,
            "deleting": bool(meta.get("deletionTimestamp"))}


def involved_objects(obj: Mapping[str, Any], kind: str) -> set[tuple[str, str]]:
    """(kind, name) of the instance and of every workload its status names (``StatefulSet/mysql-dataservice``)."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    out = {(kind, name)}
    for c in (obj.get("status") or {}).get("components") or []:
        ref = str(c.get("object") or "") if isinstance(c, Mapping) else ""
        if ref.count("/") == 1 and "://" not in ref:
            k, n = ref.split("/")
            out.add((k, n))
    return out


def event(e: Mapping[str, Any]) -> dict[str, Any]:
    inv = e.get("involvedObject") or {}
    series = e.get("series") or {}
    last = (e.get("lastTimestamp") or series.get("lastObservedTime") or e.get("eventTime")
            or (e.get("metadata") or {}).get("creationTimestamp") or "")
    return {"uid": str((e.get("metadata") or {}).get("uid") or ""), "type": str(e.get("type") or ""),
            "reason": str(e.get("reason") or ""), "message": str(e.get("message") or ""),
            "object": f"{inv.get('kind', '')}/{inv.get('name', '')}",
            "count": int(e.get("count") or series.get("count") or 1), "last": str(last)}


def events(all_events: Mapping[str, Mapping[str, Any]], involved: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The Events about ``involved``, newest first (at most :data:`EVENTS_SHOWN`)."""
    mine = [event(e) for e in all_events.values()
            if ((e.get("involvedObject") or {}).get("kind"), (e.get("involvedObject") or {}).get("name"))
            in involved]
    mine.sort(key=lambda e: e["last"], reverse=True)
    return mine[:EVENTS_SHOWN]
