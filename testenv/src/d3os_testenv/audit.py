"""Read kube-apiserver's audit log (written by every :class:`~d3os_testenv.cluster.LocalCluster`).

The server's own record of who sent what -- independent of any client's counters -- so tests and
benchmarks can say "this replica sent no write before it held the Lease" or "the operator sent N GETs a
minute" as measured facts. One JSON object per completed request (see ``AUDIT_POLICY``).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Request:
    verb: str
    user: str
    user_agent: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    at: float
    """When the request was received (epoch seconds, the apiserver's clock)."""

    @property
    def is_write(self) -> bool:
        """A request that changes what the API server stores: a review (TokenReview, SubjectAccessReview,
        SelfSubjectAccessReview...) is a ``create`` that stores nothing, only asks a question."""
        return self.verb in WRITE_VERBS and not self.resource.endswith("reviews")


def _epoch(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def parse(line: str) -> Request | None:
    try:
        ev = json.loads(line)
    except ValueError:
        return None  # a line cut short by a log rotation or a crash
    ref = ev.get("objectRef") or {}
    return Request(
        verb=ev.get("verb", ""),
        user=(ev.get("user") or {}).get("username", ""),
        user_agent=ev.get("userAgent", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        code=int((ev.get("responseStatus") or {}).get("code") or 0),
        at=_epoch(ev.get("requestReceivedTimestamp")),
    )


def read(path: Path, *, since: float = 0.0, agent: str | None = None) -> Iterator[Request]:
    """Requests in the log (and its rotated predecessor) received at or after ``since``, optionally only
    those whose user agent contains ``agent``."""
    files = [*sorted(path.parent.glob(path.stem + "-*" + path.suffix)), path]
    for f in files:
        if not f.exists():
            continue
        with f.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if agent is not None and agent not in line:
                    continue
                req = parse(line)
                if req is None or req.at < since:
                    continue
                if agent is not None and agent not in req.user_agent:
                    continue
                yield req


def by_verb(requests: Iterable[Request], keep: Callable[[Request], bool] = lambda r: True) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter(r.verb for r in requests if keep(r))
    return dict(sorted(counts.items()))


def summary(requests: Iterable[Request]) -> dict[str, Any]:
    """Counts by verb and by verb+resource, with writes and non-watch reads totalled."""
    reqs = list(requests)
    per: collections.Counter[str] = collections.Counter(
        f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}" for r in reqs
    )
    return {
        "total": len(reqs),
        "by_verb": by_verb(reqs),
        "writes": sum(1 for r in reqs if r.is_write),
        "reads": sum(1 for r in reqs if r.verb in ("get", "list")),
        "watches": sum(1 for r in reqs if r.verb == "watch"),
        "by_verb_resource": dict(per.most_common()),
    }


MARK_PREFIX = "d3os-audit-high-water-"


def high_water(client: Any, path: Path, timeout: float = 30.0) -> float:
    """Send a marker request (a GET of a ConfigMap nobody has, under a unique name) and wait until the audit
    log shows it; returns when the API server received it (epoch seconds).

    The log backend writes events in the order requests complete, so once the marker is in the log, every
    request that completed before it is too: "nothing more was sent" is then a fact, not a guess after a
    sleep (a sleep passes a duplicate that arrives late). Raises if the marker never shows -- a log that
    silently records nothing must fail the check, not pass it.
    """
    import time
    import uuid

    from lightkube import ApiError
    from lightkube.resources.core_v1 import ConfigMap

    name = MARK_PREFIX + uuid.uuid4().hex
    try:
        client.get(ConfigMap, name, namespace="default")
    except ApiError as e:
        if e.status.code != 404:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for req in read(path):
                if req.name == name:
                    return req.at
        time.sleep(0.2)
    raise AssertionError(f"the audit log {path} never showed the marker request {name} within {timeout}s")
