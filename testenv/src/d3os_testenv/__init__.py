"""d3os_testenv: a real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) built from the Go module proxy, for integration tests; the development-only
``d3os-testenv`` distribution (testenv/pyproject.toml), never part of the operator's wheel or image.

    from d3os_testenv import LocalCluster
    with LocalCluster(name="demo") as c:
        c.kubectl("get", "nodes")

Modules: ``cluster`` (LocalCluster, open_cluster), ``base`` (ClusterBase, what every handle offers),
``external`` (ExternalCluster), ``processes`` (supervision), ``components`` (command lines), ``bootstrap``
(health, waits, first API objects), ``build`` (binary recipes), ``certs``, ``audit``, ``cli``
(``d3os-testenv``), ``pytest_plugin``; for the operator: ``harness`` (RunningOperator, StatusRecorder...),
``standin`` (a local third party), ``demo`` (``python -m d3os_testenv.demo``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["BuildError", "ClusterError", "LocalCluster", "ensure_built"]

if TYPE_CHECKING:
    from .build import BuildError, ensure_built
    from .cluster import ClusterError, LocalCluster


def __getattr__(name: str) -> Any:  # lazy: importing the package stays cheap (pytest plugin)
    if name in ("BuildError", "ensure_built"):
        from . import build

        return getattr(build, name)
    if name in ("ClusterError", "LocalCluster"):
        from . import cluster

        return getattr(cluster, name)
    raise AttributeError(name)
