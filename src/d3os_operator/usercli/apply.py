"""``d3os apply FILE [--wait]``: server-side apply of a DataService, then (``--wait``) its progress until
Ready, Stalled or the timeout; ``rollback --wait`` waits the same way."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from d3os_core import api

from . import connect, offline, watch
from .status import STATE_WORDS, condition


def load(path: str) -> dict[str, Any]:
    """The one DataService in the file ``path`` ('-': stdin)."""
    return dict(offline.load_dataservice(path))


def body(ds: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """What to send: the manifest without status, in ``namespace``."""
    out = {k: v for k, v in ds.items() if k != "status"}
    out["metadata"] = {**dict(ds.get("metadata") or {}), "namespace": namespace}
    return out


def apply_dataservice(
    client: Any, ds: Mapping[str, Any], namespace: str, force: bool, dry_run: bool = False
) -> dict[str, Any]:
    """Server-side apply of the DataService ``ds`` as a person (``d3os apply``; ``d3os diff`` with ``dry_run``)."""
    from lightkube.types import PatchType

    from ..kube import DATASERVICE

    return dict(
        client.patch(
            DATASERVICE.res,
            ds["metadata"]["name"],
            body(ds, namespace),
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=connect.FIELD_MANAGER,
            force=force,
            dry_run=dry_run,
        )
    )


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
) -> int:
    """Progress lines until Ready=True (0), Stalled=True (1) at ``generation``, or the timeout (1).

    Stalled, not Degraded: a failure beside a branch still rolling out, or one a rollback is repairing, still
    moves; Stalled is the core's word for "nothing changes until someone does" (what kstatus calls Failed).
    A status without Stalled (an operator from before it) ends on Degraded."""
    from ..kube import DATASERVICE

    start = time.monotonic()
    deadline = start + timeout
    last = ""
    current = connect.get(client, DATASERVICE.res, name, namespace)
    with contextlib.closing(watch.states(config, current, namespace, name, deadline)) as states:
        for ds in states:
            elapsed = time.monotonic() - start
            if ds is None:
                emit(f"{elapsed:6.1f}s  DataService {namespace}/{name} was deleted")
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


    ds = load(args.file)
    config = connect.kubeconfig(args)
    with connect.client(config) as client:
        ns = connect.namespace(args, client, ds)
        name = ds["metadata"]["name"]
        applied = apply_dataservice(client, ds, ns, args.force_conflicts)
        generation = int(applied["metadata"].get("generation") or 1)
        out.write(f"dataservice.{api.GROUP}/{name} applied (namespace {ns}, generation {generation})\n")
        out.flush()
        if not args.wait:
            return 0
        return wait_for_outcome(config, client, name, ns, generation, args.timeout, printer(out))
