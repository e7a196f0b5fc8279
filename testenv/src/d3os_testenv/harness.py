"""Run the operator in-process and watch what it does: shared by the demo and the integration tests.

* :class:`RunningOperator` runs :class:`~d3os_operator.controller.Operator` on its own event loop in a
  background thread (``with RunningOperator(kubeconfig, namespaces=[ns]) as op: ...``) and keeps a
  trace of what it observed and sent (watch events, probe results, applies, deletes, status writes),
  timestamped with ``time.monotonic()``.
* :class:`StatusRecorder` watches one DataService independently of the operator and records every
  change of its status (PHASE, MESSAGE, conditions) as the API shows it.
* :func:`install_crd`, :func:`load_sample`, :func:`apiserver_writes` and :func:`step_latencies` are the
  small pieces around them.

It lives in the development-only ``d3os-testenv`` distribution: nothing here is used by
``d3os-operator run`` nor shipped in its image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import httpx2
import yaml
from lightkube import ApiError, Client, KubeConfig
from lightkube.types import PatchType

from d3os_core import api
from d3os_core.probe_policy import ProbePolicy, parse_cidr
from d3os_core.status import find_condition
from d3os_operator.controller import Operator, Settings
from d3os_operator.kube import DATASERVICE, Kube, make_client
from d3os_operator.reconciler import Planner
from d3os_operator.usercli.watch import DataServiceWatch

HARNESS_MANAGER = "d3os-harness"


def sync_client(kubeconfig: str | Path) -> Client:
    return Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager=HARNESS_MANAGER)


def find_sample() -> Path:
    """``examples/dataservice-sample.yaml`` of the source tree (the seed's sample, verbatim)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples" / "dataservice-sample.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("examples/dataservice-sample.yaml not found above " + str(here))


def load_sample(path: str | Path | None = None) -> dict[str, Any]:
    return dict(yaml.safe_load(Path(path or find_sample()).read_text(encoding="utf-8")))


def install_crd(client: Client, timeout: float = 60.0) -> None:
    """Server-side apply every installed product's CRD (DataService's included) and wait until each is
    Established and served: an operator started here serves every installed product."""
    from d3os_core.crd import crd_manifest
    from d3os_operator.kube import product_kind
    from d3os_operator.products import installed

    for product in installed():
        install_one_crd(client, crd_manifest(product), product_kind(product.names).res, timeout)


def install_one_crd(client: Client, crd: Mapping[str, Any], res: Any, timeout: float = 60.0) -> None:
    """Server-side apply ``crd`` and wait until it is Established and ``res`` (its resource) is served."""
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

    name = crd["metadata"]["name"]
    client.patch(
        CustomResourceDefinition, name, crd, patch_type=PatchType.APPLY, field_manager=HARNESS_MANAGER, force=True
    )
    deadline = time.monotonic() + timeout
    while True:
        got = client.get(CustomResourceDefinition, name)
        conds = {c.type: c.status for c in (got.status.conditions or [])} if got.status else {}
        if conds.get("Established") == "True":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"CRD {name} not Established after {timeout}s: {conds}")
        time.sleep(0.1)
    # the resource must also be served (discovery) before clients use it
    while True:
        try:
            list(client.list(res, namespace="default"))
            return
        except httpx2.HTTPStatusError as e:  # 404 until served, 429/503 while its storage initialises
            if e.response.status_code not in (404, 429, 503) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def apply_dataservice(
    client: Client, manifest: Mapping[str, Any], namespace: str, manager: str = "d3os-user"
) -> dict[str, Any]:
    """Apply an instance of any installed product (a DataService by default) as a user would (server-side
    apply, its own field manager); its ``kind`` picks the resource."""
    from d3os_operator.kube import product_kind
    from d3os_operator.products import installed

    body = dict(manifest)
    body["metadata"] = {**dict(manifest.get("metadata") or {}), "namespace": namespace}
    kind = str(body.get("kind") or DATASERVICE.kind)
    res = next((product_kind(p.names).res for p in installed() if p.names.kind == kind), DATASERVICE.res)
    out = client.patch(
        res,
        body["metadata"]["name"],
        body,
        namespace=namespace,
        patch_type=PatchType.APPLY,
        field_manager=manager,
        force=True,
    )
    return dict(out)


def get_dataservice(client: Client, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.get(DATASERVICE.res, name, namespace=namespace))
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


