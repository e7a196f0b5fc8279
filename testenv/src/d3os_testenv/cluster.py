"""A real local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok (simulated kubelets), all on loopback with free ports, one run directory per cluster name.

Run directory layout (``run_root()/<name>/``)::

    state.json            ports, versions, binaries, who owns the run
    pids/<component>.pid  one pidfile per started process
    pki/                  CA, serving/client certificates, service-account key
    kubeconfig            admin kubeconfig (client certificate in group system:masters)
    data/etcd/            etcd data
    logs/<component>.log  stdout+stderr of each component
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import certs
from .build import ProgressFn, Toolchain, Versions, cache_root, ensure_built

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.0/16"
STORAGE_CLASS = "standard"
MANAGED_LABEL = "d3os-testenv.d3os.io/managed"
PV_LABEL = "d3os-testenv.d3os.io/pool"
ISSUER = "https://kubernetes.default.svc.cluster.local"

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
_START_TIMEOUTS = {
    "etcd": 30.0,
    "kube-apiserver": 120.0,
    "kube-controller-manager": 60.0,
    "kube-scheduler": 60.0,
    "kwok": 60.0,
}
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


class ClusterError(RuntimeError):
    """The cluster could not be started/stopped; the message says what was not ready and why."""


def run_root() -> Path:
    explicit = os.environ.get("D3OS_TESTENV_RUN_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK):
        return Path(xdg) / "d3os-testenv" / "runs"
    return cache_root() / "runs"


def _free_port(exclude: set[int]) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in exclude:
            return port
    raise ClusterError("could not find a free loopback port")


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_bytes()[-64_000:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


def _kubeconfig_dict(
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    cert: bytes | None = None,
    key: bytes | None = None,
    token: str | None = None,
    namespace: str | None = None,
    cluster_name: str = "d3os-testenv",
) -> dict[str, Any]:
    u: dict[str, Any] = {}
    if cert is not None and key is not None:
        u["client-certificate-data"] = base64.b64encode(cert).decode()
        u["client-key-data"] = base64.b64encode(key).decode()
    if token is not None:
        u["token"] = token
    ctx: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": user, "user": u}],
        "contexts": [{"name": cluster_name, "context": ctx}],
        "current-context": cluster_name,
        "preferences": {},
    }


def _write_yaml(path: Path, data: Any, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    tmp.rename(path)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@functools.cache
def _etcd_version(etcd: Path) -> tuple[int, int]:
    try:
        out = subprocess.run([str(etcd), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    m = re.search(r"etcd Version: (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to kill the child when the parent thread exits (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        # SIGKILL, not SIGTERM: an ephemeral cluster's data is discarded anyway, and a kube-apiserver
        # whose etcd is terminated at the same moment takes ~20 s for a graceful shutdown.
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


def admin_client(kubeconfig: Path) -> Any:
    """A lightkube Client for ``kubeconfig`` (imported lazily: the pytest plugin must stay cheap)."""
    from lightkube import Client
    from lightkube.config.kubeconfig import KubeConfig

    return Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="d3os-testenv")


def run_kubectl(
    exe: str, kubeconfig: Path | str, args: tuple[str, ...], input: str | bytes | None, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl`` against ``kubeconfig``; with ``check``, a failure raises naming the command and stderr."""
    cmd = [exe, f"--kubeconfig={kubeconfig}", *args]
    data = input.decode() if isinstance(input, bytes) else input
    res = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise ClusterError(f"`kubectl {' '.join(args)}` failed (exit {res.returncode}):\n{res.stderr.strip()}")
    return res


@dataclass
class _Proc:
    pid: int
    popen: subprocess.Popen[bytes] | None  # None when adopted from a pidfile of another process


