"""``d3os get [NAME] [-n NS | -A] [--kind KIND] [-o wide|json|yaml|name]``: the instances of every installed
product kind, as one list (as ``flux get`` or ``helm list``): name, kind, STATUS (``status.summary``), ready
components, PHASE and age; ``-o wide`` adds MESSAGE and the generation observed.

A kind the cluster does not serve (its CRD not installed) or the user may not list is left out, and said on
stderr; when no kind can be listed, the first error is the command's (one line, its exit code)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from . import connect, output
from .errors import EXIT_FORBIDDEN, EXIT_INVALID, EXIT_NOT_FOUND, CliError, describe
from .status import table


def age(created: str | None, now: dt.datetime) -> str:
    """kubectl's short age: ``45s``, ``12m``, ``5h``, ``3d``."""
    if not created:
        return "<unknown>"
    try:
        then = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def row(obj: Mapping[str, Any], now: dt.datetime, wide: bool, all_namespaces: bool) -> list[str]:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    cells = [str(meta.get("name", "")), str(obj.get("kind", "")),
             "Deleting" if meta.get("deletionTimestamp") else str(status.get("summary") or "-"),
             str(status.get("ready") or "-"), str(status.get("phase") or "-"), age(meta.get("creationTimestamp"), now)]
    if wide:
        cells += [f"{status.get('observedGeneration', '-')}/{meta.get('generation', '-')}",
                  str(status.get("message") or "-")]
    return ([str(meta.get("namespace", ""))] if all_namespaces else []) + cells


def listing(items: list[dict[str, Any]], wide: bool, all_namespaces: bool, now: dt.datetime) -> str:
    """The table of ``d3os get``."""
    header = ["NAME", "KIND", "STATUS", "READY", "PHASE", "AGE"] + (["OBSERVED", "MESSAGE"] if wide else [])
    rows = [(["NAMESPACE"] if all_namespaces else []) + header]
    rows += [row(i, now, wide, all_namespaces) for i in items]
    return "\n".join(table(rows)) + "\n"


def cmd_get(args: argparse.Namespace, out: TextIO) -> int:
    from lightkube import ALL_NS

    from ..kube import product_kind

    if args.all_namespaces and args.namespace:
        raise CliError(EXIT_INVALID, "-A/--all-namespaces and -n/--namespace: give one of them")
    products = connect.kinds_to_try(args.kind, args.product)
    items: list[dict[str, Any]] = []
    errors: list[Exception] = []
    with connect.client(connect.kubeconfig(args)) as client:
        ns = ALL_NS if args.all_namespaces else connect.namespace(args, client)
        for p in products:
            info = product_kind(p.names)
            try:
                if args.name:
                    found = connect.get(client, info.res, args.name, ns)
                    listed = [found] if found is not None else []
                else:
                    listed = [dict(o) for o in client.list(info.res, namespace=ns)]
            except Exception as exc:
                said = describe(exc)
                if said is None or said[0] not in (EXIT_FORBIDDEN, EXIT_NOT_FOUND) or len(products) == 1:
                    raise
                errors.append(exc)
                print(f"{args.prog}: warning: {p.names.kind} left out: {said[1]}", file=sys.stderr)
                continue
            items += [{"apiVersion": info.api_version, "kind": info.kind, **o} for o in listed]
    if errors and len(errors) == len(products):
        raise errors[0]
    items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"], o["kind"]))
    if args.name and not items:
        out.write("".join(f"{p.names.kind} {ns}/{args.name}: not found\n" for p in products))
        return 1
    if args.output in ("json", "yaml", "name"):
        output.write_objects(items, args.output, out)
    elif not items:
        where = "any namespace" if args.all_namespaces else f"namespace {ns}"
        print(f"No {', '.join(p.names.kind for p in products)} found in {where}.", file=sys.stderr)
    else:
        out.write(listing(items, args.output == "wide", bool(args.all_namespaces),
                          dt.datetime.now(dt.UTC)))
    return 0
