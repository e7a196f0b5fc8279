"""``d3os status NAME [--kind KIND] [--watch]``: the chain, each component's state and reason, the conditions.

NAME is looked up under every installed product's kind (or only ``--kind``'s): a DataService, an
AnalyticsService, ...; when two products have an instance of that name there, ``--kind`` must say which."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from d3os_core.status import find_condition
from d3os_core.text import display_width

from . import connect, output, watch
from .errors import EXIT_INTERRUPTED, EXIT_INVALID, CliError

STATE_WORDS = {
    "Ready": "ready",
    "Progressing": "rolling",
    "Waiting": "waiting",
    "Pending": "waiting",
    "Failed": "failed",
    "Conflict": "failed",
}
STATE_MARKS = {"ready": "✓", "rolling": "↻", "waiting": "…", "failed": "✗"}


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    """The condition ``type_`` of a status, or {}."""
    return find_condition(status.get("conditions"), type_)


text_width = display_width
"""Terminal columns of a string: CJK characters (the seed's PHASE, ``mysql已部署``) take two."""


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart, aligned in terminal columns."""
    widths = [max(text_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c + " " * (widths[i] - text_width(c)) for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
    return out


def format_status(
    ds: Mapping[str, Any] | None, name: str, namespace: str, kinds: Sequence[str] = ("DataService",),
    wide: bool = False,
) -> str:
    """The screen of ``d3os status``: header, chain, components, conditions. ``kinds``: the kinds NAME was
    looked up as (the header names the instance's own kind; "not found" is said for each); ``wide``: each
    component's step start and desired-state hash too."""
    if ds is None:
        return "".join(f"{kind} {namespace}/{name}: not found\n" for kind in kinds)
    meta = ds.get("metadata") or {}
    status = ds.get("status") or {}
    comps = status.get("components") or []
    ready = sum(1 for c in comps if c.get("ready"))
    kind = str(ds.get("kind") or kinds[0])
    lines = [
        f"{kind} {namespace}/{name}   generation {meta.get('generation')}, "
        f"observed {status.get('observedGeneration', '-')}   {ready}/{len(comps)} ready"
        + (f"   {status['summary']}" if status.get("summary") else ""),
        f"PHASE    {status.get('phase') or '-'}",
        f"CHAIN    {status.get('message') or '-'}",
        "",
    ]
    if meta.get("deletionTimestamp"):
        lines.insert(1, "DELETING (children go in reverse order, then the finalizer is removed)")
    if comps:
        rows = [["COMPONENT", "KIND", "OBJECT", "STATE", *(["SINCE", "HASH"] if wide else []), "REASON"]]
        for c in comps:
            word = STATE_WORDS.get(str(c.get("state")), str(c.get("state", "?")).lower())
            extra = [str(c.get("since") or "-"), str(c.get("target") or c.get("hash") or "-")] if wide else []
            rows.append(
                [
                    str(c.get("name", "")),
                    str(c.get("kind", "")),
                    str(c.get("object", "")),
                    f"{STATE_MARKS.get(word, '?')} {word}",
                    *extra,
                    str(c.get("message", "")),
                ]
            )
        lines += [*table(rows), ""]
    else:
        lines += ["(no component status yet: is the operator running?)", ""]
    conds = status.get("conditions") or []
    if conds:
        rows = [["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"]]
        for c in conds:
            rows.append(
                [
                    str(c.get("type", "")),
                    str(c.get("status", "")),
                    str(c.get("reason", "")),
                    str(c.get("lastTransitionTime", "")),
                    str(c.get("message", "")),
                ]
            )
        lines += table(rows)
    return "\n".join(lines).rstrip() + "\n"


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from ..kube import product_kind

    if args.watch and args.output in ("json", "yaml", "name"):
        raise CliError(EXIT_INVALID, f"--watch with -o {args.output}: the screens are tables (-o wide or none)")
    config = connect.kubeconfig(args)
    with connect.client(config) as client:
        ns = connect.namespace(args, client)
        found = connect.find(client, args.name, ns, args.kind, args.product)
    ds = found.instance
    watched = (found.product,) if found.product is not None else found.tried
    kinds = [p.names.kind for p in watched]
    if not args.watch:
        if ds is not None and args.output in ("json", "yaml", "name"):
            output.write_objects([ds], args.output, out, single=True)
        else:
            out.write(format_status(ds, args.name, ns, kinds, wide=args.output == "wide"))
        return 0 if ds is not None else 1
    tty = out.isatty()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        with contextlib.closing(watch.states(config, ds, ns, args.name, deadline,
                                             resources=[product_kind(p.names).res for p in watched])) as states:
            _redraw(states, args.name, ns, kinds, out, tty, args.output == "wide")
    except KeyboardInterrupt:  # Ctrl-C: the documented 130, quietly (as kubectl get --watch)
        return EXIT_INTERRUPTED
    return 0


def _redraw(states: Any, name: str, ns: str, kinds: Sequence[str], out: TextIO, tty: bool, wide: bool) -> None:
    """Each state a new screen (the terminal cleared, else a time-stamped separator), unchanged ones skipped."""
    last = None
    for state in states:
        screen = format_status(state, name, ns, kinds, wide)
        if screen == last:
            continue
        last = screen
        if tty:
            out.write("\x1b[H\x1b[2J")
        else:
            out.write(f"--- {time.strftime('%H:%M:%S')}\n")
        out.write(screen)
        out.flush()
