"""What the informers keep, and how much of it: memory follows our objects, not anyone's data.

* **Which objects.** The label ``app.kubernetes.io/managed-by=d3os-operator`` selects on the server, but
  anyone can put that label on anything; so for most kinds only objects with an ownerReference to a
  DataService are stored (:func:`owned_by_a_dataservice`). Claims (made by a StatefulSet's
  volumeClaimTemplates, re-adopted by label) and Secrets (credentials may outlive their DataService) carry
  no such reference by design: for those kinds the label stays the selection, still bounded to the watched
  namespaces. A stranger's object under a name we want is then not cached: the reconciler's create-only
  apply is refused (409), it reads the holder and reports it (``ParentState.holders``), as for any object
  it does not watch.
* **How much of each.** ``metadata.managedFields`` (often larger than the object itself) and the
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation (a second copy of the whole object) are
  dropped before storing, as controller-runtime's ``cache.TransformStripManagedFields`` does. Only a
  summary of hand-edit entries is kept (manager, operation, subresource; no field sets), so that an apply
  still knows when it must take over hand-edited fields -- it then reads the object whole
  (:meth:`d3os_operator.kube.Kube.take_over_fields`).
* **History without its data.** A ControllerRevision of a product instance records a whole spec (up to
  ~1.4 MiB), and an instance keeps up to ``revisionHistoryLimit`` of them: cached whole, the operator's
  memory would grow with each tenant's history. Their ``data`` is dropped (:func:`transform_for`); the
  few a plan reads (:func:`d3os_core.revisions.data_needed`) are read whole on demand
  (:mod:`d3os_operator.revisiondata`), so an instance costs one spec of history, not ten.
* **Label-selected objects bounded.** Secrets and claims are selected by label alone, so anyone may make
  one the operator caches: of a Secret only the data keys a product generates are kept (the credentials
  it reads), of both only metadata the core reads (our labels and annotations, ownerReferences), so a
  tenant's 1 MiB Secret costs the cache a few hundred bytes.
* **Shared strings.** Every stored object repeats the same keys, labels and values (``app.kubernetes.io/
  managed-by``, the owner's uid, ``apiVersion``...), each parsed into its own string; keys and short
  values are interned (:func:`share_strings`), which halves the stored heap (measured by the bench:
  ``bench/footprint.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from d3os_core import api

from .kube import is_hand_edit_manager

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SHARED_MAX = 64
"""Strings up to this length are interned; longer ones (data, templates) are rarely repeated."""
LABEL_SELECTED_KINDS = frozenset({"PersistentVolumeClaim", "Secret"})
"""Kinds whose objects are ours without an ownerReference (see the module docstring)."""


def owned_by_a_dataservice(obj: Mapping[str, Any]) -> bool:
    """True when ``obj`` has an ownerReference to a product instance (any kind of our API group)."""
    return any(str(ref.get("apiVersion", "")).startswith(api.GROUP + "/")
               for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def keep_for(kind: str) -> Callable[[Mapping[str, Any]], bool] | None:
    """The informer's ``keep`` predicate for ``kind`` (None: the label selector alone decides)."""
    return None if kind in LABEL_SELECTED_KINDS else owned_by_a_dataservice


REVISION = "ControllerRevision"
KEPT_LABEL_PREFIXES = ("app.kubernetes.io/", api.GROUP, "d3os")
"""Labels of a label-selected object that are kept (ours and the recommended ones selectors use)."""
MAX_OWNERS = 64
"""ownerReferences kept on a label-selected object (a claim-owned Secret has one per replica)."""


def transform_for(kind: str, secret_keys: frozenset[str] = frozenset()) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The informer's ``transform`` for ``kind``: :func:`strip`, and for a product instance's
    ControllerRevisions no ``data``; for label-selected kinds only what the core reads (``secret_keys``:
    the Secret data keys the products generate)."""
    if kind == REVISION:
        return lambda obj: strip({k: v for k, v in obj.items() if k != "data"} if owned_by_a_dataservice(obj) else obj)
    if kind in LABEL_SELECTED_KINDS:
        return lambda obj: strip(bounded(obj, kind, secret_keys))
    return strip


def bounded(obj: dict[str, Any], kind: str, secret_keys: frozenset[str]) -> dict[str, Any]:
    """A label-selected object cut to what the core reads (see the module docstring)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return obj
    keep_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "generation",
                                       "creationTimestamp", "deletionTimestamp", "managedFields") if k in meta}
    labels = meta.get("labels")
    if isinstance(labels, Mapping):
        keep_meta["labels"] = {k: v for k, v in labels.items() if str(k).startswith(KEPT_LABEL_PREFIXES)}
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping):
        ours = {k: v for k, v in annotations.items() if str(k).startswith(api.GROUP)}
        if ours:
            keep_meta["annotations"] = ours
    owners = meta.get("ownerReferences")
    if isinstance(owners, list):
        keep_meta["ownerReferences"] = owners[:MAX_OWNERS]
    out: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", "type", "status") if k in obj}
    out["metadata"] = keep_meta
    if kind == "Secret":
        data = obj.get("data")
        if isinstance(data, Mapping):
            out["data"] = {k: v for k, v in data.items() if k in secret_keys}
    else:
        out["spec"] = obj.get("spec")
    return out


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without managedFields (but a summary of hand-edit managers) and the last-applied annotation.

    Returns a new object (strings shared, :func:`share_strings`); ``obj`` is left as it was.
    """
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return obj
    meta = dict(meta)
    entries = meta.pop("managedFields", None) or []
    hand: list[dict[str, str]] = []
    for e in entries:
        manager = str(e.get("manager", "")) if isinstance(e, Mapping) else ""
        if not is_hand_edit_manager(manager):
            continue
        summary = {"manager": manager, "operation": str(e.get("operation", ""))}
        if e.get("subresource"):
            summary["subresource"] = str(e["subresource"])
        if summary not in hand:
            hand.append(summary)
    if hand:
        meta["managedFields"] = hand
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return share_strings({**obj, "metadata": meta})


def share_strings(value: Any) -> Any:
    """``value`` rebuilt with every dict key and every string of up to :data:`SHARED_MAX` characters
    interned, so equal strings across cached objects are one object."""
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: share_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [share_strings(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_MAX:
        return sys.intern(value)
    return value


def stripped(entries: Any) -> bool:
    """True when managedFields ``entries`` are a :func:`strip` summary (no field sets): read the object whole."""
    return bool(entries) and all(isinstance(e, Mapping) and "fieldsV1" not in e for e in entries)
