"""A sample instance of a product: every component at its defaults, ready to edit (``d3os product example``).

Microservices need an image and a port of their own; the sample takes the product's defaults where it has
them and gives the others distinct ports from 8080 up, so the sample validates as it is.
"""

from __future__ import annotations

from . import api
from .product import ProductDef, WorkloadKind
from .types import JSON


def sample(product: ProductDef, name: str | None = None) -> JSON:
    """An instance of ``product`` named ``name`` (default ``<product>-sample``) that passes validation."""
    spec: JSON = {}
    used_ports = {c.default_port for c in product.components if c.default_port}
    free = (p for p in range(8080, 65536) if p not in used_ports)
    for c in product.components:
        if c.role == "middleware":
            entry: JSON = {"name": c.default_name, "kind": c.default_kind.value}
            if c.default_kind is WorkloadKind.THIRD_PARTY:
                port = c.default_port or 80
                entry["thirdParty"] = {"url": f"http://{c.default_name}.example.com:{port}{c.third_party_path}"}
        else:
            entry = {"name": c.default_name, "image": c.default_image or f"registry.example.com/{c.key}:latest",
                     "port": c.default_port or next(free), "nodePort": None, "replica": 1, "env": {}}
        spec[c.key] = entry
    return {
        "apiVersion": api.API_VERSION,
        "kind": product.names.kind,
        "metadata": {"name": name or f"{product.name}-sample"},
        "spec": spec,
    }
