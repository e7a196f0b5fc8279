"""The local HTTP stand-in for the third-party uuc, plus the fixtures and helpers the operator's
integration tests share: ``test_operator_*.py`` load it as a plugin (``pytest_plugins``) for its fixtures
and import its helpers.

The seed's sample points uuc at a service on the internet, which this machine cannot reach: every test
patches uuc's ``thirdParty.url`` and ``checkCMD`` to a :class:`StandIn` on 127.0.0.1 (the example file
itself stays verbatim).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client

from d3os_core import api
from d3os_operator.kube import kind_info
from d3os_testenv import harness
from d3os_testenv.standin import StandIn, point_uuc_at

from .. import seed_transcript

__all__ = [
    "CHAIN",
    "SEED_OBJECTS",
    "SEED_PORTS",
    "Env",
    "StandIn",
    "chain",
    "client",
    "crd",
    "deployed",
    "ensure_volumes",
    "env",
    "events_for",
    "expected_phases",
    "get_obj",
    "list_kind",
    "point_uuc_at",
    "sample",
    "uuc",
    "wait_for",
]

# Run the operator's info-level log calls in tests too (a broken log call must fail a test, not production);
# pytest shows them for failing tests.
logging.getLogger("d3os_operator").setLevel(logging.INFO)

CHAIN = seed_transcript.chain()
"""The seed's order, read from its transcript (which spells ``da-adapter``; the component is ``ds-adapter``)."""

SEED_PORTS = {
    "api-manager": "9085/TCP",
    "auth": "9081/TCP",
    "ds-adapter": "9086/TCP",
    "es-adapter": "9087/TCP",
    "eureka": "8761/TCP",
    "gateway-master": "9184/TCP",
    "gateway-web": "9084/TCP",
    "mysql-dataservice": "3306/TCP",
    "proxy": "9094/TCP",
    "trd-adapter": "9088/TCP",
    "web": "80:30180/TCP",
}
"""``kubectl get all`` of the seed: service name -> PORT(S) (all ClusterIP but web, a NodePort)."""

SEED_OBJECTS = {
    "Deployment": {
        "api-manager",
        "auth",
        "ds-adapter",
        "es-adapter",
        "eureka",
        "gateway-master",
        "gateway-web",
        "proxy",
        "trd-adapter",
        "web",
    },
    "StatefulSet": {"mysql-dataservice"},
    "Service": set(SEED_PORTS),
}

WORKLOADS = {
    "mysql": ("StatefulSet", "mysql-dataservice"),
    **{k: ("Deployment", k) for k in CHAIN if k not in ("mysql", "uuc")},
}
"""The seed's sample: component -> its workload (uuc is a third party)."""


def chain(current: str) -> str:
    """The seed's MESSAGE while ``current`` is the step under way (its literal kubectl line)."""
    return seed_transcript.step(current)[1]


