"""mysql's generated credentials (issue 5, "Secrets"), with the core's plan and FakeCluster: generated once
into a Secret, unchanged by later reconciles (each with fresh random seed material, as the shell gives), by an
operator restart and by spec changes; pods get them by secretKeyRef only; the values appear in no ConfigMap,
status, Event, nor in ``d3os render`` (which shows a placeholder)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from d3os_core import Facts, plan
from d3os_core.fake import FakeCluster
from d3os_core.render import SECRET_PLACEHOLDER
from d3os_core.types import Plan
from d3os_operator.usercli import main as d3os

from .helpers import DATASERVICE, SAMPLE, sample

MYSQL = DATASERVICE.component("mysql")

GENERATED = [k for k, v in (MYSQL.generated_secret or {}).items() if v == "<random>"]


class Loop:
    """plan -> carry out -> settle, each pass with a new seed (the shell draws one per reconcile)."""

    def __init__(self, ds: dict[str, Any], fc: FakeCluster | None = None) -> None:
        self.ds = ds
        self.fc = fc or FakeCluster()
        self.n = 0
        self.plans: list[Plan] = []

    def step(self) -> Plan:
        self.n += 1
        p = plan(
            self.ds,
            self.fc.observed(),
            Facts(now=f"2026-01-01T00:{self.n // 60:02d}:{self.n % 60:02d}Z", secret_seed=f"seed-{id(self)}-{self.n}"),
            DATASERVICE,
        )
        self.plans.append(p)
        self.ds["status"] = copy.deepcopy(p.status)
        self.fc.carry_out(p)
        self.fc.settle()
        return p

    def converge(self, limit: int = 60) -> None:
        for _ in range(limit):
            p = self.step()
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in self.ds["status"]["conditions"])
            if ready and not p.apply and not p.delete:
                return
        raise AssertionError(self.ds["status"].get("message"))


def _secret(fc: FakeCluster) -> dict[str, Any]:
    (s,) = [o for (kind, _), o in fc.objects.items() if kind == "Secret"]
    return s


def _values(secret: dict[str, Any]) -> list[str]:
    return [base64.b64decode(secret["data"][k]).decode() for k in GENERATED]


@pytest.fixture
def rolled_out() -> Loop:
    loop = Loop(sample())
    loop.converge()
    return loop


def test_generated_once_and_never_elsewhere(rolled_out: Loop) -> None:
    fc = rolled_out.fc
    secret = _secret(fc)
    values = _values(secret)
    assert GENERATED and all(len(v) >= 16 for v in values) and len(set(values)) == len(values)
    assert SECRET_PLACEHOLDER not in values
    others = json.dumps([o for (kind, _), o in fc.objects.items() if kind != "Secret"])
    status = json.dumps(rolled_out.ds["status"])
    events = json.dumps([[e.type, e.reason, e.message] for p in rolled_out.plans for e in p.events])
    plans_but_secret = json.dumps(
        [a.manifest for p in rolled_out.plans for a in p.apply if a.manifest["kind"] != "Secret"]
    )
    for v in values:
        for where, text in (
            ("objects", others),
            ("status", status),
            ("events", events),
            ("manifests", plans_but_secret),
        ):
            assert v not in text, f"the generated value appears in {where}"
        assert base64.b64encode(v.encode()).decode() not in others


def test_pods_get_it_by_secret_key_ref_only(rolled_out: Loop) -> None:
    name = _secret(rolled_out.fc)["metadata"]["name"]
    refs = []
    for (kind, _), obj in rolled_out.fc.objects.items():
        if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["name"] == name:
                    refs.append((obj["metadata"]["name"], e["name"], ref["key"]))
                    assert "value" not in e
            assert not [f for f in c.get("envFrom") or [] if "secretRef" in f], "no whole-Secret envFrom"
    assert {key for _, _, key in refs} >= set(GENERATED), refs
    assert any(w == "mysql-dataservice" for w, _, _ in refs), refs


def test_survives_reconciles_restarts_and_spec_changes(rolled_out: Loop) -> None:
    fc = rolled_out.fc
    before = copy.deepcopy(_secret(fc)["data"])
    for _ in range(5):  # more reconciles, each with a new seed
        p = rolled_out.step()
        assert not [a for a in p.apply if a.manifest["kind"] == "Secret"], "a converged DataService rewrites its Secret"
    restarted = Loop(rolled_out.ds, fc)  # a new operator process: other seeds, same cluster
    restarted.converge()
    for key in ("api-manager", "auth", "web"):  # an upgrade
        restarted.ds["spec"][key]["image"] = restarted.ds["spec"][key]["image"].replace("v1.4", "v1.5")
    restarted.ds["metadata"]["generation"] += 1
    restarted.converge()
    assert _secret(fc)["data"] == before


def test_render_shows_a_reference_not_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert d3os(["render", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "secretKeyRef" in out
    # render has no seed to draw from: every generated value is the placeholder, none a credential
    assert GENERATED, "the sample's mysql generates credentials"
    assert _values(_render_secret(out)) == [SECRET_PLACEHOLDER] * len(GENERATED)


def _render_secret(out: str) -> dict[str, Any]:
    import yaml

    (secret,) = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "Secret"]
    return dict(secret)
