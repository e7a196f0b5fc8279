"""Revision history: each spec that reaches Ready is an ``apps/v1`` ControllerRevision owned by the DataService.

As StatefulSets and DaemonSets keep theirs: the data is the spec (``data.spec``), ``revision`` counts
1, 2, 3, … and a spec that comes back (a rollback) takes the next number on its existing revision
rather than a copy. The name is ``<dataservice>-<hash of the spec>``, so the revision a spec would get
is known before it is Ready (``status.updateRevision``). At most ``spec.revisionHistoryLimit`` are
kept, the current one always. ``spec.suspend`` is not part of a revision: suspending and resuming
changes nothing worth going back to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import api
from .hashing import content_hash
from .types import JSON, Parent

KIND = "ControllerRevision"
API_VERSION = api.kind_def(KIND).api_version
NOT_RECORDED = ("suspend",)
"""Top-level spec fields a revision does not record."""


@dataclass(frozen=True, slots=True)
class Revision:
    """One ControllerRevision of a DataService, as observed."""

    name: str
    number: int
    spec: Mapping[str, Any]
    ready_at: str
    generation: int
    uid: str | None


def recorded_spec(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a spec a revision keeps (everything but ``suspend``)."""
    return {k: copy.deepcopy(v) for k, v in raw.items() if k not in NOT_RECORDED}


def revision_name(parent_name: str, raw: Mapping[str, Any]) -> str:
    """``<dataservice>-<10 hex>``: the same spec always gets the same name (at most 253 characters)."""
    view = {k: v for k, v in raw.items() if k not in NOT_RECORDED}  # hashed, not kept: no copy
    return f"{parent_name[:242]}-{content_hash(view)[:10]}"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def observed_revisions(objects: Mapping[tuple[str, str], Mapping[str, Any]], parent_uid: str) -> list[Revision]:
    """The DataService's own revisions (owned by its uid; a StatefulSet's are not), oldest first."""
    out = []
    for (kind, name), obj in objects.items():
        if kind != KIND:
            continue
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp") or not any(
            r.get("uid") == parent_uid for r in meta.get("ownerReferences") or []  # a uid names one object
        ):
            continue
        data = obj.get("data") or {}
        spec = data.get("spec") if isinstance(data, Mapping) else None
        annotations = meta.get("annotations") or {}
        out.append(Revision(
            name=name,
            number=_int(obj.get("revision")),
            spec=spec if isinstance(spec, Mapping) else {},
            ready_at=str(annotations.get(api.ANNOTATION_READY_AT) or meta.get("creationTimestamp") or ""),
            generation=_int(annotations.get(api.ANNOTATION_GENERATION)),
            uid=meta.get("uid") if isinstance(meta.get("uid"), str) else None,
        ))
    return sorted(out, key=lambda r: (r.number, r.name))


def data_needed(objects: Mapping[tuple[str, str], Mapping[str, Any]], parent_uid: str,
                status: Mapping[str, Any]) -> list[str]:
    """The revisions whose recorded spec a plan may read: the current one (``status.currentRevision``), the
    target of a rollback in force, and the newest (the current one once this pass records it, or when
    status names none). The others are history: their spec is read only by ``d3os history``/``rollback``,
    so a shell may keep revisions without their data and read these few whole."""
    revs = observed_revisions(objects, parent_uid)
    rollback = status.get("rollback")
    named = [str(status.get("currentRevision") or ""),
             str(rollback.get("to") or "") if isinstance(rollback, Mapping) else ""]
    out = [r.name for r in revs if r.name in named]
    if revs and revs[-1].name not in out:
        out.append(revs[-1].name)
    return out


def find(revisions: Sequence[Revision], name: str) -> Revision | None:
    return next((r for r in revisions if r.name == name), None)


def by_number(revisions: Sequence[Revision], number: int) -> Revision | None:
    return next((r for r in revisions if r.number == number), None)


