"""Validation of a DataService spec: every problem at once, each naming its field path and the rule.

Schema rules come from the pydantic models (the same ones the CRD is generated from); the rules that
span fields (kinds per middleware, third-party checks, uniqueness, the dependency graph) live here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .checks import CheckError, check_from_url, check_host, check_url, guard, parse_check_cmd, third_party_check
from .graph import find_cycle
from .product import ProductDef, WorkloadKind
from .spec import (
    ENV_NAME_PATTERN,
    NAME_RULE,
    QUANTITY_RULE,
    Microservice,
    Middleware,
    SpecBase,
    spec_model,
)

KIND_CHOICES = "0 (Deployment), 1 (StatefulSet), 2 (DaemonSet), 3 (thirdParty)"
STATEFULSET_NAME_MAX = 52
"""A StatefulSet's pods carry ``controller-revision-hash: <name>-<10 chars>``, a 63-character label."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem: ``path`` like ``spec.mysql.kind``, ``message`` with the rule or allowed values."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecError(ValueError):
    """Raised by :func:`parse_spec` with every :class:`FieldError` found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


METADATA_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
METADATA_NAME_RULE = (
    "a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 "
    "characters (it becomes the value of every child's app.kubernetes.io/instance label)"
)
SHARED_CLAIM_MAX_REPLICA = 1
"""kind 0 (Deployment) mounts the one ReadWriteOnce claim of a component that keeps data in every pod."""


def metadata_name_errors(name: Any) -> list[FieldError]:
    """``metadata.name`` of a DataService: the same rule as the CRD's CEL rule on ``self.metadata.name``."""
    if not isinstance(name, str) or not name:
        return [FieldError("metadata.name", "is required: " + METADATA_NAME_RULE)]
    if len(name) > 63 or re.fullmatch(METADATA_NAME_PATTERN, name) is None:
        shown = name if len(name) <= 80 else name[:80] + "…"
        return [FieldError("metadata.name", f"{shown!r} ({len(name)} characters) is not {METADATA_NAME_RULE}")]
    return []


def operator_env_names(product: ProductDef, key: str) -> tuple[str, ...]:
    """Environment variables the renderer itself puts in ``key``'s container (its own settings and the
    credentials of the middlewares it uses): an ``env`` entry of the same name would be a duplicate."""
    comp = product.component(key)
    names = [*comp.container_env, *(r.env for r in comp.container_secret_env)]
    for used in comp.uses:
        names += [r.env for r in product.component(used).secret_exports]
    return tuple(dict.fromkeys(names))


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _friendly(err: Mapping[str, Any], model: type[BaseModel], product: ProductDef) -> str:
    kind = err["type"]
    loc = err["loc"]
    if loc and loc[-1] == "[key]":
        if len(loc) >= 3 and loc[-3] == "env":
            return (f"env name {loc[-2]!r} must match {ENV_NAME_PATTERN} "
                    "(letters, digits, '_', '-', '.'; no leading digit)")
        return f"key {loc[-2]!r}: {err['msg']}"
    last = loc[-1] if loc else ""
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field {last!r}; {_allowed_fields(loc[:-1], model, product)}"
    if last == "kind" and len(loc) == 2:
        got = err.get("input")
        return f"must be one of {KIND_CHOICES}, got {json.dumps(got, default=str)[:60]} ({_json_type(got)})"
    if kind in _TYPE_WORDS:  # strict: what the API server's schema refuses, refused here too, never coerced
        got = err.get("input")
        shown = json.dumps(got, ensure_ascii=False, default=str)
        shown = shown if len(shown) <= 60 else shown[:60] + "…"
        return f"must be {_TYPE_WORDS[kind]}, got {shown} ({_json_type(got)}); values are never converted"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and isinstance(err.get("input"), str):
        # the URL and host patterns: say which part is wrong, as the core would
        if last in ("url", "host"):
            return _address_problem(err["input"], str(last), "http" in loc)
        if last == "name" or (len(loc) >= 2 and loc[-2] == "imagePullSecrets"):
            return f"{err.get('input')!r} is not {NAME_RULE}"
        if len(loc) >= 2 and loc[-2] == "env":
            return f"env name {err.get('input')!r} must match {ENV_NAME_PATTERN}"
        if (last == "size" and len(loc) >= 2 and loc[-2] == "storage") or (len(loc) >= 3 and loc[-3] == "resources"):
            return f"{err.get('input')!r} is not {QUANTITY_RULE}"
        if last == "image":
            return ("an image reference is registry[:port]/name[:tag][@digest]: letters, digits and . _ / : @ -, "
                    f"got {err.get('input')!r}")
    if last == "nodePort" and kind in ("greater_than_equal", "less_than_equal"):
        return f"must be from 30000 to 32767 (the NodePort range), got {err.get('input')!r}"
    if last == "port" and kind in ("greater_than_equal", "less_than_equal"):
        return f"must be from 1 to 65535, got {err.get('input')!r}"
    if last == "replica" and kind in ("greater_than_equal", "less_than_equal"):
        return f"must be from 0 to 1000, got {err.get('input')!r}"
    return str(err["msg"])


