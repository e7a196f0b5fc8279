"""One home per rule: the functions the core exports are the ones its users call.

``desired`` and ``up_to_date`` are what the planner applies by, what ``d3os render`` prints and what
``d3os diff`` compares with; the kinds table (``d3os_core.api.KINDS``) is what delete references, the fake
cluster and the RBAC rules are made of.
"""

from __future__ import annotations

import copy
import io
from contextlib import redirect_stdout
from typing import Any

import pytest
import yaml

from d3os_core import Facts, Observed, api, desired, parse_spec, plan, up_to_date
from d3os_core.fake import FakeCluster
from d3os_core.render import Parent
from d3os_core.types import ObjectRef, Plan
from d3os_generate import rbac
from d3os_operator.usercli import main as d3os

from .helpers import DATASERVICE, SAMPLE, Driver, sample


def _parent(ds: dict[str, Any]) -> Parent:
    meta = ds["metadata"]
    return Parent(meta["name"], meta.get("namespace") or "default", meta["uid"])


def test_the_first_plan_applies_what_desired_returns() -> None:
    ds = sample()
    want = desired(_parent(ds), parse_spec(ds["spec"], DATASERVICE), DATASERVICE, seed="s")
    p = plan(ds, Observed(), Facts(secret_seed="s"), DATASERVICE)
    first = [o for o in want if o["metadata"]["labels"][api.LABEL_COMPONENT] == "mysql"]
    assert [a.manifest for a in p.apply] == first  # the first step: mysql's objects, exactly as desired


def test_d3os_render_prints_what_desired_returns() -> None:
    ds = sample()
    out = io.StringIO()
    with redirect_stdout(out):
        assert d3os(["render", str(SAMPLE)]) == 0
    rendered = list(yaml.safe_load_all(out.getvalue()))
    parent = Parent(ds["metadata"]["name"], ds["metadata"].get("namespace") or "default", "<uid of the DataService>")
    assert rendered == desired(parent, parse_spec(ds["spec"], DATASERVICE), DATASERVICE)


def test_a_converged_namespace_is_up_to_date_by_the_exported_rule_and_an_edit_is_not() -> None:
    d = Driver(sample())
    d.converge()
    want = desired(_parent(d.ds), parse_spec(d.ds["spec"], DATASERVICE), DATASERVICE,
                   live_secrets={n: o for (k, n), o in d.fc.objects.items() if k == "Secret"},
                   claims={n: o["metadata"]["uid"] for (k, n), o in d.fc.objects.items()
                           if k == "PersistentVolumeClaim"})
    assert all(up_to_date(o, d.fc.objects[(o["kind"], o["metadata"]["name"])]) for o in want)
    assert d.step().apply == ()  # and the planner agrees: nothing to apply
    d.fc.edit("Deployment", "web", lambda o: o["spec"].update(replicas=7))
    web = next(o for o in want if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
    assert not up_to_date(web, d.fc.objects[("Deployment", "web")])
    assert [a.manifest for a in d.step().apply] == [web]  # the planner re-applies exactly that object
    going = copy.deepcopy(d.fc.objects[("Service", "web")])
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    service = next(o for o in want if o["kind"] == "Service" and o["metadata"]["name"] == "web")
    assert not up_to_date(service, going), "an object being deleted is never up to date"


def test_kinds_table_names_each_kind_once_with_its_group_and_version() -> None:
    names = [k.kind for k in api.KINDS]
    assert len(names) == len(set(names))
    assert api.WORKLOAD_KINDS == ("Deployment", "StatefulSet", "DaemonSet")
    assert api.kind_def("ControllerRevision").api_version == "apps/v1"
    assert api.kind_def("PersistentVolumeClaim").api_version == "v1"
    ref = ObjectRef.of("StatefulSet", "mysql-dataservice", "ns", "u")
    assert ref.api_version == "apps/v1" and ref.key == ("apps", "v1", "StatefulSet", "mysql-dataservice")


def test_every_delete_the_planner_asks_for_carries_the_tables_api_version() -> None:
    d = Driver(sample())
    d.converge()
    d.change(lambda s: s["mysql"].update(kind=0, replica=1))  # StatefulSet -> Deployment: the old one goes
    deletes = [r for _ in range(12) for r in d.step().delete]
    assert deletes and all(r.api_version == api.kind_def(r.kind).api_version for r in deletes)
    assert ("StatefulSet", "mysql-dataservice") in {(r.kind, r.name) for r in deletes}


def test_the_fake_cluster_serves_only_the_kinds_of_the_table() -> None:
    fc = FakeCluster()
    bad = {"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "ns"}, "spec": {}}
    with pytest.raises(LookupError):
        fc.put(bad)
    with pytest.raises(LookupError):
        fc.carry_out(Plan(delete=(ObjectRef("v1", "StatefulSet", "x", "ns"),)))
    fc.put({**bad, "apiVersion": "apps/v1"})
    assert ("Deployment", "x") in fc.objects


def test_rbac_rules_for_children_are_the_kinds_table() -> None:
    granted: dict[str, set[str]] = {}
    for rule in rbac.cluster_rules():
        for res in rule.resources:
            granted.setdefault(res, set()).update(rule.verbs)
    for k in api.KINDS:
        if k.owned:
            group = next(r.group for r in rbac.cluster_rules() if k.plural in r.resources)
            assert group == k.group, k
            # Secrets: delete only for a product whose credentials have no storage (none shipped does)
            assert ("delete" in granted[k.plural]) == (k.deletable and k.kind != "Secret"), k
    assert {"pods", "events"} <= set(granted)


@pytest.mark.parametrize("seconds", [0, 59.999, 951782400, 1767225599.5, 4102444800, -86401])
def test_utc_stamps_have_one_home_and_agree_with_the_calendar(seconds: float) -> None:
    import datetime as dt

    from d3os_core.times import format_time, parse_time

    want = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds // 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert format_time(seconds) == want
    assert parse_time(want) == seconds // 1


def test_display_width_counts_cjk_as_two_columns() -> None:
    from d3os_core.status import find_condition
    from d3os_core.text import display_width

    assert display_width("mysql已部署") == 11 and display_width("web") == 3
    conditions = [{"type": "Ready", "status": "True"}, "junk", {"type": "Degraded", "status": "False"}]
    assert find_condition(conditions, "Degraded") == {"type": "Degraded", "status": "False"}
    assert find_condition(conditions, "Progressing") == {} and find_condition(None, "Ready") == {}
