"""Helpers for the chaos tests (issue 7, ``test_chaos.py``): the operator as a killable subprocess, many
namespaces, a watch that remembers every UID it saw, what the core says should exist, what the audit log
says the operator created, and a flapping third party.

``D3OS_CHAOS=full`` (``nox -s chaos``) selects the full size; unset, the normal test run gets a short one.
``D3OS_CHAOS_SEED=N`` replays a run (each test prints its seed).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, ServiceAccount
from lightkube.types import CascadeType, PatchType

from d3os_core import api, parse_spec
from d3os_core.render import Parent, render_component, resolve
from d3os_operator.kube import DATASERVICE as DS_KIND
from d3os_operator.kube import kind_info
from d3os_testenv import audit, harness
from d3os_testenv.operatorproc import OperatorProcess
from d3os_testenv.standin import StandIn, point_uuc_at

from ..unit.helpers import DATASERVICE
from .apiwatch import Background, follow

FULL = os.environ.get("D3OS_CHAOS", "").lower() == "full"
OPERATOR_AGENT = "d3os-operator/"
"""The operator's User-Agent prefix (``d3os_operator.kube.USER_AGENT``), as the audit log records it."""


@dataclass(frozen=True)
class Size:
    dataservices: int
    kills: int
    apiserver_dataservices: int
    apiserver_down_s: float
    flaps: int


SIZE = Size(20, 30, 4, 20.0, 8) if FULL else Size(3, 4, 2, 10.0, 2)


def new_seed(name: str) -> int:
    """``D3OS_CHAOS_SEED`` or a fresh one; printed so a failure can be replayed."""
    env = os.environ.get("D3OS_CHAOS_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(2**31)
    print(f"\n[chaos] {name}: seed {seed} (replay with D3OS_CHAOS_SEED={seed}); size {'full' if FULL else 'short'}")
    return seed


# -- the operator as a subprocess ------------------------------------------------------------------------


class OperatorProc(OperatorProcess):
    """The operator on some namespaces (None: all), with the cache dump the cache-truth check reads
    (tests/integration/cachetruth.py), its metrics server off."""

    def __init__(self, kubeconfig: Path, namespaces: Sequence[str] | None, log: Path) -> None:
        super().__init__(kubeconfig, log, namespaces=list(namespaces or ()), metrics="0",
                         extra=["--debug-cache-endpoint"])

    def cache(self) -> Any:
        """A callable returning what its informers hold (``/debug/cache``)."""
        from .cachetruth import http_snapshot

        return http_snapshot(self.health_port())


# -- namespaces and DataServices -------------------------------------------------------------------------


def create_namespaces(client: Client, prefix: str, n: int, timeout: float = 90.0) -> list[str]:
    """``n`` fresh namespaces (labelled like the k8s_namespace fixture's), each with its ServiceAccount."""
    tag = uuid.uuid4().hex[:6]
    return create_named_namespaces(client, [f"chaos-{prefix}-{tag}-{i}" for i in range(n)], timeout)


@contextlib.contextmanager
def namespaces_for_a_test(client: Client, names: Iterable[str]) -> Iterator[list[str]]:
    """The named namespaces, made for one test and deleted after it (DataServices whose operator is gone
    first lose their finalizers, so no namespace is left terminating)."""
    made = create_named_namespaces(client, list(names))
    try:
        yield made
    finally:
        delete_namespaces(client, made, timeout=0)


def create_named_namespaces(client: Client, names: list[str], timeout: float = 90.0) -> list[str]:
    """These namespaces (labelled like the k8s_namespace fixture's), made, each with its ServiceAccount."""
    for name in names:
        client.create(Namespace(metadata=ObjectMeta(name=name, labels={"d3os-testenv.d3os.io/test": "true"})))
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            try:
                client.get(ServiceAccount, "default", namespace=name)
                break
            except ApiError as e:
                if e.status.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    return names


def delete_namespaces(client: Client, names: Iterable[str], timeout: float = 45.0) -> list[str]:
    """Delete the DataServices (a running operator honours the finalizer; after ``timeout`` the finalizers
    are stripped) and then the namespaces (not waited for). Returns DataServices that had to be stripped."""
    names = list(names)
    if os.environ.get("D3OS_TESTENV_KEEP_NAMESPACES") == "1":
        return []
    res = DS_KIND.res
    pending: list[tuple[str, str]] = []
    for ns in names:
        with contextlib.suppress(ApiError):
            for o in client.list(res, namespace=ns):
                name = dict(o)["metadata"]["name"]
                with contextlib.suppress(ApiError):
                    client.delete(res, name, namespace=ns)
                pending.append((ns, name))
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [(ns, n) for ns, n in pending if harness.get_dataservice(client, ns, n) is not None]
        if pending:
            time.sleep(0.3)
    stripped = []
    for ns, name in pending:
        stripped.append(f"{ns}/{name}")
        with contextlib.suppress(ApiError):
            client.patch(res, name, {"metadata": {"finalizers": None}}, namespace=ns, patch_type=PatchType.MERGE)
    for ns in names:
        with contextlib.suppress(ApiError):
            client.delete(Namespace, ns)
    return stripped


def free_node_ports(client: Client, n: int, rng: random.Random, first: int = 30200, last: int = 32767) -> list[int]:
    """``n`` nodePorts in [first, last] that no Service in the cluster holds (those of namespaces still
    terminating included): a nodePort is cluster-unique, the seed's 30180 can serve one DataService only.
    Drawn at random, as kube-apiserver may keep a port allocated for minutes after its Service went (its
    repair loop frees leaked ports late), e.g. one whose create was cut by a SIGKILL."""
    from lightkube import ALL_NS
    from lightkube.resources.core_v1 import Service

    used = {
        p.nodePort
        for svc in client.list(Service, namespace=ALL_NS)
        for p in (svc.spec.ports or [] if svc.spec else [])
        if p.nodePort
    }
    return rng.sample([port for port in range(first, last + 1) if port not in used], n)


def dataservice(uuc: StandIn, node_port: int | None, name: str = "dataservice-sample") -> dict[str, Any]:
    """The seed's sample, uuc pointed at the stand-in, web on the given (free) nodePort (None: ClusterIP)."""
    ds = point_uuc_at(harness.load_sample(), uuc)
    ds["metadata"]["name"] = name
    ds["spec"]["web"]["nodePort"] = node_port
    return ds


def apply_dataservice(cluster: Any, namespace: str, manifest: Mapping[str, Any]) -> None:
    import yaml

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(dict(manifest), allow_unicode=True))