_TYPE_WORDS = {
    "int_type": "an integer", "bool_type": "true or false", "float_type": "a number", "string_type": "a string",
    "dict_type": "an object (a map)", "list_type": "a list", "model_type": "an object", "model_attributes_type":
    "an object",
}


def _json_type(value: Any) -> str:
    for t, word in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                    (dict, "an object"), (list, "a list")):
        if isinstance(value, t):
            return word
    return "null" if value is None else type(value).__name__


def _address_problem(text: str, field: str, http: bool) -> str:
    """Why a URL or host does not match the CRD's pattern, in the core's words."""
    try:
        if field == "host":
            guard(check_host, text, what="host")
        elif http:
            guard(check_url, text, what="url")
        else:
            guard(check_from_url, text)
    except CheckError as exc:
        return str(exc)
    forms = ("an ASCII DNS name (xn-- form for internationalised names), an IPv4 or IPv6 address" if field == "host"
             else "http(s)://HOST[:PORT][/PATH]" if http
             else "http(s)://HOST…, tcp://HOST:PORT, jdbc:mysql://HOST[:PORT]/…, mysql://HOST[:PORT] or HOST:PORT")
    return f"{text!r} is not {forms}, in printable ASCII"


def _allowed_fields(loc: tuple[Any, ...], model: type[BaseModel], product: ProductDef) -> str:
    target: type[BaseModel] | None = model
    if len(loc) == 1 and loc[0] in product.keys:
        comp = product.component(str(loc[0]))
        target = Middleware if comp.role == "middleware" else Microservice
    elif len(loc) >= 1:
        target = None
    if target is None:
        return "see the CRD for the allowed fields"
    names = sorted(f.alias or n for n, f in target.model_fields.items())
    return "allowed: " + ", ".join(names)


def parse_spec(raw: Any, product: ProductDef) -> SpecBase:
    """Parse and fully validate ``raw`` (the ``spec`` of a DataService); raise :class:`SpecError`."""
    model = spec_model(product)
    if not isinstance(raw, Mapping):
        raise SpecError([FieldError("spec", "must be an object with the product's components")])
    if product.removed and any(k in raw for k in product.removed):
        # a component this product version removed on purpose: an instance made before may still carry it until
        # its next write (the API server prunes the field then); it is ignored, not refused
        raw = {k: v for k, v in raw.items() if k not in product.removed}
    try:
        spec = model.model_validate(raw)
    except ValidationError as exc:
        details = exc.errors(include_url=False)
        not_text = _not_text(raw, ())
        if not_text:  # pydantic places a key it cannot read nowhere (an empty loc): told here with its path
            details = [e for e in details if e["loc"] and e["type"] != "string_unicode"]
        errors = not_text + [FieldError(_path(tuple(e["loc"])), _friendly(e, model, product)) for e in details]
        raise SpecError(errors + _cross_field_despite(raw, details, errors, model, product)) from None
    problems = cross_field_errors(spec, product)
    if problems:
        raise SpecError(problems)
    return spec


