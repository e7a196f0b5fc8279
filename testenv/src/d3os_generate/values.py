"""The chart's values, declared once: each value's default, its JSON Schema and its documentation.

From this one declaration :mod:`d3os_generate.chart` writes ``values.yaml`` (every value under a helm-docs
``# --`` comment), ``values.schema.json`` (Helm refuses, at install, upgrade, lint and template, a value of
the wrong type, outside its allowed set, or not declared at all: ``additionalProperties: false``) and the
chart's ``README.md`` (the table of every value). The defaults the kustomize install also sets (resources,
the pod's and the container's securityContext) are read from ``config/manager/manager.yaml``, so both
installs keep one source.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A namespace or a shard name."""


@dataclass(frozen=True)
class Value:
    """One entry of values.yaml: a leaf (``default`` and ``schema``) or a group (``children``)."""

    doc: str
    default: Any = None
    schema: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[tuple[str, Value], ...] = ()

    @property
    def is_group(self) -> bool:
        return bool(self.children)


def leaf(default: Any, doc: str, **schema: Any) -> Value:
    return Value(doc, default, schema)


def group(doc: str, **children: Value) -> Value:
    return Value(doc, children=tuple(children.items()))


_OBJECT = {"type": "object"}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECTS = {"type": "array", "items": {"type": "object"}}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}


