"""Who may read ``/metrics``: authentication and authorization by the API server, as controller-runtime's
metrics filter (``filters.WithAuthenticationAndAuthorization``) does.

The metrics name every tenant's DataServices and third-party check targets, so on the network they are
served only to a caller the cluster vouches for: the request's ``Authorization: Bearer <token>`` is sent
in a TokenReview (who is it?), then a SubjectAccessReview asks whether that user may ``get`` the
non-resource URL ``/metrics`` -- the RBAC rule Prometheus' ServiceAccount is given
(``nonResourceURLs: ["/metrics"], verbs: ["get"]``). No token or an invalid one is 401, a user without
the right 403, an API server that cannot answer 503. Verdicts are kept for :data:`ALLOW_TTL` (a denial
for :data:`DENY_TTL`) by the token's SHA-256, so a scrape every 15 s costs two reviews a minute.

``--metrics-auth auto`` (the default) turns this on unless the metrics address is loopback (then nothing
outside the pod reaches it: off the network); ``kubernetes`` always, ``none`` never.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import anyio

log = logging.getLogger("d3os_operator.endpoints")

ALLOW_TTL = 60.0
DENY_TTL = 10.0
MAX_CACHED = 256
REVIEW_TIMEOUT = 10.0
PATH = "/metrics"
TEXT = "text/plain; charset=utf-8"

Response = tuple[int, bytes, str]


def needed(mode: str, host: str) -> bool:
    """Does ``--metrics-auth MODE`` with the metrics bound to ``host`` require authentication?"""
    if mode == "none":
        return False
    if mode == "kubernetes":
        return True
    return host not in ("127.0.0.1", "::1", "localhost")


def bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class MetricsAuth:
    """See the module docstring; ``http`` is the operator's API server client (``kube.http``)."""

    def __init__(self, http: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.http = http
        self.clock = clock
        self._verdicts: OrderedDict[str, tuple[Response | None, float]] = OrderedDict()
        self.reviews = 0

    async def check(self, headers: Mapping[str, str]) -> Response | None:
        """None when the caller may read the metrics, else the response to send instead."""
        token = bearer(headers)
        if not token:
            return 401, b"Unauthorized: send Authorization: Bearer <token>\n", TEXT
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._verdicts.get(key)
        now = self.clock()
        if cached is not None and cached[1] > now:
            self._verdicts.move_to_end(key)
            return cached[0]
        try:
            with anyio.fail_after(REVIEW_TIMEOUT):
                verdict = await self._review(token)
        except Exception as e:  # the API server cannot say: refuse, do not remember
            log.warning("metrics: cannot review the caller", extra={"error": str(e) or type(e).__name__})
            return 503, b"Service Unavailable: cannot review the caller with the API server\n", TEXT
        self._verdicts[key] = (verdict, now + (ALLOW_TTL if verdict is None else DENY_TTL))
        while len(self._verdicts) > MAX_CACHED:
            self._verdicts.popitem(last=False)
        return verdict

    async def _review(self, token: str) -> Response | None:
        self.reviews += 1
        resp = await self.http.post("/apis/authentication.k8s.io/v1/tokenreviews", json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"TokenReview: HTTP {resp.status_code}")
        status = (resp.json() or {}).get("status") or {}
        if not status.get("authenticated"):
            return 401, b"Unauthorized: the token is not valid\n", TEXT
        user = status.get("user") or {}
        resp = await self.http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
                "user": user.get("username", ""), "uid": user.get("uid", ""), "groups": user.get("groups") or [],
                "extra": user.get("extra") or {}, "nonResourceAttributes": {"path": PATH, "verb": "get"}}})
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"SubjectAccessReview: HTTP {resp.status_code}")
        if not ((resp.json() or {}).get("status") or {}).get("allowed"):
            who = str(user.get("username", "")).encode("utf-8", "replace")[:200]
            return 403, b"Forbidden: " + who + b" may not get /metrics\n", TEXT
        return None
