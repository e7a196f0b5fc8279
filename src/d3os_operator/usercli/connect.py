"""How the cluster commands reach the cluster: the kubeconfig (``--kubeconfig``, else ``$D3OS_KUBECONFIG``,
else ``$KUBECONFIG``, else ``~/.kube/config``), its context, the namespace, and a get that says "absent".

lightkube is imported inside the functions, so the offline commands run without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

FIELD_MANAGER = "kubectl-d3os"
"""The field manager of what a person applies (``apply``, ``rollback``); the operator's is another."""


def kubeconfig(args: argparse.Namespace) -> Any:
    """The kubeconfig the command line names (a lightkube ``KubeConfig``), narrowed to ``--context``."""
    from lightkube import KubeConfig

    config = KubeConfig.from_file(args.kubeconfig) if args.kubeconfig else KubeConfig.from_env()
    return config.get(args.context) if args.context else config


def client(config: Any) -> Any:
    """A synchronous lightkube client for ``config`` (from :func:`kubeconfig`)."""
    from lightkube import Client

    return Client(config=config, field_manager=FIELD_MANAGER, trust_env=False)


def namespace(args: argparse.Namespace, client: Any, manifest: Mapping[str, Any] | None = None) -> str:
    """``-n``, else the manifest's ``metadata.namespace``, else the kubeconfig context's, else default."""
    if args.namespace:
        return str(args.namespace)
    if manifest is not None and (manifest.get("metadata") or {}).get("namespace"):
        return str(manifest["metadata"]["namespace"])
    return str(client.namespace or "default")


def get(client: Any, res: Any, name: str, namespace: str) -> dict[str, Any] | None:
    """The object, or None when the API server says 404."""
    from lightkube import ApiError

    try:
        return dict(client.get(res, name, namespace=namespace))
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise
