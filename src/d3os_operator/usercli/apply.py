"""``d3os apply FILE [--wait]``: server-side apply of a product instance (a DataService, an AnalyticsService,
...: the file's kind picks the product), then (``--wait``) its progress until Ready, Stalled or the
timeout; ``rollback --wait`` waits the same way."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from d3os_core import api
from d3os_core.product import ProductDef

from . import connect, offline, watch
from .errors import EXIT_API, CliError
from .status import STATE_WORDS, condition


def load(path: str, product: str | None = None) -> tuple[dict[str, Any], ProductDef]:
    """The one product instance in the file ``path`` ('-': stdin) and its product (the file's kind picks it
    among the installed products, or ``--product``'s), refused (exit 2, naming ``spec.<path>``) unless valid:
    nothing invalid reaches the API server."""
    ds, found = offline.valid_instance(path, offline.catalogue(product))
    return dict(ds), found


def body(ds: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """What to send: the manifest without status, in ``namespace``."""
    out = {k: v for k, v in ds.items() if k != "status"}
    out["metadata"] = {**dict(ds.get("metadata") or {}), "namespace": namespace}
    return out


def apply_instance(
    client: Any, ds: Mapping[str, Any], product: ProductDef, namespace: str, force: bool, dry_run: bool = False
) -> dict[str, Any]:
    """Server-side apply of the instance ``ds`` of ``product`` as a person (``d3os apply``; ``d3os diff`` with
    ``dry_run``)."""
    from lightkube.types import PatchType

    from ..kube import product_kind

    return dict(
        client.patch(
            product_kind(product.names).res,
            ds["metadata"]["name"],
            body(ds, namespace),
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=connect.FIELD_MANAGER,
            force=force,
            dry_run=dry_run,
        )
    )


def conflicts(exc: BaseException) -> dict[str, list[str]] | None:
    """{field manager: [fields]} of a server-side apply refused for fields other managers own (a 409 whose
    causes are ``FieldManagerConflict``), else None."""
    from lightkube import ApiError

    if not isinstance(exc, ApiError) or exc.status.code != 409 or exc.status.details is None:
        return None
    found: dict[str, list[str]] = {}
    for cause in exc.status.details.causes or []:
        if cause.reason != "FieldManagerConflict":
            continue
        message = cause.message or ""
        manager = message.split('"')[1] if message.count('"') >= 2 else message
        found.setdefault(manager, []).append(cause.field or "?")
    return found or None


def explain_conflict(exc: BaseException, args: argparse.Namespace, kind: str, namespace: str, name: str) -> None:
    """Re-raise a field-manager conflict as one line that names the fields, who manages them and the commands
    that resolve it (``--force-conflicts``, or keep using the other tool); any other error as it is."""
    found = conflicts(exc)
    if found is None:
        raise exc
    owners = "; ".join(f'{", ".join(fields)} managed by "{manager}"' for manager, fields in found.items())
    ns = f" -n {args.namespace}" if args.namespace else ""
    kubectl = " (a client-side `kubectl apply` made them its own)" if any(
        m == "kubectl-client-side-apply" for m in found) else ""
    raise CliError(EXIT_API, f"conflict: {kind} {namespace}/{name}: {owners}{kubectl}; to take them over: "
                             f"{args.prog} apply {args.file}{ns} --force-conflicts (`{args.prog} diff ... "
                             "--force-conflicts` shows the result first), or keep changing them with the tool "
                             "that manages them") from None


def progress_line(elapsed: float, ds: Mapping[str, Any]) -> str:
    status = ds.get("status") or {}
    comps = status.get("components") or []
    ready = sum(1 for c in comps if c.get("ready"))
    busy = [
        f"{c['name']}: {STATE_WORDS.get(c.get('state', ''), c.get('state', ''))}"
        + (f" ({c['message']})" if c.get("message") else "")
        for c in comps
        if c.get("state") in ("Progressing", "Failed", "Conflict")
    ]
    tail = ("   " + "; ".join(busy)) if busy else ""
    return f"{elapsed:6.1f}s  {ready:>2}/{len(comps)} ready  {status.get('message', '')}{tail}"


def wait_for_outcome(
    config: Any,
    client: Any,
    name: str,
    namespace: str,
    generation: int,
    timeout: float,
    emit: Callable[[str], None],
    product: ProductDef,
) -> int:
    """Progress lines of the instance ``name`` of ``product`` until Ready=True (0), Stalled=True (1) at
    ``generation``, or the timeout (1).

    Stalled, not Degraded: a failure beside a branch still rolling out, or one a rollback is repairing, still
    moves; Stalled is the core's word for "nothing changes until someone does" (what kstatus calls Failed).
    A status without Stalled (an operator from before it) ends on Degraded."""
    from ..kube import product_kind

    res = product_kind(product.names).res
    start = time.monotonic()
    deadline = start + timeout
    last = ""
    current = connect.get(client, res, name, namespace)
    with contextlib.closing(watch.states(config, current, namespace, name, deadline, resources=[res])) as states:
        for ds in states:
            elapsed = time.monotonic() - start
            if ds is None:
                emit(f"{elapsed:6.1f}s  {product.names.kind} {namespace}/{name} was deleted")
                return 1
            status = ds.get("status") or {}
            observed = int(status.get("observedGeneration") or 0)
            if observed < generation:
                continue  # status of an older spec: not about what we applied
            line = progress_line(elapsed, ds)
            if line.split("  ", 1)[1] != last:
                last = line.split("  ", 1)[1]
                emit(line)
            if condition(status, "Ready").get("status") == "True":
                emit(f"{elapsed:6.1f}s  Ready: {condition(status, 'Ready').get('message', '')}".rstrip())
                return 0
            stalled = condition(status, "Stalled")
            ended = stalled if stalled else condition(status, "Degraded")
            if ended.get("status") == "True":
                word = "Stalled" if stalled else "Degraded"
                emit(f"{elapsed:6.1f}s  {word} ({ended.get('reason')}): {ended.get('message', '')}")
                return 1
    emit(f"{time.monotonic() - start:6.1f}s  timed out after {timeout:g}s waiting for Ready")
    return 1


def printer(out: TextIO) -> Callable[[str], None]:
    """Write a line to ``out`` at once (progress is read as it comes)."""

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return emit


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    ds, product = load(args.file, args.product)
    config = connect.kubeconfig(args)
    with connect.client(config) as client:
        ns = connect.namespace(args, client, ds)
        name = ds["metadata"]["name"]
        try:
            applied = apply_instance(client, ds, product, ns, args.force_conflicts)
        except Exception as exc:
            explain_conflict(exc, args, product.names.kind, ns, name)
        generation = int(applied["metadata"].get("generation") or 1)
        out.write(f"{product.names.kind.lower()}.{api.GROUP}/{name} applied (namespace {ns}, generation "
                  f"{generation})\n")
        out.flush()
        if not args.wait:
            return 0
        return wait_for_outcome(config, client, name, ns, generation, args.timeout, printer(out), product)
