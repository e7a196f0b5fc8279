"""At start: which of the given products the cluster is ready for (their CRDs installed, and the same).

The operator never writes CRDs (installing them is the chart's or the administrator's act). A product whose
CRD is missing is named in one log line and the ``d3os_product_served`` metric and is not served, while the
others are; it is served from the next start after its CRD is installed. A product whose installed CRD carries
another fingerprint than its product file's is refused: exit 2, naming both versions and how to align them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from lightkube.core.exceptions import ApiError

from d3os_core import api
from d3os_core.crd import crd_manifest
from d3os_core.product import ProductDef
from d3os_core.productdiff import crd_compatibility

from .apierrors import Answer, classify
from .kube import Kube
from .usercli import errors as clierrors

log = logging.getLogger("d3os_operator.products")

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"


async def served_products(kube: Kube, products: Sequence[ProductDef]) -> tuple[list[ProductDef], list[ProductDef]]:
    """(products to serve, products whose CRD is not installed); :class:`CliError` (exit 2) on a CRD that
    does not match its product file."""
    served: list[ProductDef] = []
    missing: list[ProductDef] = []
    mismatched: list[str] = []
    for product in products:
        want = crd_manifest(product)
        name = want["metadata"]["name"]
        try:
            live = await kube.get_cluster_object(CRD_PATH + name)
        except ApiError as e:
            if classify(e) is not Answer.REFUSED:
                raise
            log.warning("cannot read the CRD %s (forbidden): serving product %s unchecked", name, product.name)
            served.append(product)
            continue
        if live is None:
            log.error("product %s is not served: its CRD %s is not installed; install it (`d3os product crd %s | "
                      "kubectl apply --server-side -f -`, or the chart) and restart the operator",
                      product.name, name, product.name, extra={"product": product.name, "crd": name})
            missing.append(product)
            continue
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        have = annotations.get(api.ANNOTATION_FINGERPRINT)
        wanted = want["metadata"]["annotations"][api.ANNOTATION_FINGERPRINT]
        if have is None:
            log.warning("the CRD %s has no %s annotation (installed before products were files): serving product "
                        "%s; apply its CRD again to record it", name, api.ANNOTATION_FINGERPRINT, product.name)
        elif have != wanted:
            installed = annotations.get(api.ANNOTATION_PRODUCT_VERSION, "unknown")
            breaking = crd_compatibility(live, product)
            change = ("a breaking change: " + ", ".join(e.message for e in breaking) + "; "
                      if breaking else "")
            mismatched.append(
                f"product {product.name} {product.version or '(no version)'}: the installed CRD {name} was generated "
                f"from version {installed} (fingerprint {have}, this file's {wanted}); {change}apply this file's "
                f"CRD (`d3os product crd {product.name} | kubectl apply --server-side -f -`) or run the operator "
                "with the product file the CRD came from"
            )
            continue
        served.append(product)
    if mismatched:
        raise clierrors.CliError(clierrors.EXIT_INVALID, "; ".join(mismatched))
    return served, missing
