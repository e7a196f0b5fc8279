"""``d3os-operator run``: run the operator out of cluster (kubeconfig) or in cluster (service account)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

import anyio

from d3os_core import api

from . import __version__
from .logs import setup_logging

log = logging.getLogger("d3os_operator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="d3os-operator",
        description="Kubernetes operator that installs the d3os dataservice product in dependency order.",
    )
    parser.add_argument("--version", action="version", version=f"d3os-operator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="watch DataServices and reconcile them until stopped (SIGTERM/SIGINT)")
    run.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: the service account in cluster, else $KUBECONFIG, else ~/.kube/config)",
    )
    run.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    run.add_argument(
        "--in-cluster",
        action="store_true",
        help="use the pod's service account even if a kubeconfig could be found",
    )
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        metavar="NS",
        help="watch only this namespace (repeatable; default: all namespaces, or $WATCH_NAMESPACE, comma separated)",
    )
    run.add_argument("--workers", type=int, default=4, help="DataServices reconciled in parallel (default 4)")
    run.add_argument(
        "--field-manager",
        default=api.FIELD_MANAGER,
        help=f"server-side apply field manager (default {api.FIELD_MANAGER})",
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="default info")
    run.add_argument("--log-format", default="text", choices=["text", "json"], help="default text")
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of a Lease reconciles (default off)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=None,
        help="namespace of the Lease (default: the pod's namespace in cluster, else default)",
    )
    run.add_argument(
        "--leader-election-id", default=None, help="name of the Lease (default d3os-operator.d3os-product.com.d3os)"
    )
    run.add_argument(
        "--metrics-bind-address",
        default="",
        metavar="HOST:PORT",
        help="serve /healthz, /readyz and /metrics (Prometheus) there, e.g. 0.0.0.0:8080 (default: off)",
    )
    run.add_argument(
        "--resync-period",
        type=float,
        default=600.0,
        help="seconds between full re-reconciles of every DataService, a safety net (default 600)",
    )
    return parser


def _namespaces(arg: Sequence[str] | None) -> list[str] | None:
    values = list(arg or [])
    if not values and os.environ.get("WATCH_NAMESPACE"):
        values = [os.environ["WATCH_NAMESPACE"]]
    out = [ns.strip() for v in values for ns in v.split(",") if ns.strip()]
    return out or None


async def run_operator(args: argparse.Namespace) -> int:
    from .controller import Operator, Settings
    from .kube import USER_AGENT, Kube, load_config, make_client
    from .leader import new_identity

    config = load_config(args.kubeconfig, in_cluster=args.in_cluster)
    client = make_client(config, context=args.context)
    identity = new_identity()
    kube = Kube(client, field_manager=args.field_manager, user_agent=f"{USER_AGENT} ({identity})")
    settings = Settings(namespaces=_namespaces(args.namespace), workers=args.workers, resync_period=args.resync_period)
    operator = Operator(kube, settings)
    lost = False
    try:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for signum in signals:
                        log.info("stopping", extra={"signal": signal.Signals(signum).name})
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(stop_on_signal)
            if args.metrics_bind_address:
                from .metrics import serve

                host, _, port = args.metrics_bind_address.rpartition(":")
                await tg.start(serve, host or "0.0.0.0", int(port), operator.stats, operator.ready.is_set)
            if args.leader_elect:
                from .leader import DEFAULT_ID, LeaderElector

                elector = LeaderElector(
                    client,
                    name=args.leader_election_id or DEFAULT_ID,
                    namespace=args.leader_election_namespace,
                    identity=identity,
                )
                async with elector.leading():
                    await operator.run()
            else:
                await operator.run()
    except BaseExceptionGroup as group:
        from .leader import LostLeadership

        rest = group.subgroup(lambda e: not isinstance(e, LostLeadership))
        if rest is not None:
            raise
        lost = True  # exit so that a supervisor restarts us as a candidate
    finally:
        with anyio.CancelScope(shield=True):
            log.info("stopped", extra={"stats": operator.stats()})
            await kube.aclose()
    if lost:
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    if args.command == "run":
        try:
            return anyio.run(run_operator, args)
        except KeyboardInterrupt:
            return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
