"""``d3os-operator run``: run the operator out of cluster (kubeconfig) or in cluster (service account)."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from d3os_core import api
from d3os_core.probe_policy import ProbePolicy, parse_cidr
from d3os_core.productload import ProductFileError

from . import __version__
from .logs import setup_logging
from .probe_gate import ProbeBudget
from .usercli import completion, kubeconfig
from .usercli import errors as clierrors

log = logging.getLogger("d3os_operator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="d3os-operator",
        description="Kubernetes operator that installs the d3os dataservice product in dependency order.",
        epilog="exit codes: 0 stopped; 1 lost the leader election (a supervisor restarts it) or cannot serve "
        "metrics/probes; 2 invalid flags; 3 no usable kubeconfig; 4 API server unreachable at start; "
        "5 forbidden/unauthorized; 70 internal error; 130 interrupted. --debug shows the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"d3os-operator {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    completion.add_command(sub, "d3os-operator")
    run = sub.add_parser(
        "run",
        help="watch DataServices and reconcile them until stopped (SIGTERM/SIGINT)",
        description="Watch DataServices and the objects they own, and reconcile each: apply what the core plans, "
        "in dependency order, and write status and events. Runs until SIGTERM or SIGINT.",
    )
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
    run.add_argument(
        "--watch-label-selector",
        default=None,
        metavar="SELECTOR",
        help="reconcile only the DataServices whose labels match SELECTOR (kubectl -l syntax, e.g. "
        "'sharding.d3os.io/key=shard1', or '!sharding.d3os.io/key' for the shard of the unlabelled ones): "
        "one operator Deployment per shard splits the DataServices (default: all). See docs/operations.md, "
        "Sharding",
    )
    run.add_argument("--workers", type=int, default=4, help="DataServices reconciled in parallel (default 4)")
    run.add_argument(
        "--max-product-upgrades",
        type=int,
        default=5,
        metavar="N",
        help="instances rolling to a new product version at once, at most (default 5; 0: none): the others wait, "
        "and an upgrade that never becomes Ready keeps its slot, so a bad version stops spreading",
    )
    run.add_argument(
        "--products",
        default=None,
        metavar="DIR",
        help="folder of product folders (<name>/product.yaml) to serve, or one product folder (default: the "
        "products installed with the operator). Fixed for the life of the process; a product whose CRD is not "
        "installed is logged and not served until the operator restarts",
    )
    run.add_argument(
        "--http2",
        action="store_true",
        help="send requests over one HTTP/2 connection instead of a pool of HTTP/1.1 connections (fewer "
        "connections; measured to cost more CPU per request, here and in the API server)",
    )
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
        "--leader-election-id",
        default=None,
        help="name of the Lease (default d3os-operator.d3os-product.com.d3os; with --watch-label-selector "
        "sharding.d3os.io/key=NAME: d3os-operator-NAME.d3os-product.com.d3os; with another selector: "
        "d3os-operator-sel-<digest of the selector>.d3os-product.com.d3os, so each shard has its own Lease)",
    )
    run.add_argument(
        "--leader-elect-lease-duration",
        type=float,
        default=15.0,
        metavar="S",
        help="seconds a standby waits after the leader's last renewal before taking over (default 15)",
    )
    run.add_argument(
        "--leader-elect-renew-deadline",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds the leader keeps trying to renew before it stops acting (default 10; < lease duration)",
    )
    run.add_argument(
        "--leader-elect-retry-period",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between attempts to acquire or renew the Lease (default 2)",
    )
    run.add_argument(
        "--metrics-bind-address",
        default=":8080",
        metavar="HOST:PORT",
        help="serve Prometheus /metrics there (default :8080; 0 turns it off)",
    )
    run.add_argument(
        "--metrics-auth",
        default="auto",
        choices=["auto", "kubernetes", "none"],
        help="who may read /metrics: 'kubernetes' asks the API server (TokenReview of the bearer token, then a "
        "SubjectAccessReview for get on the non-resource URL /metrics), 'none' serves anyone; 'auto' (default) "
        "is 'kubernetes' unless the metrics address is loopback",
    )
    run.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        metavar="HOST:PORT",
        help="serve /healthz and /readyz there (default :8081; 0 turns it off)",
    )
    run.add_argument(
        "--debug-cache-endpoint",
        action="store_true",
        help="also serve GET /debug/cache on the health probe address: every cached object's kind, namespace, "
        "name, uid and resourceVersion as JSON, for checking the caches against the API (default off; it "
        "shows object names to whoever reaches that port)",
    )
    run.add_argument(
        "--resync-period",
        type=float,
        default=600.0,
        help="seconds between full re-reconciles of every DataService, a safety net (default 600)",
    )
    run.add_argument(
        "--probe-allow-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="third-party probes may connect to addresses in CIDR even where the default policy refuses "
        "(loopback, link-local, ...); repeatable. A protected address (the API server, this pod) opens only "
        "to a CIDR at least as narrow. See docs/operations.md, Probe policy",
    )
    run.add_argument(
        "--probe-deny-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="third-party probes may not connect to addresses in CIDR; repeatable; the longest matching "
        "prefix of all allow/deny CIDRs decides, deny wins a tie",
    )
    run.add_argument(
        "--probe-max-concurrent",
        type=int,
        default=16,
        metavar="N",
        help="third-party probes running at once, at most (default 16); a freed slot goes to the namespaces "
        "waiting in turn",
    )
    run.add_argument(
        "--probe-max-concurrent-per-namespace",
        type=int,
        default=4,
        metavar="N",
        help="probes of one namespace running at once, at most (default 4)",
    )
    run.add_argument(
        "--probe-rate",
        type=float,
        default=20.0,
        metavar="PER_SECOND",
        help="probe requests (redirects included) started per second, at most, over all namespaces "
        "(default 20; 0 lifts the limit)",
    )
    run.add_argument(
        "--probe-max-targets-per-namespace",
        type=int,
        default=100,
        metavar="N",
        help="distinct third-party checks probed for one namespace, at most (default 100; 0 lifts the "
        "limit); the checks asked for later show 'not probed' and their component stays not ready",
    )
    return parser


def probe_budget(args: argparse.Namespace) -> ProbeBudget:
    """The probes' budget the flags ask for."""
    return ProbeBudget(
        max_concurrent=args.probe_max_concurrent,
        per_namespace=args.probe_max_concurrent_per_namespace,
        rate=args.probe_rate or None,
        max_targets_per_namespace=args.probe_max_targets_per_namespace or None,
    )


