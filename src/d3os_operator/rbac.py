"""The operator's RBAC, declared once: every rule is a verb the shell really sends.

``python -m d3os_operator.rbac`` prints the install YAML (ServiceAccount, ClusterRole, ClusterRoleBinding,
leader-election Role and RoleBinding); ``python -m d3os_operator.rbac --write config/rbac`` writes the
checked-in files, which ``tests/unit/test_rbac.py`` compares with this declaration (drift test).

Where the verbs come from (``kube.py`` is the operator's one door to the API server):

* DataServices: the informer lists and watches them; the finalizer is a merge ``patch``; status is a
  server-side apply (``patch``) of ``dataservices/status``; ``dataservices/finalizers`` ``update`` lets the
  children's ownerReferences set ``blockOwnerDeletion`` where the OwnerReferencesPermissionEnforcement
  admission plugin is on.
* Owned kinds (``d3os_core.api.OWNED_KINDS``): listed and watched by label, ``get`` for a name the plan
  wants to create, server-side apply (``patch``; ``create`` when the object is new), the field take-over
  is a JSON ``patch``, pruning is a ``delete``. PersistentVolumeClaims are never deleted.
* ControllerRevisions (an owned kind): the DataService's revision history, one per spec that reached
  Ready; pruned with ``delete`` beyond ``spec.revisionHistoryLimit``.
* Pods: ``list`` only, by the component's labels, and only for a component past its progress deadline:
  the scheduler's reason for a Pending pod, a container's waiting reason. Nothing a pod holds is secret
  to the operator already (env values come from the DataService; credentials are secretKeyRefs).
* Events: ``create`` only (core/v1 Events, one per transition).
* Leader election: ``get``, ``create`` and merge ``patch`` of its Lease, in its own namespace only.

No wildcards, no pod writes (exec, attach, create or otherwise), no nodes, no RBAC objects, no ``update``
it does not send.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from d3os_core import api

NAMESPACE = "d3os-operator-system"
SERVICE_ACCOUNT = "d3os-operator-controller-manager"
CLUSTER_ROLE = "d3os-operator-manager-role"
CLUSTER_ROLE_BINDING = "d3os-operator-manager-rolebinding"
LEADER_ROLE = "d3os-operator-leader-election-role"
LEADER_ROLE_BINDING = "d3os-operator-leader-election-rolebinding"
LABELS = {"app.kubernetes.io/name": "d3os-operator", "app.kubernetes.io/part-of": "d3os-operator"}

FORBIDDEN_RESOURCES = frozenset(
    {
        "*",
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "nodes",
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
"""What the operator must never be granted (checked by the unit test); pods: ``list`` only (see above)."""


@dataclass(frozen=True)
class Rule:
    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str

    def manifest(self) -> dict[str, Any]:
        return {"apiGroups": [self.group], "resources": list(self.resources), "verbs": list(self.verbs)}


_PLURALS = api.OWNED_PLURALS

OWNED_VERBS = ("get", "list", "watch", "create", "patch", "delete")
"""Children: read (informer, name look-up), server-side apply (create/patch), take-over patch, prune."""
NEVER_DELETED = frozenset({"PersistentVolumeClaim"})
"""Claims keep the data: the operator creates them but never deletes one."""


def _owned_rules() -> list[Rule]:
    by_group: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for api_version, kind in api.OWNED_KINDS:
        group = api_version.rpartition("/")[0]
        verbs = tuple(v for v in OWNED_VERBS if not (v == "delete" and kind in NEVER_DELETED))
        by_group.setdefault((group, verbs), []).append(_PLURALS[kind])
    return [
        Rule(group, tuple(resources), verbs, "the children it renders")
        for (group, verbs), resources in sorted(by_group.items())
    ]


def cluster_rules() -> list[Rule]:
    """The ClusterRole: everything the operator does in the namespaces it serves."""
    return [
        Rule(api.GROUP, (api.PLURAL,), ("list", "watch", "patch"), "informer; finalizer (merge patch)"),
        Rule(api.GROUP, (f"{api.PLURAL}/status",), ("patch",), "status (server-side apply)"),
        Rule(api.GROUP, (f"{api.PLURAL}/finalizers",), ("update",), "ownerReferences with blockOwnerDeletion"),
        *_owned_rules(),
        Rule("", ("pods",), ("list",), "why a component past its progress deadline is stuck"),
        Rule("", ("events",), ("create",), "Events on DataServices"),
    ]


def leader_rules() -> list[Rule]:
    """The Role in the operator's own namespace: its leader-election Lease."""
    return [Rule("coordination.k8s.io", ("leases",), ("get", "create", "patch"), "leader election")]


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
                "rules": [r.manifest() for r in cluster_rules()],
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
    }


HEADER = "# Generated by `python -m d3os_operator.rbac --write config/rbac` from d3os_operator/rbac.py: do not edit.\n"


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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m d3os_operator.rbac", description=__doc__.splitlines()[0])
    p.add_argument("--namespace", default=NAMESPACE, help="the operator's namespace (ServiceAccount, Lease)")
    p.add_argument("--service-account", default=SERVICE_ACCOUNT)
    p.add_argument("--write", metavar="DIR", help="write the kustomize files (config/rbac) instead of printing")
    args = p.parse_args(argv)
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
