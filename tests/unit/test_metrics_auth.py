"""/metrics behind authentication and authorization (issue 24, B6): TokenReview, then SubjectAccessReview for
get on /metrics, as controller-runtime's metrics filter; off the network (loopback) it may serve openly.
A fake API server answers the reviews here; tests/integration/test_metrics_auth.py asks a real one."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from d3os_operator import endpoints, metricsauth
from d3os_operator.metricsauth import MetricsAuth

pytestmark = pytest.mark.anyio

USERS = {"prom-token": ("system:serviceaccount:monitoring:prometheus", True),
         "viewer-token": ("system:serviceaccount:t1:viewer", False)}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Reply:
    def __init__(self, body: dict[str, Any], code: int = 201) -> None:
        self.status_code, self.body = code, body

    def json(self) -> dict[str, Any]:
        return self.body


class FakeApi:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.down = False

    async def post(self, path: str, json: dict[str, Any]) -> Reply:
        self.posts.append((path, json))
        if self.down:
            raise httpx2.ConnectError("connection refused")
        if path.endswith("/tokenreviews"):
            user = USERS.get(json["spec"]["token"])
            if user is None:
                return Reply({"status": {"authenticated": False}})
            return Reply({"status": {"authenticated": True, "user": {"username": user[0], "groups": ["g"]}}})
        spec = json["spec"]
        assert spec["nonResourceAttributes"] == {"path": "/metrics", "verb": "get"}
        allowed = any(u == spec["user"] and ok for u, ok in USERS.values())
        return Reply({"status": {"allowed": allowed}})


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_no_token_401_invalid_401_not_allowed_403_allowed_none() -> None:
    api = FakeApi()
    auth = MetricsAuth(api)
    assert (await auth.check({}))[0] == 401  # type: ignore[index]
    assert (await auth.check({"authorization": "Basic abc"}))[0] == 401  # type: ignore[index]
    assert (await auth.check({"authorization": "Bearer nope"}))[0] == 401  # type: ignore[index]
    refused = await auth.check({"authorization": "Bearer viewer-token"})
    assert refused is not None and refused[0] == 403 and b"viewer" in refused[1]
    assert await auth.check({"authorization": "Bearer prom-token"}) is None
    sar = [body for path, body in api.posts if path.endswith("subjectaccessreviews")]
    assert sar[-1]["spec"]["user"] == "system:serviceaccount:monitoring:prometheus"
    assert sar[-1]["spec"]["groups"] == ["g"]


async def test_verdicts_are_cached_for_a_while_and_the_api_being_down_refuses() -> None:
    api, clock = FakeApi(), Clock()
    auth = MetricsAuth(api, clock=clock)
    for _ in range(5):
        assert await auth.check({"authorization": "Bearer prom-token"}) is None
    assert auth.reviews == 1, "one review for a scrape every few seconds"
    clock.t += metricsauth.ALLOW_TTL + 1
    api.down = True
    down = await auth.check({"authorization": "Bearer prom-token"})
    assert down is not None and down[0] == 503, "when the API server cannot say, nobody is let in"
    api.down = False
    assert await auth.check({"authorization": "Bearer prom-token"}) is None


def test_auto_is_on_unless_the_address_is_loopback() -> None:
    assert metricsauth.needed("auto", "0.0.0.0") and metricsauth.needed("auto", "10.0.0.5")
    assert not metricsauth.needed("auto", "127.0.0.1") and not metricsauth.needed("auto", "::1")
    assert metricsauth.needed("kubernetes", "127.0.0.1") and not metricsauth.needed("none", "0.0.0.0")


def test_the_default_flags_serve_metrics_on_the_network_only_with_auth() -> None:
    from d3os_operator.cli import build_parser

    args = build_parser().parse_args(["run"])
    host, _ = endpoints.parse_address(args.metrics_bind_address)  # type: ignore[misc]
    assert args.metrics_auth == "auto" and metricsauth.needed(args.metrics_auth, host)


async def test_the_server_asks_the_guard_before_the_route() -> None:
    api = FakeApi()
    listener = await endpoints.listen("127.0.0.1", 0)
    port = endpoints.bound_port(listener)
    served: list[str] = []

    def route(query: endpoints.Query) -> endpoints.Response:
        served.append("metrics")
        return 200, b"d3os_up 1\n", endpoints.PROMETHEUS

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: endpoints.serve(listener, {"/metrics": route}, guard=MetricsAuth(api).check))
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
            assert (await c.get("/metrics")).status_code == 401
            assert (await c.get("/metrics", headers={"Authorization": "Bearer viewer-token"})).status_code == 403
            assert served == [], "the metrics are not rendered for a refused caller"
            ok = await c.get("/metrics", headers={"Authorization": "Bearer prom-token"})
            assert ok.status_code == 200 and ok.text == "d3os_up 1\n"
        tg.cancel_scope.cancel()