def delete_dataservices(client: Client, namespace: str, timeout: float = 60.0) -> list[str]:
    """Delete every DataService in ``namespace`` and wait until they are gone (a running operator removes
    the finalizer); any still there after ``timeout`` gets its finalizers stripped, so the namespace can
    go. Returns the names that had to be stripped."""
    names = [dict(o)["metadata"]["name"] for o in client.list(DATASERVICE.res, namespace=namespace)]
    for name in names:
        with contextlib.suppress(ApiError):
            client.delete(DATASERVICE.res, name, namespace=namespace)
    deadline = time.monotonic() + timeout
    left = list(names)
    while left and time.monotonic() < deadline:
        left = [n for n in left if get_dataservice(client, namespace, n) is not None]
        if left:
            time.sleep(0.2)
    for name in left:
        with contextlib.suppress(ApiError):
            client.patch(
                DATASERVICE.res,
                name,
                {"metadata": {"finalizers": None}},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
    return left


def condition(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any]:
    return find_condition(((obj or {}).get("status") or {}).get("conditions"), type_)


LOOPBACK_STANDIN = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"),))
"""The probe policy of operators started here: the default one, plus the stand-ins' 127.0.0.1."""


# -- the operator in a background thread ----------------------------------------------------------------


class RunningOperator:
    """The operator on its own event loop in a background thread; see the module docstring."""

    def __init__(
        self,
        kubeconfig: str | Path,
        *,
        namespaces: Sequence[str] | None = None,
        workers: int = 4,
        field_manager: str = api.FIELD_MANAGER,
        trace: bool = True,
        settings: Settings | None = None,
        planner: Planner | None = None,
        products: Sequence[Any] | None = None,
    ) -> None:
        """``products``: the products to serve (default: the installed ones)."""
        self.kubeconfig = Path(kubeconfig)
        self.planner = planner
        self.products = products
        self.settings = settings or Settings(namespaces=list(namespaces or []) or None, workers=workers)
        if self.settings.probe_policy is None:
            # the tests' third-party stand-ins listen on loopback, which the default probe policy refuses:
            # allow exactly 127.0.0.1, as ``d3os-operator run --probe-allow-cidr 127.0.0.1/32`` would
            self.settings = dataclasses.replace(self.settings, probe_policy=LOOPBACK_STANDIN)
        self.field_manager = field_manager
        self.trace_enabled = trace
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._portal_cm: Any = None
        self.portal: anyio.from_thread.BlockingPortal | None = None
        self._future: Future[Any] | None = None
        self.kube: Kube | None = None
        self.operator: Operator | None = None

    def _record(self, rec: dict[str, Any]) -> None:
        with self._lock:
            self.records.append(rec)

    def trace(self, what: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if what is None or r["what"] == what]

    def start(self, timeout: float = 60.0) -> RunningOperator:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self._portal_cm.__enter__()

        async def build() -> None:
            config = KubeConfig.from_file(str(self.kubeconfig))
            self.kube = Kube(make_client(config), field_manager=self.field_manager)
            self.operator = Operator(
                self.kube, self.settings, planner=self.planner, tracer=self._record if self.trace_enabled else None,
                products=self.products,
            )

        self.portal.call(build)
        assert self.operator is not None
        self._future = self.portal.start_task_soon(self.operator.run)

        async def wait_ready() -> None:
            assert self.operator is not None
            with anyio.fail_after(timeout):
                await self.operator.ready.wait()

        self.portal.call(wait_ready)
        return self

    def stop(self) -> None:
        if self.portal is None:
            return
        if self._future is not None:
            self._future.cancel()
            with contextlib.suppress(BaseException):
                self._future.result(timeout=10)
        if self.kube is not None:
            with contextlib.suppress(BaseException):
                self.portal.call(self.kube.aclose)
        with contextlib.suppress(BaseException):
            self._portal_cm.__exit__(None, None, None)
        self.portal = None

    def check_alive(self) -> None:
        """Raise the operator's exception if it died."""
        if self._future is not None and self._future.done():
            self._future.result()
            raise RuntimeError("the operator stopped")

    @property
    def writes(self) -> int:
        assert self.kube is not None
        return self.kube.write_count

    def __enter__(self) -> RunningOperator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- watching a DataService from the outside ------------------------------------------------------------


class StatusRecorder:
    """Records every status change of one DataService, from its own watch (not the operator's)."""

    def __init__(
        self,
        kubeconfig: str | Path,
        namespace: str,
        name: str,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.on_change = on_change
        self.changes: list[dict[str, Any]] = []
        self.latest: dict[str, Any] | None = None
        self._last_status: Any = object()
        self._watch = DataServiceWatch(KubeConfig.from_file(str(kubeconfig)), namespace, name, self._record,
                                       server_timeout=2)
        self._cond = threading.Condition()
        self.deleted = False

    def start(self) -> StatusRecorder:
        self._watch.start()
        return self

    def stop(self) -> None:
        """Stop recording: the watch is cancelled, its client closed and its thread joined."""
        self._watch.stop()

    def __enter__(self) -> StatusRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, typ: str, data: dict[str, Any] | None) -> None:
        gone = typ == "DELETED" or data is None  # a relist (after 410 Gone) that found nothing: deleted
        status = (data or {}).get("status") or {}
        with self._cond:
            self.latest = None if gone else data
            self.deleted = gone
            if status != self._last_status or gone:
                self._last_status = status
                change = {
                    "t": time.monotonic(),
                    "type": "DELETED" if gone else typ,
                    "phase": status.get("phase", ""),
                    "message": status.get("message", ""),
                    "conditions": {c["type"]: c for c in status.get("conditions") or []},
                    "status": status,
                    "generation": (data or {}).get("metadata", {}).get("generation"),
                }
                self.changes.append(change)
                if self.on_change is not None:
                    self.on_change(change)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[dict[str, Any] | None], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.latest):
                left = deadline - time.monotonic()
                if left <= 0:
                    status = (self.latest or {}).get("status")
                    raise TimeoutError(
                        f"timed out after {timeout}s waiting for {what or 'condition'}; status: {status}"
                    )
                self._cond.wait(min(left, 0.5))

    def phases(self) -> list[tuple[str, str]]:
        """Distinct consecutive (PHASE, MESSAGE) pairs seen, empty ones left out."""
        out: list[tuple[str, str]] = []
        for c in self.changes:
            pair = (c["phase"], c["message"])
            if pair != ("", "") and (not out or out[-1] != pair):
                out.append(pair)
        return out


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    return condition(obj, "Ready").get("status") == "True"