def declaration(manager: Mapping[str, Any]) -> tuple[tuple[str, Value], ...]:
    """Every value of the chart, in values.yaml's order; ``manager`` is config/manager/manager.yaml."""
    pod = manager["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    v = {
        "nameOverride": leaf("", "Replaces the chart's name in object names and the `app.kubernetes.io/name` label.",
                             type="string"),
        "fullnameOverride": leaf("", "Prefix of every object name (at most 40 characters). Default: the release "
                                 "name when it contains the chart's name, else `<release>-d3os-operator`.",
                                 type="string", maxLength=40),
        "commonLabels": leaf({}, "Labels added to every object the chart renders (and the manager pods).",
                             **_STRING_MAP),
        "image": group(
            "The operator image (built from the repository's Dockerfile).",
            repository=leaf("d3os-operator", "Where the cluster pulls the image from.", type="string", minLength=1),
            tag=leaf("", "Image tag. Default: the chart's appVersion.", type="string"),
            digest=leaf("", "Image digest (`sha256:...`): when set, the image is pulled by digest and `tag` is "
                        "ignored.", type="string", pattern="^(sha256:[a-f0-9]{64})?$"),
            pullPolicy=leaf("IfNotPresent", "Image pull policy.", type="string",
                            enum=["Always", "IfNotPresent", "Never"]),
        ),
        "imagePullSecrets": leaf([], "Secrets (in the release namespace) for pulling the image, e.g. "
                                 "`[{name: regcred}]`.", type="array",
                                 items={"type": "object", "required": ["name"],
                                        "properties": {"name": {"type": "string", "minLength": 1}}}),
        "replicaCount": leaf(manager["spec"]["replicas"], "Manager replicas (per shard). Only the holder of the "
                             "Lease reconciles; the others are warm standbys. More than 1 needs "
                             "`leaderElection.enabled` (the chart refuses two writers).",
                             type="integer", minimum=0),
        "leaderElection": group(
            "Leader election on a Lease in the release namespace (the `--leader-elect*` flags).",
            enabled=leaf(True, "Elect one leader among the replicas.", type="boolean"),
            leaseDuration=leaf(15, "Seconds a standby waits after the leader's last renewal before taking over.",
                               type="integer", minimum=1),
            renewDeadline=leaf(10, "Seconds the leader keeps trying to renew before it stops acting.",
                               type="integer", minimum=1),
            retryPeriod=leaf(2, "Seconds between attempts to acquire or renew the Lease.", type="integer",
                             minimum=1),
        ),
        "watchNamespaces": leaf([], "Namespaces whose instances the operator serves. Empty: every namespace (a "
                                "ClusterRole). Set: one `--namespace` flag each and the same rules as a Role "
                                "and RoleBinding in each of them only (no cluster-wide grant).", type="array",
                                items={"type": "string", "pattern": DNS_LABEL}, uniqueItems=True),
        "watchLabelSelector": leaf("", "Reconcile only the instances whose labels match (kubectl `-l` syntax). "
                                   "Empty: all of them.", type="string"),
        "sharding": group(
            "Several manager Deployments splitting the instances by label, each with its own Lease.",
            key=leaf("sharding.d3os.io/key", "The label an instance carries to name its shard.", type="string",
                     minLength=1),
            shards=leaf([], "One more Deployment `<fullname>-controller-manager-<shard>` per name, reconciling the "
                        "instances labelled `<key>=<shard>`; the release's own Deployment takes every other one.",
                        type="array", items={"type": "string", "pattern": DNS_LABEL}, uniqueItems=True),
        ),
        "probePolicy": group(
            "Where third-party checks may connect beyond the built-in policy (no loopback, link-local or "
            "metadata addresses, API server or the operator's own pod).",
            allowCIDRs=leaf([], "One `--probe-allow-cidr` flag each, e.g. `[10.20.0.0/16]`.", type="array",
                            items={"type": "string", "minLength": 1}),
            denyCIDRs=leaf([], "One `--probe-deny-cidr` flag each.", type="array",
                           items={"type": "string", "minLength": 1}),
        ),
        "workers": leaf(4, "Instances reconciled in parallel (`--workers`).", type="integer", minimum=1),
        "logLevel": leaf("info", "`--log-level`.", type="string", enum=["debug", "info", "warning", "error"]),
        "logFormat": leaf("json", "`--log-format`.", type="string", enum=["json", "text"]),
        "extraArgs": leaf([], "More `d3os-operator run` flags, e.g. `[--resync-period=300]`.", type="array",
                          items={"type": "string"}),
        "extraEnv": leaf([], "More environment variables of the manager container (EnvVar objects).",
                         **_OBJECTS),
        "extraVolumes": leaf([], "More volumes of the manager pod.", **_OBJECTS),
        "extraVolumeMounts": leaf([], "More volume mounts of the manager container.", **_OBJECTS),
        "resources": leaf(container["resources"], "Requests and limits of the manager container. Memory grows "
                          "with the instances watched (about 0.9 MB each).", **_OBJECT),
        "podSecurityContext": leaf(pod["securityContext"], "The manager pod's securityContext (the restricted "
                                   "Pod Security Standard by default).", **_OBJECT),
        "securityContext": leaf(container["securityContext"], "The manager container's securityContext "
                                "(restricted by default: non-root, read-only root filesystem, no capabilities).",
                                **_OBJECT),
        "nodeSelector": leaf({}, "Node labels the manager pods must run on.", **_STRING_MAP),
        "tolerations": leaf([], "Tolerations of the manager pods.", **_OBJECTS),
        "affinity": leaf({}, "Affinity of the manager pods. Empty: the replicas prefer different nodes "
                         "(soft pod anti-affinity on the hostname).", **_OBJECT),
        "topologySpreadConstraints": leaf([], "Topology spread constraints of the manager pods.", **_OBJECTS),
        "priorityClassName": leaf("", "PriorityClass of the manager pods.", type="string"),
        "podAnnotations": leaf({}, "Annotations of the manager pods (e.g. workload identity).", **_STRING_MAP),
        "podLabels": leaf({}, "Labels of the manager pods.", **_STRING_MAP),
        "healthProbePort": leaf(8081, "Port of `/healthz` and `/readyz` (`--health-probe-bind-address`).",
                                **_PORT),
        "metrics": group(
            "The `/metrics` endpoint (Prometheus text format).",
            port=leaf(8080, "Port of `/metrics` (`--metrics-bind-address`).", **_PORT),
            scrapeAnnotations=leaf(True, "Annotate the manager pods `prometheus.io/scrape`, `/port` and `/path` "
                                   "(for annotation-based scraping).", type="boolean"),
            service=group("The metrics Service `<fullname>-controller-manager-metrics-service`.",
                          enabled=leaf(True, "Render the metrics Service.", type="boolean")),
            serviceMonitor=group(
                "A `monitoring.coreos.com/v1` ServiceMonitor: the chart refuses it when the cluster lacks "
                "that API (the Prometheus Operator's CRDs).",
                enabled=leaf(False, "Render the ServiceMonitor.", type="boolean"),
                interval=leaf("30s", "Scrape interval.", type="string", pattern="^[0-9]+(ms|s|m|h)$"),
                scrapeTimeout=leaf("10s", "Scrape timeout.", type="string", pattern="^[0-9]+(ms|s|m|h)$"),
                labels=leaf({}, "Labels your Prometheus selects ServiceMonitors by, e.g. `{release: prometheus}`.",
                            **_STRING_MAP),
            ),
        ),
        "prometheusRule": group(
            "The operator's alerts (`files/prometheus-rules.yaml`) as a `monitoring.coreos.com/v1` "
            "PrometheusRule: the chart refuses it when the cluster lacks that API.",
            enabled=leaf(False, "Render the PrometheusRule.", type="boolean"),
            labels=leaf({}, "Labels your Prometheus selects rules by.", **_STRING_MAP),
        ),
        "grafanaDashboard": group(
            "The Grafana dashboard (`files/grafana-dashboard.json`) in a ConfigMap for Grafana's dashboard sidecar.",
            enabled=leaf(False, "Render the dashboard ConfigMap.", type="boolean"),
            namespace=leaf("", "Its namespace. Default: the release namespace.", type="string"),
            labels=leaf({"grafana_dashboard": "1"}, "The labels the sidecar loads ConfigMaps by.", **_STRING_MAP),
        ),
        "podDisruptionBudget": group(
            "A PodDisruptionBudget over the manager pods, rendered when `replicaCount` is 2 or more.",
            enabled=leaf(True, "Render the PodDisruptionBudget.", type="boolean"),
            maxUnavailable=leaf(1, "Manager pods a voluntary disruption (a node drain) may take at once.",
                                oneOf=[{"type": "integer", "minimum": 1},
                                       {"type": "string", "pattern": "^[0-9]+%$"}]),
        ),
        "networkPolicy": group(
            "A NetworkPolicy for the manager pods' ingress (egress stays open: the API server and third-party "
            "checks).",
            enabled=leaf(False, "Render the NetworkPolicy.", type="boolean"),
            metricsFrom=leaf([], "Who may scrape the metrics port (NetworkPolicyPeer objects). Empty: anyone. "
                             "Every other port but the health probes' is closed.", **_OBJECTS),
        ),
        "crds": group(
            "The products' CustomResourceDefinitions, rendered as templates so that `helm upgrade` upgrades them.",
            enabled=leaf(True, "Install and upgrade the CRDs with the release. Set false when they are installed "
                         "another way, or by another release (a CRD belongs to one release).", type="boolean"),
            keep=leaf(True, "Keep the CRDs on `helm uninstall` (`helm.sh/resource-policy: keep`): deleting a CRD "
                      "deletes every instance of it.", type="boolean"),
        ),
        "tests": group(
            "`helm test`: a Job that reads the operator's `/metrics` through the metrics Service.",
            enabled=leaf(True, "Render the test hook (needs `metrics.service.enabled`).", type="boolean"),
        ),
        "serviceAccount": group(
            "The manager's ServiceAccount.",
            create=leaf(True, "Create it.", type="boolean"),
            name=leaf("", "Its name. Default: `<fullname>-controller-manager`; required when `create` is false.",
                      type="string"),
            annotations=leaf({}, "Its annotations (e.g. workload identity).", **_STRING_MAP),
        ),
        "rbac": group(
            "The manager's rules (generated from the calls the operator makes).",
            create=leaf(True, "Create the (Cluster)Roles and bindings.", type="boolean"),
        ),
    }
    return tuple(v.items())