def manifest(parent: Parent, raw: Mapping[str, Any], number: int, now: str, generation: int,
             product_version: str = "") -> JSON:
    """The ControllerRevision recording ``raw`` as revision ``number`` (and the product version it ran with)."""
    annotations = {api.ANNOTATION_READY_AT: now, api.ANNOTATION_GENERATION: str(generation)}
    if product_version:
        annotations[api.ANNOTATION_PRODUCT_VERSION] = product_version
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": revision_name(parent.name, raw),
            "namespace": parent.namespace,
            "labels": {api.LABEL_MANAGED_BY: api.MANAGED_BY, api.LABEL_INSTANCE: parent.name,
                       **parent.product_labels},
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": api.API_VERSION,
                "kind": parent.kind,
                "name": parent.name,
                "uid": parent.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "data": {"spec": recorded_spec(raw)},
        "revision": number,
    }


@dataclass(frozen=True, slots=True)
class Recording:
    """What recording a Ready spec takes: the revision to write (if any) and the ones to prune."""

    write: JSON | None
    create: bool
    prune: tuple[Revision, ...]
    name: str
    number: int


def record(
    parent: Parent,
    raw: Mapping[str, Any],
    revisions: Sequence[Revision],
    now: str,
    generation: int,
    limit: int,
    product_version: str = "",
) -> Recording:
    """Record ``raw`` as the newest revision (nothing to write when it already is), then prune to ``limit``."""
    name = revision_name(parent.name, raw)
    existing = find(revisions, name)
    top = max((r.number for r in revisions), default=0)
    write: JSON | None = None
    number = existing.number if existing is not None else 0
    if existing is None or existing.number != top or existing.number == 0:
        number = top + 1
        write = manifest(parent, raw, number, now, generation, product_version)
    kept = sorted([r for r in revisions if r.name != name], key=lambda r: r.number, reverse=True)
    prune = tuple(sorted(kept[max(0, limit - 1):], key=lambda r: r.number))
    return Recording(write, existing is None, prune, name, number)


# -- what changed between two revisions (``d3os history``) ---------------------------------------------


def _components(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in spec.items() if isinstance(v, Mapping) and "name" in v}


KIND_NAMES: dict[Any, str] = {0: "Deployment", 1: "StatefulSet", 2: "DaemonSet", 3: "thirdParty"}


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What changed from ``old`` to ``new``, in the words a user thinks in: images, kinds, replicas, env keys."""
    if old is None:
        return ["initial"]
    out: list[str] = []
    a, b = _components(old), _components(new)
    for key in [k for k in b if k not in a]:
        out.append(f"{key} added")
    for key in [k for k in a if k not in b]:
        out.append(f"{key} removed")
    for key, nc in b.items():
        oc = a.get(key)
        if oc is None:
            continue
        if oc.get("image") != nc.get("image"):
            out.append(f"{key} image {oc.get('image') or '(default)'} -> {nc.get('image') or '(default)'}")
        if oc.get("kind") != nc.get("kind"):
            out.append(f"{key} kind {KIND_NAMES.get(oc.get('kind'), oc.get('kind'))} -> "
                       f"{KIND_NAMES.get(nc.get('kind'), nc.get('kind'))}")
        if oc.get("replica") != nc.get("replica"):
            out.append(f"{key} replica {oc.get('replica', 1)} -> {nc.get('replica', 1)}")
        oe, ne = dict(oc.get("env") or {}), dict(nc.get("env") or {})
        env = [f"+{k}" for k in ne if k not in oe] + [f"-{k}" for k in oe if k not in ne]
        env += [f"~{k}" for k in ne if k in oe and oe[k] != ne[k]]
        if env:
            out.append(f"{key} env {' '.join(env)}")
        rest = sorted(k for k in {*oc, *nc} - {"image", "kind", "replica", "env"} if oc.get(k) != nc.get(k))
        if rest:
            out.append(f"{key} {', '.join(rest)}")
    top = sorted(k for k in {*old, *new} if k not in a and k not in b and old.get(k) != new.get(k))
    out += [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in top]
    return out or ["no change"]
