"""How the cluster commands reach the cluster: the kubeconfig (``--kubeconfig``, else ``$D3OS_KUBECONFIG``,
else ``$KUBECONFIG``, else ``~/.kube/config``), its context, the namespace, a get that says "absent", and the
lookup of a NAME among the installed products' kinds (``--kind``).

lightkube is imported inside the functions, so the offline commands run without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d3os_core.product import ProductDef

FIELD_MANAGER = "kubectl-d3os"
"""The field manager of what a person applies (``apply``, ``rollback``); the operator's is another."""


def kubeconfig(args: argparse.Namespace) -> Any:
    """The kubeconfig the command line names (a lightkube ``KubeConfig``, :mod:`.kubeconfig`'s merge of a
    ``$KUBECONFIG`` list as kubectl does), narrowed to ``--context``."""
    from . import kubeconfig as kc

    config = kc.load(args.kubeconfig, args.context)
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


def kinds_to_try(kind: str | None, product: str | None = None) -> tuple[ProductDef, ...]:
    """The products whose instances a NAME may be: the one ``--kind`` names (its kind, plural, singular or a
    short name), else every installed product (or ``--product``'s, a folder not installed), DataService (the
    first kind d3os served) first. An unknown ``--kind`` is invalid input (exit 2)."""
    from d3os_core import api

    from .. import products
    from .errors import EXIT_INVALID, CliError
    from .offline import catalogue

    installed = products.installed() if product is None else catalogue(product)
    if kind is None:
        return tuple(sorted(installed, key=lambda p: p.names.kind != api.KIND))
    found = products.by_resource_name(installed, kind)
    if found is None:
        kinds = ", ".join(f"{p.names.kind} ({', '.join((p.names.plural, *p.names.short_names))})" for p in installed)
        among = "an installed product" if product is None else f"--product {product}"
        raise CliError(EXIT_INVALID, f"--kind {kind}: not the kind of {among}; kinds: {kinds}")
    return (found,)


@dataclass(frozen=True)
class Found:
    """What a lookup of NAME found: the products tried, and the one instance (with its product) or None."""

    tried: tuple[ProductDef, ...]
    product: ProductDef | None = None
    instance: dict[str, Any] | None = None

    def not_found(self, namespace: str, name: str) -> str:
        """One line per kind tried, as ``d3os status`` has always said it for a DataService."""
        return "".join(f"{p.names.kind} {namespace}/{name}: not found\n" for p in self.tried)


def find(client: Any, name: str, namespace: str, kind: str | None, product: str | None = None) -> Found:
    """The instance named ``name`` in ``namespace``: of ``--kind`` when given, else of whichever installed
    product has one (a kind whose CRD the cluster lacks has none). Several (one name, two products): invalid
    input, exit 2, asking for ``--kind``.

    Without ``--kind``, a kind the user may not read (403) is left out, as if it had none; only when every
    kind is forbidden is the first one's error raised (the one-line "forbidden ... cannot get ...")."""
    from lightkube import ApiError

    from ..kube import product_kind
    from .errors import EXIT_INVALID, CliError

    candidates = kinds_to_try(kind, product)
    tried: list[ProductDef] = []
    hits: list[tuple[ProductDef, dict[str, Any]]] = []
    forbidden: list[ApiError] = []
    for p in candidates:
        try:
            obj = get(client, product_kind(p.names).res, name, namespace)
        except ApiError as e:
            if len(candidates) == 1 or e.status.code != 403:
                raise
            forbidden.append(e)
            continue
        tried.append(p)
        if obj is not None:
            hits.append((p, obj))
    if forbidden and not tried:
        raise forbidden[0]
    if len(hits) > 1:
        kinds = ", ".join(p.names.kind for p, _ in hits)
        raise CliError(EXIT_INVALID, f"{namespace}/{name} names instances of several kinds ({kinds}): "
                                     "say which with --kind KIND")
    if not hits:
        return Found(tuple(tried))
    return Found(tuple(tried), *hits[0])
