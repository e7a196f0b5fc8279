"""What every cluster handle offers, whoever runs the cluster: an API client, kubectl, the PersistentVolume
pool and ServiceAccount kubeconfigs. :class:`~d3os_testenv.cluster.LocalCluster` (a control plane this
package runs) and :class:`~d3os_testenv.external.ExternalCluster` (any cluster given by a kubeconfig)
derive from :class:`ClusterBase`; the pytest fixtures, the harness and the bench use only this surface and
``stop_component``/``start_component``, which only a LocalCluster can do."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import yaml

from .errors import ClusterError


def kubeconfig_dict(
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


def write_yaml(path: Path, data: Any, mode: int = 0o600) -> None:
    """Write ``data`` atomically, readable by its owner only (kubeconfigs hold keys and tokens)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    tmp.rename(path)


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


class ClusterBase(ABC):
    """A handle on a running cluster; subclasses say where it is and how its files are laid out."""

    name: str
    _client: Any = None

    @property
    @abstractmethod
    def kubeconfig(self) -> Path:
        """The admin kubeconfig."""

    @property
    @abstractmethod
    def server(self) -> str:
        """The API server's URL."""

    @abstractmethod
    def _kubectl(self) -> str:
        """The kubectl executable to run."""

    @abstractmethod
    def _ca_pem(self) -> bytes:
        """The cluster's CA certificate (PEM), for the kubeconfigs this handle writes."""

    @abstractmethod
    def _sa_kubeconfig_path(self, namespace: str, name: str) -> Path:
        """Where a ServiceAccount kubeconfig goes when the caller names no path."""

    kubeconfig_cluster_name = "d3os-testenv"
    pv_root = "/tmp/d3os-testenv-pv"
    """hostPath under which the pool's PersistentVolumes point (nothing is written there: kwok runs no pod)."""

    def client(self) -> Any:
        """A lightkube Client for the admin kubeconfig (one per handle; :meth:`close` closes it)."""
        if self._client is None:
            self._client = admin_client(self.kubeconfig)
        return self._client

    def close(self) -> None:
        """Close the API client (does not stop the cluster)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def kubectl(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float = 120.0,
        kubeconfig: Path | str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self._kubectl(), kubeconfig or self.kubeconfig, args, input, check, timeout)

    def ensure_pvs(self, n: int) -> int:
        """Make sure at least ``n`` PersistentVolumes are Available; returns how many were created."""
        from .bootstrap import ensure_pvs

        return ensure_pvs(self.client(), n, host_root=self.pv_root)

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        path: Path | str | None = None,
        duration: str = "24h",
    ) -> Path:
        """Write a kubeconfig that authenticates as ServiceAccount ``namespace/name`` (TokenRequest)."""
        ca = self._ca_pem()
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        path = Path(path) if path is not None else self._sa_kubeconfig_path(namespace, name)
        write_yaml(
            path,
            kubeconfig_dict(
                self.server,
                ca,
                f"system:serviceaccount:{namespace}:{name}",
                token=token,
                namespace=namespace,
                cluster_name=self.kubeconfig_cluster_name,
            ),
        )
        return path

    def check(self) -> None:
        """Raise ClusterError if a process of the cluster that this handle runs has died (none by default)."""
        return None

    def stop_component(self, comp: str) -> None:
        raise ClusterError("component control needs a cluster started by d3os-testenv")

    start_component = stop_component
    restart_component = stop_component


def kubectl_on_path(bin_dir: Path | None) -> str:
    """``bin_dir``'s kubectl when there is one, else the one on PATH."""
    return str(bin_dir / "kubectl") if bin_dir else (shutil.which("kubectl") or "kubectl")
