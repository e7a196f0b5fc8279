"""Issue 12, part B: one DataService cannot crash the operator for the others.

``test_bad_addresses_beside_the_sample``: the check addresses of findings 2 and 3, each DataService in its
own namespace, created beside the seed's sample, with the operator as a ``d3os-operator run`` subprocess.
What admission refuses is refused (and recorded); the rest is created. The sample goes Ready; each bad one
ends InvalidSpec naming its field, or (valid addresses that lead nowhere) its check failing in status; the
operator's process never exits and never logs a crashed reconcile.

``test_a_crashing_reconcile_ends_in_status``: a reconcile that raises (a planner that fails for one
DataService: a bug nobody foresaw) ends in that DataService's status (Degraded, ReconcileError) and a
Warning Event, is retried with backoff, and the sample beside it still goes Ready.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client

from d3os_core import Facts, Observed, Plan, plan
from d3os_core.planner import ERROR_REASON
from d3os_testenv import harness

from ..unit.helpers import DATASERVICE

pytest.register_assert_rewrite("tests.integration.standin")
from .chaos import OperatorProc, create_namespaces, delete_namespaces  # noqa: E402
from .standin import StandIn, ensure_volumes, events_for, figures_out, point_uuc_at, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

BAD: dict[str, dict[str, Any]] = {
    # finding 2: the probe raised and the process exited
    "fullwidth-curl": {"checkCMD": "curl --head --fail http://ｅｘａｍｐｌｅ.com/"},
    "idna-nc": {"checkCMD": "nc -z ä..b 3306"},
    "idna-url": {"url": "ä..b:80"},
    # finding 3: the parser raised, a crash every 60 s
    "bracket-curl": {"checkCMD": "curl http://[zz]/"},
    "bracket-url": {"url": "http://[zz]/"},
    "bracket-check": {"check": {"http": {"url": "http://[zz]/"}}},
    "port0-curl": {"checkCMD": "curl http://h:0/"},
    # valid addresses that lead nowhere: the probe runs and fails (or the probe policy refuses them)
    "nxdomain-curl": {"checkCMD": "curl --fail -m 2 http://nothing.invalid/"},
    "punycode-nc": {"checkCMD": "nc -z -w 2 xn--zz.invalid 1"},
    "loopback-url": {"url": "http://[::1]:1/"},
}


def _ds(name: str, tp: Mapping[str, Any]) -> dict[str, Any]:
    ds = harness.load_sample()
    ds["metadata"] = {"name": name}
    ds["spec"]["uuc"]["thirdParty"] = dict(tp)
    return ds


def _conditions(ds: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((ds or {}).get("status") or {}).get("conditions") or []}


def _uuc(ds: Mapping[str, Any] | None) -> dict[str, Any]:
    comps = ((ds or {}).get("status") or {}).get("components") or []
    return next((c for c in comps if c.get("name") == "uuc"), {})


def _verdict(ds: Mapping[str, Any] | None) -> str | None:
    """How a bad DataService ended: 'invalid-spec', 'probe-failed', or None while undecided."""
    ready = _conditions(ds).get("Ready") or {}
    if ready.get("reason") == "InvalidSpec" and ready.get("status") == "False":
        return "invalid-spec"
    uuc = _uuc(ds)
    message = uuc.get("message") or ""
    if uuc and not uuc.get("ready") and ("failed" in message or "probe policy" in message):
        return "probe-failed"
    return None


def test_bad_addresses_beside_the_sample(
    k8s_cluster: Any, client: Client, crd: None, uuc: StandIn, tmp_path: Path
) -> None:
    ensure_volumes(client)
    names = create_namespaces(client, "contain", len(BAD) + 1)
    sample_ns, bad_ns = names[0], dict(zip(BAD, names[1:], strict=True))
    op = OperatorProc(k8s_cluster.kubeconfig, names, tmp_path / "operator.log")
    try:
        op.wait_synced()
        pid = op.pid
        refused: dict[str, str] = {}
        created: list[str] = []
        for case, tp in BAD.items():
            try:
                harness.apply_dataservice(client, _ds(case, tp), bad_ns[case])
                created.append(case)
            except ApiError as e:
                assert e.status.code in (400, 422), e.status.message
                refused[case] = e.status.message or ""
        harness.apply_dataservice(client, point_uuc_at(harness.load_sample(), uuc), sample_ns)
        t0 = time.monotonic()

        def settled() -> bool:
            assert op.alive, f"the operator exited ({op.p.returncode}): {op.tail()}"
            return all(_verdict(harness.get_dataservice(client, bad_ns[c], c)) for c in created)

        wait_for("every created bad DataService reported", settled, 120, interval=0.5)
        wait_for(
            "the sample Ready beside them",
            lambda: (op.alive or pytest.fail(op.tail()))
            and harness.is_ready(harness.get_dataservice(client, sample_ns, "dataservice-sample")),
            240,
            interval=0.5,
        )
        ready_s = time.monotonic() - t0
        verdicts = {c: _verdict(harness.get_dataservice(client, bad_ns[c], c)) for c in created}
        # the finding-3 addresses and the non-ASCII ones are the spec's fault: named in InvalidSpec
        for case in ("fullwidth-curl", "idna-nc", "bracket-curl", "port0-curl"):
            assert verdicts.get(case) == "invalid-spec", (case, verdicts, refused)
            ds = harness.get_dataservice(client, bad_ns[case], case)
            assert "spec.uuc.thirdParty.checkCMD" in _conditions(ds)["Ready"]["message"]
            warnings = [e for e in events_for(client, bad_ns[case], case) if e.get("type") == "Warning"]
            assert any(e.get("reason") == "InvalidSpec" for e in warnings), warnings
        for case in ("idna-url", "bracket-url", "bracket-check"):  # the CRD's patterns refuse these
            assert case in refused and "spec.uuc.thirdParty" in refused[case], (case, refused)
        for case in ("nxdomain-curl", "punycode-nc", "loopback-url"):
            assert verdicts.get(case) == "probe-failed", (case, verdicts)
        assert op.alive and op.pid == pid
        lines = op.lines()
        crashed = [x for x in lines if x.get("msg") == "reconcile crashed, retrying" or "Traceback" in str(x)]
        assert crashed == [], crashed[:3]
        figures_out("containment_bad_addresses", {
            "created": len(created), "refused_at_admission": len(refused), "verdicts": verdicts,
            "sample_ready_s": round(ready_s, 1), "operator_pid_constant": True,
        })
    finally:
        op.stop()
        delete_namespaces(client, names)


def test_a_crashing_reconcile_ends_in_status(
    k8s_cluster: Any, client: Client, crd: None, uuc: StandIn, k8s_namespace: str
) -> None:
    ensure_volumes(client)
    calls: list[str] = []

    def planner(parent: Mapping[str, Any], observed: Observed, facts: Facts) -> Plan:
        name = parent["metadata"]["name"]
        if name == "boom":
            calls.append(name)
            raise RuntimeError("boom: a bug nobody foresaw")
        return plan(parent, observed, facts, DATASERVICE)

    ns = k8s_namespace
    with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[ns], planner=planner) as op:
        boom = point_uuc_at(harness.load_sample(), uuc)
        boom["metadata"] = {"name": "boom"}  # never planned: it creates nothing the sample could collide with
        harness.apply_dataservice(client, boom, ns)
        harness.apply_dataservice(client, point_uuc_at(harness.load_sample(), uuc), ns)

        def reported() -> dict[str, Any] | None:
            op.check_alive()
            degraded = _conditions(harness.get_dataservice(client, ns, "boom")).get("Degraded") or {}
            return degraded if degraded.get("reason") == ERROR_REASON else None

        degraded = wait_for("boom Degraded with ReconcileError", reported, 60, interval=0.3)
        assert degraded["status"] == "True" and "RuntimeError: boom: a bug nobody foresaw" in degraded["message"]
        wait_for(
            "the sample Ready beside it",
            lambda: op.check_alive() or harness.is_ready(harness.get_dataservice(client, ns, "dataservice-sample")),
            240,
            interval=0.5,
        )
        warnings = [e for e in events_for(client, ns, "boom") if e.get("type") == "Warning"]
        assert [e.get("reason") for e in warnings] == [ERROR_REASON], json.dumps(warnings, default=str)[:2000]
        assert len(calls) >= 2  # retried ...
        key = (ns, "boom", "DataService")  # the queue's key: namespace, name, kind
        assert op.operator is not None and op.operator.queue.failures(key) >= 1  # ... with backoff
        op.check_alive()
        figures_out("containment_crashing_reconcile", {"attempts": len(calls), "sample_ready": True})
