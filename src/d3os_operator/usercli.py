"""``d3os`` (and ``kubectl d3os``): the command line for people.

Offline commands (``render``, ``validate``, ``plan``, ``crd``, ``reference``) are the core's
(:mod:`d3os_core.cli`); the commands added here talk to a cluster (kubeconfig: ``--kubeconfig``, else
``$D3OS_KUBECONFIG``, else ``$KUBECONFIG``, else ``~/.kube/config``):

- ``d3os status NAME [-n NS] [--watch]``: the chain, each component's state and reason, the conditions;
  ``--watch`` redraws on every change (watch API).
- ``d3os diff FILE [-n NS]``: server-side dry-run apply of the DataService, and of every object the core
  renders for it, against the live objects: a unified diff of what would change. Exit 0 = no change,
  1 = changes, 2 = error (as ``kubectl diff``).
- ``d3os apply FILE [-n NS] [--wait] [--timeout S]``: server-side apply (field manager ``kubectl-d3os``);
  with ``--wait``, progress until Ready=True (exit 0), Degraded=True (exit 1) or the timeout (exit 1).

Errors are one line with an exit code of :mod:`d3os_operator.clierrors`; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from d3os_core import api
from d3os_core import cli as core_cli
from d3os_core.status import find_condition
from d3os_core.text import display_width
from d3os_core.yamlout import dump

from . import __version__, clierrors, completion

FIELD_MANAGER = "kubectl-d3os"
CORE_COMMANDS = ("render", "validate", "plan", "crd", "reference")
EXIT_CHANGES = 1
EXIT_ERROR = 2

STATE_WORDS = {
    "Ready": "ready",
    "Progressing": "rolling",
    "Waiting": "waiting",
    "Pending": "waiting",
    "Failed": "failed",
    "Conflict": "failed",
}
STATE_MARKS = {"ready": "✓", "rolling": "↻", "waiting": "…", "failed": "✗"}


# ---------------------------------------------------------------------------------------------- client


def _client(args: argparse.Namespace) -> Any:
    from lightkube import Client, KubeConfig

    config = KubeConfig.from_file(args.kubeconfig) if args.kubeconfig else KubeConfig.from_env()
    if args.context:
        return Client(config=config.get(args.context), field_manager=FIELD_MANAGER, trust_env=False)
    return Client(config=config, field_manager=FIELD_MANAGER, trust_env=False)


def _namespace(args: argparse.Namespace, client: Any, manifest: Mapping[str, Any] | None = None) -> str:
    if args.namespace:
        return str(args.namespace)
    if manifest is not None and (manifest.get("metadata") or {}).get("namespace"):
        return str(manifest["metadata"]["namespace"])
    return str(client.namespace or "default")


def _get(client: Any, res: Any, name: str, namespace: str) -> dict[str, Any] | None:
    from lightkube import ApiError

    try:
        return dict(client.get(res, name, namespace=namespace))
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


# ---------------------------------------------------------------------------------------------- status


def _cond(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    return find_condition(status.get("conditions"), type_)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    width = display_width
    widths = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c + " " * (widths[i] - width(c)) for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
    return out


def format_status(ds: Mapping[str, Any] | None, name: str, namespace: str) -> str:
    """The screen of ``d3os status``: header, chain, components, conditions."""
    if ds is None:
        return f"DataService {namespace}/{name}: not found\n"
    meta = ds.get("metadata") or {}
    status = ds.get("status") or {}
    comps = status.get("components") or []
    ready = sum(1 for c in comps if c.get("ready"))
    lines = [
        f"DataService {namespace}/{name}   generation {meta.get('generation')}, "
        f"observed {status.get('observedGeneration', '-')}   {ready}/{len(comps)} ready",
        f"PHASE    {status.get('phase') or '-'}",
        f"CHAIN    {status.get('message') or '-'}",
        "",
    ]
    if meta.get("deletionTimestamp"):
        lines.insert(1, "DELETING (children go in reverse order, then the finalizer is removed)")
    if comps:
        rows = [["COMPONENT", "KIND", "OBJECT", "STATE", "REASON"]]
        for c in comps:
            word = STATE_WORDS.get(str(c.get("state")), str(c.get("state", "?")).lower())
            rows.append(
                [
                    str(c.get("name", "")),
                    str(c.get("kind", "")),
                    str(c.get("object", "")),
                    f"{STATE_MARKS.get(word, '?')} {word}",
                    str(c.get("message", "")),
                ]
            )
        lines += [*_table(rows), ""]
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
        lines += _table(rows)
    return "\n".join(lines).rstrip() + "\n"


def _watch_dataservice(
    client: Any, name: str, namespace: str, deadline: float | None
) -> Iterator[dict[str, Any] | None]:
    """The DataService now, then after every change (None when deleted), until ``deadline``.

    lightkube's watch reconnects by itself and blocks while nothing changes, so it runs in a daemon
    thread feeding a queue; the deadline is kept here. Expired resource versions (410) restart it.
    """
    import queue
    import threading

    from lightkube import ApiError

    from .kube import DATASERVICE

    current = _get(client, DATASERVICE.res, name, namespace)
    yield current
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def pump(rv: str | None) -> None:
        while not stop.is_set():
            try:
                for typ, obj in client.watch(
                    DATASERVICE.res,
                    namespace=namespace,
                    fields={"metadata.name": name},
                    resource_version=rv,
                    server_timeout=30,
                ):
                    data = dict(obj)
                    rv = data["metadata"]["resourceVersion"]
                    events.put((typ, data))
                    if stop.is_set():
                        return
            except ApiError as e:
                if e.status.code != 410:
                    events.put(("ERROR", e))
                    return
                events.put(("RELIST", None))
                rv = None
            except Exception as e:
                events.put(("ERROR", e))
                return

    rv0 = (current or {}).get("metadata", {}).get("resourceVersion")
    threading.Thread(target=pump, args=(rv0,), name=f"d3os-watch-{name}", daemon=True).start()
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            try:
                typ, data = events.get(timeout=left)
            except queue.Empty:
                return
            if typ == "ERROR":
                raise data
            if typ == "RELIST":
                yield _get(client, DATASERVICE.res, name, namespace)
            else:
                yield None if typ == "DELETED" else data
    finally:
        stop.set()


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from .kube import DATASERVICE

    client = _client(args)
    ns = _namespace(args, client)
    if not args.watch:
        ds = _get(client, DATASERVICE.res, args.name, ns)
        out.write(format_status(ds, args.name, ns))
        return 0 if ds is not None else 1
    tty = out.isatty()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    last = None
    with contextlib.suppress(KeyboardInterrupt):
        for ds in _watch_dataservice(client, args.name, ns, deadline):
            screen = format_status(ds, args.name, ns)
            if screen == last:
                continue
            last = screen
            if tty:
                out.write("\x1b[H\x1b[2J")
            else:
                out.write(f"--- {time.strftime('%H:%M:%S')}\n")
            out.write(screen)
            out.flush()
    return 0


# ----------------------------------------------------------------------------------------------- apply


def _load(path: str) -> dict[str, Any]:
    return dict(core_cli.load_dataservice(path))


def _body(ds: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    body = {k: v for k, v in ds.items() if k != "status"}
    body["metadata"] = {**dict(ds.get("metadata") or {}), "namespace": namespace}
    return body


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
    client: Any, name: str, namespace: str, generation: int, timeout: float, emit: Callable[[str], None]
) -> int:
    """Progress lines until Ready=True (0), Degraded=True (1) at ``generation``, or the timeout (1)."""
    start = time.monotonic()
    deadline = start + timeout
    last = ""
    for ds in _watch_dataservice(client, name, namespace, deadline):
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
        if _cond(status, "Ready").get("status") == "True":
            emit(f"{elapsed:6.1f}s  Ready: {_cond(status, 'Ready').get('message', '')}".rstrip())
            return 0
        degraded = _cond(status, "Degraded")
        if degraded.get("status") == "True":
            emit(f"{elapsed:6.1f}s  Degraded ({degraded.get('reason')}): {degraded.get('message', '')}")
            return 1
    emit(f"{time.monotonic() - start:6.1f}s  timed out after {timeout:g}s waiting for Ready")
    return 1


def cmd_apply(args: argparse.Namespace, out: TextIO) -> int:
    from .kube import DATASERVICE

    ds = _load(args.file)
    client = _client(args)
    ns = _namespace(args, client, ds)
    from lightkube.types import PatchType

    name = ds["metadata"]["name"]
    applied = dict(
        client.patch(
            DATASERVICE.res,
            name,
            _body(ds, ns),
            namespace=ns,
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=args.force_conflicts,
        )
    )
    generation = int(applied["metadata"].get("generation") or 1)
    out.write(f"dataservice.{api.GROUP}/{name} applied (namespace {ns}, generation {generation})\n")
    out.flush()
    if not args.wait:
        return 0

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return wait_for_outcome(client, name, ns, generation, args.timeout, emit)


# ------------------------------------------------------------------------------------------------ diff

_VOLATILE_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")


def normalize(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a person compares: no status, no server bookkeeping."""
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k != "status"}
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


