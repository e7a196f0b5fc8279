"""The two variant examples, installed as they are, do what their comments say.

``examples/dataservice-eureka-daemonset.yaml``: applied over an installed sample, eureka becomes a
DaemonSet with one pod per node, and the old Deployment goes once the DaemonSet is ready.
``examples/dataservice-mysql-thirdparty.yaml``: applied over an installed sample, mysql becomes the
third-party database at ``mysql.example.internal:3306``; the StatefulSet goes, its claim is kept, mysql's
dependents are re-wired and rolled, in order.

Both files are applied verbatim but for uuc, which every test points at its local stand-in (the seed's
uuc is on the internet: see ``tests/integration/standin.py``). ``mysql.example.internal`` resolves, for
the operator's probes only, to a loopback address of this test (pytest-mock patches the probes' system
resolver), where a listener on port 3306 plays the database.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client

from d3os_core.probe_policy import ProbePolicy, parse_cidr
from d3os_operator import probes
from d3os_operator.controller import Settings
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.kindswitch")
from .kindswitch import switch  # noqa: E402
from .standin import Env, StandIn, ensure_volumes, point_uuc_at  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MYSQL_HOST = "mysql.example.internal"


def example(name: str, uuc: StandIn) -> dict[str, Any]:
    return point_uuc_at(harness.load_sample(EXAMPLES / name), uuc)


@pytest.fixture
def loopback_db() -> Iterator[tuple[str, socket.socket]]:
    """A listener on port 3306 of a free loopback address (127.x.y.z: no clash with a real mysql)."""
    rng = random.Random()
    for _ in range(50):
        addr = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        srv = socket.socket()
        try:
            srv.bind((addr, 3306))
        except OSError:
            srv.close()
            continue
        srv.listen(16)
        try:
            yield addr, srv
        finally:
            srv.close()
        return
    pytest.fail("no free loopback address with port 3306")


@pytest.fixture
def wide_env(
    k8s_cluster: Any, k8s_namespace: str, client: Client, crd: None, uuc: StandIn
) -> Iterator[Env]:
    """``env``, with an operator whose probes may reach all of 127.0.0.0/8 (the database's address)."""
    ensure_volumes(client)
    # 127.0.0.1 by name too: it is the API server's address, protected by a /32 that a /8 does not override
    wide = ProbePolicy(allow=(parse_cidr("127.0.0.1/32"), parse_cidr("127.0.0.0/8")))
    settings = Settings(namespaces=[k8s_namespace], probe_policy=wide)
    with harness.RunningOperator(k8s_cluster.kubeconfig, settings=settings) as op:
        e = Env(k8s_cluster, client, k8s_namespace, uuc, op)
        try:
            yield e
        finally:
            e.close()
            harness.delete_dataservices(client, k8s_namespace)


def test_eureka_daemonset_example(env: Env, sample: dict[str, Any]) -> None:
    env.apply(sample)
    env.wait_ready()
    daemon = example("dataservice-eureka-daemonset.yaml", env.uuc)
    assert daemon["spec"]["eureka"]["kind"] == 2
    done = switch(env, sample, daemon, "eureka")  # the Deployment goes once the DaemonSet is ready
    assert done.rolled == [], "the same Service: eureka's dependents keep their configuration"
    ds = env.obj("DaemonSet", "eureka")
    assert ds is not None
    nodes = [n for n in env.client.list(_node()) if not (n.spec and n.spec.unschedulable)]
    st = ds["status"]
    assert st["desiredNumberScheduled"] == len(nodes) >= 2, (st, len(nodes))
    assert st["numberAvailable"] == len(nodes), "one eureka per node, all available"
    pods = [p for p in env.objects("Pod") if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
            == "eureka"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(n.metadata.name for n in nodes)


def test_mysql_thirdparty_example(
    wide_env: Env, sample: dict[str, Any], loopback_db: tuple[str, socket.socket], mocker: Any
) -> None:
    env = wide_env
    addr, _ = loopback_db
    real = probes.system_resolver

    async def resolver(host: str, port: int) -> list[str]:
        return [addr] if host == MYSQL_HOST else await real(host, port)

    mocker.patch.object(probes, "system_resolver", resolver)
    env.apply(sample)
    env.wait_ready()
    claims = {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")}
    third = example("dataservice-mysql-thirdparty.yaml", env.uuc)
    assert third["spec"]["mysql"]["thirdParty"]["checkCMD"] == f"nc -z -w 3 {MYSQL_HOST} 3306"
    done = switch(env, sample, third, "mysql")  # StatefulSet gone, claim kept, dependents re-wired, in order
    assert done.rolled == ["api-manager", "auth", "ds-adapter", "trd-adapter"]
    assert env.obj("StatefulSet", "mysql-dataservice") is None
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in env.objects("PersistentVolumeClaim")} == claims
    cm = env.obj("ConfigMap", "api-manager")
    assert cm is not None and f"jdbc:mysql://{MYSQL_HOST}:3306/" in cm["data"]["SPRING_DATASOURCE_URL"], cm
    mysql = {c["name"]: c for c in (env.ds() or {})["status"]["components"]}["mysql"]
    assert mysql["state"] == "Ready" and MYSQL_HOST in mysql["message"], mysql


def _node() -> Any:
    from lightkube.resources.core_v1 import Node

    return Node
