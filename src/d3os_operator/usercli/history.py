"""``d3os history`` and ``d3os rollback``: the revision history of a product instance (a DataService, an
AnalyticsService, ...; NAME is looked up as for ``d3os status``, ``--kind`` says which), like ``kubectl rollout``.

- ``d3os history NAME [-n NS]``: one line per revision (a ControllerRevision the operator recorded when
  that spec reached Ready): number, which is current, when it became Ready, the spec generation, and what
  changed from the revision before (images, kinds, replicas, env keys, other fields).
- ``d3os rollback NAME [-n NS] [--to-revision N] [--wait] [--timeout S]``: rewrite the spec from revision
  N (default: the one before the current) with server-side apply, field manager ``kubectl-d3os``, like
  ``kubectl rollout undo``. When fields another manager owns would outlive the apply (a dry run tells),
  it is an update guarded by resourceVersion instead, so the spec is exactly the revision's, in one write
  (``spec.suspend`` is kept as it is: it is not part of a revision). The operator rolls the change out
  like any other; once Ready, that revision takes the next number (as a Deployment's does).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from d3os_core import api
from d3os_core.revisions import KIND, NOT_RECORDED, Revision, by_number, changes, observed_revisions

from . import connect
from .apply import printer, wait_for_outcome
from .errors import EXIT_NO, CliError
from .output import document
from .status import table

if TYPE_CHECKING:
    from d3os_core.product import ProductDef

def _revisions(client: Any, name: str, namespace: str, uid: str) -> list[Revision]:
    from ..kube import kind_info

    info = kind_info("apps/v1", KIND)
    items = client.list(info.res, namespace=namespace,
                        labels={api.LABEL_MANAGED_BY: api.MANAGED_BY, api.LABEL_INSTANCE: name})
    objects = {(KIND, str(o["metadata"]["name"])): dict(o) for o in items}
    return observed_revisions(objects, uid)


def records(revisions: Sequence[Revision], current: str) -> list[dict[str, Any]]:
    """The revisions as ``-o json|yaml`` prints them: number, ControllerRevision name, current or not, when
    Ready, the generation, what changed from the one before, and the spec."""
    out: list[dict[str, Any]] = []
    previous: Revision | None = None
    for r in revisions:
        out.append({
            "revision": r.number, "name": r.name, "current": r.name == current, "readyAt": r.ready_at or None,
            "generation": r.generation or None,
            "change": "; ".join(changes(previous.spec, r.spec)) if previous is not None
            else "initial" if r.number == 1 else "(first revision kept)",
            "spec": dict(r.spec),
        })
        previous = r
    return out


def format_history(revisions: Sequence[Revision], current: str, name: str, namespace: str,
                   kind: str = "DataService", wide: bool = False) -> str:
    """The table of ``d3os history`` (``kind``: the instance's; ``wide``: with each ControllerRevision)."""
    if not revisions:
        return (f"{kind} {namespace}/{name}: no revisions yet (a revision is recorded when a spec "
                "reaches Ready)\n")
    rows = [["REVISION", "CURRENT", "READY AT", "GENERATION", *(["CONTROLLERREVISION"] if wide else []), "CHANGE"]]
    for r in records(revisions, current):
        rows.append([str(r["revision"]), "*" if r["current"] else "", r["readyAt"] or "-",
                     str(r["generation"] or "-"), *([r["name"]] if wide else []), r["change"]])
    return "\n".join(table(rows)) + "\n"


def _load(
    args: argparse.Namespace, client: Any, out: TextIO,
) -> tuple[str, ProductDef, dict[str, Any], list[Revision]] | None:
    """The namespace, the instance's product, the instance and its revisions (None, said on ``out``: not
    found)."""
    ns = connect.namespace(args, client)
    found = connect.find(client, args.name, ns, args.kind, args.product)
    if found.product is None or found.instance is None:
        out.write(found.not_found(ns, args.name))
        return None
    ds = found.instance
    return ns, found.product, ds, _revisions(client, args.name, ns, str(ds["metadata"]["uid"]))


def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    with connect.client(connect.kubeconfig(args)) as client:
        loaded = _load(args, client, out)
    if loaded is None:
        return 1
    ns, product, ds, revs = loaded
    current = str((ds.get("status") or {}).get("currentRevision") or "")
    if args.output == "name":
        out.write("".join(f"controllerrevision.apps/{r.name}\n" for r in revs))
    elif args.output in ("json", "yaml"):
        out.write(document(records(revs, current), args.output))
    else:
        out.write(format_history(revs, current, args.name, ns, product.names.kind, wide=args.output == "wide"))
    return 0


def pick(revisions: Sequence[Revision], current: str, to: int | None) -> Revision | str:
    """The revision to roll back to, or why there is none."""
    if not revisions:
        return "no revisions yet: nothing to roll back to"
    if to is not None:
        found = by_number(revisions, to)
        if found is None:
            return f"revision {to} not found; revisions: {', '.join(str(r.number) for r in revisions)}"
        return found
    cur = next((r for r in revisions if r.name == current), revisions[-1])
    earlier = [r for r in revisions if r.number < cur.number]
    if not earlier:
        return f"revision {cur.number} is the oldest kept: no revision before it"
    return earlier[-1]


def target_spec(revision: Revision, live_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The revision's spec, with the live values of the fields a revision does not record."""
    spec = {k: v for k, v in revision.spec.items() if k not in NOT_RECORDED}
    for k in NOT_RECORDED:
        if k in live_spec:
            spec[k] = live_spec[k]
    return spec


def cmd_rollback(args: argparse.Namespace, out: TextIO) -> int:
    config = connect.kubeconfig(args)
    with connect.client(config) as client:
        return _rollback(args, config, client, out)


def _rollback(args: argparse.Namespace, config: Any, client: Any, out: TextIO) -> int:
    from lightkube.types import PatchType

    from ..kube import product_kind

    loaded = _load(args, client, out)
    if loaded is None:
        return 1
    ns, product, ds, revs = loaded
    res = product_kind(product.names).res
    chosen = pick(revs, str((ds.get("status") or {}).get("currentRevision") or ""), args.to_revision)
    if isinstance(chosen, str):  # no such revision: the answer is "no" (exit 1, as --help says)
        raise CliError(EXIT_NO, f"{product.names.kind} {ns}/{args.name}: {chosen}")
    spec = target_spec(chosen, ds.get("spec") or {})
    if spec == ds.get("spec"):
        out.write(f"skipped rollback: the spec already is revision {chosen.number}\n")
        return 0
    body = {"apiVersion": api.API_VERSION, "kind": product.names.kind,
            "metadata": {"name": args.name, "namespace": ns}, "spec": spec}
    def apply(dry_run: bool) -> dict[str, Any]:
        return dict(client.patch(res, args.name, body, namespace=ns, patch_type=PatchType.APPLY,
                                 field_manager=connect.FIELD_MANAGER, force=True, dry_run=dry_run))

    # One write: server-side apply when it gives exactly the revision's spec (a dry run tells), else an
    # update guarded by resourceVersion (fields other managers own would stay under server-side apply).
    trial = apply(dry_run=True)
    if trial.get("spec") == spec:
        applied = apply(dry_run=False)
    else:
        exact = {k: v for k, v in ds.items() if k != "status"}
        exact["spec"] = spec
        applied = dict(client.replace(res(**exact), field_manager=connect.FIELD_MANAGER))
    generation = int(applied["metadata"].get("generation") or 1)
    out.write(f"{product.names.kind.lower()}.{api.GROUP}/{args.name} rolled back to revision {chosen.number} "
              f"(namespace {ns}, generation {generation})\n")
    out.flush()
    if not args.wait:
        return 0
    return wait_for_outcome(config, client, args.name, ns, generation, args.timeout, printer(out), product)