# -- writers -------------------------------------------------------------------------------------------------


def _leaf_schema(value: Value) -> dict[str, Any]:
    schema = dict(value.schema)
    if "type" not in schema and "oneOf" not in schema:
        schema["type"] = _type_of(value.default)
    return {"description": value.doc, **schema}


def _type_of(default: Any) -> str:
    for py, name in ((bool, "boolean"), (int, "integer"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(default, py):
            return name
    raise TypeError(f"no JSON type for {default!r}")


def _object_schema(children: tuple[tuple[str, Value], ...], doc: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object"}
    if doc:
        out["description"] = doc
    out["additionalProperties"] = False
    out["properties"] = {
        name: _object_schema(v.children, v.doc) if v.is_group else _leaf_schema(v) for name, v in children
    }
    return out


def schema(decl: tuple[tuple[str, Value], ...]) -> dict[str, Any]:
    """values.schema.json: every value typed, nothing undeclared (``global`` is Helm's, for subcharts)."""
    out = {"$schema": "https://json-schema.org/draft-07/schema#", "title": "d3os-operator chart values",
           **_object_schema(decl)}
    out["properties"] = {**out["properties"], "global": {"type": "object", "description": "Helm's global values."}}
    return out


def schema_text(decl: tuple[tuple[str, Value], ...]) -> str:
    return json.dumps(schema(decl), indent=2) + "\n"


def _comment(doc: str, pad: str) -> list[str]:
    lines = textwrap.wrap(doc, width=110 - len(pad))
    return [f"{pad}# -- {lines[0]}", *[f"{pad}# {ln}" for ln in lines[1:]]]


def _yaml_value(key: str, default: Any, pad: str) -> list[str]:
    text = yaml.safe_dump({key: default}, sort_keys=False, default_flow_style=False, width=1000).rstrip("\n")
    return [pad + ln for ln in text.splitlines()]


def values_yaml(decl: tuple[tuple[str, Value], ...], header: str) -> str:
    """values.yaml: each value under its ``# --`` comment (helm-docs' convention)."""
    out = [header.rstrip("\n")]

    def walk(children: tuple[tuple[str, Value], ...], pad: str) -> None:
        for name, v in children:
            out.append("")
            if v.is_group:
                out.extend(f"{pad}# {ln}" for ln in textwrap.wrap(v.doc, width=110 - len(pad)))
                out.append(f"{pad}{name}:")
                walk(v.children, pad + "  ")
            else:
                out.extend(_comment(v.doc, pad))
                out.extend(_yaml_value(name, v.default, pad))

    walk(decl, "")
    return "\n".join(out) + "\n"


def leaves(decl: tuple[tuple[str, Value], ...], prefix: str = "") -> Iterator[tuple[str, Value]]:
    """(dotted path, value) of every leaf, in order."""
    for name, v in decl:
        if v.is_group:
            yield from leaves(v.children, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", v


def defaults(decl: tuple[tuple[str, Value], ...]) -> dict[str, Any]:
    """The values.yaml document as data."""
    return {name: defaults(v.children) if v.is_group else v.default for name, v in decl}


def readme_table(decl: tuple[tuple[str, Value], ...]) -> str:
    """The chart README's table of values (key, type, default, description)."""
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for path, v in leaves(decl):
        s = _leaf_schema(v)
        kind = s.get("type") or " or ".join(o["type"] for o in s["oneOf"])
        default = json.dumps(v.default, separators=(",", ":")).replace("|", "\\|")
        rows.append(f"| `{path}` | {kind} | `{default}` | {v.doc.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"