def _child_diffs(client: Any, applied_ds: Mapping[str, Any], namespace: str) -> list[tuple[str, str]]:
    """(label, diff) for every object the core renders for ``applied_ds`` whose content would change,
    and for live children the rendering no longer contains (they would be deleted)."""
    from lightkube.types import PatchType

    from d3os_core import desired as desired_objects
    from d3os_core import up_to_date
    from d3os_core.credentials import retained
    from d3os_core.dataservice import DATASERVICE as PRODUCT
    from d3os_core.render import Parent
    from d3os_core.validation import parse_spec

    from .kube import OWNED, kind_info

    name = applied_ds["metadata"]["name"]
    parent = Parent(name, namespace, str(applied_ds["metadata"].get("uid") or "<uid>"))
    spec = parse_spec(applied_ds.get("spec"), PRODUCT)
    live: dict[tuple[str, str], dict[str, Any]] = {}
    for info in OWNED:
        for o in client.list(info.res, namespace=namespace, labels={api.LABEL_INSTANCE: name}):
            d = {"apiVersion": info.api_version, "kind": info.kind, **dict(o)}  # list items lack them
            if api.owner_instance(d) == name:
                live[(info.kind, d["metadata"]["name"])] = d
    secrets = {n: o for (k, n), o in live.items() if k == "Secret"}
    claims = {n: str(o["metadata"].get("uid", "")) for (k, n), o in live.items() if k == "PersistentVolumeClaim"}
    rendered = desired_objects(parent, spec, PRODUCT, live_secrets=secrets, claims=claims)
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
    from lightkube.types import PatchType

    from d3os_core.validation import SpecError

    from .kube import DATASERVICE

    ds = _load(args.file)
    client = _client(args)
    ns = _namespace(args, client, ds)
    name = ds["metadata"]["name"]
    live = _get(client, DATASERVICE.res, name, ns)
    after = dict(
        client.patch(
            DATASERVICE.res,
            name,
            _body(ds, ns),
            namespace=ns,
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=args.force_conflicts,
            dry_run=True,
        )
    )
    changed = False
    text = unified(live, after, f"DataService/{name}")
    if text:
        out.write(text + "\n")
        changed = True
    try:
        children = _child_diffs(client, after, ns)
    except SpecError as exc:
        for err in exc.errors:
            print(str(err), file=sys.stderr)
        return EXIT_ERROR
    for _label, child in children:
        out.write(child + "\n")
        changed = True
    if changed:
        out.write(
            f"# {1 if text else 0} DataService, {len(children)} object(s) would change"
            + (f": {', '.join(label for label, _ in children)}" if children else "")
            + "\n"
        )
    return EXIT_CHANGES if changed else 0


