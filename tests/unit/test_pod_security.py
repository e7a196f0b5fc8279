"""spec.podSecurity: baseline (default) renders what it always did; restricted renders pods that meet the
restricted Pod Security Standard (checked here field by field; tests/integration/test_pod_security.py rolls
the sample out in a namespace that enforces it)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from d3os_core.render import Parent, render_component, resolve
from d3os_core.validation import SpecError, parse_spec

from .helpers import DATASERVICE, SAMPLE

SEED: dict[str, Any] = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["spec"]
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}


def render(spec: dict[str, Any]) -> list[dict[str, Any]]:
    s = parse_spec(spec, DATASERVICE)
    parent = Parent("dataservice-sample", "ns", "uid-1")
    states = resolve(parent, s, DATASERVICE)
    return [dict(o) for key in DATASERVICE.keys
            for o in render_component(parent, s, DATASERVICE, states, key, {}, "").objects]


def pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The restricted profile's checks (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    out = []
    psc = pod.get("securityContext") or {}
    for v in pod.get("volumes") or []:
        if not set(v) - {"name"} <= ALLOWED_VOLUMES:
            out.append(f"volume {v['name']}: {set(v) - {'name'}}")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        out.append("host namespaces")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation != false")
        if not (sc.get("runAsNonRoot") or (psc.get("runAsNonRoot") and sc.get("runAsNonRoot") is not False)):
            out.append(f"{name}: runAsNonRoot != true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities not dropped")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: capabilities added")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            out.append(f"{name}: hostPort")
    return out


def with_security(value: str | None) -> dict[str, Any]:
    spec = copy.deepcopy(SEED)
    if value is not None:
        spec["podSecurity"] = value
    return spec


def test_baseline_is_the_default_and_renders_as_before() -> None:
    assert render(with_security(None)) == render(with_security("baseline"))
    assert all(restricted_violations(p) for p in pods(render(with_security(None))).values())


@pytest.mark.parametrize("mysql_kind", [0, 1])
def test_restricted_pods_meet_the_standard(mysql_kind: int) -> None:
    spec = with_security("restricted")
    spec["mysql"]["kind"] = mysql_kind
    spec["uuc"] = {"name": "uuc", "kind": 2}  # a DaemonSet too
    rendered = pods(render(spec))
    assert len(rendered) == 12
    assert {name: restricted_violations(p) for name, p in rendered.items()} == {key: [] for key in rendered}
    mysql = rendered[SEED["mysql"]["name"]]["securityContext"]
    assert (mysql["runAsUser"], mysql["runAsGroup"], mysql["fsGroup"]) == (999, 999, 999)
    web = rendered[SEED["web"]["name"]]["securityContext"]
    assert web["runAsNonRoot"] is True and "runAsUser" not in web  # the image's own non-root USER


def test_restricted_changes_the_hashes_so_pods_roll() -> None:
    from d3os_core import api

    def hashes(objs: list[dict[str, Any]]) -> dict[str, str]:
        return {o["metadata"]["name"]: o["metadata"]["annotations"][api.ANNOTATION_HASH] for o in objs
                if o["kind"] in ("Deployment", "StatefulSet")}

    before, after = hashes(render(with_security("baseline"))), hashes(render(with_security("restricted")))
    assert before.keys() == after.keys() and all(before[k] != after[k] for k in before)


def test_other_values_are_refused_naming_the_field_and_the_choices() -> None:
    with pytest.raises(SpecError) as err:
        render(with_security("privileged"))
    text = str(err.value.errors[0])
    assert "spec.podSecurity" in text and "baseline" in text and "restricted" in text
