"""pytest plugin (the ``pytest11`` entry point ``d3os_testenv`` of the development-only ``d3os-testenv``
distribution: it loads only where the development tools are installed, never beside a plain operator install).

Fixtures:

* ``k8s_cluster`` (session): a running control plane. Uses the kubeconfig named by
  ``D3OS_TEST_KUBECONFIG`` when set (e.g. a cluster from ``d3os-testenv up``), otherwise starts a
  private ``LocalCluster`` for the session and stops it at the end.
* ``k8s_namespace`` (function): a fresh namespace (its ``default`` ServiceAccount exists), deleted after.
* ``helm_binary`` (session): the path of ``helm`` from the toolchain cache, built first if missing;
  ``kstatus_binary`` and ``luahealth_binary`` the same for the tests' Go checkers (kstatus' verdict,
  Argo CD's Lua health scripts).

Every test that uses one of them is marked ``integration`` automatically, so ``-m "not integration"``
deselects them and ``-m integration`` selects them.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

_FIXTURES = {"k8s_cluster", "k8s_namespace"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the real local control plane (d3os_testenv)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _progress(msg: str) -> None:
    if os.environ.get("D3OS_TESTENV_QUIET") != "1":
        print(f"[d3os-testenv] {msg}", flush=True)


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[Any]:
    from d3os_testenv.cluster import LocalCluster, open_cluster

    kc = os.environ.get("D3OS_TEST_KUBECONFIG")
    if kc:
        c = open_cluster(kc)
        try:
            yield c
        finally:
            c.close()
        return
    cluster = LocalCluster(
        name=f"pytest-{os.getpid()}",
        ephemeral=True,
        progress=_progress,
        keep_data=os.environ.get("D3OS_TESTENV_KEEP_LOGS") == "1",
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def helm_binary() -> str:
    from d3os_testenv.build import ensure_tool

    return str(ensure_tool("helm", progress=_progress))


@pytest.fixture(scope="session")
def kstatus_binary() -> str:
    from d3os_testenv.build import ensure_tool

    return str(ensure_tool("kstatus", progress=_progress))


@pytest.fixture(scope="session")
def luahealth_binary() -> str:
    from d3os_testenv.build import ensure_tool

    return str(ensure_tool("luahealth", progress=_progress))


def _ns_name(nodeid: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", nodeid.rsplit("::", 1)[-1].lower()).strip("-")[:40].strip("-")
    return f"t-{base or 'test'}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def k8s_namespace(k8s_cluster: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    from lightkube import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace, ServiceAccount

    client = k8s_cluster.client()
    name = _ns_name(request.node.nodeid)
    client.create(Namespace(metadata=ObjectMeta(name=name, labels={"d3os-testenv.d3os.io/test": "true"})))
    deadline = time.monotonic() + 60
    while True:
        try:
            client.get(ServiceAccount, "default", namespace=name)
            break
        except ApiError as e:
            if e.status.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        # A control-plane component that crashed during the test fails it with the tail of its log.
        check = getattr(k8s_cluster, "check", None)
        if check is not None:
            check()
        if os.environ.get("D3OS_TESTENV_KEEP_NAMESPACES") != "1":
            try:
                client.delete(Namespace, name)
            except ApiError as e:
                if e.status.code != 404:
                    raise
