"""Least privilege, read against the code: every request the operator's shell can send (each lightkube client
call and raw HTTP request, found by parsing the modules) is classified here as RBAC verbs on resources, and
the generated rules (config/rbac, the chart) grant exactly that union -- nothing unused, nothing missing.

Which kinds a generic call reaches comes from the shell's own tables (``controller.watches``: what the
informers list and watch; ``ClusterAddresses.informers``: what the probe policy follows, each in its namespace
and, in ``default``, by name -- held below to the Role or ClusterRole that grants it there;
``api.OWNED_KINDS``: what plans apply) and, for deletes, from the core's rule
(``api.KINDS``' ``deletable`` and ``credentials.deletes_secrets``), which the planner itself is held to below:
driven through kind switches and a deletion it deletes no kind the rule leaves out (issue 24, B8: no
``delete`` on every Secret when no served product ever deletes one).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d3os_core import Facts, api, plan
from d3os_core.credentials import deletes_secrets
from d3os_core.fake import FakeCluster
from d3os_core.product import ProductDef
from d3os_generate import rbac
from d3os_operator.controller import watches
from d3os_operator.informer import Informer
from d3os_operator.kube import ALL_NAMESPACES
from d3os_operator.probe_targets import ClusterAddresses
from d3os_operator.products import installed

from .helpers import DATASERVICE, condition, sample
from .test_chart import by_kind, template

ROOT = Path(__file__).resolve().parents[2]
SHELL = ROOT / "src" / "d3os_operator"
CLIENTS = {"client", "http", "_raw_http", "_watch_http"}
"""Names the shell's API clients go by (lightkube's Client, the raw httpx clients on its transport)."""
METHODS = {"get", "list", "watch", "create", "patch", "delete", "replace", "apply", "request", "build_request",
           "deletecollection", "send", "stream", "post", "put"}

CALLS: dict[tuple[str, str], str] = {
    ("kube.py", "Kube.list_objects"): "list:listed",
    ("kube.py", "Kube.watch"): "watch:informed",
    ("kube.py", "Kube.get_cluster_object"): "get:crds",
    ("kube.py", "Kube.get"): "get:owned",
    ("kube.py", "Kube.take_over_fields"): "patch:owned",
    ("kube.py", "Kube.apply"): "create,patch:owned",  # server-side apply creates a new object: both verbs
    ("kube.py", "Kube.delete"): "delete:deleted",
    ("kube.py", "Kube.apply_status"): "patch:status",
    ("kube.py", "Kube.set_finalizers"): "patch:parents",
    ("kube.py", "Kube.create_event"): "create:events",
    ("kube.py", "Kube.update_event"): "patch:events",
    ("leader.py", "LeaderElector._get"): "get:leases",
    ("leader.py", "LeaderElector.try_acquire_or_renew"): "create,patch:leases",
    ("leader.py", "LeaderElector.release"): "patch:leases",
    ("probe_targets.py", "protected_addresses.read"): "get:probe-targets",
    ("cli.py", "_preflight"): "nonresource:/version",
    ("metricsauth.py", "MetricsAuth._review"): "create:reviews",
    # a SelfSubjectAccessReview: allowed to every authenticated user (system:basic-user)
    ("probe_targets.py", "ClusterAddresses.allowed"): "nonresource:selfsubjectaccessreviews",
}
"""Each function of the shell that sends a request -> ``verbs:what`` (resolved by :func:`_resources`)."""


def _scan() -> Iterator[tuple[str, str, int]]:
    """(module, enclosing function, line) of every API client call in the shell (the user CLI is not the
    operator: it runs as the person)."""
    for path in sorted(SHELL.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for scope in _functions(tree, ""):
            name, node = scope
            for call in ast.walk(node):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                    continue
                receiver = call.func.value
                rname = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
                if rname in CLIENTS and call.func.attr in METHODS and _innermost(node, call, name) == name:
                    yield path.name, name, call.lineno


def _functions(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")


def _innermost(scope: ast.AST, call: ast.AST, name: str) -> str:
    """The call's own function (a nested function reports the call, not its parent)."""
    for inner_name, inner in _functions(scope, f"{name}."):
        if any(n is call for n in ast.walk(inner)):
            return _innermost(inner, call, inner_name)
    return name


