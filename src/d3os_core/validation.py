"""Validation of a DataService spec: every problem at once, each naming its field path and the rule.

Schema rules come from the pydantic models (the same ones the CRD is generated from); the rules that
span fields (kinds per middleware, third-party checks, uniqueness, the dependency graph) live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .checks import CheckError, check_from_url, check_url, parse_check_cmd
from .graph import find_cycle
from .product import ProductDef, WorkloadKind
from .spec import (
    ENV_NAME_PATTERN,
    NAME_RULE,
    Microservice,
    Middleware,
    SpecBase,
    spec_model,
)
from .types import Check, HttpCheck, TcpCheck

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
        return f"must be one of {KIND_CHOICES}, got {err.get('input')!r}"
    if kind == "string_pattern_mismatch":
        if last == "name" or (len(loc) >= 2 and loc[-2] == "imagePullSecrets"):
            return f"{err.get('input')!r} is not {NAME_RULE}"
        if len(loc) >= 2 and loc[-2] == "env":
            return f"env name {err.get('input')!r} must match {ENV_NAME_PATTERN}"
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
    try:
        spec = model.model_validate(raw)
    except ValidationError as exc:
        errors = [
            FieldError(_path(tuple(e["loc"])), _friendly(e, model, product))
            for e in exc.errors(include_url=False)
        ]
        raise SpecError(errors) from None
    problems = cross_field_errors(spec, product)
    if problems:
        raise SpecError(problems)
    return spec


def validate_spec(raw: Any, product: ProductDef) -> list[FieldError]:
    """All problems of ``raw``; empty when it is valid."""
    try:
        parse_spec(raw, product)
    except SpecError as exc:
        return exc.errors
    return []


def third_party_check(mw: Middleware) -> Check:
    """The check of a third-party middleware: ``check``, else ``checkCMD`` parsed, else its ``url``."""
    tp = mw.third_party
    if tp is None or (not tp.check_cmd and not tp.url and tp.check is None):
        raise CheckError("kind 3 (thirdParty) needs thirdParty.url, thirdParty.check or thirdParty.checkCMD")
    if tp.check is not None:
        if tp.check.http is not None:
            h = tp.check.http
            check_url(h.url, what="check.http.url")
            return HttpCheck(url=h.url, method=h.method, insecure=h.insecure, follow_redirects=h.follow_redirects,
                             timeout_seconds=h.timeout_seconds, fail_on_http_error=h.fail_on_http_error)
        assert tp.check.tcp is not None
        return TcpCheck(host=tp.check.tcp.host.strip("[]"), port=tp.check.tcp.port,
                        timeout_seconds=tp.check.tcp.timeout_seconds)
    if tp.check_cmd:
        return parse_check_cmd(tp.check_cmd)
    assert tp.url is not None
    return check_from_url(tp.url)


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
                    where = (".check" if tp is not None and tp.check is not None
                             else ".checkCMD" if tp is not None and tp.check_cmd else "")
                    errors.append(FieldError(f"spec.{key}.thirdParty{where}", str(exc)))
                if tp is not None and tp.url:
                    try:
                        check_from_url(tp.url)
                    except CheckError as exc:
                        errors.append(FieldError(f"spec.{key}.thirdParty.url", str(exc)))
            elif tp is not None and tp.check_cmd:
                try:
                    parse_check_cmd(tp.check_cmd)
                except CheckError as exc:
                    errors.append(FieldError(f"spec.{key}.thirdParty.checkCMD", str(exc)))
            if c.storage is not None and comp.storage is None:
                errors.append(FieldError(f"spec.{key}.storage", f"{key} keeps no data; storage applies to "
                                         + ", ".join(x.key for x in product.components if x.storage)))
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
