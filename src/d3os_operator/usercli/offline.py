"""The offline commands of ``d3os``: render, validate, plan (against a given cluster state), crd, reference.

Nothing here talks to a cluster: each reads a file, calls the pure core and prints YAML. They live in the
command line, not in the core, because reading files and printing is I/O; they import neither lightkube
nor an HTTP client, so they work where only the core's dependencies (pydantic, PyYAML) are installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from d3os_core import api
from d3os_core.crd import crd_manifest
from d3os_core.desired import desired
from d3os_core.planner import plan
from d3os_core.product import ProductDef
from d3os_core.productload import ProductFileError
from d3os_core.render import Parent, parent_of
from d3os_core.types import JSON, Facts, ObjKey, Observed, ProbeResult
from d3os_core.validation import FieldError, SpecError, metadata_name_errors, parse_spec
from d3os_core.yamlload import DuplicateKeyError, load_all
from d3os_core.yamlout import dump_all

from .. import products as product_files
from .errors import CliError
from .output import document, resource_name

EXIT_INVALID = 2
MAX_INSTANCE_BYTES = 3 * 1024 * 1024
"""The API server refuses a request body over 3 MiB (and etcd an object over 1.5 MiB): an instance file larger
than that can never be applied, and PyYAML would take seconds per MB to say so."""


def _fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    raise CliError(code, message)


def read_text(path: str, limit: int | None = None) -> str:
    """The text of ``path`` ('-': stdin): refused in one line when unreadable, larger than ``limit`` bytes
    (before anything is parsed), or not UTF-8 text (a binary file)."""
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(limit + 1 if limit is not None else -1)
        else:
            with open(path, "rb") as fh:
                raw = fh.read(limit + 1 if limit is not None else -1)
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")
    if limit is not None and len(raw) > limit:
        _fail(f"{path}: larger than {limit // (1024 * 1024)} MiB, the most the API server accepts in one request "
              "(an instance is a few KiB)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"{path}: not a YAML text file: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8")


def _load_docs(path: str, limit: int | None = MAX_INSTANCE_BYTES) -> list[Any]:
    text = read_text(path, limit)
    try:
        return [d for d in load_all(text) if d is not None]
    except DuplicateKeyError as exc:
        _fail(f"{path}: {exc.problem}")
    except yaml.YAMLError as exc:
        _fail(f"{path}: not valid YAML: {exc}".replace("\n", " "))


def catalogue(product: str | None = None) -> tuple[ProductDef, ...]:
    """The products a file may be an instance of: the one in ``product`` (a product folder or an installed
    product's name) when given, else every installed product."""
    try:
        if product is None:
            return product_files.load_catalogue()
        if Path(product).exists():
            return (product_files.load_dir(product),)
        found = [p for p in product_files.load_catalogue() if p.name == product]
    except ProductFileError as exc:
        _fail(str(exc).replace("\n", "; "))
    if not found:
        names = ", ".join(p.name for p in product_files.load_catalogue())
        _fail(f"--product {product}: neither a product folder nor an installed product; installed: {names}")
    return (found[0],)


def _what(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str):
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        return f"a {doc['kind']}" + (f" ({name})" if isinstance(name, str) else "")
    if isinstance(doc, dict):
        return "a mapping without a kind"
    return {"str": "a string", "list": "a list"}.get(type(doc).__name__, f"a {type(doc).__name__}")


def found_text(docs: Sequence[Any]) -> str:
    """What a file holds, said as a person would: ``a ConfigMap (x), a Secret (y)``, or ``nothing``."""
    return ", ".join(_what(d) for d in docs) or "nothing (no YAML document)"


def load_instance(path: str, products: Sequence[ProductDef] | None = None) -> tuple[JSON, ProductDef]:
    """The one product instance in ``path`` (a DataService, an AnalyticsService, ...) and its product, checked
    for apiVersion and kind."""
    products = tuple(products) if products is not None else catalogue()
    kinds = {p.names.kind: p for p in products}
    docs = _load_docs(path)
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") in kinds]
    if len(found) != 1:
        wanted = " or ".join(kinds)
        _fail(f"{path}: expected exactly one {wanted}; found {found_text(docs)}")
    ds = found[0]
    product = kinds[ds["kind"]]
    if ds.get("apiVersion") != api.API_VERSION:
        _fail(f"{path}: apiVersion must be {api.API_VERSION}, got {ds.get('apiVersion')!r}")
    meta = ds.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        _fail(f"{path}: metadata.name is required")
    if not isinstance(meta.get("namespace", ""), str):
        _fail(f"{path}: metadata.namespace must be a string")
    return ds, product


def _parent(ds: Mapping[str, Any], namespace: str | None, product: ProductDef) -> Parent:
    meta = {**ds["metadata"], "uid": ds["metadata"].get("uid") or f"<uid of the {product.names.kind}>"}
    return parent_of(meta, product, namespace)


def _dump(docs: Sequence[Any]) -> None:
    sys.stdout.write(dump_all(docs))


def _problems(ds: Mapping[str, Any], product: ProductDef) -> list[FieldError]:
    """Everything wrong with an instance, as admission and the operator would say it."""
    errors = metadata_name_errors(ds["metadata"]["name"])
    try:
        parse_spec(ds.get("spec"), product)
    except SpecError as exc:
        errors += exc.errors
    return errors


def valid_instance(path: str, products: Sequence[ProductDef] | None = None) -> tuple[JSON, ProductDef]:
    """:func:`load_instance`, refused (exit 2, one line per problem naming ``spec.<path>``) unless the instance
    is valid: the offline verdict, before anything is rendered, planned or sent to a cluster."""
    ds, product = load_instance(path, products)
    errors = _problems(ds, product)
    if errors:
        _fail("\n".join(f"{path}: {err}" for err in errors))
    return ds, product


def cmd_validate(args: argparse.Namespace) -> int:
    ds, product = load_instance(args.file, catalogue(args.product))
    errors = _problems(ds, product)
    for err in errors:
        print(str(err), file=sys.stderr)
    if errors:
        return EXIT_INVALID
    print(f"{args.file}: valid {product.names.kind} {ds['metadata']['name']}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    ds, product = valid_instance(args.file, catalogue(args.product))
    spec = parse_spec(ds.get("spec"), product)
    _dump(desired(_parent(ds, args.namespace, product), spec, product))
    return 0


def _observed_objects(path: str | None) -> dict[ObjKey, JSON]:
    if path is None:
        return {}
    objects: dict[ObjKey, JSON] = {}
    for doc in _load_docs(path, limit=None):
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind", "").endswith("List") else [doc]
        for item in items or []:
            if not isinstance(item, dict) or "kind" not in item or "name" not in (item.get("metadata") or {}):
                _fail(f"{path}: every observed object needs kind and metadata.name")
            objects[(item["kind"], item["metadata"]["name"])] = item
    return objects


def cmd_plan(args: argparse.Namespace) -> int:
    ds, product = valid_instance(args.file, catalogue(args.product))
    objects = _observed_objects(args.observed)
    meta = dict(ds["metadata"])
    if not meta.get("uid"):  # take the uid the observed children point at
        for obj in objects.values():
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("kind") == product.names.kind and ref.get("name") == meta["name"]:
                    meta["uid"] = ref.get("uid")
    meta.setdefault("uid", f"<uid of the {product.names.kind}>")
    meta.setdefault("namespace", args.namespace or "default")
    meta.setdefault("generation", 1)
    if args.finalizer:
        meta["finalizers"] = [api.FINALIZER]
    parent = {**ds, "metadata": meta}
    facts = Facts(now=args.now, secret_seed="")
    first = plan(parent, Observed(objects=objects), facts, product)
    probes = {p.key: ProbeResult(args.third_party == "up", "" if args.third_party == "up" else "down")
              for p in first.probes} if args.third_party != "unknown" else {}
    result = plan(parent, Observed(objects=objects, probes=probes), facts, product) if probes else first
    full = args.full or args.output == "wide"
    if args.output == "name":  # the objects it would apply, as `kubectl apply -o name` names them
        sys.stdout.write("".join(resource_name(a.manifest) + "\n" for a in result.apply))
        return 0
    out: JSON = {
        "apply": [a.manifest if full else {
            "kind": a.manifest["kind"], "name": a.manifest["metadata"]["name"], "component": a.component,
            "create": a.create} for a in result.apply],
        "delete": [{"kind": d.kind, "name": d.name, "component": d.component} for d in result.delete],
        "probes": [{"component": p.component, "check": p.check.describe()} for p in result.probes],
        "events": [{"type": e.type, "reason": e.reason, "message": e.message} for e in result.events],
        "finalizer": result.finalizer,
        "requeueAfter": result.requeue_after,
        "status": result.status,
    }
    sys.stdout.write(document(out, "json" if args.output == "json" else "yaml"))
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    _dump([crd_manifest(p) for p in catalogue(args.product)])
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    from d3os_core.reference import config_reference

    sys.stdout.write("\n".join(config_reference(p) for p in catalogue(args.product)))
    return 0