def test_every_request_the_shell_sends_is_classified() -> None:
    found = {(module, fn) for module, fn, _ in _scan()}
    unknown = found - set(CALLS)
    assert not unknown, f"a new API call: classify its verbs and resources in CALLS ({sorted(unknown)})"
    assert found == set(CALLS), f"CALLS names functions that send nothing: {sorted(set(CALLS) - found)}"


def _deleted_kinds(products: tuple[ProductDef, ...]) -> set[str]:
    return {k.kind for k in api.KINDS if k.owned and k.deletable
            and (k.kind != "Secret" or any(deletes_secrets(p) for p in products))}


def _probe_informers(namespace: str = rbac.NAMESPACE) -> dict[str, Informer]:
    """What the probe policy lists and watches (:class:`ClusterAddresses`), for an operator in ``namespace``."""
    return ClusterAddresses(kube=None, target=None, start=[], namespace=namespace).informers  # type: ignore[arg-type]


def _resources(what: str, products: tuple[ProductDef, ...]) -> set[tuple[str, str]]:
    plurals = [p.names.plural for p in products]
    owned = {(k.group, k.plural) for k in api.KINDS if k.owned}
    informed = {(w.kind.group, w.kind.plural) for w in watches(products)} | {
        (i.info.group, i.info.plural) for i in _probe_informers().values()}
    table: dict[str, set[tuple[str, str]]] = {
        "informed": informed,
        # and the reconciler's list of a stuck component's pods (list_objects(POD, ...)), never watched
        "listed": informed | {("", "pods")},
        "owned": owned,
        "deleted": {(api.kind_def(k).group, api.kind_def(k).plural) for k in _deleted_kinds(products)},
        "status": {(api.GROUP, f"{p}/status") for p in plurals},
        "parents": {(api.GROUP, p) for p in plurals},
        "events": {("", "events")},
        "crds": {("apiextensions.k8s.io", "customresourcedefinitions")},
        "leases": {("coordination.k8s.io", "leases")},
        "probe-targets": {("", "services"), ("", "endpoints"), ("discovery.k8s.io", "endpointslices")},
        "reviews": {("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews")},
    }
    return table[what]


