"""``d3os ui`` and ``d3os graph``: a live picture of every product instance, and a static one.

- ``d3os ui [--context C] [-n NS | -A] [--port P] [--open]``: a local web page served with the user's own
  kubeconfig and rights (:mod:`.serve`, :mod:`.app`, guarded by :mod:`.guard`): the overview of every
  instance, one instance's component graph in the core's dependency layers (:mod:`d3os_core.graphview`,
  drawn by :mod:`.draw`), live by watch (:mod:`.live`), its Events, history with a diff, and the CLI's own
  rollback and suspend/resume (:mod:`.actions`);
- ``d3os graph NAME -o svg|dot|mermaid``: the same picture as a file (:mod:`.export`).

The server's libraries (Starlette, uvicorn) are the ``ui`` extra: ``pip install 'd3os-operator[ui]'``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .. import connect
from ..errors import EXIT_INVALID, CliError

UI_EXTRA = "d3os ui needs the ui extra: pip install 'd3os-operator[ui]' (Starlette and uvicorn)"


def cmd_graph(args: argparse.Namespace, out: TextIO) -> int:
    from d3os_core.graphview import instance_graph

    from .export import render

    with connect.client(connect.kubeconfig(args)) as client:
        ns = connect.namespace(args, client)
        found = connect.find(client, args.name, ns, args.kind)
    if found.product is None or found.instance is None:
        out.write(found.not_found(ns, args.name))
        return 1
    out.write(render(instance_graph(found.instance, found.product), args.output))
    return 0


def cmd_ui(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CliError(EXIT_INVALID, UI_EXTRA) from None
    from ... import products
    from ...kube import ALL_NAMESPACES
    from .serve import UiServer

    config = connect.kubeconfig(args)
    if args.all_namespaces:
        namespace = ALL_NAMESPACES
    else:
        with connect.client(config) as client:
            namespace = connect.namespace(args, client)
    try:
        server = UiServer(config, namespace, products.installed(), address=args.address, port=args.port)
    except OSError as exc:
        raise CliError(EXIT_INVALID, f"cannot listen on {args.address}:{args.port}: {exc.strerror or exc}") from None
    where = "all namespaces" if namespace == ALL_NAMESPACES else f"namespace {namespace}"
    out.write(f"d3os ui: serving {where} with your kubeconfig's rights; open (Ctrl-C to stop):\n    {server.url}\n")
    out.flush()
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.socket.close()
    print("d3os ui: stopped", file=sys.stderr)
    return 0