class LocalCluster:
    """One local control plane.

    ``with LocalCluster(name="x") as c:`` starts it (building binaries if needed) and tears it down on
    exit. ``LocalCluster.attach(name)`` returns a handle for a cluster started elsewhere (e.g. by
    ``d3os-testenv up``) without owning it.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        nodes: int = 3,
        pv_pool: int = 16,
        node_capacity: dict[str, str] | None = None,
        versions: Versions | None = None,
        root: Path | None = None,
        ephemeral: bool = False,
        progress: ProgressFn | None = None,
        timeout_scale: float | None = None,
        keep_data: bool = False,
    ) -> None:
        if not _NAME_RE.match(name):
            raise ClusterError(f"invalid cluster name {name!r}: use 1-40 of [a-z0-9-], not starting/ending with -")
        self.name = name
        self.nodes = nodes
        self.pv_pool = pv_pool
        self.node_capacity = node_capacity or {
            "cpu": "64",
            "memory": "512Gi",
            "pods": "1000",
            "ephemeral-storage": "1Ti",
        }
        self.versions = versions or Versions.from_env()
        self.root = root or run_root()
        self.run_dir = self.root / name
        self.ephemeral = ephemeral
        self.progress = progress
        self.timeout_scale = timeout_scale or float(os.environ.get("D3OS_TESTENV_TIMEOUT_SCALE", "1"))
        self.keep_data = keep_data
        self.toolchain = Toolchain(self.versions)
        self.ports: dict[str, int] = {}
        self.binaries: dict[str, str] = {}
        self._procs: dict[str, _Proc] = {}
        self._owner = False
        self._client: Any = None

    # ------------------------------------------------------------------ paths & properties

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    @property
    def bin_dir(self) -> Path:
        return self.toolchain.bin_dir

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['kube-apiserver']}"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def pki_dir(self) -> Path:
        return self.run_dir / "pki"

    @property
    def audit_log(self) -> Path:
        """kube-apiserver's audit log (JSON lines, see :data:`AUDIT_POLICY`); read it with :mod:`d3os_testenv.audit`."""
        return self.run_dir / "logs" / "audit.log"

    def log_file(self, component: str) -> Path:
        return self.run_dir / "logs" / f"{component}.log"

    def _pidfile(self, component: str) -> Path:
        return self.run_dir / "pids" / f"{component}.pid"

    def _say(self, msg: str) -> None:
        if self.progress:
            self.progress(msg)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owner:  # never tear down a cluster that was already running when we entered
            self.stop()
        elif self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    @classmethod
    def attach(cls, name: str = "default", root: Path | None = None) -> LocalCluster:
        """A handle on a running cluster started by someone else (``d3os-testenv up``)."""
        c = cls(name, root=root)
        if not c.state_file.exists():
            raise ClusterError(
                f"cluster {name!r} is not running (no {c.state_file}); run `d3os-testenv up --name {name}`"
            )
        c._load_state()
        return c

    def _load_state(self) -> dict[str, Any]:
        st: dict[str, Any] = json.loads(self.state_file.read_text())
        self.ports = {k: int(v) for k, v in st["ports"].items()}
        v = st.get("versions", {})
        self.versions = Versions(**v) if v else self.versions
        self.toolchain = Toolchain(self.versions)
        self.binaries = dict(st.get("binaries") or {c: str(self.toolchain.binary(c)) for c in COMPONENTS})
        self.nodes = int(st.get("nodes", self.nodes))
        self.node_capacity = st.get("node_capacity", self.node_capacity)
        for comp in COMPONENTS:
            pid = self._read_pid(comp)
            if pid is not None and comp not in self._procs:
                self._procs[comp] = _Proc(pid, None)
        return st

    def _read_pid(self, component: str) -> int | None:
        try:
            return int(self._pidfile(component).read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_ours(self, pid: int) -> bool:
        """True when ``pid`` is alive and is a process of this run (its arguments name the run dir)."""
        if not _pid_alive(pid):
            return False
        marker = str(self.run_dir) + "/"
        args = _cmdline(pid)
        return bool(args) and os.path.basename(args[0]) in COMPONENTS and any(marker in a for a in args[1:])

    def _our_pids_anywhere(self) -> list[int]:
        """Processes whose command line points into this run directory (pidfiles may be lost)."""
        marker = str(self.run_dir) + "/"
        me = os.getpid()
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            args = _cmdline(int(d))
            if (
                args
                and os.path.basename(args[0]) in COMPONENTS
                and any(marker in a for a in args[1:])
                and _pid_alive(int(d))
            ):
                out.append(int(d))
        return out

    def status(self) -> dict[str, str]:
        """Component -> 'running (pid N)' / 'stopped' / 'crashed'."""
        out = {}
        for comp in COMPONENTS:
            pid = self._read_pid(comp)
            if pid is None:
                out[comp] = "stopped"
            elif self._is_ours(pid):
                out[comp] = f"running (pid {pid})"
            else:
                out[comp] = f"dead (pid {pid})"
        return out

    def is_running(self) -> bool:
        if not self.state_file.exists():
            return False
        with contextlib.suppress(Exception):
            self._load_state()
            return all(v.startswith("running") for v in self.status().values()) and self._readyz(2.0)
        return False

    def start(self) -> LocalCluster:
        """``up``: build if needed, clean leftovers, start everything, wait until ready."""
        t0 = time.monotonic()
        self.toolchain = ensure_built(self.versions, progress=self.progress)
        self.binaries = {c: str(self.toolchain.binary(c)) for c in COMPONENTS}
        reap_dead_ephemeral_runs(self.root, progress=self.progress)
        with _flock(self.root / f".{self.name}.lock"):
            if self.state_file.exists():
                if not self.ephemeral and self.is_running():
                    self._say(f"cluster {self.name!r} is already running ({self.run_dir})")
                    self._owner = False
                    return self
                self._say(f"cluster {self.name!r}: cleaning leftovers of a previous run in {self.run_dir}")
                self._teardown()
            self._owner = True
            for attempt in (1, 2):
                try:
                    self._prepare()
                    self._start_all()
                    self._bootstrap()
                    break
                except BaseException as e:
                    self._say(f"cluster {self.name!r}: start failed, stopping what was started")
                    with contextlib.suppress(Exception):
                        self._teardown(keep_logs=True)
                    # A port picked as free was taken by someone else in the meantime: new ports, once.
                    if attempt == 1 and isinstance(e, ClusterError) and "address already in use" in str(e):
                        self._say(f"cluster {self.name!r}: a port was taken meanwhile; retrying with new ports")
                        continue
                    raise
        self._say(f"cluster {self.name!r} is up in {time.monotonic() - t0:.1f}s (kubeconfig: {self.kubeconfig})")
        return self

    def stop(self) -> None:
        """``down``: stop exactly the processes this run started and remove its data."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        with _flock(self.root / f".{self.name}.lock"):
            if self.state_file.exists():
                with contextlib.suppress(Exception):
                    self._load_state()
            self._teardown(keep_logs=self.keep_data)

    def _teardown(self, keep_logs: bool = False) -> None:
        # Stop in reverse dependency order: kwok, scheduler, controller-manager, apiserver, etcd.
        for comp in reversed(COMPONENTS):
            self._stop_process(comp)
        # Anything left whose command line points into our run dir (e.g. a pidfile was lost).
        stray = self._our_pids_anywhere()
        for pid in stray:
            self._say(f"stopping stray process {pid}: {' '.join(_cmdline(pid))[:120]}")
            self._kill_pid(pid, None)
        self._procs.clear()
        if self.run_dir.exists():
            if keep_logs:
                for sub in ("data", "pki", "pids"):
                    shutil.rmtree(self.run_dir / sub, ignore_errors=True)
                for f in ("state.json", "kubeconfig"):
                    with contextlib.suppress(FileNotFoundError):
                        (self.run_dir / f).unlink()
            else:
                shutil.rmtree(self.run_dir, ignore_errors=True)

    # ------------------------------------------------------------------ preparation

    def _prepare(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for sub in ("pids", "logs", "data", "pki", "kwok"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        # Ports: allocate under a global lock, avoiding ports recorded by other live runs.
        with _flock(self.root / ".ports.lock"):
            taken: set[int] = set()
            for st in self.root.glob("*/state.json"):
                with contextlib.suppress(Exception):
                    taken |= {int(p) for p in json.loads(st.read_text())["ports"].values()}
            names = ["etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
            for n in names:
                p = _free_port(taken)
                taken.add(p)
                self.ports[n] = p
            self._write_state()
        (self.run_dir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        self._say(f"cluster {self.name!r}: generating certificates")
        pki = certs.generate(self.pki_dir, service_ip=SERVICE_IP)
        self._pki = pki
        ca = pki.ca.cert.read_bytes()
        for fname, pair, user in (
            ("kubeconfig", pki.admin, "admin"),
            ("controller-manager.kubeconfig", pki.controller_manager, "system:kube-controller-manager"),
            ("scheduler.kubeconfig", pki.scheduler, "system:kube-scheduler"),
        ):
            _write_yaml(
                self.run_dir / fname,
                _kubeconfig_dict(
                    self.server,
                    ca,
                    user,
                    cert=pair.cert.read_bytes(),
                    key=pair.key.read_bytes(),
                    cluster_name=f"d3os-testenv-{self.name}",
                ),
            )

    def _write_state(self) -> None:
        st = {
            "name": self.name,
            "ports": self.ports,
            "versions": {
                "kubernetes": self.versions.kubernetes,
                "etcd": self.versions.etcd,
                "kwok": self.versions.kwok,
            },
            "bin_dir": str(self.bin_dir),
            "binaries": self.binaries,
            "nodes": self.nodes,
            "node_capacity": self.node_capacity,
            "ephemeral": self.ephemeral,
            "owner_pid": os.getpid() if self.ephemeral else None,
            "created": time.time(),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(st, indent=2))
        tmp.rename(self.state_file)

    # ------------------------------------------------------------------ components

    def component_command(self, comp: str) -> list[str]:
        r = self.run_dir
        p = self.ports
        exe = self.binaries
        pki = r / "pki"
        if comp == "etcd":
            peer = f"http://127.0.0.1:{p['etcd-peer']}"
            client = f"http://127.0.0.1:{p['etcd']}"
            return [
                exe["etcd"],
                "--name=d3os",
                f"--data-dir={r}/data/etcd",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=d3os={peer}",
                "--initial-cluster-state=new",
                f"--initial-cluster-token=d3os-testenv-{self.name}",
                "--quota-backend-bytes=8589934592",
                "--log-level=warn",
                "--logger=zap",
                # 3.5+: data is throw-away, skip fsync (Debian's 3.4 fallback does not know the flag)
                *(["--unsafe-no-fsync=true"] if _etcd_version(Path(exe["etcd"])) >= (3, 5) else []),
            ]
        if comp == "kube-apiserver":
            return [
                exe["kube-apiserver"],
                f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
                "--etcd-prefix=/registry",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p['kube-apiserver']}",
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
                "--profiling=false",
                "--goaway-chance=0",
                # Bound the HTTP server shutdown to 2 s (default: --request-timeout, 60 s, while watch
                # connections are open) so stop_component/down are quick.
                "--shutdown-send-retry-after=true",
                # Who sent which request (user, user agent, verb, resource, timestamps), one JSON line each:
                # tests and benchmarks read it to count a client's requests by verb and to prove which
                # replica wrote what. Control-plane components and the kwok node agent are left out.
                f"--audit-policy-file={r}/audit-policy.yaml",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=512",
                "--audit-log-maxbackup=1",
                "--audit-log-mode=batch",
                "--audit-log-batch-max-wait=1s",
            ]
        if comp == "kube-controller-manager":
            kc = f"{r}/controller-manager.kubeconfig"
            return [
                exe["kube-controller-manager"],
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['kube-controller-manager']}",
                f"--cert-dir={pki}/controller-manager",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez",
                "--leader-elect=false",
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
        if comp == "kube-scheduler":
            kc = f"{r}/scheduler.kubeconfig"
            return [
                exe["kube-scheduler"],
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['kube-scheduler']}",
                f"--cert-dir={pki}/scheduler",
                "--authorization-always-allow-paths=/healthz,/readyz,/livez",
                "--leader-elect=false",
                "--profiling=false",
            ]
        if comp == "kwok":
            return [
                exe["kwok"],
                f"--kubeconfig={r}/kubeconfig",
                f"--config={self.toolchain.kwok_stages}",
                "--manage-all-nodes=true",
                # without node Leases the node lifecycle controller marks every node NotReady after ~40 s
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{p['kwok']}",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
            ]
        raise ClusterError(f"unknown component {comp!r} (known: {', '.join(COMPONENTS)})")

    def _spawn(self, comp: str) -> None:
        cmd = self.component_command(comp)
        log = self.log_file(comp)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.run_dir / "kwok")  # keep kwok away from ~/.kwok
        env.pop("KUBECONFIG", None)
        with open(log, "ab") as lf:
            lf.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
            lf.flush()
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=lf,
                stderr=subprocess.STDOUT,
                cwd=self.run_dir,
                env=env,
                start_new_session=True,
                close_fds=True,
                # An ephemeral cluster (pytest session) dies with its owner even on SIGKILL. Only from
                # the main thread: PDEATHSIG fires when the *thread* that forked exits.
                preexec_fn=_die_with_parent if self.ephemeral and _on_main_thread() else None,
            )
        self._pidfile(comp).write_text(f"{popen.pid}\n")
        self._procs[comp] = _Proc(popen.pid, popen)

    def _alive(self, comp: str) -> bool:
        pr = self._procs.get(comp)
        if pr is None:
            return False
        if pr.popen is not None:
            return pr.popen.poll() is None
        return self._is_ours(pr.pid)

    def _crash_report(self, comp: str) -> str:
        pr = self._procs.get(comp)
        code = pr.popen.returncode if pr and pr.popen else "unknown: not our child"
        return f"{comp} exited (exit code {code}); last lines of {self.log_file(comp)}:\n{_tail(self.log_file(comp))}"

    def check(self) -> None:
        """Raise ClusterError (with the tail of its log) if a component this handle runs has exited.

        Components stopped on purpose with ``stop_component`` are not checked.
        """
        for comp, pr in list(self._procs.items()):
            if pr.popen is None:  # adopted from a pidfile: another process may have stopped/restarted it
                pid = self._read_pid(comp)
                if pid is None:
                    del self._procs[comp]
                elif pid != pr.pid:
                    self._procs[comp] = _Proc(pid, None)
        self._check_alive()

    def close(self) -> None:
        """Close the API client (does not stop the cluster)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _check_alive(self, comps: Sequence[str] | None = None) -> None:
        for comp in comps or list(self._procs):
            if comp in self._procs and not self._alive(comp):
                raise ClusterError(self._crash_report(comp))

    def _wait(
        self,
        what: str,
        cond: Callable[[], bool],
        timeout: float,
        interval: float = 0.2,
        detail: Callable[[], str] | None = None,
    ) -> None:
        timeout *= self.timeout_scale
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while True:
            self._check_alive()
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

    def _ssl_admin(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        ctx.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return ctx

    def _http_ok(self, url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    def _readyz(self, timeout: float = 2.0) -> bool:
        return self._http_ok(f"{self.server}/readyz", self._ssl_admin(), timeout)

    def _component_healthy(self, comp: str) -> bool:
        p = self.ports
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        if comp == "etcd":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{p['etcd']}/health", timeout=2) as r:
                    return bool(json.loads(r.read()).get("health") == "true")
            except (urllib.error.URLError, OSError, ValueError):
                return False
        if comp == "kube-apiserver":
            return self._readyz()
        if comp in ("kube-controller-manager", "kube-scheduler"):
            return self._http_ok(f"https://127.0.0.1:{p[comp]}/healthz", insecure)
        if comp == "kwok":
            return self._http_ok(f"http://127.0.0.1:{p['kwok']}/healthz")
        return False

    def _start_component_and_wait(self, comp: str) -> None:
        self._start_components_and_wait([comp])

    def _start_components_and_wait(self, comps: Sequence[str]) -> None:
        """Start ``comps`` together, then wait until each is healthy."""
        t = time.monotonic()
        for comp in comps:
            self._spawn(comp)
        for comp in comps:
            self._wait_healthy(comp)
            self._say(f"  {comp} healthy in {time.monotonic() - t:.1f}s (pid {self._procs[comp].pid})")

    def _wait_healthy(self, comp: str) -> None:
        log = self.log_file(comp)
        self._wait(
            f"{comp} to become healthy (log: {log})",
            lambda: self._component_healthy(comp),
            _START_TIMEOUTS[comp],
            detail=lambda: "last log lines:\n" + _tail(log, 15),
        )

    def _start_all(self) -> None:
        self._say(f"cluster {self.name!r}: starting control plane in {self.run_dir}")
        self._start_components_and_wait(["etcd"])
        self._start_components_and_wait(["kube-apiserver"])
        # These three only need the apiserver: start them side by side.
        self._start_components_and_wait(["kube-controller-manager", "kube-scheduler", "kwok"])

    def stop_component(self, comp: str, sig: int = signal.SIGTERM) -> None:
        """Stop one component (chaos tests); ``start_component`` brings it back on the same port."""
        if comp not in COMPONENTS:
            raise ClusterError(f"unknown component {comp!r} (known: {', '.join(COMPONENTS)})")
        self._stop_process(comp, sig)

    def start_component(self, comp: str, wait: bool = True) -> None:
        if comp not in COMPONENTS:
            raise ClusterError(f"unknown component {comp!r} (known: {', '.join(COMPONENTS)})")
        if self._alive(comp):
            return
        if wait:
            self._start_component_and_wait(comp)
        else:
            self._spawn(comp)

    def restart_component(self, comp: str) -> None:
        self.stop_component(comp)
        self.start_component(comp)

    def _stop_process(self, comp: str, sig: int = signal.SIGTERM) -> None:
        pr = self._procs.pop(comp, None)
        pid = pr.pid if pr else self._read_pid(comp)
        if pid is not None:
            if pr is not None and pr.popen is not None:
                self._kill_pid(pid, pr.popen, sig)
            elif self._is_ours(pid):
                self._kill_pid(pid, None, sig)
        with contextlib.suppress(FileNotFoundError):
            self._pidfile(comp).unlink()

    def _kill_pid(
        self, pid: int, popen: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 10.0
    ) -> None:
        # Each component runs in its own session/process group; signal the group (go binaries do not
        # fork, but be thorough).
        def send(s: int) -> None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, s)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, s)

        send(sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if popen is not None:
                if popen.poll() is not None:
                    return
            elif not _pid_alive(pid):
                return
            time.sleep(0.05)
        send(signal.SIGKILL)
        if popen is not None:
            with contextlib.suppress(Exception):
                popen.wait(5)
        else:
            end = time.monotonic() + 5
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)

    # ------------------------------------------------------------------ API objects

    def client(self) -> Any:
        """A lightkube Client for the admin kubeconfig."""
        if self._client is None:
            self._client = admin_client(self.kubeconfig)
        return self._client

    def kubectl(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 120.0,
        kubeconfig: Path | str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(str(self.bin_dir / "kubectl"), kubeconfig or self.kubeconfig, args, input, check, timeout)

    def _bootstrap(self) -> None:
        t = time.monotonic()
        self._wait("the `default` namespace's ServiceAccount `default`", self._has_default_sa, 60.0)
        self._create_nodes()
        self._wait(
            f"{self.nodes} nodes to become Ready (kwok log: {self.log_file('kwok')})",
            lambda: self._ready_nodes() >= self.nodes,
            60.0,
            detail=lambda: f"{self._ready_nodes()} of {self.nodes} Ready",
        )
        self._create_storage()
        self._say(
            f"  bootstrap (ServiceAccount, {self.nodes} nodes, StorageClass, {self.pv_pool} PVs) "
            f"in {time.monotonic() - t:.1f}s"
        )

    def _has_default_sa(self) -> bool:
        from lightkube.resources.core_v1 import ServiceAccount

        self.client().get(ServiceAccount, "default", namespace="default")
        return True

    def node_name(self, i: int) -> str:
        return f"kwok-node-{i}"

    def _create_nodes(self) -> None:
        from lightkube import ApiError
        from lightkube.codecs import from_dict

        cl = self.client()
        for i in range(self.nodes):
            name = self.node_name(i)
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
                    "status": {"capacity": dict(self.node_capacity), "allocatable": dict(self.node_capacity)},
                }
            )
            try:
                cl.create(node)
            except ApiError as e:
                if e.status.code != 409:
                    raise

    def _ready_nodes(self) -> int:
        from lightkube.resources.core_v1 import Node

        n = 0
        for node in self.client().list(Node):
            conds = (node.status.conditions if node.status else None) or []
            if any(c.type == "Ready" and c.status == "True" for c in conds):
                n += 1
        return n

    def _create_storage(self) -> None:
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
            self.client().create(sc)
        except ApiError as e:
            if e.status.code != 409:
                raise
        ensure_pvs(self.client(), self.pv_pool, host_root=str(self.run_dir / "data" / "pv"))

    def ensure_pvs(self, n: int) -> int:
        """Make sure at least ``n`` PersistentVolumes are Available; returns how many were created."""
        return ensure_pvs(self.client(), n, host_root=str(self.run_dir / "data" / "pv"))

    # ------------------------------------------------------------------ service-account kubeconfig

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        path: Path | str | None = None,
        duration: str = "24h",
    ) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount ``namespace/name`` (TokenRequest)."""
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        if path is None:
            path = self.run_dir / f"sa-{namespace}-{name}.kubeconfig"
        path = Path(path)
        ca = (self.pki_dir / "ca.crt").read_bytes()
        _write_yaml(
            path,
            _kubeconfig_dict(
                self.server,
                ca,
                f"system:serviceaccount:{namespace}:{name}",
                token=token,
                namespace=namespace,
                cluster_name=f"d3os-testenv-{self.name}",
            ),
        )
        return path


# ---------------------------------------------------------------------- helpers usable without a LocalCluster


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


def list_runs(root: Path | None = None) -> list[dict[str, Any]]:
    root = root or run_root()
    out = []
    for st in sorted(root.glob("*/state.json")):
        with contextlib.suppress(Exception):
            out.append(json.loads(st.read_text()))
    return out


def reap_dead_ephemeral_runs(root: Path | None = None, progress: ProgressFn | None = None) -> list[str]:
    """Tear down ephemeral runs (pytest sessions) whose owning process is gone."""
    root = root or run_root()
    reaped = []
    for st in list_runs(root):
        owner = st.get("owner_pid")
        if not st.get("ephemeral") or owner is None or _pid_alive(int(owner)):
            continue
        name = st["name"]
        if progress:
            progress(f"cleaning leftovers of ephemeral cluster {name!r} (owner pid {owner} is gone)")
        with contextlib.suppress(Exception):
            LocalCluster(name, root=root).stop()
        reaped.append(name)
    return reaped


class ExternalCluster:
    """The same helpers as LocalCluster for a cluster given by a kubeconfig (``D3OS_TEST_KUBECONFIG``).

    Component control (``stop_component``...) is only possible for clusters started by d3os-testenv;
    use :func:`open_cluster`, which returns a LocalCluster handle in that case.
    """

    def __init__(self, kubeconfig: Path | str) -> None:
        self.kubeconfig = Path(kubeconfig)
        if not self.kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {self.kubeconfig} does not exist")
        self.name = "external"
        tc = Toolchain(Versions.from_env())
        self.bin_dir = tc.bin_dir if (tc.bin_dir / "kubectl").exists() else None
        self._client: Any = None
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        ctx_name = cfg.get("current-context")
        ctx: dict[str, Any] = next((c["context"] for c in cfg.get("contexts", []) if c["name"] == ctx_name), {})
        cl: dict[str, Any] = next(
            (c["cluster"] for c in cfg.get("clusters", []) if c["name"] == ctx.get("cluster")), {}
        )
        self.server = cl.get("server", "")
        self._ca = base64.b64decode(cl["certificate-authority-data"]) if "certificate-authority-data" in cl else None
        if self._ca is None and cl.get("certificate-authority"):
            self._ca = Path(cl["certificate-authority"]).read_bytes()

    def client(self) -> Any:
        if self._client is None:
            self._client = admin_client(self.kubeconfig)
        return self._client

    def kubectl(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 120.0,
        kubeconfig: Path | str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        exe = str(self.bin_dir / "kubectl") if self.bin_dir else (shutil.which("kubectl") or "kubectl")
        return run_kubectl(exe, kubeconfig or self.kubeconfig, args, input, check, timeout)

    def ensure_pvs(self, n: int) -> int:
        return ensure_pvs(self.client(), n)

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        path: Path | str | None = None,
        duration: str = "24h",
    ) -> Path:
        if self._ca is None:
            raise ClusterError("the kubeconfig has no certificate-authority(-data); cannot build one for a token")
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        if path is None:
            import tempfile

            fd, tmp = tempfile.mkstemp(prefix=f"sa-{namespace}-{name}-", suffix=".kubeconfig")
            os.close(fd)
            path = tmp
        path = Path(path)
        _write_yaml(
            path,
            _kubeconfig_dict(
                self.server, self._ca, f"system:serviceaccount:{namespace}:{name}", token=token, namespace=namespace
            ),
        )
        return path

    def check(self) -> None:
        """Nothing to check: the processes of an external cluster are not ours."""

    def stop_component(self, comp: str) -> None:
        raise ClusterError("component control needs a cluster started by d3os-testenv")

    start_component = stop_component

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()


def open_cluster(kubeconfig: Path | str) -> LocalCluster | ExternalCluster:
    """A handle for an existing cluster: a LocalCluster if the kubeconfig belongs to a d3os-testenv run."""
    kc = Path(kubeconfig).resolve()
    if kc.name == "kubeconfig" and (kc.parent / "state.json").is_file():
        with contextlib.suppress(Exception):
            c = LocalCluster.attach(kc.parent.name, root=kc.parent.parent)
            c.run_dir = kc.parent
            return c
    return ExternalCluster(kc)
