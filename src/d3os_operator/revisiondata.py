"""The recorded specs a plan reads, read whole on demand: the cache keeps revisions without their data.

An instance's ControllerRevisions are cached as metadata (:func:`d3os_operator.cachefilter.transform_for`):
names, numbers, owners -- all the core needs to record, number and prune history. Only a few revisions'
specs are ever read by a plan -- the current one, a rollback's target, the newest
(:func:`d3os_core.revisions.data_needed`) -- so those are read from the API server once (a revision's data
never changes: it is immutable) and kept by uid, for that instance only, until another revision takes
their place -- but for the revision of the instance's own spec (its name is the hash of that spec), whose
data is the spec the instance already holds: no read, no copy. The operator's memory then holds at most
those few specs per instance, however long its history (``revisionHistoryLimit`` up to 1,000) and however
large each spec.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, MutableMapping
from typing import Any

from d3os_core import revisions

from .kube import Kube


class RevisionData:
    """See the module docstring; one per reconciler, keyed by instance."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._kept: dict[Hashable, dict[str, Any]] = {}
        self.reads = 0
        """Revisions read whole from the API server."""

    def kept(self) -> int:
        """Specs held, over all instances."""
        return sum(len(v) for v in self._kept.values())

    async def fill(
        self,
        key: Hashable,
        parent: Mapping[str, Any] | None,
        objects: MutableMapping[tuple[str, str], Mapping[str, Any]],
    ) -> None:
        """Put the data of the revisions a plan of ``parent`` may read into ``objects`` (in place)."""
        if parent is None:
            return
        meta = parent.get("metadata") or {}
        namespace, uid = str(meta.get("namespace") or ""), str(meta.get("uid") or "")
        status = parent.get("status") or {}
        names = revisions.data_needed(objects, uid, status if isinstance(status, Mapping) else {})
        before = self._kept.get(key, {})
        now: dict[str, Any] = {}
        spec = parent.get("spec")
        # a revision's name is the hash of the spec it records: the parent's own spec needs no read, nor a copy
        same = revisions.revision_name(str(meta.get("name") or ""), spec) if isinstance(spec, Mapping) else ""
        for name in names:
            obj = objects[(revisions.KIND, name)]
            if "data" in obj:  # cached whole (not ours to strip): nothing to read
                continue
            if name == same and isinstance(spec, Mapping):
                objects[(revisions.KIND, name)] = {**obj, "data": {"spec": {
                    k: v for k, v in spec.items() if k not in revisions.NOT_RECORDED}}}
                continue
            rev_uid = str((obj.get("metadata") or {}).get("uid") or "")
            data = before.get(rev_uid)
            if data is None:
                live = await self.kube.get(revisions.API_VERSION, revisions.KIND, namespace, name)
                self.reads += 1
                if live is None or str((live.get("metadata") or {}).get("uid") or "") != rev_uid:
                    continue  # gone (or replaced) since the watch told us: the next event plans again
                data = live.get("data") or {}
            now[rev_uid] = data
            objects[(revisions.KIND, name)] = {**obj, "data": data}
        if now:
            self._kept[key] = now
        else:
            self._kept.pop(key, None)

    def forget(self, key: Hashable) -> None:
        self._kept.pop(key, None)
