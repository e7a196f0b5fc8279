"""``d3os diff FILE``: a server-side dry-run apply of the product instance in FILE (a DataService, an
AnalyticsService, ...: the file's kind picks the product), and of every object the core renders for it,
against the live objects: a unified diff of what would change. Exit 0 = no change, 1 = changes, 2 = error
(as ``kubectl diff``)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from d3os_core import api
from d3os_core.product import ProductDef
from d3os_core.yamlout import dump

from . import connect
from .apply import apply_instance, explain_conflict, load
from .errors import quiet_stdout

EXIT_CHANGES = 1
EXIT_ERROR = 2

_VOLATILE_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")


def _without_nulls(value: Any) -> Any:
    """A null field is an absent one (the seed's sample says ``nodePort:``; server-side apply keeps the null,
    ``kubectl apply`` drops it): only a real change is shown."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def normalize(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a person compares: no status, no server bookkeeping, no null fields."""
    if not obj:
        return {}
    out = {k: _without_nulls(v) for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_META}
    ann = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if ann:
        meta["annotations"] = ann
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def unified(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, label: str) -> str:
    a = dump(normalize(before), sort_keys=True).splitlines() if before else []
    b = dump(normalize(after), sort_keys=True).splitlines() if after else []
    lines = difflib.unified_diff(a, b, f"live/{label}", f"applied/{label}", lineterm="", n=3)
    return "\n".join(lines)


def _child_diffs(
    client: Any, applied_ds: Mapping[str, Any], product: ProductDef, namespace: str,
) -> list[tuple[str, str]]:
    """(label, diff) for every object the core renders for ``applied_ds`` (an instance of ``product``) whose
    content would change, and for live children the rendering no longer contains (they would be deleted)."""
    from lightkube.types import PatchType

    from d3os_core import desired as desired_objects
    from d3os_core import up_to_date
    from d3os_core.credentials import retained
    from d3os_core.render import parent_of
    from d3os_core.validation import parse_spec

    from ..kube import OWNED, kind_info

    name = applied_ds["metadata"]["name"]
    parent = parent_of({"name": name, "uid": str(applied_ds["metadata"].get("uid") or "<uid>")}, product, namespace)
    spec = parse_spec(applied_ds.get("spec"), product)
    live: dict[tuple[str, str], dict[str, Any]] = {}
    for info in OWNED:
        for o in client.list(info.res, namespace=namespace, labels={api.LABEL_INSTANCE: name}):
            d = {"apiVersion": info.api_version, "kind": info.kind, **dict(o)}  # list items lack them
            labels = d.get("metadata", {}).get("labels") or {}
            # the product label: another product's instance of the same name has children of its own
            if api.owner_instance(d) == name and labels.get(api.LABEL_PRODUCT, "") == parent.product:
                live[(info.kind, d["metadata"]["name"])] = d
    secrets = {n: o for (k, n), o in live.items() if k == "Secret"}
    claims = {n: str(o["metadata"].get("uid", "")) for (k, n), o in live.items() if k == "PersistentVolumeClaim"}
    rendered = desired_objects(parent, spec, product, live_secrets=secrets, claims=claims)
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for desired in rendered:
        kind, oname = desired["kind"], desired["metadata"]["name"]
        seen.add((kind, oname))
        current = live.get((kind, oname))
        if current is not None and up_to_date(desired, current):
            continue  # the operator's own rule
        info = kind_info(desired["apiVersion"], kind)
        after = dict(
            client.patch(
                info.res,
                oname,
                desired,
                namespace=namespace,
                patch_type=PatchType.APPLY,
                field_manager=api.FIELD_MANAGER,
                force=True,
                dry_run=True,
            )
        )
        text = unified(current, after, f"{kind}/{oname}")
        if text:
            out.append((f"{kind}/{oname}", text))
    for (kind, oname), current in sorted(live.items()):
        # claims and their credentials are kept; revisions are history (recorded when Ready), not rendered
        if (kind, oname) not in seen and kind != "ControllerRevision" and not retained(current, kind, parent.uid):
            out.append((f"{kind}/{oname}", unified(current, None, f"{kind}/{oname}")))
    return out


def cmd_diff(args: argparse.Namespace, out: TextIO) -> int:
    """Exit 1 when anything would change, also when the reader stops reading first (``d3os diff F | head``)."""
    from d3os_core.validation import SpecError

    from ..kube import product_kind

    ds, product = load(args.file, args.product)
    kind = product.names.kind
    with connect.client(connect.kubeconfig(args)) as client:
        ns = connect.namespace(args, client, ds)
        name = ds["metadata"]["name"]
        live = connect.get(client, product_kind(product.names).res, name, ns)
        try:
            after = apply_instance(client, ds, product, ns, args.force_conflicts, dry_run=True)
        except Exception as exc:
            explain_conflict(exc, args, kind, ns, name)
        text = unified(live, after, f"{kind}/{name}")
        try:
            children = _child_diffs(client, after, product, ns)
        except SpecError as exc:
            for err in exc.errors:
                print(str(err), file=sys.stderr)
            return EXIT_ERROR
    if not text and not children:
        return 0
    try:
        if text:
            out.write(text + "\n")
        for _label, child in children:
            out.write(child + "\n")
        out.write(
            f"# {1 if text else 0} {kind}, {len(children)} object(s) would change"
            + (f": {', '.join(label for label, _ in children)}" if children else "")
            + "\n"
        )
        out.flush()
    except BrokenPipeError:
        quiet_stdout()
    return EXIT_CHANGES
