"""kstatus' verdict for a custom resource, transcribed for the core's unit tests.

The rules of ``sigs.k8s.io/cli-utils/pkg/kstatus/status`` (``Compute``: ``checkGenericProperties``, then
``checkReadyCondition``) for a kind it has no rules of its own for: a deletion is Terminating; a
``status.observedGeneration`` that differs from ``metadata.generation`` is InProgress; the first of
``Reconciling=True`` (InProgress) and ``Stalled=True`` (Failed) decides; else ``Ready`` does (True: Current,
False/Unknown: InProgress); else Current. The integration tests ask the real library (the ``kstatus``
tool); this copy lets the unit tests check every status the planner can produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def verdict(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    if "generation" in meta and "observedGeneration" in status and status["observedGeneration"] != meta["generation"]:
        return "InProgress"
    conditions = status.get("conditions") or []
    for c in conditions:
        if c.get("type") == "Reconciling" and c.get("status") == "True":
            return "InProgress"
        if c.get("type") == "Stalled" and c.get("status") == "True":
            return "Failed"
    for c in conditions:
        if c.get("type") == "Ready":
            return "Current" if c.get("status") == "True" else "InProgress"
    return "Current"