# ------------------------------------------------------------------------------------------------ main


def build_parser(prog: str = "d3os") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="d3os DataService: offline tools (render, validate, plan, crd, reference) and cluster "
        "commands (status, diff, apply, history, rollback).",
        epilog=clierrors.EXIT_CODES_HELP,
    )
    p.add_argument("--version", action="version", version=f"{prog} {__version__}")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    core_cli.add_commands(sub)
    kubeconfig_help = "kubeconfig file (default: $D3OS_KUBECONFIG, else $KUBECONFIG, else ~/.kube/config)"

    def cluster(sp: argparse.ArgumentParser, namespace_help: str) -> None:
        sp.add_argument("-n", "--namespace", help=namespace_help)
        sp.add_argument("--kubeconfig", default=os.environ.get("D3OS_KUBECONFIG"), help=kubeconfig_help)
        sp.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")

    from_file = "namespace (default: the file's metadata.namespace, else the kubeconfig context's, else default)"
    st = sub.add_parser(
        "status", help="show a DataService: the chain, each component's state and reason, the conditions",
        description="Show the DataService NAME as the operator last reported it: phase, the chain with the current "
        "step, one line per component (kind, object, state, reason) and the conditions. Exit 0, or 1 when it "
        "does not exist.",
    )
    st.add_argument("name", help="name of the DataService")
    st.add_argument("-w", "--watch", action="store_true", help="redraw on every change (Ctrl-C to stop)")
    st.add_argument("--timeout", type=float, default=0, help="with --watch: stop after this many seconds")
    cluster(st, "namespace of the DataService (default: the kubeconfig context's, else default)")
    st.set_defaults(func=cmd_status)
    df = sub.add_parser(
        "diff", help="show what applying FILE would change (server-side dry run); exit 1 if anything",
        description="Dry-run a server-side apply of the DataService in FILE and of every object the operator "
        "would render for it, and print a unified diff against the live objects (as kubectl diff). Exit 0: no "
        "change, 1: changes.",
    )
    df.add_argument("file", help="YAML file with one DataService ('-' reads stdin)")
    df.add_argument("--force-conflicts", action="store_true", help="as if taking over fields other managers own")
    cluster(df, from_file)
    df.set_defaults(func=cmd_diff)
    ap = sub.add_parser(
        "apply", help=f"server-side apply FILE (field manager {FIELD_MANAGER}); --wait shows progress",
        description=f"Server-side apply the DataService in FILE (field manager {FIELD_MANAGER}). With --wait, "
        "print progress until Ready (exit 0), Degraded or the timeout (exit 1).",
    )
    ap.add_argument("file", help="YAML file with one DataService ('-' reads stdin)")
    ap.add_argument("--wait", action="store_true", help="show progress until Ready (0) or Degraded/timeout (1)")
    ap.add_argument("--timeout", type=float, default=600.0, help="with --wait, seconds (default 600)")
    ap.add_argument("--force-conflicts", action="store_true", help="take over fields another field manager owns")
    cluster(ap, from_file)
    ap.set_defaults(func=cmd_apply)
    from .historycli import add_commands

    add_commands(sub, cluster)  # history, rollback
    completion.add_command(sub, prog).set_defaults(func=None)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, prog: str = "d3os") -> int:
    debug, rest = clierrors.debug_requested(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(prog)
    args = parser.parse_args(rest)
    stream = out or sys.stdout
    if args.command == "completion":
        stream.write(completion.script(args.shell, parser, prog.replace(" ", "-")))
        return 0
    if args.command in CORE_COMMANDS:
        return clierrors.run(prog, lambda: int(args.func(args)), debug)
    return clierrors.run(prog, lambda: int(args.func(args, stream)), debug)


def kubectl_main() -> int:
    """``kubectl d3os ...``: kubectl runs the ``kubectl-d3os`` executable it finds on PATH."""
    return main(prog="kubectl d3os")


if __name__ == "__main__":
    sys.exit(main())
