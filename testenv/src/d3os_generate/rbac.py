"""The operator's RBAC, declared once: every rule is a verb the shell really sends.

``python -m d3os_generate.rbac`` prints the install YAML (ServiceAccount, ClusterRole, ClusterRoleBinding,
leader-election Role and RoleBinding, the probe targets' Roles and ClusterRole, the metrics reviews' roles);
``python -m d3os_generate.rbac --write config/rbac`` writes the checked-in files, which
``tests/unit/test_rbac.py`` compares with this declaration (drift test).

For an operator that watches given namespaces only (``--namespace``), ``python -m d3os_generate.rbac
--watch-namespace NS [--watch-namespace NS2 ...] --write config/namespaced`` writes a complete kustomize
install (``config/namespaced``): the same rules as a Role and RoleBinding in each watched namespace
(cluster-wide only the /metrics reviews and the nodes' read-only ClusterRole of the probe targets), the
ServiceAccount and leader-election Role, the CRD and the manager (from
``config/crd`` and ``config/manager``) with a patch that adds ``--namespace=NS`` to its args.
``tests/unit/test_rbac_namespaced.py`` regenerates it from the command in its header (drift test).

Where the verbs come from (``kube.py`` is the operator's one door to the API server):

* DataServices: the informer lists and watches them; the finalizer is a merge ``patch``; status is a
  server-side apply (``patch``) of ``dataservices/status``; ``dataservices/finalizers`` ``update`` lets the
  children's ownerReferences set ``blockOwnerDeletion`` where the OwnerReferencesPermissionEnforcement
  admission plugin is on.
* Owned kinds (``d3os_core.api.OWNED_KINDS``): listed and watched by label, ``get`` for a name the plan
  wants to create, server-side apply (``patch``; ``create`` when the object is new), the field take-over
  is a JSON ``patch``, pruning is a ``delete``. PersistentVolumeClaims are never deleted; nor are Secrets, unless a
  product has credentials without storage (a claim's credentials outlive any spec: ``credentials.retained``).
* ControllerRevisions (an owned kind): the DataService's revision history, one per spec that reached
  Ready; pruned with ``delete`` beyond ``spec.revisionHistoryLimit``.
* Pods: ``list`` only, by the component's labels, and only for a component past its progress deadline:
  the scheduler's reason for a Pending pod, a container's waiting reason. Nothing a pod holds is secret
  to the operator already (env values come from the DataService; credentials are secretKeyRefs).
* Events: ``create`` and ``patch`` (core/v1 Events; a repeat of a reason patches its count, as client-go's
  event correlator does).
* Leader election: ``get``, ``create`` and merge ``patch`` of its Lease, in its own namespace only.
* Probe targets (``probe_targets.py``: third-party probes never connect to these addresses, the probe target
  policy), in ``probe_targets_role.yaml`` and its binding, in both install modes:

  - in ``default``, by name only (``resourceNames: [kubernetes]``, nothing else there): ``get`` of the
    ``kubernetes`` Service, Endpoints and EndpointSlice, read once at start; ``list`` and ``watch`` of the
    Service and EndpointSlice, which the operator then follows with the field selector
    ``metadata.name=kubernetes`` (the API server authorizes such a list or watch against resourceNames);
  - nodes, cluster-wide (a ClusterRole): ``list`` and ``watch`` only, so that every kubelet's address is
    protected as nodes come and go. Reading nodes is all: no ``get``, no write, no ``nodes/proxy``.
    Removing this grant is safe: the operator asks first (a SelfSubjectAccessReview), skips the watch with
    one log line and keeps what start found -- then name the nodes' CIDRs with ``--probe-deny-cidr``;
  - the operator's own namespace: ``list`` and ``watch`` of Services, Pods and EndpointSlices (the standby
    replica, the metrics Service's ClusterIP).

No wildcards, no pod writes (exec, attach, create or otherwise), no node writes (nodes are only listed and
watched, see above), no RBAC objects, no ``update`` it does not send.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from d3os_core import rbacrules
from d3os_core.product import ProductDef
from d3os_core.rbacrules import (  # noqa: F401 -- the generator's vocabulary, declared in the core
    NEVER_DELETED,
    OWNED_VERBS,
    Rule,
    leader_rules,
    metrics_auth_rules,
    metrics_reader_rule,
    own_namespace_probe_rules,
    owned_rules,
    probe_node_rules,
    probe_target_rules,
)
from d3os_operator.products import installed

NAMESPACE = "d3os-operator-system"
SERVICE_ACCOUNT = "d3os-operator-controller-manager"
CLUSTER_ROLE = "d3os-operator-manager-role"
CLUSTER_ROLE_BINDING = "d3os-operator-manager-rolebinding"
LEADER_ROLE = "d3os-operator-leader-election-role"
LEADER_ROLE_BINDING = "d3os-operator-leader-election-rolebinding"
METRICS_AUTH_ROLE = "d3os-operator-metrics-auth-role"
METRICS_AUTH_ROLE_BINDING = "d3os-operator-metrics-auth-rolebinding"
METRICS_READER_ROLE = "d3os-operator-metrics-reader"
"""Bind it to the scraper's ServiceAccount (Prometheus'): ``get`` on the non-resource URL ``/metrics``."""
PROBE_TARGETS_ROLE = "d3os-operator-probe-targets-role"
"""The probe targets' Role in ``default``, their Role in the operator's namespace and the nodes' ClusterRole."""
PROBE_TARGETS_ROLE_BINDING = "d3os-operator-probe-targets-rolebinding"
API_SERVER_NAMESPACE = "default"
"""Where the ``kubernetes`` Service (the API server's addresses) lives."""
LABELS = {"app.kubernetes.io/name": "d3os-operator", "app.kubernetes.io/part-of": "d3os-operator"}