def _used(products: tuple[ProductDef, ...]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every request, plus ``update`` of ``<plural>/finalizers``: the API server
    asks for it when an ownerReference sets blockOwnerDeletion (OwnerReferencesPermissionEnforcement)."""
    out = {(api.GROUP, f"{p.names.plural}/finalizers", "update") for p in products}
    for verbs_what in CALLS.values():
        verbs, what = verbs_what.split(":", 1)
        if verbs == "nonresource":
            continue  # /version: allowed to every authenticated user (system:public-info-viewer)
        out |= {(g, r, v) for v in verbs.split(",") for g, r in _resources(what, products)}
    return out


def _granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def _generated_rules() -> list[dict[str, Any]]:
    return [r.manifest() for r in (*rbac.cluster_rules(), *rbac.crd_rules(), *rbac.leader_rules(),
                                   *rbac.probe_target_rules(), *rbac.probe_node_rules(),
                                   *rbac.own_namespace_probe_rules(), *rbac.metrics_auth_rules())]


def test_config_rbac_grants_exactly_what_the_calls_use() -> None:
    used, granted = _used(installed()), _granted(_generated_rules())
    assert granted - used == set(), f"granted, never used: {sorted(granted - used)}"
    assert used - granted == set(), f"used, not granted: {sorted(used - granted)}"
    assert ("", "secrets", "delete") not in granted  # no shipped product deletes a Secret (B8)


def test_the_chart_grants_exactly_what_the_calls_use() -> None:
    docs = template()
    rules = [r for kind in ("ClusterRole", "Role") for d in by_kind(docs, kind) for r in d["rules"]
             if "apiGroups" in r]  # the scrapers' metrics-reader role is a non-resource URL, not the operator's
    used, granted = _used(installed()), _granted(rules)
    assert granted == used, (sorted(granted - used), sorted(used - granted))
    watched = template("watchNamespaces={team-a}")
    (role,) = [d for d in by_kind(watched, "Role") if d["metadata"]["namespace"] == "team-a"]
    assert ("", "secrets", "delete") not in _granted(role["rules"])


# -- the probe policy's watches, each where it is made -------------------------------------------------------


def allows(objs: list[dict[str, Any]], sa: tuple[str, str], namespace: str, group: str, resource: str, verb: str,
           name: str | None = None) -> bool:
    """Kubernetes RBAC, for these objects only: may ServiceAccount ``sa`` (namespace, name) send ``verb`` on
    ``resource`` in ``namespace`` ("": cluster-wide), naming the object ``name`` (a get, or a list or watch
    with the field selector ``metadata.name=``)? A rule with resourceNames never grants an unnamed request."""
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o["rules"]
             for o in objs if o["kind"] in ("Role", "ClusterRole")}
    subject = {"kind": "ServiceAccount", "name": sa[1], "namespace": sa[0]}
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding") or subject not in b["subjects"]:
            continue
        where = b["metadata"].get("namespace", "")
        if b["kind"] == "RoleBinding" and where != namespace:
            continue  # a RoleBinding grants in its own namespace only, never cluster-wide
        ref = b["roleRef"]
        rules = roles.get((ref["kind"], where if ref["kind"] == "Role" else "", ref["name"]), [])
        for rule in rules:
            if (group in rule.get("apiGroups", ()) and resource in rule.get("resources", ())
                    and verb in rule["verbs"] and (not rule.get("resourceNames") or name in rule["resourceNames"])):
                return True
    return False


def _held_to_the_watches(objs: list[dict[str, Any]], namespace: str) -> None:
    """Every informer of :class:`ClusterAddresses` (an operator in ``namespace``) is granted list and watch where
    it lists and watches, by name where it selects by name; the probe targets' own roles grant nothing unnamed
    in ``default`` and no node write (the manager's ClusterRole may grant Services everywhere: its children)."""
    sa = (namespace, rbac.SERVICE_ACCOUNT)
    probe = [o for o in objs if "probe-targets" in o["metadata"]["name"]]
    assert probe, "the probe targets' roles and bindings"
    informers = _probe_informers(namespace)
    assert len(informers) == 6, sorted(informers)
    for key, informer in informers.items():
        (scope,) = informer.scopes
        where = "" if scope == ALL_NAMESPACES else scope
        name = (informer.fields or {}).get("metadata.name")
        for verb in ("list", "watch"):
            assert allows(objs, sa, where, informer.info.group, informer.info.plural, verb, name), (key, verb)
        if where == rbac.API_SERVER_NAMESPACE:
            assert name == "kubernetes", key  # by name, so that the Role in default can grant it by name
            for verb in ("list", "watch", "get"):
                assert not allows(probe, sa, where, informer.info.group, informer.info.plural, verb), (key, verb)
    assert informers["nodes"].scopes == (ALL_NAMESPACES,) and informers["namespace_pods"].scopes == (namespace,)
    for verb in ("get", "create", "patch", "update", "delete"):  # nodes: read by list and watch only
        assert not allows(objs, sa, "", "", "nodes", verb), verb
    assert not allows(objs, sa, "", "", "nodes/proxy", "get")


def test_the_generated_rbac_grants_each_probe_watch_where_it_is_made() -> None:
    for objs in (rbac.manifests(), rbac.namespaced_manifests(["team-a"])):
        _held_to_the_watches([o for group in objs.values() for o in group], rbac.NAMESPACE)
    other = "ops"  # another operator namespace, as `--namespace ops` generates it
    _held_to_the_watches([o for group in rbac.manifests(other).values() for o in group], other)


def test_the_chart_grants_each_probe_watch_where_it_is_made() -> None:
    _held_to_the_watches(template(), rbac.NAMESPACE)
    _held_to_the_watches(template("watchNamespaces={team-a}"), rbac.NAMESPACE)
    _held_to_the_watches(template(namespace="ops"), "ops")


def test_a_missing_grant_is_found() -> None:
    """The check above fails when any one of the probe rules loses a verb (the rules' union may still have it:
    services are listed and watched cluster-wide as the operator's children)."""
    objs = [o for group in rbac.namespaced_manifests(["team-a"]).values() for o in group]
    for o in objs:
        if o["metadata"]["name"] != rbac.PROBE_TARGETS_ROLE:
            continue
        for i, rule in enumerate(o["rules"]):
            for verb in ("list", "watch"):
                if verb not in rule["verbs"]:
                    continue
                mutated = copy.deepcopy(objs)
                (role,) = [m for m in mutated if m["kind"] == o["kind"] and m["metadata"] == o["metadata"]]
                role["rules"][i]["verbs"].remove(verb)
                with pytest.raises(AssertionError):
                    _held_to_the_watches(mutated, rbac.NAMESPACE)


# -- the core's delete rule, held against the planner -------------------------------------------------------


def _drive(product: ProductDef, kinds: list[int]) -> set[str]:
    """Kinds the planner deletes while mysql switches through ``kinds`` and the instance is then deleted."""
    ds = sample(uid="ds-uid", finalizers=[])
    fc = FakeCluster()
    deleted: set[str] = set()
    tick = 0

    def step() -> Any:
        nonlocal tick
        tick += 1
        p = plan(ds, fc.observed(), Facts(now=f"2026-01-01T00:{tick // 60:02d}:{tick % 60:02d}Z",
                                          secret_seed="seed"), product)
        deleted.update(ref.kind for ref in p.delete)
        if p.finalizer == "add":
            ds["metadata"]["finalizers"].append(api.FINALIZER)
        elif p.finalizer == "remove":
            ds["metadata"]["finalizers"].remove(api.FINALIZER)
        ds["status"] = copy.deepcopy(p.status)
        fc.carry_out(p, probe=True)
        fc.settle()
        return p

    for kind in kinds:
        ds["spec"]["mysql"]["kind"] = kind
        if kind == 3:  # third party: the operator checks it instead of running it
            ds["spec"]["mysql"]["thirdParty"] = {"url": "http://db.example.com:3306/"}
        else:
            ds["spec"]["mysql"].pop("thirdParty", None)
        ds["metadata"]["generation"] = ds["metadata"].get("generation", 1) + 1
        for _ in range(80):
            p = step()
            if not p.apply and not p.delete and condition(ds, "Ready")["status"] == "True":
                break
        assert condition(ds, "Ready")["status"] == "True", ds["status"].get("message")
    ds["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    for _ in range(80):
        step()
        if not ds["metadata"]["finalizers"]:
            break
    assert not ds["metadata"]["finalizers"], "the deletion did not finish"
    return deleted


def test_the_planner_never_deletes_a_kind_the_rule_leaves_out() -> None:
    deleted = _drive(DATASERVICE, [1, 0, 3, 1])
    assert deleted <= _deleted_kinds((DATASERVICE,)), deleted
    assert "Secret" not in deleted and "PersistentVolumeClaim" not in deleted
    assert {"StatefulSet", "Deployment"} <= deleted  # the drive did prune and tear down


def test_credentials_without_storage_are_deleted_and_then_granted() -> None:
    """The other side of the rule: a product whose credentials belong to the instance (no storage) has its
    Secret deleted by the planner, so its RBAC grants ``delete`` on Secrets."""
    components = tuple(dataclasses.replace(c, storage=None) if c.key == "mysql" else c
                       for c in DATASERVICE.components)
    no_data = dataclasses.replace(DATASERVICE, components=components)
    assert deletes_secrets(no_data) and not deletes_secrets(DATASERVICE)
    assert "Secret" in _drive(no_data, [1, 3])
    verbs = _granted([r.manifest() for r in rbac.cluster_rules([no_data])])
    assert ("", "secrets", "delete") in verbs


@pytest.mark.parametrize("product", installed(), ids=lambda p: p.name)
def test_shipped_products_keep_their_credentials(product: ProductDef) -> None:
    assert not deletes_secrets(product)