def probe_policy(args: argparse.Namespace) -> ProbePolicy:
    """The probe policy the flags ask for (raises ValueError naming the flag and the value)."""
    nets: dict[str, list[Any]] = {"allow": [], "deny": []}
    for which in ("allow", "deny"):
        for text in getattr(args, f"probe_{which}_cidr") or []:
            try:
                nets[which].append(parse_cidr(text))
            except ValueError as e:
                raise ValueError(f"--probe-{which}-cidr: {e}") from None
    return ProbePolicy(allow=tuple(nets["allow"]), deny=tuple(nets["deny"]))


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse flag values that cannot work, naming the flag (before anything starts)."""
    from .endpoints import parse_address
    from .sharding import check_lease_name, parse_selector

    for flag in ("metrics_bind_address", "health_probe_bind_address"):
        try:
            parse_address(getattr(args, flag))
        except ValueError as e:
            parser.error(f"--{flag.replace('_', '-')}: {e}")
    try:
        probe_policy(args)
    except ValueError as e:
        parser.error(str(e))
    try:
        parse_selector(args.watch_label_selector)
        if args.leader_election_id is not None:
            check_lease_name(args.leader_election_id)
    except ValueError as e:
        parser.error(str(e))
    if args.workers < 1:
        parser.error("--workers: must be at least 1")
    for flag in ("probe_max_concurrent", "probe_max_concurrent_per_namespace"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')}: must be at least 1")
    if args.probe_rate < 0 or args.probe_max_targets_per_namespace < 0:
        parser.error("--probe-rate, --probe-max-targets-per-namespace: must be 0 (no limit) or more")
    if args.max_product_upgrades < 0:
        parser.error("--max-product-upgrades: must be 0 or more")
    if not 0 < args.leader_elect_retry_period < args.leader_elect_renew_deadline < args.leader_elect_lease_duration:
        parser.error(
            "--leader-elect-*: need 0 < retry period < renew deadline < lease duration "
            f"(got {args.leader_elect_retry_period}, {args.leader_elect_renew_deadline}, "
            f"{args.leader_elect_lease_duration})"
        )


def _namespaces(arg: Sequence[str] | None) -> list[str] | None:
    values = list(arg or [])
    if not values and os.environ.get("WATCH_NAMESPACE"):
        values = [os.environ["WATCH_NAMESPACE"]]
    out = [ns.strip() for v in values for ns in v.split(",") if ns.strip()]
    return out or None


async def _preflight(client: object) -> None:
    """Fail at start, with one line, when the API server cannot be reached or refuses our credentials
    (as controller-runtime's manager does); once running, lost connections are retried instead."""
    import httpx2

    http = client._client._client  # type: ignore[attr-defined]
    try:
        response = await http.get("/version")
    except httpx2.TransportError as e:
        raise clierrors.CliError(
            clierrors.EXIT_UNREACHABLE, f"cannot reach the API server at {http.base_url}: {e or type(e).__name__}"
        ) from e
    if response.status_code in (401, 403):
        raise clierrors.CliError(
            clierrors.EXIT_FORBIDDEN,
            f"the API server at {http.base_url} refused the credentials (HTTP {response.status_code} on GET /version)",
        )


async def run_operator(args: argparse.Namespace) -> int:
    from . import memtrim, metricsauth
    from .controller import Operator, Settings
    from .endpoints import PROMETHEUS, TEXT, Query, Response, Route, listen, parse_address, serve
    from .kube import USER_AGENT, Kube, make_client, service_account_dir
    from .leader import DEFAULT_ID, LeaderElector, LostLeadership, new_identity
    from .productcheck import served_products
    from .products import load_catalogue
    from .sharding import lease_name, parse_selector

    try:
        products = load_catalogue(args.products)
    except ProductFileError as e:
        raise clierrors.CliError(clierrors.EXIT_INVALID, f"--products {args.products or '(installed)'}: "
                                 + "; ".join(str(x) for x in e.errors)) from None
    memtrim.tune()
    config = kubeconfig.for_operator(  # a $KUBECONFIG list merged as kubectl does; a bad file: one line
        args.kubeconfig, args.context, args.in_cluster, service_account_dir())
    client = make_client(config, context=args.context, http2=args.http2)
    await _preflight(client)
    identity = new_identity()
    selector = parse_selector(args.watch_label_selector)
    kube = Kube(client, field_manager=args.field_manager, user_agent=f"{USER_AGENT} ({identity})")
    settings = Settings(
        namespaces=_namespaces(args.namespace),
        workers=args.workers,
        resync_period=args.resync_period,
        probe_policy=probe_policy(args),
        watch_label_selector=selector,
        max_product_upgrades=args.max_product_upgrades,
        probe_budget=probe_budget(args),
    )
    served, missing = await served_products(kube, products)
    operator = Operator(kube, settings, products=served)
    operator.metrics.products(served, missing)
    elector: LeaderElector | None = None
    if args.leader_elect:
        elector = LeaderElector(
            client,
            name=lease_name(selector, args.leader_election_id, DEFAULT_ID),
            namespace=args.leader_election_namespace,
            identity=identity,
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
            on_change=operator.metrics.leading,
        )

    def healthz(query: Query) -> Response:
        return 200, b"ok\n", TEXT

    def readyz(query: Query) -> Response:
        # A standby is ready as soon as its caches are synced: it serves (probes, metrics) and can take
        # over at once. Before that, or on a leader whose caches are not synced, 503.
        if not operator.ready.is_set():
            return 503, b"caches not synced\n", TEXT
        if elector is not None and not elector.is_leader:
            return 200, b"ok (standby: waiting for the lease)\n", TEXT
        return 200, b"ok\n", TEXT

    def metrics(query: Query) -> Response:
        # ?name[]=workqueue_depth&name[]=... renders those metrics only (prometheus_client's convention): a
        # cheap way to poll one figure often; a full render costs the event loop time in proportion to the
        # DataServices (d3os_component_ready has a series per component)
        return 200, operator.metrics.text(query.get("name[]", ())), PROMETHEUS

    def debug_cache(query: Query) -> Response:
        return 200, json.dumps(operator.cache_snapshot()).encode(), "application/json"

    health_routes: dict[str, Route] = {"/healthz": healthz, "/readyz": readyz}
    if args.debug_cache_endpoint:
        health_routes["/debug/cache"] = debug_cache
    servers = []
    for address, routes, what in (
        (args.metrics_bind_address, {"/metrics": metrics}, "metrics"),
        (args.health_probe_bind_address, health_routes, "health probes"),
    ):
        bind = parse_address(address)
        guard = None
        if bind is not None and what == "metrics" and metricsauth.needed(args.metrics_auth, bind[0]):
            guard = metricsauth.MetricsAuth(kube.http).check
            log.info("metrics: callers are authenticated and authorized by the API server (--metrics-auth)")
        if bind is not None:
            try:
                servers.append((await listen(*bind), routes, what, guard))
            except OSError as e:
                log.error("cannot serve %s on %s: %s (0 turns it off)", what, address, e)
                await kube.aclose()
                return 1

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
            tg.start_soon(memtrim.trim_forever)
            for listener, routes, what, guard in servers:
                tg.start_soon(functools.partial(serve, listener, routes, what=what, guard=guard))
            if elector is None:
                await operator.run()
            else:
                # Caches fill while we wait for the Lease, so a standby takes over without a re-list; no
                # worker starts, and so nothing is written, before the Lease is ours.
                elected = anyio.Event()
                tg.start_soon(operator.run, elected)
                async with elector.leading():
                    elected.set()
                    await anyio.sleep_forever()
    except BaseExceptionGroup as group:
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
    debug, rest = clierrors.debug_requested(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(rest)
    if args.command == "completion":
        sys.stdout.write(completion.script(args.shell, parser))
        return 0
    _check(parser, args)
    setup_logging(args.log_level, args.log_format)
    return clierrors.run("d3os-operator", lambda: anyio.run(run_operator, args), debug)


if __name__ == "__main__":
    sys.exit(main())