def _cross_field_despite(
    raw: Mapping[str, Any], details: list[Any], errors: list[FieldError], model: type[SpecBase], product: ProductDef
) -> list[FieldError]:
    """The cross-field rules, also when some fields break the schema: they are judged on the spec without
    those fields (when it parses so), and only about fields not already reported, so every problem is told
    at once (``spec.mysql.kind`` beside a bad ``spec.web.nodePort``) and none twice."""
    pruned = copy.deepcopy(dict(raw))
    for e in details:
        if not e["loc"]:
            continue
        *parents, last = tuple(e["loc"])
        node: Any = pruned
        for step in parents:
            node = node[step] if isinstance(node, (dict, list)) and _has(node, step) else None
        if isinstance(node, (dict, list)) and _has(node, last):
            if isinstance(node, dict):
                del node[last]
            else:
                node[last] = None
    try:
        spec = model.model_validate(pruned)
    except (ValidationError, ValueError, TypeError):
        return []
    told = {e.path for e in errors}
    return [p for p in cross_field_errors(spec, product)
            if not any(p.path == t or p.path.startswith(t + ".") or t.startswith(p.path + ".") for t in told)]


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_text(node: Any, loc: tuple[int | str, ...]) -> list[FieldError]:
    """Keys and values that are no Unicode text (a lone surrogate, from a YAML ``\\ud800`` escape): JSON, and
    so the API server, cannot carry them."""
    rule = "is not valid Unicode text (it holds a lone surrogate); the API server accepts UTF-8 text only"
    out: list[FieldError] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str) and not _is_text(key):
                out.append(FieldError(_path(loc), f"key {key!r} {rule}"))
            else:
                out += _not_text(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _not_text(value, (*loc, i))
    elif isinstance(node, str) and not _is_text(node):
        out.append(FieldError(_path(loc), f"{node!r} {rule}"))
    return out


def _has(node: dict[Any, Any] | list[Any], key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(key, int) and 0 <= key < len(node)


def validate_spec(raw: Any, product: ProductDef) -> list[FieldError]:
    """All problems of ``raw``; empty when it is valid."""
    try:
        parse_spec(raw, product)
    except SpecError as exc:
        return exc.errors
    return []


def cross_field_errors(spec: SpecBase, product: ProductDef) -> list[FieldError]:
    """Rules that involve more than one field."""
    errors: list[FieldError] = []
    names: dict[str, str] = {}
    node_ports: dict[int, str] = {}
    deps: dict[str, tuple[str, ...]] = {}
    defaults = product.default_dependencies()
    for comp in product.components:
        key = comp.key
        c = spec.component(key)
        # names: components must not share a name, nor collide with another's derived objects
        for derived in [c.name] + [c.name + x.suffix for x in comp.extra_configmaps]:
            if derived in names and names[derived] != key:
                errors.append(FieldError(
                    f"spec.{key}.name",
                    f"{c.name!r} gives an object named {derived!r}, which spec.{names[derived]}.name already "
                    "uses; names must be unique within the resource",
                ))
            names.setdefault(derived, key)
        if isinstance(c, Middleware):
            kind = WorkloadKind(c.kind)
            if kind not in comp.allowed_kinds:
                allowed = ", ".join(f"{k.value} ({k.k8s_kind if k.value != 3 else 'thirdParty'})"
                                    for k in comp.allowed_kinds)
                why = " (each node would keep its own copy of the data)" if kind is WorkloadKind.DAEMONSET else ""
                errors.append(FieldError(
                    f"spec.{key}.kind", f"{key} may not be {kind.value} ({kind.k8s_kind}){why}; allowed: {allowed}"
                ))
            if kind is WorkloadKind.STATEFULSET and len(c.name) > STATEFULSET_NAME_MAX:
                errors.append(FieldError(
                    f"spec.{key}.name",
                    f"a StatefulSet name may have at most {STATEFULSET_NAME_MAX} characters, got {len(c.name)}",
                ))
            tp = c.third_party
            if kind is WorkloadKind.THIRD_PARTY:
                try:
                    third_party_check(c)
                except CheckError as exc:
                    where = (".check.http.url" if tp is not None and tp.check is not None and tp.check.http
                             else ".check.tcp.host" if tp is not None and tp.check is not None and tp.check.tcp
                             else ".check" if tp is not None and tp.check is not None
                             else ".checkCMD" if tp is not None and tp.check_cmd
                             else ".url" if tp is not None and tp.url else "")
                    errors.append(FieldError(f"spec.{key}.thirdParty{where}", str(exc)))
                if tp is not None and tp.url and (tp.check is not None or tp.check_cmd):
                    try:
                        guard(check_from_url, tp.url)
                    except CheckError as exc:
                        errors.append(FieldError(f"spec.{key}.thirdParty.url", str(exc)))
            elif tp is not None and tp.check_cmd:
                try:
                    guard(parse_check_cmd, tp.check_cmd)
                except CheckError as exc:
                    errors.append(FieldError(f"spec.{key}.thirdParty.checkCMD", str(exc)))
            if c.storage is not None and comp.storage is None:
                errors.append(FieldError(f"spec.{key}.storage", f"{key} keeps no data; storage applies to "
                                         + ", ".join(x.key for x in product.components if x.storage)))
        reserved = operator_env_names(product, key)
        for name in c.env:
            if name in reserved:
                errors.append(FieldError(
                    f"spec.{key}.env.{name}",
                    f"{name} is set by the operator itself; env may not repeat any of: {', '.join(reserved)}",
                ))
        if (comp.storage is not None and isinstance(c, Middleware) and c.kind == WorkloadKind.DEPLOYMENT
                and c.replica is not None and c.replica > SHARED_CLAIM_MAX_REPLICA):
            errors.append(FieldError(
                f"spec.{key}.replica",
                f"at most {SHARED_CLAIM_MAX_REPLICA} with kind 0 (Deployment): its pods would share one "
                f"ReadWriteOnce claim; got {c.replica} (use kind 1 (StatefulSet) for a claim per pod)",
            ))
        if isinstance(c, Microservice) and c.node_port is not None:
            if c.node_port in node_ports:
                errors.append(FieldError(
                    f"spec.{key}.nodePort",
                    f"{c.node_port} is already used by spec.{node_ports[c.node_port]}.nodePort; "
                    "nodePorts must be unique",
                ))
            node_ports.setdefault(c.node_port, key)
        if isinstance(c, Microservice) and c.files is not None and not any(
            x.files_from_spec for x in comp.extra_configmaps
        ):
            errors.append(FieldError(f"spec.{key}.files", f"{key} has no file ConfigMap; files applies to "
                                     + ", ".join(x.key for x in product.components
                                                 if any(e.files_from_spec for e in x.extra_configmaps))))
        if c.depends_on is None:
            deps[key] = defaults[key]
        else:
            good: list[str] = []
            for i, d in enumerate(c.depends_on):
                if d not in product.keys:
                    errors.append(FieldError(
                        f"spec.{key}.dependsOn[{i}]", f"{d!r} is not a component; allowed: {', '.join(product.keys)}"
                    ))
                elif d == key:
                    errors.append(FieldError(f"spec.{key}.dependsOn[{i}]", "a component cannot depend on itself"))
                elif d in good:
                    errors.append(FieldError(f"spec.{key}.dependsOn[{i}]", f"{d!r} is listed twice"))
                else:
                    good.append(d)
            deps[key] = tuple(good)
    cycle = find_cycle(deps)
    if cycle:
        errors.append(FieldError(
            f"spec.{cycle[0]}.dependsOn", "dependency cycle: " + " -> ".join([*cycle, cycle[0]])
        ))
    return errors
