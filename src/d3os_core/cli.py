"""``d3os``: the core on the command line: render, validate, plan (against a fake state) and crd.

Nothing here talks to a cluster: it reads files, calls the pure core and prints YAML.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import yaml

from . import api
from .crd import crd_manifest
from .dataservice import DATASERVICE
from .desired import desired
from .planner import plan
from .render import Parent
from .types import JSON, Facts, ObjKey, Observed, ProbeResult
from .validation import FieldError, SpecError, metadata_name_errors, parse_spec
from .yamlload import DuplicateKeyError, load_all
from .yamlout import dump_all

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
    from .reference import config_reference

    sys.stdout.write(config_reference(DATASERVICE))
    return 0


COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("print every object the operator would create for a DataService file (offline)",
               "Print every desired object of the DataService in FILE as a YAML stream, exactly as the operator "
               "would apply it (credentials Secrets carry a placeholder). Strings any YAML reader could take for "
               "something else are quoted, so the output can go to `kubectl apply -f -`."),
    "validate": ("check a DataService file: exit 0, or 2 with one line per problem naming spec.<path> (offline)",
                 "Check the DataService in FILE against the rules the operator applies (the CRD's and the core's). "
                 "Exit 0 when valid; else exit 2 with one line per problem, each naming the field path "
                 "(spec.mysql.kind) and the allowed values."),
    "plan": ("print the operator's next actions and status for a DataService and a given cluster state (offline)",
             "Run the core's planner on the DataService in FILE against the objects in --observed (default: an "
             "empty namespace) and print what the operator would do next: objects to apply and delete, probes, "
             "events, status. Get the live objects with `kubectl get deploy,sts,ds,svc,cm,secret,pvc -n NS -l "
             "app.kubernetes.io/instance=NAME -o yaml > live.yaml`."),
    "crd": ("print the DataService CustomResourceDefinition (offline)",
            "Print the CustomResourceDefinition generated from the spec model (what crds/ holds)."),
    "reference": ("print the configuration reference as Markdown (offline)",
                  "Print the configuration reference (docs/configuration.md) generated from the spec model."),
}
"""Each offline command: its one-line help (in the command list) and its description (in its --help)."""


def add_commands(sub: Any) -> None:
    """Add the offline commands to a parser's subcommands (``d3os`` adds its cluster commands beside)."""

    def add(name: str) -> argparse.ArgumentParser:
        help_, description = COMMANDS[name]
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_, description=description)
        return parser

    r = add("render")
    r.add_argument("file", help="YAML file with one DataService ('-' reads stdin)")
    r.add_argument("-n", "--namespace", help="namespace the objects go to (default: the file's, else default)")
    r.set_defaults(func=cmd_render)
    v = add("validate")
    v.add_argument("file", help="YAML file with one DataService ('-' reads stdin)")
    v.set_defaults(func=cmd_validate)
    pl = add("plan")
    pl.add_argument("file", help="YAML file with one DataService ('-' reads stdin)")
    pl.add_argument("--observed", help="YAML stream (or List) of live objects; default: an empty namespace")
    pl.add_argument("-n", "--namespace", help="namespace of the DataService (default: the file's, else default)")
    pl.add_argument("--third-party", choices=("up", "down", "unknown"), default="up",
                    help="result of the third-party checks the plan asks for (default: up)")
    pl.add_argument("--full", action="store_true", help="print whole manifests to apply")
    pl.add_argument("--no-finalizer", dest="finalizer", action="store_false",
                    help="treat the resource as not yet carrying the operator's finalizer")
    pl.add_argument("--now", default="1970-01-01T00:00:00Z", help="time stamp for conditions")
    pl.set_defaults(func=cmd_plan)
    add("crd").set_defaults(func=cmd_crd)
    add("reference").set_defaults(func=cmd_reference)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="d3os", description="d3os DataService tools that need no cluster.")
    add_commands(p.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
