"""The DataService CustomResourceDefinition, generated from the pydantic spec model.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema. The conversion inlines
``$ref``, turns ``X | None`` into ``nullable``, maps ``patternProperties``/``propertyNames`` onto
``additionalProperties`` plus CEL rules, drops titles and defaults (the core applies defaults, so the
stored resource stays as the user wrote it), and adds the cross-field CEL rules the product implies.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from . import api
from .checks import HTTP_URL_PATTERN, TCP_HOST_PATTERN, THIRD_PARTY_URL_PATTERN
from .product import ComponentDef, ProductDef, WorkloadKind
from .spec import spec_model
from .status import SUMMARIES
from .types import JSON
from .validation import (
    KIND_CHOICES,
    METADATA_NAME_PATTERN,
    METADATA_NAME_RULE,
    SHARED_CLAIM_MAX_REPLICA,
    STATEFULSET_NAME_MAX,
    operator_env_names,
)

_SCHEMA_KEYS = ("properties", "items", "additionalProperties")


def cel_field(name: str) -> str:
    """A property name as CEL sees it (Kubernetes escapes ``-`` as ``__dash__``)."""
    return name.replace("_", "__underscores__").replace("-", "__dash__").replace(".", "__dot__")


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    out: JSON = {}
    nullable = False
    any_of = node.get("anyOf")
    if any_of is not None:
        options = [o for o in any_of if o.get("type") != "null"]
        nullable = len(options) != len(any_of)
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {any_of!r} structurally")
        base = {k: v for k, v in node.items() if k != "anyOf"}
        node = {**options[0], **{k: v for k, v in base.items() if k in ("description", "x-kubernetes-validations")}}
        node = _structural(node, defs)
        if nullable:
            node["nullable"] = True
        return node
    rules: list[JSON] = list(node.get("x-kubernetes-validations") or [])
    for key, value in node.items():
        if key in ("title", "default", "$defs", "x-kubernetes-validations"):
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "properties":
            out["properties"] = {k: _structural(v, defs) for k, v in value.items()}
        elif key == "items":
            out["items"] = _structural(value, defs)
        elif key == "additionalProperties":
            out["additionalProperties"] = _structural(value, defs)
        elif key == "patternProperties":
            ((pattern, schema),) = value.items()
            out["additionalProperties"] = _structural(schema, defs)
            rules.append({"rule": f"self.all(k, k.matches('{pattern}'))",
                          "message": f"keys must match {pattern}"})
        elif key == "propertyNames":
            limit = value.get("maxLength")
            if limit:
                rules.append({"rule": f"self.all(k, size(k) <= {limit})",
                              "message": f"keys may have at most {limit} characters"})
        elif key == "maxLength" and node.get("type") == "object":
            out["maxProperties"] = value
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):  # JSON Schema number -> OpenAPI 3.0 bool
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


_ADDRESS_FORMS = {
    HTTP_URL_PATTERN: "must be an absolute http(s)://HOST[:PORT][/PATH] URL in printable ASCII: HOST an "
                      "ASCII DNS name (xn-- form for internationalised names), IPv4 or [IPv6] address, PORT 1-65535; "
                      "no USER:PASSWORD@ (credentials go in a Secret)",
    THIRD_PARTY_URL_PATTERN: "must be http(s)://HOST…, tcp://HOST:PORT, jdbc:mysql://HOST[:PORT]/…, "
                             "mysql://HOST[:PORT] or HOST:PORT in printable ASCII: HOST an ASCII DNS name (xn-- form "
                             "for internationalised names), IPv4 or [IPv6] address, PORT 1-65535; no USER:PASSWORD@ "
                             "(credentials go in a Secret)",
    TCP_HOST_PATTERN: "must be an ASCII DNS name (xn-- form for internationalised names), an IPv4 or IPv6 address",
}


def _address_rules(node: Any) -> None:
    """The address patterns as CEL rules, so admission says what is allowed in words, not as a regex."""
    if isinstance(node, dict):
        form = _ADDRESS_FORMS.get(node.get("pattern", ""))
        if form is not None:
            pattern = node.pop("pattern")
            node.setdefault("x-kubernetes-validations", []).append(
                {"rule": f"self.matches({json.dumps(pattern)})", "message": form}
            )
        for value in node.values():
            _address_rules(value)
    elif isinstance(node, list):
        for value in node:
            _address_rules(value)


def spec_schema(product: ProductDef) -> JSON:
    """Structural OpenAPI schema of ``spec`` with the product's cross-field CEL rules."""
    raw = spec_model(product).model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema: JSON = _structural(raw, defs)
    _address_rules(schema)
    props = schema["properties"]
    rules: list[JSON] = []
    for comp in product.components:
        node = props[comp.key]
        node["description"] = component_description(product, comp)
        comp_rules: list[JSON] = list(node.get("x-kubernetes-validations") or [])
        deps = node["properties"]["dependsOn"]
        deps["items"]["enum"] = [k for k in product.keys if k != comp.key]
        deps["x-kubernetes-validations"] = [{
            "rule": "self.all(d, self.filter(e, e == d).size() == 1)",
            "message": f"spec.{comp.key}.dependsOn: each component may be listed once",
        }]
        if comp.role == "middleware":
            allowed = [k.value for k in comp.allowed_kinds]
            if allowed != [k.value for k in WorkloadKind]:
                names = ", ".join(f"{k.value} ({'thirdParty' if k.value == 3 else k.k8s_kind})"
                                  for k in comp.allowed_kinds)
                comp_rules.append({
                    "rule": f"self.kind in {allowed}",
                    "message": f"spec.{comp.key}.kind: allowed values are {names}",
                    "fieldPath": ".kind",
                    "reason": "FieldValueInvalid",
                })
            comp_rules.append({
                "rule": "self.kind != 3 || (has(self.thirdParty) && (has(self.thirdParty.url) "
                        "|| has(self.thirdParty.checkCMD) || has(self.thirdParty.check)))",
                "message": f"spec.{comp.key}.thirdParty: kind 3 (thirdParty) needs thirdParty.url, "
                           "thirdParty.check or thirdParty.checkCMD",
                "fieldPath": ".thirdParty",
                "reason": "FieldValueRequired",
            })
            kind = node["properties"]["kind"]
            kind.pop("minimum", None)
            kind.pop("maximum", None)
            kind["x-kubernetes-validations"] = [{
                "rule": f"self in {[k.value for k in WorkloadKind]}",
                "message": f"spec.{comp.key}.kind must be one of {KIND_CHOICES}",
            }]
            kind["description"] = f"One of {KIND_CHOICES}."
        else:
            node_port = node["properties"]["nodePort"]
            node_port.pop("minimum", None)
            node_port.pop("maximum", None)
            node_port["x-kubernetes-validations"] = [{
                "rule": "self >= 30000 && self <= 32767",
                "message": f"spec.{comp.key}.nodePort must be from 30000 to 32767 (the NodePort range), "
                           "or null for a ClusterIP Service",
            }]
        reserved = operator_env_names(product, comp.key)
        if reserved:
            comp_rules.append({
                "rule": f"!has(self.env) || !self.env.exists(k, k in {list(reserved)})",
                "message": f"spec.{comp.key}.env: these names are set by the operator itself: {', '.join(reserved)}",
                "fieldPath": ".env",
                "reason": "FieldValueForbidden",
            })
        if comp.role == "middleware" and WorkloadKind.STATEFULSET in comp.allowed_kinds:
            comp_rules.append({
                "rule": f"self.kind != 1 || size(self.name) <= {STATEFULSET_NAME_MAX}",
                "message": f"spec.{comp.key}.name: a StatefulSet name may have at most {STATEFULSET_NAME_MAX} "
                           "characters (its pods' controller-revision-hash label adds 11)",
                "fieldPath": ".name",
                "reason": "FieldValueInvalid",
            })
        if comp.storage is not None and comp.role == "middleware":
            comp_rules.append({
                "rule": f"self.kind != 0 || !has(self.replica) || self.replica <= {SHARED_CLAIM_MAX_REPLICA}",
                "message": f"spec.{comp.key}.replica: at most {SHARED_CLAIM_MAX_REPLICA} with kind 0 "
                           "(Deployment): its pods would share one ReadWriteOnce claim (use kind 1 (StatefulSet) "
                           "for a claim per pod)",
                "fieldPath": ".replica",
                "reason": "FieldValueInvalid",
            })
        if comp.storage is None and comp.role == "middleware":
            node["properties"].pop("storage", None)
        node["x-kubernetes-validations"] = comp_rules
    # Each list is written once and bound by an outer one-element list ([[...]].all(l, ...)): CRD CEL has
    # no cel.bind, and a list literal inside the macro would be rebuilt for every element. The API server
    # evaluates these rules on every write of a DataService, status writes included; every field lookup
    # on an object costs a copy of its schema's property table, so the quadratic form cost 7 ms of
    # API-server CPU per status write (26 -> 19 ms in a kube-apiserver CPU profile of status applies).
    names = ", ".join(f"self.{cel_field(c.key)}.name" for c in product.components)
    rules.append({
        "rule": f"[[{names}]].all(l, l.all(n, l.filter(m, m == n).size() == 1))",
        "message": "component names must be unique within the resource (spec.<component>.name)",
    })
    micro = [c.key for c in product.components if c.role == "microservice"]
    ports = ", ".join(
        f"(has(self.{cel_field(k)}.nodePort) ? self.{cel_field(k)}.nodePort : 0)" for k in micro
    )
    rules.append({
        "rule": f"[[{ports}]].all(l, l.all(p, p == 0 || l.filter(q, q == p).size() == 1))",
        "message": "nodePort values must be unique (spec.<component>.nodePort)",
    })
    schema["x-kubernetes-validations"] = rules
    schema["description"] = f"The {product.name} product: one entry per component."
    return schema


