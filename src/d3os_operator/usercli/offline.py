"""The offline commands of ``d3os``: render, validate, plan (against a given cluster state), crd, reference.

Nothing here talks to a cluster: each reads a file, calls the pure core and prints YAML. They live in the
command line, not in the core, because reading files and printing is I/O; they import neither lightkube
nor an HTTP client, so they work where only the core's dependencies (pydantic, PyYAML) are installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import yaml

from d3os_core import api
from d3os_core.crd import crd_manifest
from d3os_core.dataservice import DATASERVICE
from d3os_core.desired import desired
from d3os_core.planner import plan
from d3os_core.render import Parent
from d3os_core.types import JSON, Facts, ObjKey, Observed, ProbeResult
from d3os_core.validation import FieldError, SpecError, metadata_name_errors, parse_spec
from d3os_core.yamlload import DuplicateKeyError, load_all
from d3os_core.yamlout import dump_all

EXIT_INVALID = 2


def _fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _load_docs(path: str) -> list[Any]:
    try:
        with open(path, encoding="utf-8") if path != "-" else sys.stdin as fh:
            docs = [d for d in load_all(fh) if d is not None]
    except OSError as exc:
        _fail(f"{path}: {exc.strerror or exc}")
    except DuplicateKeyError as exc:
        _fail(f"{path}: {exc.problem}")
    except yaml.YAMLError as exc:
        _fail(f"{path}: not valid YAML: {exc}".replace("\n", " "))
    return docs


def load_dataservice(path: str) -> JSON:
    """The one DataService in ``path``, checked for apiVersion and kind."""
    docs = _load_docs(path)
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == api.KIND]
    if len(found) != 1:
        _fail(f"{path}: expected exactly one {api.KIND}, found {len(found)}")
    ds = found[0]
    if ds.get("apiVersion") != api.API_VERSION:
        _fail(f"{path}: apiVersion must be {api.API_VERSION}, got {ds.get('apiVersion')!r}")
    meta = ds.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        _fail(f"{path}: metadata.name is required")
    if not isinstance(meta.get("namespace", ""), str):
        _fail(f"{path}: metadata.namespace must be a string")
    return ds


def _parent(ds: Mapping[str, Any], namespace: str | None) -> Parent:
    meta = ds["metadata"]
    return Parent(str(meta["name"]), namespace or str(meta.get("namespace") or "default"),
                  str(meta.get("uid") or "<uid of the DataService>"))


def _dump(docs: Sequence[Any]) -> None:
    sys.stdout.write(dump_all(docs))


def _problems(ds: Mapping[str, Any]) -> list[FieldError]:
    """Everything wrong with a DataService, as admission and the operator would say it."""
    errors = metadata_name_errors(ds["metadata"]["name"])
    try:
        parse_spec(ds.get("spec"), DATASERVICE)
    except SpecError as exc:
        errors += exc.errors
    return errors


def cmd_validate(args: argparse.Namespace) -> int:
    ds = load_dataservice(args.file)
    errors = _problems(ds)
    for err in errors:
        print(str(err), file=sys.stderr)
    if errors:
        return EXIT_INVALID
    print(f"{args.file}: valid {api.KIND} {ds['metadata']['name']}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    ds = load_dataservice(args.file)
    errors = _problems(ds)
    for err in errors:
        print(str(err), file=sys.stderr)
    if errors:
        return EXIT_INVALID
    spec = parse_spec(ds.get("spec"), DATASERVICE)
    _dump(desired(_parent(ds, args.namespace), spec, DATASERVICE))
    return 0


def _observed_objects(path: str | None) -> dict[ObjKey, JSON]:
    if path is None:
        return {}
    objects: dict[ObjKey, JSON] = {}
    for doc in _load_docs(path):
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind", "").endswith("List") else [doc]
        for item in items or []:
            if not isinstance(item, dict) or "kind" not in item or "name" not in (item.get("metadata") or {}):
                _fail(f"{path}: every observed object needs kind and metadata.name")
            objects[(item["kind"], item["metadata"]["name"])] = item
    return objects


def cmd_plan(args: argparse.Namespace) -> int:
    ds = load_dataservice(args.file)
    objects = _observed_objects(args.observed)
    meta = dict(ds["metadata"])
    if not meta.get("uid"):  # take the uid the observed children point at
        for obj in objects.values():
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("kind") == api.KIND and ref.get("name") == meta["name"]:
                    meta["uid"] = ref.get("uid")
    meta.setdefault("uid", "<uid of the DataService>")
    meta.setdefault("namespace", args.namespace or "default")
    meta.setdefault("generation", 1)
    if args.finalizer:
        meta["finalizers"] = [api.FINALIZER]
    parent = {**ds, "metadata": meta}
    facts = Facts(now=args.now, secret_seed="")
    first = plan(parent, Observed(objects=objects), facts)
    probes = {p.key: ProbeResult(args.third_party == "up", "" if args.third_party == "up" else "down")
              for p in first.probes} if args.third_party != "unknown" else {}
    result = plan(parent, Observed(objects=objects, probes=probes), facts) if probes else first
    out: JSON = {
        "apply": [a.manifest if args.full else {
            "kind": a.manifest["kind"], "name": a.manifest["metadata"]["name"], "component": a.component,
            "create": a.create} for a in result.apply],
        "delete": [{"kind": d.kind, "name": d.name, "component": d.component} for d in result.delete],
        "probes": [{"component": p.component, "check": p.check.describe()} for p in result.probes],
        "events": [{"type": e.type, "reason": e.reason, "message": e.message} for e in result.events],
        "finalizer": result.finalizer,
        "requeueAfter": result.requeue_after,
        "status": result.status,
    }
    _dump([out])
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    _dump([crd_manifest()])
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    from d3os_core.reference import config_reference

    sys.stdout.write(config_reference(DATASERVICE))
    return 0