# -- what should exist and what does ---------------------------------------------------------------------


def rendered_objects(ds: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every object the core renders for this live DataService."""
    meta = ds["metadata"]
    parent = Parent(meta["name"], meta["namespace"], meta["uid"])
    spec = parse_spec(ds["spec"], DATASERVICE)
    states = resolve(parent, spec, DATASERVICE)
    out: set[tuple[str, str]] = set()
    for key in DATASERVICE.keys:
        for o in render_component(parent, spec, DATASERVICE, states, key, {}, "").objects:
            out.add((o["kind"], o["metadata"]["name"]))
    return out


SYSTEM_OBJECTS = {("ConfigMap", "kube-root-ca.crt")}
"""Objects Kubernetes itself puts in every namespace."""


def live_objects(client: Client, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of the kinds the operator owns in ``namespace`` (labelled or not), system ones left out."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for av, kind in api.OWNED_KINDS:
        for o in client.list(kind_info(av, kind).res, namespace=namespace):
            d = dict(o)
            key = (kind, d["metadata"]["name"])
            if key not in SYSTEM_OBJECTS:
                out[key] = d
    return out


def operator_requests(cluster: Any, since: float, namespaces: Iterable[str]) -> list[audit.Request]:
    """The operator's requests in ``namespaces`` since ``since`` (epoch), from kube-apiserver's audit log
    (batched: wait a little more than a second after the last request before reading)."""
    nss = set(namespaces)
    return [r for r in audit.read(cluster.audit_log, since=since, agent=OPERATOR_AGENT) if r.namespace in nss]


def creations(requests: Iterable[audit.Request]) -> collections.Counter[tuple[str, str, str]]:
    """(namespace, resource, name) -> how many requests created it (create, or server-side apply
    answered 201 Created), events left out."""
    return collections.Counter(
        (r.namespace, r.resource, r.name)
        for r in requests
        if r.verb in ("create", "patch") and r.code == 201 and not r.subresource and r.resource != "events"
    )


def audit_available(cluster: Any) -> bool:
    return isinstance(getattr(cluster, "audit_log", None), Path) and cluster.audit_log.exists()


# -- a watch that remembers ------------------------------------------------------------------------------


def data_digest(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj.get("data") or {}, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Seen:
    uids: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    digests: dict[str, set[str]] = field(default_factory=dict)
    """uid -> distinct digests of ``data`` (Secrets)."""


class UidWatch:
    """Watches one kind in every namespace (in a thread, reconnecting) and remembers, per object of the
    given namespaces, each UID it saw, deletions, and (for Secrets) each distinct content of ``data``."""

    def __init__(self, kubeconfig: Path, api_version: str, kind: str, namespaces: Iterable[str]) -> None:
        self.res = kind_info(api_version, kind).res
        self.kind = kind
        self.namespaces = set(namespaces)
        self.seen: dict[tuple[str, str], Seen] = collections.defaultdict(Seen)
        self.events = 0
        self._lock = threading.Lock()
        self._watch = Background(kubeconfig, follow(self.res, self._record))

    def __enter__(self) -> UidWatch:
        self._watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def _record(self, typ: str, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        if meta.get("namespace") not in self.namespaces:
            return
        with self._lock:
            self.events += 1
            s = self.seen[(meta["namespace"], meta["name"])]
            if meta["uid"] not in s.uids:
                s.uids.append(meta["uid"])
            if typ == "DELETED":
                s.deleted.append(meta["uid"])
            elif self.kind == "Secret":
                s.digests.setdefault(meta["uid"], set()).add(data_digest(obj))

    def snapshot(self) -> dict[tuple[str, str], Seen]:
        with self._lock:
            return {
                k: Seen(list(v.uids), list(v.deleted), {u: set(d) for u, d in v.digests.items()})
                for k, v in self.seen.items()
            }


class PhaseWatch:
    """Every distinct (PHASE, MESSAGE) of every DataService in the given namespaces, from one watch."""

    def __init__(self, kubeconfig: Path, namespaces: Iterable[str]) -> None:
        self.namespaces = set(namespaces)
        self.phases: dict[str, list[tuple[float, str, str]]] = collections.defaultdict(list)
        self._lock = threading.Lock()
        self._watch = Background(kubeconfig, follow(DS_KIND.res, self._record))

    def __enter__(self) -> PhaseWatch:
        self._watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def _record(self, _typ: str, d: dict[str, Any]) -> None:
        ns = d["metadata"].get("namespace")
        if ns not in self.namespaces:
            return
        st = d.get("status") or {}
        pair = (st.get("phase", ""), st.get("message", ""))
        if pair == ("", ""):
            return
        with self._lock:
            seq = self.phases[ns]
            if not seq or seq[-1][1:] != pair:
                seq.append((time.monotonic(), *pair))

    def sequence(self, ns: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(p, m) for _, p, m in self.phases.get(ns, [])]

    def first_seen(self, ns: str, message: str, after: float = 0.0) -> float | None:
        """When this watch first saw ``message`` in the status of the DataService of ``ns`` (after ``after``)."""
        with self._lock:
            return next((t for t, _, m in self.phases.get(ns, []) if m == message and t >= after), None)


# -- a flapping third party ------------------------------------------------------------------------------


class Flapper:
    """Takes a :class:`StandIn` up and down on a schedule, in a thread, recording each transition with its
    time (``time.monotonic()``): ``[(t, up), ...]``."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self.transitions: list[tuple[float, bool]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def set(self, up: bool) -> None:
        if up:
            self.standin.up()
        else:
            self.standin.down()
        # the moment it took effect: after up() listens, after down() closed the port
        self.transitions.append((time.monotonic(), up))

    def run(self, schedule: Sequence[tuple[bool, float]]) -> Flapper:
        """Play ``schedule`` ([(up, seconds to stay), ...]) in the background."""

        def play() -> None:
            for up, hold in schedule:
                if self._stop.is_set():
                    return
                self.set(up)
                self._stop.wait(hold)

        self._thread = threading.Thread(target=play, name="flapper", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self.join(10)

    def up_at(self, t: float) -> bool:
        """Was the stand-in up at ``t``? (before the first transition: as at that transition's start)."""
        state = not self.transitions[0][1] if self.transitions else self.standin.is_up
        for when, up in self.transitions:
            if when > t:
                break
            state = up
        return state

    def down_since(self, t: float) -> float | None:
        """If the stand-in was down at ``t``: when that down period began."""
        since: float | None = None
        for when, up in self.transitions:
            if when > t:
                break
            since = None if up else when
        return since


class ReadyWatch:
    """When each workload (Deployment, StatefulSet) of the given namespaces became ready by
    ``kubectl rollout status`` rules, as this test's own watches saw it: ``(namespace, name) -> [t, ...]``."""

    def __init__(self, kubeconfig: Path, namespaces: Iterable[str]) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = set(namespaces)
        self.became_ready: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        self._ready: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()
        self._watch = Background(
            kubeconfig,
            *(follow(kind_info("apps/v1", kind).res, functools.partial(self._record, kind))
              for kind in ("Deployment", "StatefulSet")),
        )

    def __enter__(self) -> ReadyWatch:
        self._watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()

    def _record(self, kind: str, typ: str, d: dict[str, Any]) -> None:
        from d3os_core.readiness import rollout

        key = (d["metadata"].get("namespace", ""), d["metadata"]["name"])
        if key[0] not in self.namespaces:
            return
        ready = typ != "DELETED" and rollout(d, kind).ready
        with self._lock:
            if ready and not self._ready.get(key):
                self.became_ready[key].append(time.monotonic())
            self._ready[key] = ready

    def ready_times(self, namespace: str, name: str) -> list[float]:
        with self._lock:
            return list(self.became_ready.get((namespace, name), []))


def gc_works(client: Client, namespace: str, timeout: float = 15.0) -> bool:
    """Does the garbage collector work (foreground deletion of an owner with one dependent completes)?"""
    from lightkube.resources.core_v1 import ConfigMap

    name = f"gc-canary-{uuid.uuid4().hex[:6]}"
    parent = client.create(ConfigMap(metadata=ObjectMeta(name=name)), namespace=namespace)
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": name,
        "uid": parent.metadata.uid,
        "blockOwnerDeletion": True,
    }
    from lightkube.codecs import from_dict

    client.create(
        from_dict(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name + "-child", "ownerReferences": [ref]},
            }
        ),
        namespace=namespace,
    )
    client.delete(ConfigMap, name, namespace=namespace, cascade=CascadeType.FOREGROUND)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get(ConfigMap, name, namespace=namespace)
        except ApiError as e:
            if e.status.code == 404:
                return True
            raise
        time.sleep(0.2)
    return False
