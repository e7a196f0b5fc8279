"""The control plane's programs and their command lines: one function per component, from a :class:`Layout`
(where the run's files are, its ports and binaries), so the flags can be read and tested without starting
anything."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ClusterError

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
"""In start order (they are stopped in the reverse)."""
PORTS = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUTS = {
    "etcd": 30.0,
    "kube-apiserver": 120.0,
    "kube-controller-manager": 60.0,
    "kube-scheduler": 60.0,
    "kwok": 60.0,
}
"""Seconds each component gets to become healthy (times ``D3OS_TESTENV_TIMEOUT_SCALE``)."""

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
# one line per request, written when it completes (a watch: when it ends)
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: None
  users: [system:apiserver, system:kube-controller-manager, system:kube-scheduler]
- level: None
  userGroups: [system:serviceaccounts:kube-system, system:nodes]
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version", "/metrics", "/openapi/*", "/api", "/apis*"]
- level: Metadata
"""


@dataclass(frozen=True)
class Layout:
    """Everything a command line depends on: the run's name and directory, its ports and binaries."""

    name: str
    run_dir: Path
    ports: Mapping[str, int]
    binaries: Mapping[str, str]
    kwok_stages: Path

    @property
    def pki(self) -> Path:
        return self.run_dir / "pki"

    @property
    def audit_log(self) -> Path:
        return self.run_dir / "logs" / "audit.log"


@functools.cache
def etcd_version(etcd: Path) -> tuple[int, int]:
    try:
        out = subprocess.run([str(etcd), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    m = re.search(r"etcd Version: (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _etcd(lay: Layout) -> list[str]:
    peer = f"http://127.0.0.1:{lay.ports['etcd-peer']}"
    client = f"http://127.0.0.1:{lay.ports['etcd']}"
    exe = lay.binaries["etcd"]
    return [
        exe,
        "--name=d3os",
        f"--data-dir={lay.run_dir}/data/etcd",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=d3os={peer}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token=d3os-testenv-{lay.name}",
        "--quota-backend-bytes=8589934592",
        "--log-level=warn",
        "--logger=zap",
        # 3.5+: data is throw-away, skip fsync (Debian's 3.4 fallback does not know the flag)
        *(["--unsafe-no-fsync=true"] if etcd_version(Path(exe)) >= (3, 5) else []),
    ]


def _kube_apiserver(lay: Layout) -> list[str]:
    pki = lay.pki
    return [
        lay.binaries["kube-apiserver"],
        f"--etcd-servers=http://127.0.0.1:{lay.ports['etcd']}",
        "--etcd-prefix=/registry",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={lay.ports['kube-apiserver']}",
        f"--cert-dir={pki}/apiserver",
        f"--tls-cert-file={pki}/apiserver.crt",
        f"--tls-private-key-file={pki}/apiserver.key",
        f"--client-ca-file={pki}/ca.crt",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={pki}/sa.pub",
        f"--service-account-signing-key-file={pki}/sa.key",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--endpoint-reconciler-type=none",
        _profiling(),
        "--goaway-chance=0",
        # Bound the HTTP server shutdown to 2 s (default: --request-timeout, 60 s, while watch
        # connections are open) so stop_component/down are quick.
        "--shutdown-send-retry-after=true",
        # Who sent which request (user, user agent, verb, resource, timestamps), one JSON line each:
        # tests and benchmarks read it to count a client's requests by verb and to prove which
        # replica wrote what. Control-plane components and the kwok node agent are left out.
        f"--audit-policy-file={lay.run_dir}/audit-policy.yaml",
        f"--audit-log-path={lay.audit_log}",
        "--audit-log-format=json",
        "--audit-log-maxsize=512",
        "--audit-log-maxbackup=1",
        "--audit-log-mode=batch",
        "--audit-log-batch-max-wait=1s",
    ]


def _profiling() -> str:
    """Go's pprof endpoints (``/debug/pprof``) are off unless ``D3OS_TESTENV_PROFILING=1``: the bench turns
    them on to see where the API server's CPU goes (``kubectl get --raw '/debug/pprof/profile?seconds=30'``)."""
    return f"--profiling={'true' if os.environ.get('D3OS_TESTENV_PROFILING') == '1' else 'false'}"


def _kube_component(lay: Layout, comp: str, kubeconfig: str) -> list[str]:
    """The flags kube-controller-manager and kube-scheduler share: their kubeconfig for everything, a
    secure port on loopback with unauthenticated health paths, no leader election."""
    return [
        lay.binaries[comp],
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={lay.ports[comp]}",
        f"--cert-dir={lay.pki}/{comp.removeprefix('kube-')}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez",
        "--leader-elect=false",
    ]


def _kube_controller_manager(lay: Layout) -> list[str]:
    pki = lay.pki
    return [
        *_kube_component(lay, "kube-controller-manager", f"{lay.run_dir}/controller-manager.kubeconfig"),
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki}/sa.key",
        f"--root-ca-file={pki}/ca.crt",
        f"--cluster-signing-cert-file={pki}/ca.crt",
        f"--cluster-signing-key-file={pki}/ca.key",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--pvclaimbinder-sync-period=3s",
        "--profiling=false",
    ]


def _kube_scheduler(lay: Layout) -> list[str]:
    return [*_kube_component(lay, "kube-scheduler", f"{lay.run_dir}/scheduler.kubeconfig"), "--profiling=false"]


def _kwok(lay: Layout) -> list[str]:
    return [
        lay.binaries["kwok"],
        f"--kubeconfig={lay.run_dir}/kubeconfig",
        f"--config={lay.kwok_stages}",
        "--manage-all-nodes=true",
        # without node Leases the node lifecycle controller marks every node NotReady after ~40 s
        "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{lay.ports['kwok']}",
        f"--cidr={POD_CIDR}",
        "--node-ip=127.0.0.1",
    ]


COMMANDS: dict[str, Callable[[Layout], list[str]]] = {
    "etcd": _etcd,
    "kube-apiserver": _kube_apiserver,
    "kube-controller-manager": _kube_controller_manager,
    "kube-scheduler": _kube_scheduler,
    "kwok": _kwok,
}


def known(comp: str) -> str:
    """``comp`` if it is a component, else ClusterError naming the known ones."""
    if comp not in COMPONENTS:
        raise ClusterError(f"unknown component {comp!r} (known: {', '.join(COMPONENTS)})")
    return comp


def command(comp: str, lay: Layout) -> list[str]:
    """The command line that starts ``comp`` of the run ``lay``."""
    return COMMANDS[known(comp)](lay)