_CONDITION: JSON = {
    "type": "object",
    "description": "One aspect of the DataService's state (Kubernetes API conventions).",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "type": {"type": "string", "maxLength": 316,
                 "description": "Ready, Progressing, Degraded, Reconciling or Stalled."},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"],
                   "description": "True, False or Unknown."},
        "reason": {"type": "string", "maxLength": 1024,
                   "description": "Why, in CamelCase: RollingOut, Waiting, Stalled, Conflict, "
                                  "ProgressDeadlineExceeded, ApplyRefused, InvalidSpec, ..."},
        "message": {"type": "string", "maxLength": 32768, "description": "Details for people."},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0,
                               "description": "metadata.generation of the spec the condition was computed "
                                              "from."},
        "lastTransitionTime": {"type": "string", "format": "date-time",
                               "description": "When status last changed (RFC 3339)."},
    },
}

_COMPONENT_STATUS: JSON = {
    "type": "object",
    "description": "The state of one component.",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "description": "Component key."},
        "kind": {"type": "string", "description": "Deployment, StatefulSet, DaemonSet or ThirdParty."},
        "object": {"type": "string", "description": "The workload, or the third-party check."},
        "state": {"type": "string",
                  "enum": ["Pending", "Waiting", "Progressing", "Ready", "Failed", "Conflict"],
                  "description": "Pending (not started), Waiting (on a dependency), Progressing, Ready, Failed "
                                 "or Conflict (an object of its name belongs to another owner)."},
        "ready": {"type": "boolean", "description": "True when ready at its current desired state."},
        "message": {"type": "string", "description": "Why it is in this state, for people."},
        "hash": {"type": "string", "description": "Desired-state hash at which it was last ready."},
        "since": {"type": "string", "description": "When the current step began: the first apply of the "
                  "desired state, or a third party's first failed check (the progress deadline counts from it)."},
        "target": {"type": "string", "description": "Desired-state hash the current step works towards."},
        "reason": {"type": "string", "description": "Why it failed, waits or is not ready yet: "
                   "ProgressDeadlineExceeded, Suspended, CheckFailed (a third party's check fails)."},
    },
}