def expected_phases() -> list[tuple[str, str]]:
    """The seed's transcript, step by step: (PHASE, MESSAGE), its literal kubectl lines."""
    return seed_transcript.phases()


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 120.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def list_kind(
    client: Client, kind: str, namespace: str, api_version: str | None = None, labels: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    av = api_version or ("apps/v1" if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") else "v1")
    info = kind_info(av, kind) if kind != "ReplicaSet" else _replicaset()
    return [dict(o) for o in client.list(info.res, namespace=namespace, labels=dict(labels) if labels else None)]


def _replicaset() -> Any:
    from d3os_operator.kube import KindInfo, _unregistered_resource

    return KindInfo(
        "apps/v1", "ReplicaSet", "replicasets", _unregistered_resource("apps/v1", "ReplicaSet", "replicasets")
    )


def get_obj(client: Client, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    av = "apps/v1" if kind in ("Deployment", "StatefulSet", "DaemonSet") else "v1"
    try:
        return dict(client.get(kind_info(av, kind).res, name, namespace=namespace))
    except ApiError as e:
        if e.status.code == 404:
            return None
        raise


def events_for(client: Client, namespace: str, name: str) -> list[dict[str, Any]]:
    from d3os_operator.kube import EVENT

    return [
        dict(e)
        for e in client.list(EVENT.res, namespace=namespace)
        if (e.get("involvedObject") or {}).get("kind") == api.KIND
        and (e.get("involvedObject") or {}).get("name") == name
    ]


def figures_out(name: str, data: Any) -> None:
    """Print figures and, when D3OS_FIGURES_DIR is set, keep them as JSON there."""
    print(f"\n[figures] {name}: {json.dumps(data, ensure_ascii=False, indent=1)}")
    out = os.environ.get("D3OS_FIGURES_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))


def summarize_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "max_ms": round(max(values), 1),
        "min_ms": round(min(values), 1),
    }


def ensure_volumes(client: Client, n: int = 4) -> None:
    """mysql's claim needs a free PersistentVolume of the local cluster's pool: recycle released ones."""
    from d3os_testenv.cluster import ensure_pvs

    ensure_pvs(client, n)


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def client(k8s_cluster: Any) -> Client:
    return harness.sync_client(k8s_cluster.kubeconfig)


@pytest.fixture(scope="session")
def crd(k8s_cluster: Any, client: Client) -> None:
    """The DataService CRD, installed once per session."""
    harness.install_crd(client)


@pytest.fixture
def uuc() -> Iterator[StandIn]:
    """The stand-in for uuc, up."""
    with StandIn() as s:
        yield s


@pytest.fixture
def sample(uuc: StandIn) -> dict[str, Any]:
    """The seed's sample (examples/dataservice-sample.yaml) with uuc pointed at the stand-in."""
    return point_uuc_at(harness.load_sample(), uuc)


class Env:
    """One test's world: a namespace, the uuc stand-in, the operator in-process, and helpers."""

    def __init__(
        self, cluster: Any, client: Client, namespace: str, uuc: StandIn, operator: harness.RunningOperator
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.namespace = namespace
        self.uuc = uuc
        self.operator = operator
        self.recorders: list[harness.StatusRecorder] = []

    def apply(self, manifest: Mapping[str, Any]) -> None:
        """``kubectl apply`` the DataService, as a user would."""
        import yaml

        self.cluster.kubectl(
            "apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump(dict(manifest), allow_unicode=True)
        )

    def record(self, name: str = "dataservice-sample") -> harness.StatusRecorder:
        rec = harness.StatusRecorder(self.cluster.kubeconfig, self.namespace, name).start()
        self.recorders.append(rec)
        return rec

    def ds(self, name: str = "dataservice-sample") -> dict[str, Any] | None:
        return harness.get_dataservice(self.client, self.namespace, name)

    def wait_ready(
        self, name: str = "dataservice-sample", timeout: float = 240.0, generation: int | None = None
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            self.operator.check_alive()
            ds = self.ds(name)
            if ds is None or not harness.is_ready(ds):
                return None
            if (ds.get("status") or {}).get("observedGeneration") != ds["metadata"]["generation"]:
                return None
            if generation is not None and ds["metadata"]["generation"] < generation:
                return None
            return ds

        return wait_for(f"{name} Ready", ready, timeout, interval=0.1)

    def obj(self, kind: str, name: str) -> dict[str, Any] | None:
        return get_obj(self.client, kind, self.namespace, name)

    def objects(self, kind: str, **labels: str) -> list[dict[str, Any]]:
        return list_kind(self.client, kind, self.namespace, labels=labels or None)

    def close(self) -> None:
        for r in self.recorders:
            r.stop()


@pytest.fixture
def env(k8s_cluster: Any, k8s_namespace: str, client: Client, crd: None, uuc: StandIn) -> Iterator[Env]:
    """The operator running in-process on a fresh namespace, uuc's stand-in up."""
    ensure_volumes(client)
    with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[k8s_namespace]) as op:
        e = Env(k8s_cluster, client, k8s_namespace, uuc, op)
        try:
            yield e
        finally:
            e.close()
            # while the operator still runs, so finalizers are honoured and the namespace can go
            harness.delete_dataservices(client, k8s_namespace)


@pytest.fixture
def deployed(env: Env, sample: dict[str, Any]) -> Env:
    """``env`` with the seed's sample applied and Ready."""
    env.apply(sample)
    env.wait_ready()
    return env
