"""Health and metrics endpoints (the seed's operator served both): ``/healthz``, ``/readyz``, ``/metrics``.

A deliberately small HTTP/1.0 server on anyio: one request per connection, GET only. ``/readyz`` turns
200 once the caches are synced; ``/metrics`` is Prometheus text built from :meth:`Operator.stats`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc

log = logging.getLogger("d3os_operator.metrics")


def prometheus_text(stats: Mapping[str, Any]) -> str:
    lines = [
        "# HELP d3os_operator_reconciles_total Reconciles run.",
        "# TYPE d3os_operator_reconciles_total counter",
        f"d3os_operator_reconciles_total {stats.get('reconciles', 0)}",
        "# HELP d3os_operator_reconcile_errors_total Reconciles that failed and were retried with backoff.",
        "# TYPE d3os_operator_reconcile_errors_total counter",
        f"d3os_operator_reconcile_errors_total {stats.get('errors', 0)}",
        "# HELP d3os_operator_writes_total Write requests sent to the API server, by verb and kind.",
        "# TYPE d3os_operator_writes_total counter",
    ]
    for key, n in sorted((stats.get("writes") or {}).items()):
        verb, _, kind = str(key).partition(":")
        lines.append(f'd3os_operator_writes_total{{verb="{verb}",kind="{kind}"}} {n}')
    lines += [
        "# HELP d3os_operator_http_requests_total Requests sent to the API server, by method.",
        "# TYPE d3os_operator_http_requests_total counter",
    ]
    for method, n in sorted((stats.get("http_requests") or {}).items()):
        lines.append(f'd3os_operator_http_requests_total{{method="{method}"}} {n}')
    lines += [
        "# HELP d3os_operator_queue_depth DataServices waiting for a worker.",
        "# TYPE d3os_operator_queue_depth gauge",
        f"d3os_operator_queue_depth {stats.get('queue', 0)}",
        "# HELP d3os_operator_relists_total Lists (initial and after watch trouble), by kind.",
        "# TYPE d3os_operator_relists_total counter",
    ]
    for kind, n in sorted((stats.get("relists") or {}).items()):
        lines.append(f'd3os_operator_relists_total{{kind="{kind}"}} {n}')
    lines += [
        "# HELP d3os_operator_probe_ok Last result of each third-party check (1 ok, 0 failing).",
        "# TYPE d3os_operator_probe_ok gauge",
    ]
    for p in stats.get("probes") or []:
        if p.get("ok") is not None:
            check = str(p["check"]).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'd3os_operator_probe_ok{{check="{check}"}} {1 if p["ok"] else 0}')
    return "\n".join(lines) + "\n"


async def serve(
    host: str,
    port: int,
    stats: Callable[[], Mapping[str, Any]],
    ready: Callable[[], bool],
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound port through ``task_status`` (``port=0`` picks one)."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(5):
                    data = b""
                    while b"\r\n\r\n" not in data and len(data) < 8192:
                        chunk = await stream.receive(4096)
                        if not chunk:
                            break
                        data += chunk
                    parts = data.split(b" ", 2)
                    path = parts[1].decode(errors="replace").split("?", 1)[0] if len(parts) > 1 else "/"
                    if path == "/healthz":
                        code, body = 200, "ok\n"
                    elif path == "/readyz":
                        code, body = (200, "ok\n") if ready() else (503, "caches not synced\n")
                    elif path == "/metrics":
                        code, body = 200, prometheus_text(stats())
                    else:
                        code, body = 404, "not found\n"
                    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
                    payload = body.encode()
                    head = (
                        f"HTTP/1.0 {code} {reason}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                    )
                    await stream.send(head.encode() + payload)
            except (TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                return

    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        log.info("serving health and metrics", extra={"address": f"{host}:{bound}"})
        task_status.started(bound)
        await listener.serve(handle)
