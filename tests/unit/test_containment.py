"""Containment in the core: ``plan`` never raises. A spec at fault ends in InvalidSpec naming the field;
anything else ends in a plan that changes nothing and says what failed (Degraded, ReconcileError), with a
Warning Event once per distinct message. The addresses of issue 12's findings 2 and 3 are refused with
their field paths by ``d3os validate`` and ``d3os render`` (exit 2, no traceback)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from d3os_core import Facts, Observed, plan, validate_spec
from d3os_core import planner as planner_module
from d3os_core.planner import ERROR_REASON
from d3os_core.render import Parent, render_component, resolve
from d3os_core.spec import FILES_MAX_BYTES
from d3os_core.validation import metadata_name_errors, operator_env_names, parse_spec

from .helpers import DATASERVICE, sample

ADDRESSES = [
    ({"checkCMD": "curl http://[zz]/"}, "spec.uuc.thirdParty.checkCMD", "is not a valid URL"),
    ({"url": "http://[zz]/"}, "spec.uuc.thirdParty.url", "is not a valid URL"),
    ({"check": {"http": {"url": "http://[zz]/"}}}, "spec.uuc.thirdParty.check.http.url", "is not a valid URL"),
    ({"checkCMD": "curl http://h:0/"}, "spec.uuc.thirdParty.checkCMD", "port must be a number from 1 to 65535, got 0"),
    ({"checkCMD": "curl --head --fail http://ｅｘａｍｐｌｅ.com/"}, "spec.uuc.thirdParty.checkCMD",
     "(that host in ASCII: 'example.com')"),
    ({"checkCMD": "nc -z ä..b 3306"}, "spec.uuc.thirdParty.checkCMD", "must be ASCII"),
    ({"url": "ä..b:80"}, "spec.uuc.thirdParty.url", "must be ASCII"),
    ({"check": {"tcp": {"host": "a..b", "port": 80}}}, "spec.uuc.thirdParty.check.tcp.host", "empty label"),
    ({"checkCMD": "nc -z " + "a" * 64 + ".b 80"}, "spec.uuc.thirdParty.checkCMD", "a label of 64 characters"),
    ({"url": "http://h:65536/"}, "spec.uuc.thirdParty.url", "port must be a number from 1 to 65535, got '65536'"),
    ({"checkCMD": "curl http:///x"}, "spec.uuc.thirdParty.checkCMD", "has no host"),
    ({"checkCMD": "curl http://256.1.1.1/"}, "spec.uuc.thirdParty.checkCMD", "is not a valid IPv4 address"),
]


@pytest.mark.parametrize(("tp", "path", "words"), ADDRESSES, ids=[str(a[0]) for a in ADDRESSES])
def test_bad_addresses_are_refused_with_the_field_path(tp: dict[str, Any], path: str, words: str) -> None:
    ds = sample()
    ds["spec"]["uuc"]["thirdParty"] = tp
    errors = validate_spec(ds["spec"], DATASERVICE)
    assert [e.path for e in errors] == [path], errors
    assert words in errors[0].message, errors
    p = plan(ds, Observed(), Facts(), DATASERVICE)
    ready = {c["type"]: c for c in p.status["conditions"]}["Ready"]
    assert ready["reason"] == "InvalidSpec" and path in ready["message"]
    assert not p.apply and [e.reason for e in p.events] == ["InvalidSpec"]


@pytest.mark.parametrize("tp", [a[0] for a in ADDRESSES[:4]], ids=[str(a[0]) for a in ADDRESSES[:4]])
@pytest.mark.parametrize("command", ["validate", "render"])
def test_the_cli_refuses_them_without_a_traceback(tmp_path: Path, tp: dict[str, Any], command: str) -> None:
    ds = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "dataservice-sample.yaml").read_text())
    ds["spec"]["uuc"]["thirdParty"] = tp
    f = tmp_path / "ds.yaml"
    f.write_text(yaml.safe_dump(ds, allow_unicode=True), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "d3os_operator.usercli", command, str(f)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    said = out.stderr.removeprefix(f"d3os: error: {f}: ")  # render says which file, as apply and plan do
    assert "Traceback" not in out.stderr and said.startswith("spec.uuc.thirdParty"), out.stderr


def test_an_internal_error_while_planning_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(planner_module, "_plan_rollout", boom)
    ds = sample()
    p = plan(ds, Observed(), Facts(now="2026-01-01T00:00:00Z"), DATASERVICE)
    conds = {c["type"]: c for c in p.status["conditions"]}
    assert conds["Degraded"]["status"] == "True" and conds["Degraded"]["reason"] == ERROR_REASON
    assert "RuntimeError: a bug nobody foresaw" in conds["Degraded"]["message"]
    assert conds["Ready"]["status"] == "False" and p.status["observedGeneration"] == 1
    assert not p.apply and not p.delete and not p.probes and p.finalizer is None
    assert [(e.type, e.reason) for e in p.events] == [("Warning", ERROR_REASON)]
    assert p.requeue_after is not None
    # the same failure again: the status stays, no second Event
    ds["status"] = copy.deepcopy(p.status)
    again = plan(ds, Observed(), Facts(now="2026-01-01T00:01:00Z"), DATASERVICE)
    assert again.status == p.status and again.events == ()


@pytest.mark.parametrize("parent", [
    {},
    {"metadata": None, "spec": None},
    {"metadata": {"name": "x", "generation": "seven"}, "spec": {}},
    {"metadata": {"name": "x", "finalizers": "not-a-list"}, "spec": []},
    {"metadata": {"name": "x"}, "spec": {"mysql": 1}, "status": "broken"},
    {"metadata": {"name": "x"}, "spec": {"mysql": 1}, "status": {"conditions": ["x", 1]}},
])
def test_plan_never_raises_whatever_the_parent_looks_like(parent: dict[str, Any]) -> None:
    p = plan(parent, Observed(), Facts(), DATASERVICE)
    assert p.status is not None and not p.apply and not p.delete


def test_metadata_name_is_a_dns_label() -> None:
    assert metadata_name_errors("dataservice-sample") == []
    assert metadata_name_errors("1abc") == []
    for bad in ["x$(id)", "Upper", "a.b", "a_b", "-a", "a-", "", None, "m" * 64]:
        (err,) = metadata_name_errors(bad)
        assert err.path == "metadata.name" and "DNS label" in err.message
    p = plan(sample(name="m" * 64), Observed(), Facts(), DATASERVICE)
    ready = {c["type"]: c for c in p.status["conditions"]}["Ready"]
    assert ready["reason"] == "InvalidSpec" and ready["message"].startswith("metadata.name: ")


def test_the_operator_env_names_are_exactly_the_ones_the_renderer_sets() -> None:
    """Tie the refused names to the renderer: render with no user env and compare, per component."""
    ds = sample()
    ds["spec"]["mysql"]["kind"] = 0
    spec = parse_spec(ds["spec"], DATASERVICE)
    parent = Parent("x", "ns", "uid")
    states = resolve(parent, spec, DATASERVICE)
    for key in DATASERVICE.keys:
        objs = render_component(parent, spec, DATASERVICE, states, key, {}, "").objects
        rendered = [e["name"] for o in objs if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
                    for c in o["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])]
        user = set(ds["spec"][key].get("env") or {})
        assert sorted(n for n in rendered if n not in user) == sorted(operator_env_names(DATASERVICE, key)), key


@pytest.mark.parametrize(("key", "name"), [("mysql", "MYSQL_ROOT_PASSWORD"), ("mysql", "MYSQL_DATABASE"),
                                           ("auth", "SPRING_DATASOURCE_USERNAME")])
def test_env_may_not_repeat_an_operator_name(key: str, name: str) -> None:
    ds = sample()
    ds["spec"][key]["env"] = {name: "x", "OTHER": "y"}
    errors = validate_spec(ds["spec"], DATASERVICE)
    assert [e.path for e in errors] == [f"spec.{key}.env.{name}"], errors
    assert "set by the operator itself" in errors[0].message


@pytest.mark.parametrize(("kind", "replica", "ok"), [(0, 1, True), (0, 0, True), (0, 2, False), (0, 1000, False),
                                                      (1, 3, True), (0, None, True)])
def test_mysql_replica_on_one_shared_claim(kind: int, replica: int | None, ok: bool) -> None:
    ds = sample()
    ds["spec"]["mysql"].update(kind=kind, replica=replica)
    errors = validate_spec(ds["spec"], DATASERVICE)
    assert (errors == []) is ok, errors
    if not ok:
        assert errors[0].path == "spec.mysql.replica" and "ReadWriteOnce" in errors[0].message


def test_files_at_most_256_kib_in_all() -> None:
    ds = sample()
    ds["spec"]["trd-adapter"]["files"] = {"a.py": "x" * (FILES_MAX_BYTES - 4 - 5), "b.py": "y"}
    assert validate_spec(ds["spec"], DATASERVICE) == []
    for b in ("yy", "é"):  # one byte over: in characters, or in UTF-8 only
        ds["spec"]["trd-adapter"]["files"]["b.py"] = b
        errors = validate_spec(ds["spec"], DATASERVICE)
        assert [e.path for e in errors] == ["spec.trd-adapter.files"] and "at most 262144" in errors[0].message
