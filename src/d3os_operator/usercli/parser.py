"""The one argument parser of ``d3os`` (and ``kubectl d3os``): every command, flag and help text.

``d3os --help`` lists the commands in two groups, each with a line on what it needs: the offline
commands read a file (or nothing) and need no cluster; the cluster commands need a kubeconfig.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from . import apply, completion, diff, errors, get, history, offline, output, productcmd, status, ui
from .connect import FIELD_MANAGER

OFFLINE = ("render", "validate", "plan", "crd", "reference", "product", "completion")
CLUSTER = ("get", "status", "diff", "apply", "history", "rollback", "graph", "ui")
KUBECONFIG_HELP = ("kubeconfig file (default: $D3OS_KUBECONFIG, else $KUBECONFIG, each a colon-separated list merged "
                   "as kubectl does, else ~/.kube/config)")
GROUPS = (
    ("offline commands", "Read a DataService file (or nothing) and print; no cluster needed.", OFFLINE),
    ("cluster commands", "Talk to the cluster of the kubeconfig: --kubeconfig, else $D3OS_KUBECONFIG, else "
     "$KUBECONFIG, else ~/.kube/config (--context picks a context).", CLUSTER),
)
FILE_HELP = "YAML file with one product instance: a DataService, an AnalyticsService, ... ('-' reads stdin)"
PRODUCT_HELP = ("the product FILE is an instance of: a product folder (or its product.yaml) not installed, or an "
                "installed product's name (default: every installed product; the file's kind picks one)")
NAME_HELP = "name of the instance: a DataService, an AnalyticsService, ... (--kind says which when both exist)"
NS_OF_NAME = "namespace of the instance (default: the kubeconfig context's, else default)"
KIND_HELP = ("the kind of NAME: an installed product's kind, plural or short name (DataService, dataservices, "
             "dsvc, ...); default: NAME is looked up under every installed product's kind")
NS_OF_FILE = "namespace (default: the file's metadata.namespace, else the kubeconfig context's, else default)"
WAIT_HELP = "show progress until Ready (0) or Degraded/timeout (1)"


PRODUCT_OF_NAME = ("a product folder (or its product.yaml) not installed, or an installed product's name: NAME is "
                   "looked up under its kind only")


def _cluster_options(sp: argparse.ArgumentParser, namespace_help: str, product_help: str = PRODUCT_HELP) -> None:
    sp.add_argument("-n", "--namespace", help=namespace_help)
    sp.add_argument("--product", help=product_help)
    sp.add_argument("--kubeconfig", default=None, help=KUBECONFIG_HELP)
    sp.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")


def _add_offline(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser(
        "render", help="print every object the operator would create for a DataService file (offline)",
        description="Print every desired object of the DataService in FILE as a YAML stream, exactly as the "
        "operator would apply it (credentials Secrets carry a placeholder). Strings any YAML reader could take "
        "for something else are quoted, so the output can go to `kubectl apply -f -`.",
    )
    r.add_argument("file", help=FILE_HELP)
    r.add_argument("-n", "--namespace", help="namespace the objects go to (default: the file's, else default)")
    r.add_argument("--product", help=PRODUCT_HELP)
    r.set_defaults(func=offline.cmd_render)
    v = sub.add_parser(
        "validate", help="check a DataService file: exit 0, or 2 with one line per problem naming spec.<path> "
        "(offline)",
        description="Check the DataService in FILE against the rules the operator applies (the CRD's and the "
        "core's). Exit 0 when valid; else exit 2 with one line per problem, each naming the field path "
        "(spec.mysql.kind) and the allowed values.",
    )
    v.add_argument("file", help=FILE_HELP)
    v.add_argument("--product", help=PRODUCT_HELP)
    v.set_defaults(func=offline.cmd_validate)
    pl = sub.add_parser(
        "plan", help="print the operator's next actions and status for a DataService and a given cluster state "
        "(offline)",
        description="Run the core's planner on the DataService in FILE against the objects in --observed "
        "(default: an empty namespace) and print what the operator would do next: objects to apply and delete, "
        "probes, events, status. Get the live objects with `kubectl get deploy,sts,ds,svc,cm,secret,pvc -n NS "
        "-l app.kubernetes.io/instance=NAME -o yaml > live.yaml`.",
    )
    pl.add_argument("file", help=FILE_HELP)
    pl.add_argument("--observed", help="YAML stream (or List) of live objects; default: an empty namespace")
    pl.add_argument("-n", "--namespace", help="namespace of the DataService (default: the file's, else default)")
    pl.add_argument("--third-party", choices=("up", "down", "unknown"), default="up",
                    help="result of the third-party checks the plan asks for (default: up)")
    pl.add_argument("--full", action="store_true", help="print whole manifests to apply")
    pl.add_argument("--no-finalizer", dest="finalizer", action="store_false",
                    help="treat the resource as not yet carrying the operator's finalizer")
    pl.add_argument("--now", default="1970-01-01T00:00:00Z", help="time stamp for conditions")
    pl.add_argument("--product", help=PRODUCT_HELP)
    output.add_option(pl, "whole manifests, as --full (default: yaml)")
    pl.set_defaults(func=offline.cmd_plan)
    c = sub.add_parser(
        "crd", help="print the CustomResourceDefinition of every installed product (offline)",
        description="Print the CustomResourceDefinitions generated from the product files (what crds/ holds), "
        "one YAML document per product.",
    )
    c.add_argument("--product", help="only this product (a folder or an installed name)")
    c.set_defaults(func=offline.cmd_crd)
    rf = sub.add_parser(
        "reference", help="print the configuration reference as Markdown (offline)",
        description="Print the configuration reference (docs/configuration.md) generated from the spec model.",
    )
    rf.add_argument("--product", help="only this product (a folder or an installed name)")
    rf.set_defaults(func=offline.cmd_reference)
    productcmd.add_command(sub)


def _named(p: argparse.ArgumentParser) -> None:
    """The instance a command is about: NAME, and --kind when several product kinds have one of that name."""
    p.add_argument("name", help=NAME_HELP)
    p.add_argument("--kind", default=None, metavar="KIND", help=KIND_HELP)


def _waits(p: argparse.ArgumentParser) -> None:
    """--wait for the rollout a write starts, and how long."""
    p.add_argument("--wait", action="store_true", help=WAIT_HELP)
    p.add_argument("--timeout", type=float, default=600.0, help="with --wait, seconds (default 600)")


def _add_cluster(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ge = sub.add_parser(
        "get", help="list the instances of every installed product (-A: in every namespace), with their STATUS",
        description="List the instances of every installed product kind (a DataService, an AnalyticsService, ...) "
        "in the namespace (-A: every namespace): name, kind, STATUS (Ready, Progressing, Degraded, Stalled, "
        "Suspended, Deleting), ready components, PHASE, age. A kind whose CRD is not installed is left out "
        "(said on stderr). Exit 0; 1 when NAME is given and not found.",
    )
    ge.add_argument("name", nargs="?", help="only the instance of this name (under every kind, or --kind's)")
    ge.add_argument("--kind", default=None, metavar="KIND", help=KIND_HELP)
    ge.add_argument("-A", "--all-namespaces", action="store_true", help="list the instances of every namespace")
    output.add_option(ge, "the MESSAGE (the chain) and the generation observed")
    _cluster_options(ge, "namespace to list (default: the kubeconfig context's, else default)", PRODUCT_OF_NAME)
    ge.set_defaults(func=get.cmd_get)
    st = sub.add_parser(
        "status", help="show a DataService: the chain, each component's state and reason, the conditions",
        description="Show the DataService NAME as the operator last reported it: phase, the chain with the current "
        "step, one line per component (kind, object, state, reason) and the conditions. Exit 0, or 1 when it "
        "does not exist.",
    )
    _named(st)
    st.add_argument("-w", "--watch", action="store_true", help="redraw on every change (Ctrl-C to stop)")
    st.add_argument("--timeout", type=float, default=0, help="with --watch: stop after this many seconds")
    output.add_option(st, "each component's step start (SINCE) and desired-state hash")
    _cluster_options(st, NS_OF_NAME, PRODUCT_OF_NAME)
    st.set_defaults(func=status.cmd_status)
    df = sub.add_parser(
        "diff", help="show what applying FILE would change (server-side dry run); exit 1 if anything",
        description="Dry-run a server-side apply of the DataService in FILE and of every object the operator "
        "would render for it, and print a unified diff against the live objects (as kubectl diff). Exit 0: no "
        "change, 1: changes.",
    )
    df.add_argument("file", help=FILE_HELP)
    df.add_argument("--force-conflicts", action="store_true", help="as if taking over fields other managers own")
    _cluster_options(df, NS_OF_FILE)
    df.set_defaults(func=diff.cmd_diff)
    ap = sub.add_parser(
        "apply", help=f"server-side apply FILE (field manager {FIELD_MANAGER}); --wait shows progress",
        description=f"Server-side apply the DataService in FILE (field manager {FIELD_MANAGER}). With --wait, "
        "print progress until Ready (exit 0), Stalled (nothing moves until the spec or the cluster changes) or the "
        "timeout (exit 1).",
    )
    ap.add_argument("file", help=FILE_HELP)
    _waits(ap)
    ap.add_argument("--force-conflicts", action="store_true", help="take over fields another field manager owns")
    _cluster_options(ap, NS_OF_FILE)
    ap.set_defaults(func=apply.cmd_apply)
    hi = sub.add_parser(
        "history", help="the revisions of a DataService (one per spec that reached Ready)",
        description="List the revisions of the DataService NAME (ControllerRevisions it owns, one per spec that "
        "reached Ready): number, when it became Ready, what changed from the one before (images, kinds, "
        "replicas, env keys), and which is current. Exit 0, or 1 when it does not exist.",
    )
    _named(hi)
    output.add_option(hi, "the ControllerRevision of each revision")
    _cluster_options(hi, NS_OF_NAME, PRODUCT_OF_NAME)
    hi.set_defaults(func=history.cmd_history)
    rb = sub.add_parser(
        "rollback", help="rewrite the spec from an earlier revision (like kubectl rollout undo)",
        description="Rewrite the spec of the DataService NAME from a recorded revision (default: the one before "
        "the current) with server-side apply, field manager kubectl-d3os; the operator then rolls it out in "
        "order. Exit 0, or 1 when the revision does not exist or --wait ends Stalled or timed out.",
    )
    _named(rb)
    rb.add_argument("--to-revision", type=int, default=None, metavar="N",
                    help="revision number (default: the one before the current)")
    _waits(rb)
    _cluster_options(rb, NS_OF_NAME, PRODUCT_OF_NAME)
    rb.set_defaults(func=history.cmd_rollback)
    _add_ui(sub)


def _add_ui(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    gr = sub.add_parser(
        "graph", help="draw an instance's component graph: svg, dot (Graphviz) or mermaid",
        description="Print the component graph of the instance NAME in dependency layers, each component with "
        "its kind, replicas and state as its status says, the step the rollout is at marked: an SVG drawing, "
        "Graphviz DOT or a Mermaid flowchart. Exit 0, or 1 when it does not exist.",
    )
    _named(gr)
    gr.add_argument("-o", "--output", choices=("svg", "dot", "mermaid"), default="svg",
                    help="format (default: svg)")
    _cluster_options(gr, NS_OF_NAME)
    gr.set_defaults(func=ui.cmd_graph)
    u = sub.add_parser(
        "ui", help="a live web page of every instance: graph, progress, Events, history, rollback (local)",
        description="Serve a web page on 127.0.0.1 showing every product instance the kubeconfig's user can see, "
        "live (by watch): one instance's component graph in dependency layers, what each step waits on, its "
        "Events, revision history with a diff, suspend/resume and rollback (each confirmed, each done with your "
        "rights). The printed URL carries a random token; nothing is installed in the cluster.",
    )
    _cluster_options(u, NS_OF_NAME)
    u.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (default: -n's)")
    u.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    u.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: only this machine can connect)")
    u.add_argument("--open", action="store_true", help="open the page in the default browser")
    u.set_defaults(func=ui.cmd_ui)


def _group_in_help(
    parser: argparse.ArgumentParser,
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    groups: Sequence[tuple[str, str, Sequence[str]]],
) -> None:
    """List the subcommands in ``--help`` under one heading per group, each with its description.

    argparse lists all of a parser's subcommands under one heading. Each group here holds help-only
    entries (the subcommands' own listing entries, which parsing never sees), and the subcommand
    argument leaves its default group, so each command is listed once, under its heading.
    """
    entries = {entry.dest: entry for entry in sub._choices_actions}
    listed = [name for _, _, names in groups for name in names]
    if sorted(listed) != sorted(entries):
        raise ValueError(f"every command in exactly one group: {sorted(listed)} != {sorted(entries)}")
    for group in parser._action_groups:
        if sub in group._group_actions:
            group._group_actions.remove(sub)
    for title, description, names in groups:
        parser.add_argument_group(title, description)._group_actions.extend(entries[n] for n in names)


def build_parser(prog: str = "d3os") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="d3os DataService: offline commands check, render and plan a DataService file with the "
        "operator's own rules; cluster commands show, diff, apply and roll back DataServices on a cluster.",
        epilog=errors.EXIT_CODES_HELP,
    )
    p.add_argument("--version", action="version", version=f"{prog} {__version__}")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    p.set_defaults(prog=prog)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_offline(sub)
    _add_cluster(sub)
    completion.add_command(sub, prog).set_defaults(func=None)
    _group_in_help(p, sub, GROUPS)
    return p