FORBIDDEN_RESOURCES = frozenset(
    {
        "*",
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "nodes/proxy",
        "namespaces",
        "serviceaccounts",
        "serviceaccounts/token",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
        "customresourcedefinitions",
        "persistentvolumes",
    }
)
"""What the operator must never be granted (checked by the unit test); pods: no writes (see above)."""
READ_ONLY_RESOURCES = {"nodes": frozenset({"list", "watch"})}
"""Resources the operator may read, with these verbs only, and never write, nor any of their sub-resources
(checked by the unit test): nodes, for the kubelets' addresses that the probe policy protects."""


def _served(products: Sequence[ProductDef] | None) -> Sequence[ProductDef]:
    return products if products is not None else installed()


def cluster_rules(products: Sequence[ProductDef] | None = None) -> list[Rule]:
    """The ClusterRole's rules for these products (default: the installed ones): :mod:`d3os_core.rbacrules`."""
    return rbacrules.cluster_rules(_served(products))


def crd_rules(products: Sequence[ProductDef] | None = None) -> list[Rule]:
    return rbacrules.crd_rules(_served(products))


def _metrics_manifests(subject: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    rbac = "rbac.authorization.k8s.io/v1"
    return {
        "metrics_auth_role.yaml": [{"apiVersion": rbac, "kind": "ClusterRole", "metadata": _meta(METRICS_AUTH_ROLE),
                                    "rules": [r.manifest() for r in metrics_auth_rules()]}],
        "metrics_auth_role_binding.yaml": [{
            "apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": _meta(METRICS_AUTH_ROLE_BINDING),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": METRICS_AUTH_ROLE},
            "subjects": subject}],
        "metrics_reader_role.yaml": [{"apiVersion": rbac, "kind": "ClusterRole", "metadata": _meta(METRICS_READER_ROLE),
                                      "rules": [metrics_reader_rule()]}],
    }


def _probe_target_manifests(namespace: str, subject: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """The probe targets' Role in ``default`` (by name), Role in the operator's namespace and the nodes'
    ClusterRole, with their bindings (one file each for the roles and the bindings). An operator installed
    in ``default`` itself gets one Role there holding both Roles' rules."""
    rbac = "rbac.authorization.k8s.io/v1"
    rules: dict[str, list[Rule]] = {API_SERVER_NAMESPACE: probe_target_rules()}
    rules.setdefault(namespace, []).extend(own_namespace_probe_rules())

    def binding(kind: str, ns: str | None) -> dict[str, Any]:
        return {
            "apiVersion": rbac,
            "kind": f"{kind}Binding",
            "metadata": _meta(PROBE_TARGETS_ROLE_BINDING, ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": PROBE_TARGETS_ROLE},
            "subjects": subject,
        }

    return {
        "probe_targets_role.yaml": [
            *({"apiVersion": rbac, "kind": "Role", "metadata": _meta(PROBE_TARGETS_ROLE, ns),
               "rules": [r.manifest() for r in ns_rules]} for ns, ns_rules in rules.items()),
            {"apiVersion": rbac, "kind": "ClusterRole", "metadata": _meta(PROBE_TARGETS_ROLE),
             "rules": [r.manifest() for r in probe_node_rules()]},
        ],
        "probe_targets_role_binding.yaml": [
            *(binding("Role", ns) for ns in rules),
            binding("ClusterRole", None),
        ],
    }


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def manifests(namespace: str = NAMESPACE, service_account: str = SERVICE_ACCOUNT) -> dict[str, list[dict[str, Any]]]:
    """file name (under config/rbac/) -> its objects."""
    subject = [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    rbac = "rbac.authorization.k8s.io/v1"
    return {
        "service_account.yaml": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(service_account, namespace)}
        ],
        "role.yaml": [
            {
                "apiVersion": rbac,
                "kind": "ClusterRole",
                "metadata": _meta(CLUSTER_ROLE),
                "rules": [r.manifest() for r in (*cluster_rules(), *crd_rules())],
            }
        ],
        "role_binding.yaml": [
            {
                "apiVersion": rbac,
                "kind": "ClusterRoleBinding",
                "metadata": _meta(CLUSTER_ROLE_BINDING),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
                "subjects": subject,
            }
        ],
        "leader_election_role.yaml": [
            {
                "apiVersion": rbac,
                "kind": "Role",
                "metadata": _meta(LEADER_ROLE, namespace),
                "rules": [r.manifest() for r in leader_rules()],
            }
        ],
        "leader_election_role_binding.yaml": [
            {
                "apiVersion": rbac,
                "kind": "RoleBinding",
                "metadata": _meta(LEADER_ROLE_BINDING, namespace),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEADER_ROLE},
                "subjects": subject,
            }
        ],
        **_probe_target_manifests(namespace, subject),
        **_metrics_manifests(subject),
    }


HEADER = "# Generated by `python -m d3os_generate.rbac --write config/rbac` from d3os_generate/rbac.py: do not edit.\n"
NAMESPACED_DIR = "config/namespaced"
EXAMPLE_WATCH = ("dataservice",)
"""The watched namespaces of the checked-in ``config/namespaced`` (regenerate it for yours)."""
MANAGER_DEPLOYMENT = "d3os-operator-controller-manager"
"""The manager Deployment of ``config/manager`` that the namespaced overlay patches."""


def _dump(objs: Sequence[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)


def kustomization(files: Sequence[str]) -> str:
    return HEADER + yaml.safe_dump({"resources": list(files)}, sort_keys=False)


def rendered_files(namespace: str = NAMESPACE, service_account: str = SERVICE_ACCOUNT) -> dict[str, str]:
    """The checked-in files of config/rbac/, as text."""
    out = {name: HEADER + _dump(objs) for name, objs in manifests(namespace, service_account).items()}
    out["kustomization.yaml"] = kustomization(list(out))
    return out


def render_all(namespace: str = NAMESPACE, service_account: str = SERVICE_ACCOUNT) -> str:
    """One multi-document YAML with every object (for ``kubectl apply -f -``)."""
    objs = [o for group in manifests(namespace, service_account).values() for o in group]
    return HEADER + _dump(objs)


# -- namespaced install -------------------------------------------------------------------------------------


def watch_list(watch: Sequence[str]) -> list[str]:
    """The watched namespaces, each once, in the order given; a name that is no DNS label is refused."""
    out = list(dict.fromkeys(watch))
    bad = [n for n in out if not _DNS_LABEL.fullmatch(n)]
    if not out or bad:
        raise ValueError(f"--watch-namespace: give at least one namespace, each a DNS label (got {bad or out})")
    return out


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def namespaced_manifests(
    watch: Sequence[str], namespace: str = NAMESPACE, service_account: str = SERVICE_ACCOUNT
) -> dict[str, list[dict[str, Any]]]:
    """file name (under config/namespaced/) -> its objects: :func:`cluster_rules` as a Role and RoleBinding
    in each watched namespace; cluster-wide only the metrics-auth reviews (and the readers' role) and the
    probe targets' read-only nodes role; the ServiceAccount, leader election and probe targets as in
    config/rbac.
    """
    common = manifests(namespace, service_account)
    subject = [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}]
    rbac = "rbac.authorization.k8s.io/v1"
    rules = [r.manifest() for r in cluster_rules()]
    ns_list = watch_list(watch)
    return {
        "service_account.yaml": common["service_account.yaml"],
        "role.yaml": [
            {"apiVersion": rbac, "kind": "Role", "metadata": _meta(CLUSTER_ROLE, ns), "rules": rules} for ns in ns_list
        ],
        "role_binding.yaml": [
            {
                "apiVersion": rbac,
                "kind": "RoleBinding",
                "metadata": _meta(CLUSTER_ROLE_BINDING, ns),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": CLUSTER_ROLE},
                "subjects": subject,
            }
            for ns in ns_list
        ],
        "leader_election_role.yaml": common["leader_election_role.yaml"],
        "leader_election_role_binding.yaml": common["leader_election_role_binding.yaml"],
        "probe_targets_role.yaml": common["probe_targets_role.yaml"],
        "probe_targets_role_binding.yaml": common["probe_targets_role_binding.yaml"],
        **{f: common[f] for f in ("metrics_auth_role.yaml", "metrics_auth_role_binding.yaml",
                                  "metrics_reader_role.yaml")},
    }


def namespaced_command(watch: Sequence[str], namespace: str, service_account: str, directory: str) -> str:
    args = [f"--watch-namespace {n}" for n in watch_list(watch)]
    if namespace != NAMESPACE:
        args.append(f"--namespace {namespace}")
    if service_account != SERVICE_ACCOUNT:
        args.append(f"--service-account {service_account}")
    return f"python -m d3os_generate.rbac {' '.join(args)} --write {directory}"


def namespaced_files(
    watch: Sequence[str] = EXAMPLE_WATCH,
    namespace: str = NAMESPACE,
    service_account: str = SERVICE_ACCOUNT,
    directory: str = NAMESPACED_DIR,
) -> dict[str, str]:
    """The files of config/namespaced/, as text: a complete install for an operator watching ``watch``.

    The CRD is cluster-scoped and installed as in config/default (by whoever installs: the operator itself
    is granted nothing on it); the manager is config/manager's, patched to watch exactly ``watch``."""
    header = f"# Generated by `{namespaced_command(watch, namespace, service_account, directory)}`: do not edit.\n"
    objs = namespaced_manifests(watch, namespace, service_account)
    out = {name: header + _dump(o) for name, o in objs.items()}
    patch = [
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": f"--namespace={n}"}
        for n in watch_list(watch)
    ]
    out["manager_namespaces_patch.yaml"] = header + yaml.safe_dump(patch, sort_keys=False)
    kust = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../crd", "../manager", *objs],
        "patches": [
            {
                "path": "manager_namespaces_patch.yaml",
                "target": {"group": "apps", "version": "v1", "kind": "Deployment", "name": MANAGER_DEPLOYMENT},
            }
        ],
        "labels": [{"pairs": {"app.kubernetes.io/part-of": "d3os-operator"}, "includeSelectors": False}],
    }
    out["kustomization.yaml"] = header + (
        "# Install: kubectl apply --server-side -k config/namespaced (the watched namespaces must exist).\n"
    ) + yaml.safe_dump(kust, sort_keys=False)
    return out