_ROLLBACK_STATUS: JSON = {
    "type": "object",
    "description": "The automatic rollback in force for this generation of the spec (spec.rollbackOnFailure).",
    "properties": {
        "generation": {"type": "integer", "format": "int64", "description": "The spec generation that failed."},
        "from": {"type": "string", "description": "The revision that failed (ControllerRevision name)."},
        "to": {"type": "string", "description": "The last Ready revision rolled back to."},
        "revision": {"type": "integer", "format": "int64", "description": "Its revision number."},
        "component": {"type": "string", "description": "The component whose step passed its deadline."},
        "message": {"type": "string", "description": "What it was waiting for."},
        "startedAt": {"type": "string", "format": "date-time", "description": "When the rollback began."},
        "completedAt": {"type": "string", "format": "date-time",
                        "description": "When every component was back at the revision rolled back to."},
    },
}

STATUS_SCHEMA: JSON = {
    "type": "object",
    "description": "Observed state, written by the operator.",
    "default": {},
    "properties": {
        "phase": {"type": "string", "description": "The seed's phase: '<component>已部署' (deployed)."},
        "message": {"type": "string", "description": "The chain with the current step in brackets."},
        "ready": {"type": "string", "description": "Ready components / all components."},
        "summary": {"type": "string", "enum": list(SUMMARIES),
                    "description": "One word from the conditions, for `kubectl get`'s STATUS column: Deleting, "
                                   "Suspended, Stalled (nothing moves until someone changes the spec or the "
                                   "cluster), Degraded (a component failed while others still move), Ready, else "
                                   "Progressing."},
        "observedGeneration": {"type": "integer", "format": "int64", "default": -1,
                               "description": "metadata.generation of the spec this status describes; -1 "
                                              "until the operator has observed the resource."},
        "currentRevision": {"type": "string", "description": "The last revision that reached Ready "
                            "(a ControllerRevision owned by this DataService; see `d3os history`)."},
        "updateRevision": {"type": "string", "description": "The revision being rolled out (the spec's, or "
                           "the one a rollback returns to)."},
        "productVersion": {"type": "string", "description": "The version of the product file this instance last "
                           "became Ready with: while it differs from the operator's, an upgrade is rolling."},
        "rollback": _ROLLBACK_STATUS,
        "conditions": {
            "type": "array",
            "description": "Ready, Progressing and Degraded, then kstatus' Reconciling and Stalled (read by "
                           "Flux, kpt, Helm and cli-utils), one entry per type.",
            "items": _CONDITION,
            "x-kubernetes-list-type": "atomic",
        },
        "components": {
            "type": "array",
            "description": "One entry per component, in the product order.",
            "items": _COMPONENT_STATUS,
            "x-kubernetes-list-type": "atomic",
        },
    },
}
"""The status is the operator's alone and always written whole (one server-side apply of all of it), so its
lists are atomic: the API server's managedFields then record each list as one field instead of every field
of every entry, and a status write -- a dozen per rollout -- costs it about a fifth less CPU (17-19 ms instead
of 24-25 ms in a CPU profile of back-to-back status applies).

The defaults (``status: {}``, ``observedGeneration: -1``) make a DataService the operator has not yet observed
read as not observed: the API server drops a new object's status and fills the defaults in whenever it reads
the object, so kstatus (Flux, Helm 4 ``--wait``) sees ``observedGeneration`` lag ``generation`` (InProgress)
instead of no status at all (Current) until the operator's first status write."""


