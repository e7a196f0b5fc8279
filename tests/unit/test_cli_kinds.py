"""The cluster commands are product-neutral: ``status``/``history``/``rollback`` NAME is looked up under every
installed product's kind (``--kind`` picks one), and what they print for a DataService is what they always
printed. A fake API client stands in for the cluster (the real one: tests/integration/test_cli_cluster.py)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import Status

from d3os_operator import products
from d3os_operator.kube import product_kind
from d3os_operator.usercli import connect, errors, main

NS = "team-a"


def instance(kind: str, name: str, phase: str = "Ready") -> dict[str, Any]:
    return {"apiVersion": "d3os-product.com.d3os/v1", "kind": kind,
            "metadata": {"name": name, "namespace": NS, "generation": 2, "uid": f"uid-{kind}-{name}"},
            "status": {"observedGeneration": 2, "phase": phase, "message": "a → b", "components": []}}


class FakeClient:
    """``get`` of product instances from a dict keyed by (kind, namespace, name); 404 for anything else;
    ``list`` (revisions) finds nothing."""

    def __init__(self, *objects: dict[str, Any], forbidden: tuple[str, ...] = ()) -> None:
        self.objects = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.forbidden = forbidden
        self.kinds = {product_kind(p.names).res: p.names.kind for p in products.installed()}
        self.asked: list[str] = []
        self.namespace = "default"

    def get(self, res: Any, name: str, namespace: str) -> dict[str, Any]:
        kind = self.kinds[res]
        self.asked.append(kind)
        if kind in self.forbidden:
            message = f'cannot get resource "{kind.lower()}s" in the namespace "{namespace}"'
            raise ApiError(status=Status(code=403, reason="Forbidden", message=message))
        found = self.objects.get((kind, namespace, name))
        if found is None:
            raise ApiError(status=Status(code=404, message=f"{kind} {name!r} not found", reason="NotFound"))
        return found

    def list(self, res: Any, **kw: Any) -> list[Any]:
        return []


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeClient]]:
    """Point the command line at a FakeClient (set the list's one element)."""
    holder: list[FakeClient] = [FakeClient()]

    @contextlib.contextmanager
    def client(config: Any) -> Iterator[FakeClient]:
        yield holder[0]

    monkeypatch.setattr(connect, "kubeconfig", lambda args: object())
    monkeypatch.setattr(connect, "client", client)
    yield holder


def d3os(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(argv), out=out)
    return code, out.getvalue(), err.getvalue()


def test_the_shipped_products_have_distinct_kinds() -> None:
    kinds = sorted(p.names.kind for p in products.installed())
    assert kinds == ["AnalyticsService", "DataService"]
    assert products.installed_product("dataservice").names.kind == "DataService"
    with pytest.raises(KeyError, match="installed: "):
        products.installed_product("nope")


@pytest.mark.parametrize("word", ["DataService", "dataservice", "dataservices", "dsvc", "DSVC"])
def test_kind_words_as_kubectl_takes_them(word: str) -> None:
    found = products.by_resource_name(products.installed(), word)
    assert found is not None and found.names.kind == "DataService"
    analytics = products.by_resource_name(products.installed(), "asvc")
    assert analytics is not None and analytics.names.kind == "AnalyticsService"
    assert products.by_resource_name(products.installed(), "deployment") is None


def test_status_of_a_dataservice_is_as_it_always_was(cluster: list[FakeClient]) -> None:
    cluster[0] = FakeClient(instance("DataService", "ds"))
    code, out, _ = d3os("status", "ds", "-n", NS)
    assert code == 0
    assert out.splitlines()[0] == f"DataService {NS}/ds   generation 2, observed 2   0/0 ready"
    assert out.splitlines()[1:3] == ["PHASE    Ready", "CHAIN    a → b"]


def test_status_finds_the_name_under_its_own_kind(cluster: list[FakeClient]) -> None:
    cluster[0] = FakeClient(instance("AnalyticsService", "an"))
    code, out, _ = d3os("status", "an", "-n", NS)
    assert code == 0 and out.startswith(f"AnalyticsService {NS}/an   generation 2"), out


def test_status_not_found_names_every_kind_tried(cluster: list[FakeClient]) -> None:
    code, out, _ = d3os("status", "nothing-here", "-n", NS)
    assert code == 1
    assert out.splitlines() == [f"DataService {NS}/nothing-here: not found",
                                f"AnalyticsService {NS}/nothing-here: not found"]
    code, out, _ = d3os("status", "nothing-here", "-n", NS, "--kind", "dsvc")
    assert (code, out) == (1, f"DataService {NS}/nothing-here: not found\n")
    assert cluster[0].asked[-1:] == ["DataService"]


def test_one_name_under_two_kinds_asks_for_kind(cluster: list[FakeClient]) -> None:
    cluster[0] = FakeClient(instance("DataService", "same"), instance("AnalyticsService", "same"))
    code, out, err = d3os("status", "same", "-n", NS)
    assert code == errors.EXIT_INVALID and out == ""
    assert err.strip() == (f"d3os: error: {NS}/same names instances of several kinds (DataService, "
                           "AnalyticsService): say which with --kind KIND")
    code, out, _ = d3os("status", "same", "-n", NS, "--kind", "AnalyticsService")
    assert code == 0 and out.startswith(f"AnalyticsService {NS}/same"), out
    code, out, _ = d3os("status", "same", "-n", NS, "--kind", "dataservices")
    assert code == 0 and out.startswith(f"DataService {NS}/same"), out
    code, _, err = d3os("history", "same", "-n", NS)
    assert code == errors.EXIT_INVALID and "--kind" in err


def test_an_unknown_kind_is_invalid_input(cluster: list[FakeClient]) -> None:
    code, out, err = d3os("status", "ds", "-n", NS, "--kind", "Deployment")
    assert code == errors.EXIT_INVALID and out == ""
    assert "--kind Deployment: not the kind of an installed product; kinds: " in err
    assert "DataService (dataservices, dsvc)" in err and "AnalyticsService (analyticsservices, asvc)" in err
    assert cluster[0].asked == []


def test_history_and_rollback_look_the_name_up_the_same_way(cluster: list[FakeClient]) -> None:
    code, out, _ = d3os("history", "gone", "-n", NS, "--kind", "DataService")
    assert (code, out) == (1, f"DataService {NS}/gone: not found\n")
    code, out, _ = d3os("rollback", "gone", "-n", NS)
    assert code == 1 and out.splitlines() == [f"DataService {NS}/gone: not found",
                                              f"AnalyticsService {NS}/gone: not found"]
    cluster[0] = FakeClient(instance("AnalyticsService", "an"))
    code, out, _ = d3os("history", "an", "-n", NS)
    assert code == 0 and out.startswith(f"AnalyticsService {NS}/an: no revisions yet"), out
    code, out, err = d3os("rollback", "an", "-n", NS)  # exit 1, as its --help says (issue 26 item 6)
    assert (code, out) == (1, "")
    assert err == f"d3os: error: AnalyticsService {NS}/an: no revisions yet: nothing to roll back to\n"


@pytest.mark.parametrize(("plural", "kind"), [("dataservices", "DataService"),
                                              ("analyticsservices", "AnalyticsService")])
def test_a_product_kind_the_server_does_not_serve_is_named(plural: str, kind: str) -> None:
    import httpx2

    url = f"https://127.0.0.1:6443/apis/d3os-product.com.d3os/v1/namespaces/team-a/{plural}/x"
    request = httpx2.Request("GET", url)
    response = httpx2.Response(404, text="404 page not found", request=request)
    exc = httpx2.HTTPStatusError("Client error '404 Not Found'", request=request, response=response)
    code, message = errors.describe(exc) or (0, "")
    assert code == errors.EXIT_NOT_FOUND
    assert message.startswith(f"not found: the API server does not serve {kind}s (get {plural}/x in namespace "
                              "team-a): is the CRD installed?"), message


def test_a_kind_the_user_may_not_read_is_left_out(cluster: list[FakeClient]) -> None:
    """RBAC granting DataServices only (as before there were other products): status works as it did."""
    cluster[0] = FakeClient(instance("DataService", "ds"), forbidden=("AnalyticsService",))
    code, out, _ = d3os("status", "ds", "-n", NS)
    assert code == 0 and out.startswith(f"DataService {NS}/ds   generation 2"), out
    code, out, _ = d3os("status", "other", "-n", NS)
    assert (code, out) == (1, f"DataService {NS}/other: not found\n")
    code, out, err = d3os("status", "ds", "-n", NS, "--kind", "asvc")
    assert code == errors.EXIT_FORBIDDEN and out == "" and '"analyticsservices"' in err, err


def test_every_kind_forbidden_is_the_first_kinds_error(cluster: list[FakeClient]) -> None:
    cluster[0] = FakeClient(forbidden=("AnalyticsService", "DataService"))
    code, out, err = d3os("status", "x", "-n", NS)
    assert code == errors.EXIT_FORBIDDEN and out == ""
    assert err.startswith("d3os: error: forbidden: ") and '"dataservices"' in err and len(err.splitlines()) == 1
