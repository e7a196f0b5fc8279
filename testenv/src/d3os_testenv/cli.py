"""``d3os-testenv``: build, start, inspect and stop a local Kubernetes control plane."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

from .build import GO_TOOLS, BuildError, Versions, ensure_built, ensure_tool, stderr_progress


def _cluster(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .cluster import LocalCluster

    return LocalCluster(
        args.name, nodes=getattr(args, "nodes", 3), pv_pool=getattr(args, "pvs", 16), progress=stderr_progress
    )


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    tc = ensure_built(Versions.from_env(), progress=stderr_progress, jobs=args.jobs)
    for name in GO_TOOLS:
        if name not in args.skip:
            ensure_tool(name, progress=stderr_progress, jobs=args.jobs)
    stderr_progress(f"binaries ready in {time.monotonic() - t0:.1f}s: {tc.bin_dir}")
    print(tc.bin_dir)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    c = _cluster(args)
    c.start()
    print(f"cluster {c.name!r} is up: apiserver {c.server}", file=sys.stderr)
    print(f'  eval "$(d3os-testenv env{"" if c.name == "default" else " --name " + c.name})"', file=sys.stderr)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster, reap_dead_ephemeral_runs

    c = LocalCluster(args.name, progress=stderr_progress)
    existed = c.run_dir.exists()
    c.stop()
    reap_dead_ephemeral_runs(progress=stderr_progress)
    print(f"cluster {args.name!r} {'stopped and removed' if existed else 'was not running'}", file=sys.stderr)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster

    c = LocalCluster.attach(args.name)
    print(f"export KUBECONFIG={shlex.quote(str(c.kubeconfig))}")
    print(f'export PATH={shlex.quote(str(c.bin_dir))}:"$PATH"')
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster, list_runs

    if args.all:
        for st in list_runs():
            print(
                f"{st['name']}: apiserver https://127.0.0.1:{st['ports']['kube-apiserver']}"
                f"{' (ephemeral)' if st.get('ephemeral') else ''}"
            )
        return 0
    c = LocalCluster.attach(args.name)
    ok = True
    for comp, s in c.status().items():
        print(f"{comp:24} {s}  (log: {c.log_file(comp)})")
        ok = ok and s.startswith("running")
        if s.startswith("dead"):
            from .processes import tail

            print("    " + tail(c.log_file(comp), 10).replace("\n", "\n    "))
    ready = c.readyz()
    print(f"{'/readyz':24} {'ok' if ready else 'NOT ready'}  ({c.server})")
    return 0 if ok and ready else 1


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster

    c = LocalCluster.attach(args.name)
    if not args.service_account:
        text = c.kubeconfig.read_text()
    else:
        ns, sep, name = args.service_account.partition("/")
        if not sep or not ns or not name:
            print("--service-account must be NAMESPACE/NAME", file=sys.stderr)
            return 2
        path = c.service_account_kubeconfig(ns, name, path=args.output, duration=args.duration)
        if args.output:
            print(path, file=sys.stderr)
            return 0
        text = Path(path).read_text()
        Path(path).unlink()
    if args.output and not args.service_account:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_pvs(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster

    c = LocalCluster.attach(args.name)
    created = c.ensure_pvs(args.count)
    print(f"{created} PersistentVolumes created; at least {args.count} Available", file=sys.stderr)
    return 0


def cmd_component(args: argparse.Namespace) -> int:
    from .cluster import LocalCluster

    c = LocalCluster.attach(args.name)
    c.progress = stderr_progress
    if args.action == "stop":
        c.stop_component(args.component)
    elif args.action == "start":
        c.start_component(args.component)
    else:
        c.restart_component(args.component)
    return 0


DESCRIPTION = (
    "Build, start, inspect and stop a real local Kubernetes control plane (etcd, kube-apiserver, "
    "kube-controller-manager, kube-scheduler and kwok's simulated nodes) on loopback, for tests and demos."
)
EPILOG = (
    "exit codes: 0 done; 1 status: not everything runs; 2 invalid command line; 3 build failed; "
    "4 cluster error (did not start, not running, ...); 70 internal error; 130 interrupted. "
    "--debug shows the traceback."
)


def build_parser() -> argparse.ArgumentParser:
    from d3os_operator import __version__
    from d3os_operator.usercli.completion import add_command

    p = argparse.ArgumentParser(prog="d3os-testenv", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"d3os-testenv {__version__}")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def named(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--name", default="default", help="cluster name (default: %(default)s)")
        return sp

    b = sub.add_parser(
        "build", help="build (or find in the cache) the pinned binaries; prints the bin dir",
        description="Build the pinned control-plane binaries and helm from the Go module proxy with the local Go "
        "toolchain, or find them in ~/.cache/d3os-testenv; print the directory that holds them all.",
    )
    b.add_argument("--jobs", "-p", type=int, default=None, help="go build -p (default: min(2, CPUs))")
    b.add_argument("--skip", action="append", default=[], choices=sorted(GO_TOOLS),
                   help="do not build this tool (repeatable); the control plane is always built")
    b.set_defaults(func=cmd_build)

    u = named(sub.add_parser(
        "up", help="start a cluster (builds binaries if needed) and wait until ready",
        description="Start a cluster (building the binaries first if needed) and wait until it is ready: nodes "
        "Ready, the default StorageClass and the PersistentVolume pool in place.",
    ))
    u.add_argument("--nodes", type=int, default=3, help="simulated (kwok) nodes (default: %(default)s)")
    u.add_argument("--pvs", type=int, default=16, help="initial Available PersistentVolumes")
    u.set_defaults(func=cmd_up)

    named(sub.add_parser(
        "down", help="stop the cluster's processes and remove its data",
        description="Stop exactly the processes the cluster started and remove its data directory.",
    )).set_defaults(func=cmd_down)
    named(sub.add_parser(
        "env", help="print `export KUBECONFIG=... PATH=...` for eval",
        description='Print shell lines that point KUBECONFIG at the cluster and put its kubectl (and helm, once '
        'built) first on PATH: eval "$(d3os-testenv env)".',
    )).set_defaults(func=cmd_env)
    s = named(sub.add_parser(
        "status", help="show component processes and /readyz",
        description="Show each component process of the cluster and whether the API server's /readyz is ok; "
        "exit 1 when something is not running.",
    ))
    s.add_argument("--all", action="store_true", help="list all clusters")
    s.set_defaults(func=cmd_status)

    k = named(sub.add_parser(
        "kubeconfig", help="print the admin kubeconfig, or one for a ServiceAccount",
        description="Print the cluster's admin kubeconfig, or with --service-account a kubeconfig that "
        "authenticates as that ServiceAccount (a TokenRequest token), for least-privilege tests.",
    ))
    k.add_argument("--service-account", metavar="NS/NAME", help="use a TokenRequest token of this ServiceAccount")
    k.add_argument("--duration", default="24h", help="token lifetime (default: %(default)s)")
    k.add_argument("--output", "-o", help="write to this file instead of stdout")
    k.set_defaults(func=cmd_kubeconfig)

    pv = named(sub.add_parser(
        "pvs", help="ensure at least COUNT Available PersistentVolumes",
        description="Create hostPath PersistentVolumes until at least COUNT are Available.",
    ))
    pv.add_argument("count", type=int, help="PersistentVolumes that must be Available")
    pv.set_defaults(func=cmd_pvs)

    from .cluster import COMPONENTS

    comp = named(sub.add_parser(
        "component", help="stop/start/restart one component (chaos testing)",
        description="Stop, start or restart one process of a running cluster, to test how clients cope.",
    ))
    comp.add_argument("action", choices=["stop", "start", "restart"], help="what to do: stop, start or restart")
    comp.add_argument("component", choices=COMPONENTS, help=f"which process: {', '.join(COMPONENTS)}")
    comp.set_defaults(func=cmd_component)
    add_command(sub, "d3os-testenv").set_defaults(func=None)
    return p


def main(argv: list[str] | None = None) -> int:
    from d3os_operator.usercli.errors import EXIT_BUG, debug_requested

    debug, rest = debug_requested(list(sys.argv[1:] if argv is None else argv))
    p = build_parser()
    args = p.parse_args(rest)
    if args.cmd == "completion":
        from d3os_operator.usercli.completion import script

        sys.stdout.write(script(args.shell, p))
        return 0
    if hasattr(signal, "SIGPIPE"):  # `d3os-testenv status | head` must not print a traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return int(args.func(args))
    except BuildError as e:
        print(f"d3os-testenv: build failed: {e}", file=sys.stderr)
        return 3
    except Exception as e:
        from .cluster import ClusterError

        if isinstance(e, ClusterError):
            print(f"d3os-testenv: {e}", file=sys.stderr)
            return 4
        if debug:
            raise
        print(f"d3os-testenv: internal error: {type(e).__name__}: {e} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_BUG
    except KeyboardInterrupt:
        print("d3os-testenv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
