"""A cluster this package did not start, given by a kubeconfig (``D3OS_TEST_KUBECONFIG``)."""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .base import ClusterBase, kubectl_on_path
from .build import Toolchain, Versions
from .errors import ClusterError


class ExternalCluster(ClusterBase):
    """The same helpers as LocalCluster for a cluster given by a kubeconfig (``D3OS_TEST_KUBECONFIG``).

    Component control (``stop_component``...) is only possible for clusters started by d3os-testenv;
    use :func:`~d3os_testenv.cluster.open_cluster`, which returns a LocalCluster handle in that case.
    """

    def __init__(self, kubeconfig: Path | str) -> None:
        self._kubeconfig = Path(kubeconfig)
        if not self._kubeconfig.is_file():
            raise ClusterError(f"kubeconfig {self._kubeconfig} does not exist")
        self.name = "external"
        tc = Toolchain(Versions.from_env())
        self.bin_dir = tc.bin_dir if (tc.bin_dir / "kubectl").exists() else None
        self._client: Any = None
        cfg = yaml.safe_load(self._kubeconfig.read_text())
        ctx_name = cfg.get("current-context")
        ctx: dict[str, Any] = next((c["context"] for c in cfg.get("contexts", []) if c["name"] == ctx_name), {})
        cl: dict[str, Any] = next(
            (c["cluster"] for c in cfg.get("clusters", []) if c["name"] == ctx.get("cluster")), {}
        )
        self._server = str(cl.get("server", ""))
        self._ca = base64.b64decode(cl["certificate-authority-data"]) if "certificate-authority-data" in cl else None
        if self._ca is None and cl.get("certificate-authority"):
            self._ca = Path(cl["certificate-authority"]).read_bytes()

    @property
    def kubeconfig(self) -> Path:
        return self._kubeconfig

    @property
    def server(self) -> str:
        return self._server

    def _kubectl(self) -> str:
        return kubectl_on_path(self.bin_dir)

    def _ca_pem(self) -> bytes:
        if self._ca is None:
            raise ClusterError("the kubeconfig has no certificate-authority(-data); cannot build one for a token")
        return self._ca

    def _sa_kubeconfig_path(self, namespace: str, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f"sa-{namespace}-{name}-", suffix=".kubeconfig")
        os.close(fd)
        return Path(tmp)
