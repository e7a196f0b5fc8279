"""A real local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok (simulated kubelets), all on loopback with free ports, one run directory per cluster name.

Run directory layout (``run_root()/<name>/``)::

    state.json            ports, versions, binaries, who owns the run
    pids/<component>.pid  one pidfile per started process
    pki/                  CA, serving/client certificates, service-account key
    kubeconfig            admin kubeconfig (client certificate in group system:masters)
    data/etcd/            etcd data
    logs/<component>.log  stdout+stderr of each component

This module holds the run's life (state, ports, start, stop, one component at a time) and the handles'
entry points; the parts are :mod:`~d3os_testenv.processes` (supervision), :mod:`~d3os_testenv.components`
(command lines), :mod:`~d3os_testenv.bootstrap` (health, waits, the first API objects),
:mod:`~d3os_testenv.base` (what every handle offers) and :mod:`~d3os_testenv.external`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import bootstrap, certs, components
from .base import ClusterBase, kubeconfig_dict, write_yaml
from .bootstrap import ensure_pvs
from .build import ProgressFn, Toolchain, Versions, cache_root, ensure_built
from .components import COMPONENTS
from .errors import ClusterError
from .external import ExternalCluster
from .processes import Supervisor, flock, free_port, pid_alive, tail

__all__ = [
    "COMPONENTS",
    "ClusterError",
    "ExternalCluster",
    "LocalCluster",
    "ensure_pvs",
    "list_runs",
    "open_cluster",
    "reap_dead_ephemeral_runs",
    "run_root",
]
"""The handles and what their users import with them (``ClusterError``, ``ensure_pvs`` for any client)."""

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def run_root() -> Path:
    explicit = os.environ.get("D3OS_TESTENV_RUN_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK):
        return Path(xdg) / "d3os-testenv" / "runs"
    return cache_root() / "runs"


class LocalCluster(ClusterBase):
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
        self.processes = Supervisor(self.root / name, COMPONENTS)
        self.ephemeral = ephemeral
        self.progress = progress
        self.timeout_scale = timeout_scale or float(os.environ.get("D3OS_TESTENV_TIMEOUT_SCALE", "1"))
        self.keep_data = keep_data
        self.toolchain = Toolchain(self.versions)
        self.ports: dict[str, int] = {}
        self.binaries: dict[str, str] = {}
        self._owner = False
        self._client: Any = None

    # ------------------------------------------------------------------ paths & properties

    @property
    def run_dir(self) -> Path:
        return self.processes.run_dir

    @run_dir.setter
    def run_dir(self, path: Path) -> None:
        self.processes.run_dir = path

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
        """kube-apiserver's audit log (JSON lines, see :data:`~d3os_testenv.components.AUDIT_POLICY`); read it
        with :mod:`d3os_testenv.audit`."""
        return self._layout().audit_log

    @property
    def kubeconfig_cluster_name(self) -> str:  # type: ignore[override]
        return f"d3os-testenv-{self.name}"

    @property
    def pv_root(self) -> str:  # type: ignore[override]
        return str(self.run_dir / "data" / "pv")

    def log_file(self, component: str) -> Path:
        return self.processes.log_file(component)

    def _layout(self) -> components.Layout:
        return components.Layout(self.name, self.run_dir, self.ports, self.binaries, self.toolchain.kwok_stages)

    def _kubectl(self) -> str:
        return str(self.bin_dir / "kubectl")

    def _ca_pem(self) -> bytes:
        return (self.pki_dir / "ca.crt").read_bytes()

    def _sa_kubeconfig_path(self, namespace: str, name: str) -> Path:
        return self.run_dir / f"sa-{namespace}-{name}.kubeconfig"

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
        else:
            self.close()

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
        self.processes.adopt()
        return st

    def status(self) -> dict[str, str]:
        """Component -> 'running (pid N)' / 'stopped' / 'dead (pid N)'."""
        return self.processes.status()

    def readyz(self, timeout: float = 2.0) -> bool:
        """The API server answers ``/readyz`` with 200."""
        return bootstrap.readyz(self.server, self.pki_dir, timeout)

    def is_running(self) -> bool:
        if not self.state_file.exists():
            return False
        with contextlib.suppress(Exception):
            self._load_state()
            return all(v.startswith("running") for v in self.status().values()) and self.readyz(2.0)
        return False

    def start(self) -> LocalCluster:
        """``up``: build if needed, clean leftovers, start everything, wait until ready."""
        t0 = time.monotonic()
        self.toolchain = ensure_built(self.versions, progress=self.progress)
        self.binaries = {c: str(self.toolchain.binary(c)) for c in COMPONENTS}
        reap_dead_ephemeral_runs(self.root, progress=self.progress)
        with flock(self.root / f".{self.name}.lock"):
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
        self.close()
        with flock(self.root / f".{self.name}.lock"):
            if self.state_file.exists():
                with contextlib.suppress(Exception):
                    self._load_state()
            self._teardown(keep_logs=self.keep_data)

    def _teardown(self, keep_logs: bool = False) -> None:
        self.processes.stop_all(self._say)
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
        with flock(self.root / ".ports.lock"):
            taken: set[int] = set()
            for st in self.root.glob("*/state.json"):
                with contextlib.suppress(Exception):
                    taken |= {int(p) for p in json.loads(st.read_text())["ports"].values()}
            for n in components.PORTS:
                p = free_port(taken)
                taken.add(p)
                self.ports[n] = p
            self._write_state()
        (self.run_dir / "audit-policy.yaml").write_text(components.AUDIT_POLICY)
        self._say(f"cluster {self.name!r}: generating certificates")
        pki = certs.generate(self.pki_dir, service_ip=components.SERVICE_IP)
        ca = pki.ca.cert.read_bytes()
        for fname, pair, user in (
            ("kubeconfig", pki.admin, "admin"),
            ("controller-manager.kubeconfig", pki.controller_manager, "system:kube-controller-manager"),
            ("scheduler.kubeconfig", pki.scheduler, "system:kube-scheduler"),
        ):
            write_yaml(
                self.run_dir / fname,
                kubeconfig_dict(
                    self.server,
                    ca,
                    user,
                    cert=pair.cert.read_bytes(),
                    key=pair.key.read_bytes(),
                    cluster_name=self.kubeconfig_cluster_name,
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
        return components.command(comp, self._layout())

    def _spawn(self, comp: str) -> None:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.run_dir / "kwok")  # keep kwok away from ~/.kwok
        env.pop("KUBECONFIG", None)
        self.processes.spawn(comp, self.component_command(comp), env, die_with_parent=self.ephemeral)

    def check(self) -> None:
        """Raise ClusterError (with the tail of its log) if a component this handle runs has exited.

        Components stopped on purpose with ``stop_component`` are not checked.
        """
        self.processes.refresh()
        self.processes.check_alive()

    def _wait(
        self, what: str, cond: Callable[[], bool], timeout: float, detail: Callable[[], str] | None = None
    ) -> None:
        """Wait as :func:`~d3os_testenv.bootstrap.wait_until`, timeouts scaled, every component checked."""
        bootstrap.wait_until(
            what, cond, timeout * self.timeout_scale, check_alive=self.processes.check_alive, detail=detail
        )

    def _start_components_and_wait(self, comps: Sequence[str]) -> None:
        """Start ``comps`` together, then wait until each is healthy."""
        t = time.monotonic()
        for comp in comps:
            self._spawn(comp)
        for comp in comps:
            self._wait_healthy(comp)
            self._say(f"  {comp} healthy in {time.monotonic() - t:.1f}s (pid {self.processes.procs[comp].pid})")

    def _wait_healthy(self, comp: str) -> None:
        log = self.log_file(comp)
        self._wait(
            f"{comp} to become healthy (log: {log})",
            lambda: bootstrap.component_healthy(comp, self.ports, self.server, self.pki_dir),
            components.START_TIMEOUTS[comp],
            detail=lambda: "last log lines:\n" + tail(log, 15),
        )

    def _start_all(self) -> None:
        self._say(f"cluster {self.name!r}: starting control plane in {self.run_dir}")
        self._start_components_and_wait(["etcd"])
        self._start_components_and_wait(["kube-apiserver"])
        # These three only need the apiserver: start them side by side.
        self._start_components_and_wait(["kube-controller-manager", "kube-scheduler", "kwok"])

    def stop_component(self, comp: str, sig: int = signal.SIGTERM) -> None:
        """Stop one component (chaos tests); ``start_component`` brings it back on the same port."""
        self.processes.stop(components.known(comp), sig)

    def start_component(self, comp: str, wait: bool = True) -> None:
        if self.processes.alive(components.known(comp)):
            return
        if wait:
            self._start_components_and_wait([comp])
        else:
            self._spawn(comp)

    def restart_component(self, comp: str) -> None:
        self.stop_component(comp)
        self.start_component(comp)

    # ------------------------------------------------------------------ API objects

    def _bootstrap(self) -> None:
        t = time.monotonic()
        bootstrap.bootstrap(
            self.client(),
            nodes=self.nodes,
            capacity=self.node_capacity,
            pv_pool=self.pv_pool,
            pv_root=self.pv_root,
            wait=self._wait,
            kwok_log=self.log_file("kwok"),
        )
        self._say(
            f"  bootstrap (ServiceAccount, {self.nodes} nodes, StorageClass, {self.pv_pool} PVs) "
            f"in {time.monotonic() - t:.1f}s"
        )

    def node_name(self, i: int) -> str:
        return bootstrap.node_name(i)


# ---------------------------------------------------------------------- runs and handles


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
        if not st.get("ephemeral") or owner is None or pid_alive(int(owner)):
            continue
        name = st["name"]
        if progress:
            progress(f"cleaning leftovers of ephemeral cluster {name!r} (owner pid {owner} is gone)")
        with contextlib.suppress(Exception):
            LocalCluster(name, root=root).stop()
        reaped.append(name)
    return reaped


def open_cluster(kubeconfig: Path | str) -> LocalCluster | ExternalCluster:
    """A handle for an existing cluster: a LocalCluster if the kubeconfig belongs to a d3os-testenv run."""
    kc = Path(kubeconfig).resolve()
    if kc.name == "kubeconfig" and (kc.parent / "state.json").is_file():
        with contextlib.suppress(Exception):
            c = LocalCluster.attach(kc.parent.name, root=kc.parent.parent)
            c.run_dir = kc.parent
            return c
    return ExternalCluster(kc)