def render_namespaced(watch: Sequence[str], namespace: str = NAMESPACE, service_account: str = SERVICE_ACCOUNT) -> str:
    """The RBAC objects of the namespaced install as one multi-document YAML (no CRD, no manager)."""
    objs = [o for group in namespaced_manifests(watch, namespace, service_account).values() for o in group]
    return f"# Generated by `{namespaced_command(watch, namespace, service_account, '-')}`\n" + _dump(objs)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m d3os_generate.rbac", description=__doc__.splitlines()[0])
    p.add_argument("--namespace", default=NAMESPACE, help="the operator's namespace (ServiceAccount, Lease)")
    p.add_argument("--service-account", default=SERVICE_ACCOUNT)
    p.add_argument(
        "--watch-namespace",
        action="append",
        metavar="NS",
        help="repeatable: grant Roles in these namespaces only (no ClusterRole) and, with --write, write a "
        "complete install whose manager watches exactly them (config/namespaced)",
    )
    p.add_argument("--write", metavar="DIR", help="write the kustomize files (config/rbac) instead of printing")
    args = p.parse_args(argv)
    if args.watch_namespace:
        try:
            watch = watch_list(args.watch_namespace)
        except ValueError as e:
            p.error(str(e))
        if args.write:
            if args.namespace != NAMESPACE:  # the overlay installs config/manager, which lives there
                p.error(f"--write with --watch-namespace installs the manager in {NAMESPACE}: leave --namespace out")
            out = Path(args.write)
            out.mkdir(parents=True, exist_ok=True)
            for name, text in namespaced_files(watch, args.namespace, args.service_account, args.write).items():
                (out / name).write_text(text, encoding="utf-8")
            return 0
        sys.stdout.write(render_namespaced(watch, args.namespace, args.service_account))
        return 0
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in rendered_files(args.namespace, args.service_account).items():
            (out / name).write_text(text, encoding="utf-8")
        return 0
    sys.stdout.write(render_all(args.namespace, args.service_account))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