# -- apiserver metrics ----------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+-]+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION", "CREATE", "UPDATE"})


Counts = dict[tuple[str, str, str, str], float]
"""(verb, resource, subresource, scope) -> requests."""


def apiserver_requests(client: Client) -> Counts:
    """``apiserver_request_total`` summed by (verb, resource, subresource, scope), from /metrics.

    ``scope`` tells a single-object request (``resource``) from a collection one (``namespace``, e.g.
    the namespace controller's DELETE of everything in a namespace being deleted).
    """
    http = client._client._client
    resp = http.get("/metrics")
    resp.raise_for_status()
    out: Counts = {}
    for line in resp.text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        key = (
            labels.get("verb", ""),
            labels.get("resource", ""),
            labels.get("subresource", ""),
            labels.get("scope", ""),
        )
        out[key] = out.get(key, 0.0) + float(m.group("value"))
    return out


def operator_like_writes(before: Counts, after: Counts) -> dict[str, float]:
    """Writes between two scrapes that the operator could have sent, whoever sent them.

    Counted: every server-side apply (verb APPLY: the cluster's controllers do not use it) of a kind the
    operator writes, any write on DataServices but the namespace controller's collection DELETE, and single-object
    DELETEs of the kinds the operator owns. Events are reported apart (every controller posts them).
    """
    out: dict[str, float] = {}
    for key, value in after.items():
        delta = value - before.get(key, 0.0)
        if not delta:
            continue
        verb, resource, sub, scope = key
        name = f"{verb} {resource}{'/' + sub if sub else ''} ({scope})"
        single = scope == "resource"
        applied = verb == "APPLY" and resource in OPERATOR_RESOURCES
        on_parent = resource == api.PLURAL and verb in WRITE_VERBS and single
        deleted_child = verb == "DELETE" and single and resource in OPERATOR_RESOURCES and resource != "events"
        if applied or on_parent or deleted_child:
            out[name] = delta
    return out


def event_posts(before: Counts, after: Counts) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == "POST" and k[1] == "events")


OPERATOR_RESOURCES = (
    api.PLURAL,
    "deployments",
    "statefulsets",
    "daemonsets",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "events",
)


# -- per-step latency ------------------------------------------------------------------------------------


def component_times(
    records: Sequence[dict[str, Any]], workloads: Mapping[str, tuple[str, str]], ds: str
) -> tuple[dict[str, float], dict[str, float]]:
    """(first apply sent, first observed ready after it) per component of ``ds``, from the operator's trace:
    a watch event on the workload that makes it rolled out by the core's rules, or the third-party probe
    turning ok. ``workloads`` maps a component to its (kind, name), absent for a third party."""
    from d3os_core.readiness import rollout

    ready_at: dict[str, float] = {}
    first_apply: dict[str, float] = {}
    names = {v: k for k, v in workloads.items()}
    for r in records:
        if r.get("ds") != ds and not (isinstance(r.get("ds"), list) and ds in r["ds"]):
            continue
        if r["what"] == "event" and r["kind"] != api.KIND and r["type"] != "DELETED":
            obj = r["obj"]
            comp = names.get((r["kind"], obj["metadata"]["name"]))
            if comp and comp not in ready_at and comp in first_apply and rollout(obj, r["kind"]).ready:
                ready_at[comp] = r["t"]
        elif r["what"] == "probe" and r.get("ok"):
            comp = r.get("component", "")
            if comp and comp not in ready_at:
                ready_at[comp] = r["t"]
        elif r["what"] == "apply" and r["component"] not in first_apply:
            first_apply[r["component"]] = r["t"]
    return first_apply, ready_at


def step_latencies(
    records: Sequence[dict[str, Any]], order: Sequence[str], workloads: Mapping[str, tuple[str, str]], ds: str
) -> list[dict[str, Any]]:
    """For each component after the first: when its predecessor was first *observed* ready by the operator
    and when the operator sent the component's first apply (:func:`component_times`)."""
    first_apply, ready_at = component_times(records, workloads, ds)
    out = []
    for prev, comp in itertools.pairwise(order):
        row: dict[str, Any] = {"step": f"{prev} -> {comp}", "component": comp}
        if prev in ready_at and comp in first_apply:
            row["latency_ms"] = (first_apply[comp] - ready_at[prev]) * 1000
        out.append(row)
    return out
