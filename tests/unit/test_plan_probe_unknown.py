"""A third party not probed yet by this process (the operator restarted, a new leader took over): reconciles
never wait for a probe, so the core keeps the last result recorded for this very check until the first
new one arrives -- the status does not flicker back to "checking" on every restart."""

from __future__ import annotations

import copy

from d3os_core import Facts, Observed, plan
from d3os_core.fake import FakeCluster
from d3os_core.types import ProbeResult

from .helpers import DATASERVICE, Driver, condition, sample


def test_a_restart_keeps_the_last_result_of_the_same_check() -> None:
    fc = FakeCluster()
    d = Driver(sample(), fc)
    d.converge()
    before = copy.deepcopy(d.ds["status"])
    uuc_before = d.component("uuc")
    restarted = Observed(objects=fc.observed().objects, probes={})  # no probe has run in this process yet
    p = plan(d.ds, restarted, Facts(now="2026-01-01T00:10:00Z", secret_seed="seed"), DATASERVICE)
    uuc = next(c for c in p.status["components"] if c["name"] == "uuc")
    assert uuc == uuc_before and uuc["state"] == "Ready"
    assert p.status == before, "nothing changes: no status write, no Event"
    assert p.events == () and p.apply == ()
    assert [r.component for r in p.probes] == ["uuc"], "the check is probed again at once"


def test_a_changed_check_or_a_failing_result_is_not_covered_by_the_last_result() -> None:
    fc = FakeCluster()
    d = Driver(sample(), fc)
    d.converge()
    changed = copy.deepcopy(d.ds)
    changed["spec"]["uuc"]["thirdParty"]["checkCMD"] = "curl --fail http://uuc.example/other"
    changed["metadata"]["generation"] += 1
    p = plan(changed, Observed(objects=fc.observed().objects, probes={}), Facts(now="2026-01-01T00:10:00Z"),
             DATASERVICE)
    uuc = next(c for c in p.status["components"] if c["name"] == "uuc")
    assert uuc["state"] == "Progressing" and uuc["message"].startswith("checking HTTP GET http://uuc.example/other")

    key = next(r.key for r in d.plans[-1].probes)
    down = Observed(objects=fc.observed().objects, probes={key: ProbeResult(False, "connection refused")})
    p = plan(d.ds, down, Facts(now="2026-01-01T00:10:00Z"), DATASERVICE)
    uuc = next(c for c in p.status["components"] if c["name"] == "uuc")
    assert uuc["state"] == "Progressing" and "connection refused" in uuc["message"]
    assert condition({"status": p.status}, "Ready")["status"] == "False"
