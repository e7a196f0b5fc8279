"""A fake cluster for unit tests and dry runs: it carries out a :class:`Plan` on in-memory objects.

It plays the API server (uids, generations, deletion) and, when asked to ``settle``, the workload
controllers (status as after a finished rollout). It does no I/O, so tests stay pure and fast.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import api
from .types import JSON, ObjKey, Observed, Plan, ProbeResult

WORKLOADS = api.WORKLOAD_KINDS
_UIDS = itertools.count(1)
"""uids are unique across every fake cluster of a process, as they are across a real cluster's life."""


def _served(api_version: object, kind: str) -> None:
    """As an API server: only the kinds of the kinds table, each at its own group/version (a 404 otherwise)."""
    want = api.KINDS_BY_NAME.get(kind)
    if want is None or want.api_version != api_version:
        raise LookupError(f"the fake cluster serves no {api_version}/{kind} (see d3os_core.api.KINDS)")


@dataclass
class FakeCluster:
    """Objects of one namespace keyed by (kind, name), plus third-party probe results by check key."""

    nodes: int = 3
    objects: dict[ObjKey, JSON] = field(default_factory=dict)
    probes: dict[str, ProbeResult] = field(default_factory=dict)
    third_party_up: bool = True
    deleted: list[ObjKey] = field(default_factory=list)
    applied: list[ObjKey] = field(default_factory=list)
    slow_deletes: bool = False
    """Deletions take time, as with foreground propagation: a delete only sets ``deletionTimestamp``;
    :meth:`finish_deletions` removes the objects."""
    delete_requests: list[ObjKey] = field(default_factory=list)
    """Every delete asked for, including ones of objects already terminating."""
    _version: int = 0
    _removed_uids: set[str] = field(default_factory=set)

    def observed(self) -> Observed:
        return Observed(objects=copy.deepcopy(self.objects), probes=dict(self.probes))

    def put(self, manifest: JSON) -> JSON:
        """Create or update an object as server-side apply would (spec change bumps the generation)."""
        key = (manifest["kind"], manifest["metadata"]["name"])
        _served(manifest.get("apiVersion"), key[0])
        live = self.objects.get(key)
        new = copy.deepcopy(manifest)
        meta = new["metadata"]
        if live is None:
            meta["uid"] = f"uid-{key[0].lower()}-{key[1]}-{next(_UIDS)}"
            meta["generation"] = 1
            new["status"] = {}
        else:
            meta["uid"] = live["metadata"]["uid"]
            if live["metadata"].get("deletionTimestamp"):  # an apply does not bring a terminating object back
                meta["deletionTimestamp"] = live["metadata"]["deletionTimestamp"]
            changed = live.get("spec") != new.get("spec")
            meta["generation"] = live["metadata"].get("generation", 1) + (1 if changed else 0)
            new["status"] = live.get("status", {})
            if changed and key[0] == "StatefulSet":
                new["status"] = {**new["status"], "updateRevision": f"rev-{meta['generation']}"}
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        self.objects[key] = new
        return new

    def touch(self, key: ObjKey) -> JSON:
        """Give an object a new resourceVersion, as the API server does on every write."""
        self._version += 1
        obj = self.objects[key]
        obj["metadata"]["resourceVersion"] = str(self._version)
        return obj

    def edit(self, kind: str, name: str, change: Callable[[JSON], object]) -> None:
        """Change a live object by hand (like ``kubectl edit``)."""
        change(self.objects[(kind, name)])
        self.touch((kind, name))

    def carry_out(self, plan: Plan, *, probe: bool = True) -> None:
        """Apply, delete, and (if ``probe``) run the requested third-party checks."""
        for a in plan.apply:
            self.put(a.manifest)
            self.applied.append((a.manifest["kind"], a.manifest["metadata"]["name"]))
        for ref in plan.delete:
            _served(ref.api_version, ref.kind)
            key = (ref.kind, ref.name)
            self.delete_requests.append(key)
            live = self.objects.get(key)
            if live is not None and (ref.uid is None or live["metadata"]["uid"] == ref.uid):
                if self.slow_deletes:
                    live["metadata"].setdefault("deletionTimestamp", "1970-01-01T00:00:00Z")
                    self.touch(key)
                    continue
                del self.objects[key]
                self.deleted.append(key)
        if probe:
            wanted = {p.key for p in plan.probes}
            for p in plan.probes:
                self.probes[p.key] = ProbeResult(self.third_party_up, "" if self.third_party_up else "refused")
            for k in list(self.probes):
                if k not in wanted:
                    del self.probes[k]

    def finish_deletions(self) -> list[ObjKey]:
        """Remove every terminating object (their finalizers are done); returns their keys."""
        gone = [k for k, o in self.objects.items() if o["metadata"].get("deletionTimestamp")]
        for key in gone:
            del self.objects[key]
            self.deleted.append(key)
        return gone

    def settle(self, names: Iterable[str] | None = None) -> None:
        """Finish the rollout of the named workloads (all by default), as the controllers would."""
        only = set(names) if names is not None else None
        for (kind, name), obj in list(self.objects.items()):
            if kind not in WORKLOADS or (only is not None and name not in only):
                continue
            gen = obj["metadata"]["generation"]
            replicas = obj["spec"].get("replicas", 1)
            if kind == "Deployment":
                obj["status"] = {"observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas,
                                 "readyReplicas": replicas, "availableReplicas": replicas}
            elif kind == "StatefulSet":
                rev = f"rev-{gen}"
                obj["status"] = {"observedGeneration": gen, "replicas": replicas, "readyReplicas": replicas,
                                 "updatedReplicas": replicas, "currentRevision": rev, "updateRevision": rev}
                self._bind_claims(obj)
            else:
                obj["status"] = {"observedGeneration": gen, "desiredNumberScheduled": self.nodes,
                                 "updatedNumberScheduled": self.nodes, "numberAvailable": self.nodes,
                                 "numberReady": self.nodes}
            self.touch((kind, name))

    def _bind_claims(self, sts: JSON) -> None:
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            for i in range(sts["spec"].get("replicas", 1)):
                name = f"{tpl['metadata']['name']}-{sts['metadata']['name']}-{i}"
                if ("PersistentVolumeClaim", name) not in self.objects:
                    claim = api.kind_def("PersistentVolumeClaim")
                    self.put({"apiVersion": claim.api_version, "kind": claim.kind,
                              "metadata": {"name": name, "namespace": sts["metadata"]["namespace"],
                                           "labels": dict(tpl["metadata"].get("labels") or {})},
                              "spec": copy.deepcopy(tpl["spec"])})

    def fail(self, name: str) -> None:
        """Mark a Deployment as past its progress deadline."""
        obj = self.objects[("Deployment", name)]
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                            "message": f'ReplicaSet "{name}-abc" has timed out progressing.'}],
        }
        self.touch(("Deployment", name))

    def owned_by(self, instance: str) -> list[ObjKey]:
        return sorted(k for k, o in self.objects.items()
                      if (o["metadata"].get("labels") or {}).get(api.LABEL_INSTANCE) == instance)

    def remove(self, kind: str, name: str, *, owner_uid: str | None = None) -> None:
        """Delete an object by hand (``kubectl delete``), or with ``owner_uid`` an owner that is not kept
        here (a DataService), then garbage-collect, as Kubernetes does in the background, every object
        whose owners are all gone (removed now or earlier: an object with several owners outlives all but the
        last)."""
        gone = self._removed_uids
        if owner_uid is not None:
            gone.add(owner_uid)
        live = self.objects.pop((kind, name), None)
        if live is not None:
            gone.add(live["metadata"]["uid"])
            self.deleted.append((kind, name))
        while True:
            doomed = [k for k, o in self.objects.items()
                      if (refs := o["metadata"].get("ownerReferences")) and all(r.get("uid") in gone for r in refs)]
            if not doomed:
                return
            for k in doomed:
                gone.add(self.objects.pop(k)["metadata"]["uid"])
                self.deleted.append(k)