_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values."
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. In CamelCase."
)


def component_description(product: ProductDef, comp: ComponentDef) -> str:
    """What ``spec.<key>`` is: its role, where it sits in the order, its defaults and an example."""
    keys = list(product.keys)
    i = keys.index(comp.key)
    after = f"after {keys[i - 1]}" if i else "first"
    if comp.role == "middleware":
        kinds = ", ".join(f"{k.value} {'thirdParty' if k.value == 3 else k.k8s_kind}" for k in comp.allowed_kinds)
        text = (f"The {comp.key} middleware: kind {kinds}. Deployed {after} (unless dependsOn says otherwise). "
                f"Defaults: name {comp.default_name}")
        if comp.default_port:
            text += f", port {comp.default_port}"
        if comp.default_image:
            text += f", image {comp.default_image}"
        return text + f". Example: {{name: {comp.default_name}, kind: {comp.default_kind.value}}}."
    return (f"The {comp.key} microservice: a Deployment and a Service (NodePort when nodePort is set), deployed "
            f"{after} (unless dependsOn says otherwise). image and port are required. "
            f"Example: {{name: {comp.default_name}, image: {comp.default_image or 'IMAGE'}, port: "
            f"{comp.default_port or 8080}, nodePort: null, replica: 1}}.")


def crd_manifest(product: ProductDef) -> JSON:
    """The CRD as a dict (apiextensions.k8s.io/v1), annotated with the product's version and the fingerprint
    of its spec (:func:`crd_fingerprint`): the operator refuses to serve a product whose installed CRD differs."""
    names = product.names
    spec = _crd_spec(product)
    annotations = {api.ANNOTATION_FINGERPRINT: crd_fingerprint(spec)}
    if product.version:
        annotations[api.ANNOTATION_PRODUCT_VERSION] = product.version
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{names.plural}.{api.GROUP}",
            "labels": {api.LABEL_PART_OF: "d3os-operator"},
            "annotations": annotations,
        },
        "spec": spec,
    }


def crd_fingerprint(spec: JSON) -> str:
    """A digest of a CRD's spec as generated (before the API server adds defaults): sha256 of its JSON."""
    return "sha256:" + hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _crd_spec(product: ProductDef) -> JSON:
    names = product.names
    return {
        "group": api.GROUP,
        "names": {
            "kind": names.kind,
            "listKind": f"{names.kind}List",
            "plural": names.plural,
            "singular": names.singular,
            "shortNames": list(names.short_names),
            "categories": list(names.categories),
        },
        "scope": "Namespaced",
        "versions": [{
            "name": api.VERSION,
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Status", "type": "string", "jsonPath": ".status.summary"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Message", "type": "string", "jsonPath": ".status.message"},
                {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "description": f"{names.kind} installs the {product.name} product in dependency order.",
                "required": ["spec"],
                "x-kubernetes-validations": [{
                    # CRDs may check metadata.name (and only name and generateName) at the root
                    "rule": "size(self.metadata.name) <= 63 && "
                            f"self.metadata.name.matches('{METADATA_NAME_PATTERN}')",
                    "message": f"metadata.name must be {METADATA_NAME_RULE}",
                }],
                "properties": {
                    "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                    "kind": {"type": "string", "description": _KIND_DOC},
                    "metadata": {"type": "object"},  # the API server refuses anything more here
                    "spec": spec_schema(product),
                    "status": copy.deepcopy(STATUS_SCHEMA),  # callers may edit what they get
                },
            }},
        }],
    }
