"""Health of the control plane's components, waiting for them, and the objects a fresh cluster needs before a
test can run: nodes (kwok makes them Ready), the default StorageClass and a pool of PersistentVolumes."""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import ClusterError

STORAGE_CLASS = "standard"
MANAGED_LABEL = "d3os-testenv.d3os.io/managed"
PV_LABEL = "d3os-testenv.d3os.io/pool"


# ---------------------------------------------------------------------- health


def admin_ssl(pki_dir: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    ctx.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    return ctx


def http_ok(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def readyz(server: str, pki_dir: Path, timeout: float = 2.0) -> bool:
    """The API server's ``/readyz`` answers 200 to the admin client certificate."""
    return http_ok(f"{server}/readyz", admin_ssl(pki_dir), timeout)


def component_healthy(comp: str, ports: Mapping[str, int], server: str, pki_dir: Path) -> bool:
    """``comp``'s own health endpoint says it is healthy (etcd /health, the API server /readyz, the others
    /healthz on their ports)."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    if comp == "etcd":
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['etcd']}/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")
        except (urllib.error.URLError, OSError, ValueError):
            return False
    if comp == "kube-apiserver":
        return readyz(server, pki_dir)
    if comp in ("kube-controller-manager", "kube-scheduler"):
        return http_ok(f"https://127.0.0.1:{ports[comp]}/healthz", insecure)
    if comp == "kwok":
        return http_ok(f"http://127.0.0.1:{ports['kwok']}/healthz")
    return False


def wait_until(
    what: str,
    cond: Callable[[], bool],
    timeout: float,
    *,
    check_alive: Callable[[], None],
    interval: float = 0.2,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll ``cond`` until it holds; ClusterError naming ``what`` (and ``detail()``, and the last exception
    ``cond`` raised) after ``timeout`` seconds, at once if ``check_alive`` finds a dead process."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        check_alive()
        try:
            if cond():
                return
        except Exception as e:  # keep trying until the deadline
            last_exc = e
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            if detail is not None:
                with contextlib.suppress(Exception):
                    msg += f": {detail()}"
            if last_exc is not None:
                msg += f" (last error: {type(last_exc).__name__}: {last_exc})"
            raise ClusterError(msg)
        time.sleep(interval)


# ---------------------------------------------------------------------- API objects


def has_default_sa(client: Any) -> bool:
    """The ``default`` namespace's ServiceAccount exists (the controllers run and the API is writable)."""
    from lightkube.resources.core_v1 import ServiceAccount

    client.get(ServiceAccount, "default", namespace="default")
    return True


def node_name(i: int) -> str:
    return f"kwok-node-{i}"


def create_nodes(client: Any, nodes: int, capacity: Mapping[str, str]) -> None:
    """``nodes`` fake Nodes that kwok manages, spread over three zones; existing ones are left alone."""
    from lightkube import ApiError
    from lightkube.codecs import from_dict

    for i in range(nodes):
        name = node_name(i)
        node = from_dict(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
                    "labels": {
                        "beta.kubernetes.io/arch": "amd64",
                        "beta.kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/role": "agent",
                        "node-role.kubernetes.io/agent": "",
                        "type": "kwok",
                        "topology.kubernetes.io/zone": f"zone-{i % 3}",
                        MANAGED_LABEL: "true",
                    },
                },
                "status": {"capacity": dict(capacity), "allocatable": dict(capacity)},
            }
        )
        try:
            client.create(node)
        except ApiError as e:
            if e.status.code != 409:
                raise


def ready_nodes(client: Any) -> int:
    from lightkube.resources.core_v1 import Node

    n = 0
    for node in client.list(Node):
        conds = (node.status.conditions if node.status else None) or []
        if any(c.type == "Ready" and c.status == "True" for c in conds):
            n += 1
    return n


def create_storage(client: Any, pv_pool: int, host_root: str) -> None:
    """The default StorageClass (static provisioning) and ``pv_pool`` Available volumes."""
    from lightkube import ApiError
    from lightkube.codecs import from_dict

    sc = from_dict(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                "labels": {MANAGED_LABEL: "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        }
    )
    try:
        client.create(sc)
    except ApiError as e:
        if e.status.code != 409:
            raise
    ensure_pvs(client, pv_pool, host_root=host_root)


def ensure_pvs(client: Any, n: int, host_root: str = "/tmp/d3os-testenv-pv", capacity: str = "1Ti") -> int:
    """Ensure at least ``n`` Available PersistentVolumes of the ``standard`` StorageClass.

    Released volumes of the pool (their claim was deleted) are recycled by clearing ``claimRef``;
    missing ones are created. Returns the number of volumes created. Works on any cluster whose
    StorageClass ``standard`` carries the d3os-testenv label; otherwise does nothing and returns 0.
    """
    from lightkube import ApiError
    from lightkube.codecs import from_dict
    from lightkube.resources.core_v1 import PersistentVolume
    from lightkube.resources.storage_v1 import StorageClass
    from lightkube.types import PatchType

    try:
        sc = client.get(StorageClass, STORAGE_CLASS)
    except ApiError:
        return 0
    if (sc.metadata.labels or {}).get(MANAGED_LABEL) != "true":
        return 0
    available = 0
    existing: set[str] = set()
    for pv in client.list(PersistentVolume, labels={PV_LABEL: STORAGE_CLASS}):
        existing.add(pv.metadata.name)
        phase = pv.status.phase if pv.status else None
        if phase == "Released":
            with contextlib.suppress(ApiError):
                client.patch(
                    PersistentVolume,
                    pv.metadata.name,
                    [{"op": "remove", "path": "/spec/claimRef"}],
                    patch_type=PatchType.JSON,
                )
                available += 1
        elif phase in (None, "Pending", "Available") and not pv.spec.claimRef:
            available += 1
    created = 0
    i = 0
    while available < n:
        name = f"pv-{i:04d}"
        i += 1
        if name in existing:
            continue
        pv = from_dict(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {PV_LABEL: STORAGE_CLASS, MANAGED_LABEL: "true"}},
                "spec": {
                    "capacity": {"storage": capacity},
                    "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "volumeMode": "Filesystem",
                    "hostPath": {"path": f"{host_root}/{name}", "type": "DirectoryOrCreate"},
                },
            }
        )
        try:
            client.create(pv)
        except ApiError as e:
            if e.status.code != 409:
                raise
            continue
        created += 1
        available += 1
    return created


def bootstrap(
    client: Any,
    *,
    nodes: int,
    capacity: Mapping[str, str],
    pv_pool: int,
    pv_root: str,
    wait: Callable[..., None],
    kwok_log: Path,
) -> None:
    """A fresh control plane made ready for tests: the API writable, ``nodes`` Ready nodes, storage.
    ``wait(what, cond, timeout, detail=...)`` waits as the cluster does (its timeout scale, its processes
    checked)."""
    wait("the `default` namespace's ServiceAccount `default`", lambda: has_default_sa(client), 60.0)
    create_nodes(client, nodes, capacity)
    wait(
        f"{nodes} nodes to become Ready (kwok log: {kwok_log})",
        lambda: ready_nodes(client) >= nodes,
        60.0,
        detail=lambda: f"{ready_nodes(client)} of {nodes} Ready",
    )
    create_storage(client, pv_pool, pv_root)
