"""A product file to a :class:`~d3os_core.product.ProductDef`: the schema pass, then the meaning pass.

Pure: the caller reads ``product.yaml`` and the files under ``files/`` and hands their text in, so the same
verdict comes from ``d3os product validate`` on a laptop and from the operator at start. Every problem is a
:class:`~d3os_core.validation.FieldError` -- ``components[3].uses[0]: 'mysq' is not a component; did you mean
'mysql'? allowed: …`` -- and all of them are reported at once.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from . import productfile as pf
from .graph import find_cycle
from .product import ComponentDef, CrdNames, ExtraConfigMap, ProductDef, SecretRef, StorageDef, WorkloadKind
from .spec import IMAGE_PATTERN, SpecBase
from .validation import FieldError

TEMPLATE = re.compile(r"\$\{([^}]*)\}")
FIELDS = ("name", "host", "port", "url")
INCLUDE = "@files/"
CREDENTIALS_SUFFIX = "-credentials"
GENERATED = "<random>"
CRD_MAX_BYTES = 1048576
"""A product's CRD, as compact JSON, may hold at most 1 MiB: etcd refuses requests over 1.5 MiB, and the
API server keeps the CRD in every watch cache and OpenAPI document."""
TEMPLATE_FORMS = "${namespace}, ${<key>.name|host|port|url}, ${self.name|host|port|url}, ${vars.<name>}"
RESERVED_KEYS = tuple(sorted({f.alias or n for n, f in SpecBase.model_fields.items()}))
"""Top-level spec fields every product has (as a user writes them): no component may take their key."""
_TAKEN_NAMES = frozenset({*SpecBase.model_fields, *dir(SpecBase)})
"""Python names of the spec model (its fields, methods and pydantic's): a key whose field name is one of them
would shadow it."""

CEL_BUDGET_SHARE = {"microservice": 0.0350, "middleware": 0.0017}
"""Share of the API server's CEL cost budget for a whole CRD schema that one component's validation rules
take, by role -- the budget is a total per CRD, so it caps the number of components. A microservice's rules
are dominated by its ``files`` rule (the UTF-8 size of up to 32 files of up to 256 KiB). Measured on
kube-apiserver v1.36 from the factor it reports when a CRD exceeds the budget ("exceeds budget by factor of
1.0116x" at 29 microservices, 1.3858x at 40, 2.1x at 60; 28 microservices with 40 middlewares 1.0419x):
0.0349 per microservice and 0.0016 per middleware, rounded up. At most 28 microservices per product, then.
tests/integration/test_product_crds.py holds the API server to this estimate on both sides of the line."""


def _reserved(key: str) -> bool:
    name = key.replace("-", "_")
    return key in RESERVED_KEYS or name in _TAKEN_NAMES or name.startswith("model_")


class ProductFileError(ValueError):
    """A product file that does not load, with every problem found (``errors``) and the file it came from."""

    def __init__(self, errors: list[FieldError], source: str = "product.yaml") -> None:
        self.errors = errors
        self.source = source
        super().__init__("\n".join(f"{source}: {e}" if source else str(e) for e in errors))


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed: {', '.join(choices) or '(none)'}"


_UNION_BRANCH = re.compile(r"^(constrained-str|str|int|bool|Generate|function-[a-z]+\[.*\])$")
"""Parts pydantic adds to an error's location for the branch of a union it tried: not part of the path."""


def _schema_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        path = ""
        of_name = False
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part == "[key]":
                of_name = True
            elif not _UNION_BRANCH.match(str(part)):
                path += f".{part}" if path else str(part)
        message = ("the name: " if of_name else "") + err["msg"]
        found = err.get("input")
        if err["type"] == "extra_forbidden":
            message = "is not a field of the product file (see `d3os product schema`)"
        elif err["type"] != "missing" and isinstance(found, (str, int, float, bool)):
            message += f"; found {found!r}"[:200]
        out.append(FieldError(path or "(file)", message))
    return out


# -- the meaning pass --------------------------------------------------------------------------------------


def _depends(file: pf.ProductFile) -> dict[str, tuple[str, ...]]:
    keys = [c.key for c in file.components]
    return {c.key: tuple(c.depends_on) if c.depends_on is not None else ((keys[i - 1],) if i else ())
            for i, c in enumerate(file.components)}


def _closure(deps: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Everything each component waits for, directly or not (what it may wire to)."""
    out: dict[str, set[str]] = {}

    def walk(key: str, seen: set[str]) -> set[str]:
        if key in out:
            return out[key]
        acc: set[str] = set()
        for d in deps.get(key, ()):
            if d in deps and d not in seen:
                acc |= {d} | walk(d, seen | {d})
        out[key] = acc
        return acc

    for key in deps:
        walk(key, {key})
    return out




class _Meaning:
    """The second pass over a file that passed the schema: collects errors and resolves text."""

    def __init__(self, file: pf.ProductFile, files: Mapping[str, str]) -> None:
        self.file = file
        self.files = files
        self.errors: list[FieldError] = []
        self.keys = [c.key for c in file.components]
        self.order_known = True
        """False after a cycle or a duplicate key: wiring is then not judged (it would only repeat the error)."""

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def unclosed(self, path: str, value: str) -> bool:
        """A ``${`` without its ``}``: the text would reach the cluster as written."""
        if value.count("${") > len(TEMPLATE.findall(value)):
            self.error(path, f"a ${{ without its closing }}; allowed: {TEMPLATE_FORMS}")
            return True
        return False

    def text(self, path: str, value: str, key: str, waits_for: set[str], include: bool) -> str:
        """``value`` with includes read and ``${vars.X}``/``${self.F}`` resolved; every reference checked."""
        if value.startswith(INCLUDE):
            name = value[len(INCLUDE):]
            if not include:
                self.error(path, f"@files/ includes are allowed in config and configMaps data only; got {value!r}")
                return value
            if name not in self.files:
                self.error(path, f"{value!r}: no such file under files/; "
                           + _did_you_mean(name, sorted(self.files)))
                return value
            value = self.files[name]
            path = f"{path} ({INCLUDE}{name})"
        if self.unclosed(path, value):
            return value

        def sub(m: re.Match[str]) -> str:
            inner = m.group(1)
            if inner == "namespace":
                return m.group(0)
            head, dot, field = inner.partition(".")
            if not dot or not field or not re.fullmatch(r"[A-Za-z0-9_.-]+", inner):
                self.error(path, f"${{{inner}}} is not a template; allowed: {TEMPLATE_FORMS} (no functions, "
                           "loops or conditionals)")
                return m.group(0)
            if head == "vars":
                if field not in self.file.vars:
                    self.error(path, f"${{vars.{field}}}: no such var; " + _did_you_mean(field, sorted(self.file.vars)))
                    return m.group(0)
                return self.file.vars[field]
            if field not in FIELDS:
                self.error(path, f"${{{inner}}}: {field!r} is not a field of a component; allowed: {', '.join(FIELDS)}")
                return m.group(0)
            if head == "self":
                return f"${{{key}.{field}}}"
            if head not in self.keys:
                self.error(path, f"${{{inner}}}: {head!r} is not a component; {_did_you_mean(head, self.keys)}")
                return m.group(0)
            if head != key and head not in waits_for and self.order_known:
                self.error(path, f"${{{inner}}} wires {key} to {head}, which {key} does not depend on: add {head} "
                           f"to components[{self.keys.index(key)}].dependsOn (directly or through another "
                           "component), so it is ready first")
            return m.group(0)

        return TEMPLATE.sub(sub, value)

    def plain(self, path: str, value: str) -> str:
        """A value that may use ``${vars.X}`` only (images, credentials)."""
        if self.unclosed(path, value):
            return value

        def sub(m: re.Match[str]) -> str:
            head, dot, field = m.group(1).partition(".")
            if head == "vars" and dot and field in self.file.vars:
                return self.file.vars[field]
            if head == "vars" and dot:
                self.error(path, f"${{vars.{field}}}: no such var; " + _did_you_mean(field, sorted(self.file.vars)))
            else:
                self.error(path, f"${{{m.group(1)}}}: only ${{vars.<name>}} may appear here")
            return m.group(0)

        return TEMPLATE.sub(sub, value)

    def check_graph(self) -> dict[str, set[str]]:
        index: dict[str, int] = {}
        for i, c in enumerate(self.file.components):
            if c.key in index:
                self.order_known = False
                self.error(f"components[{i}].key", f"{c.key!r} is already the key of components[{index[c.key]}]; "
                           "keys must be unique")
            index.setdefault(c.key, i)
            if _reserved(c.key):
                self.error(f"components[{i}].key", f"{c.key!r} is taken by the spec itself; not allowed: "
                           f"{', '.join(RESERVED_KEYS)}, or a name of the spec model ({c.key.replace('-', '_')!r})")
        deps = _depends(self.file)
        for i, c in enumerate(self.file.components):
            for field, refs in (("dependsOn", c.depends_on or []), ("uses", c.uses)):
                seen: set[str] = set()
                for j, ref in enumerate(refs):
                    path = f"components[{i}].{field}[{j}]"
                    if ref not in index:
                        self.error(path, f"{ref!r} is not a component; {_did_you_mean(ref, self.keys)}")
                    elif ref == c.key:
                        self.error(path, f"{c.key} cannot {'depend on' if field == 'dependsOn' else 'use'} itself")
                    elif ref in seen:
                        self.error(path, f"{ref!r} is listed twice")
                    seen.add(ref)
        cycle = find_cycle({k: tuple(d for d in v if d in index and d != k) for k, v in deps.items()})
        if cycle:
            self.order_known = False
            self.error(f"components[{index[cycle[0]]}].dependsOn",
                       "dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
            return {k: set() for k in deps}
        closure = _closure(deps)
        for i, c in enumerate(self.file.components):
            if not self.order_known:
                break
            for j, used in enumerate(c.uses):
                if used in index and used != c.key and used not in closure[c.key]:
                    self.error(f"components[{i}].uses[{j}]",
                               f"{c.key} uses {used} but does not depend on it: add {used} to dependsOn (directly "
                               "or through another component), so it is ready first")
        return closure


def _role_defaults(file: pf.ProductFile, role: str) -> pf.RoleDefaults | None:
    return file.defaults.middleware if role == "middleware" else file.defaults.microservice


def _resources(r: pf.Resources | None) -> dict[str, dict[str, str]] | None:
    if r is None:
        return None
    return {k: dict(v) for k, v in (("requests", r.requests), ("limits", r.limits)) if v}


def _component(m: _Meaning, i: int, c: pf.Component, closure: dict[str, set[str]]) -> ComponentDef:
    path = f"components[{i}]"
    d = _role_defaults(m.file, c.role)
    waits = closure.get(c.key, set())
    middleware = c.role == "middleware"
    if not middleware:
        for field, value in (("kind", c.kind), ("allowedKinds", c.allowed_kinds), ("storage", c.storage)):
            if value is not None:
                m.error(f"{path}.{field}", "applies to middlewares only (a microservice is always a Deployment)")
    kind = WorkloadKind(c.kind if c.kind is not None else 0)
    allowed = tuple(WorkloadKind(k) for k in c.allowed_kinds) if c.allowed_kinds is not None else tuple(WorkloadKind)
    if len(set(allowed)) != len(allowed):
        m.error(f"{path}.allowedKinds", "lists a kind twice")
    if middleware and kind not in allowed:
        m.error(f"{path}.kind", f"{kind.value} is not in allowedKinds; allowed: "
                + ", ".join(str(k.value) for k in allowed))
    if middleware and c.storage is not None and WorkloadKind.DAEMONSET in allowed:
        m.error(f"{path}.allowedKinds", "2 (DaemonSet) with storage would run one copy of the data per node; "
                "allowed with storage: 0, 1, 3")
    credentials = c.credentials or {}
    for field, refs in (("secretExports", c.secret_exports), ("secretEnv", c.secret_env)):
        for env_name, cred in refs.items():
            if cred not in credentials:
                m.error(f"{path}.{field}.{env_name}", f"{cred!r} is not a key of credentials; "
                        + _did_you_mean(cred, list(credentials)))
    for j, cm in enumerate(c.config_maps):
        if middleware and cm.files_from_spec:
            m.error(f"{path}.configMaps[{j}].filesFromSpec", "applies to microservices only (a middleware's spec "
                    "has no files field)")
    if sum(cm.files_from_spec for cm in c.config_maps) > 1:
        m.error(f"{path}.configMaps", "at most one ConfigMap may take filesFromSpec")
    suffixes: dict[str, int] = {}
    for j, cm in enumerate(c.config_maps):
        if cm.suffix in suffixes or cm.suffix == CREDENTIALS_SUFFIX:
            m.error(f"{path}.configMaps[{j}].suffix", f"{cm.suffix!r} is already used by this component")
        suffixes[cm.suffix] = j

    image_raw = c.image if c.image is not None else (d.image if d else None)
    image = m.plain(f"{path}.image", image_raw) if image_raw is not None else None
    if middleware and image is None and set(allowed) != {WorkloadKind.THIRD_PARTY}:
        m.error(f"{path}.image", "a middleware that may run as a workload needs a default image (its spec may "
                "leave image out); set image here or in defaults.middleware.image")
    if image is not None and "${" not in image and re.fullmatch(IMAGE_PATTERN, image) is None:
        m.error(f"{path}.image", f"{image!r} is not an image reference: registry/name:tag or @digest")
    config_raw = c.config if c.config is not None else (d.config if d and d.config is not None else {})
    env_raw = c.env if c.env is not None else (d.env if d and d.env is not None else {})
    exports = {k: m.text(f"{path}.exports.{k}", v, c.key, waits, False) for k, v in c.exports.items()}
    config = {k: m.text(f"{path}.config.{k}", v, c.key, waits, True) for k, v in config_raw.items()}
    env = {k: m.text(f"{path}.env.{k}", v, c.key, waits, False) for k, v in env_raw.items()}
    extras = tuple(
        ExtraConfigMap(
            suffix=cm.suffix,
            data={k: m.text(f"{path}.configMaps[{j}].data.{k}", v, c.key, waits, True) for k, v in cm.data.items()},
            mount_path=cm.mount_path,
            files_from_spec=cm.files_from_spec,
        )
        for j, cm in enumerate(c.config_maps)
    )
    generated = ({k: (GENERATED if isinstance(v, pf.Generate) else m.plain(f"{path}.credentials.{k}", v))
                  for k, v in credentials.items()} if c.credentials is not None else None)
    resources = _resources(c.resources) or (_resources(d.resources) if d else None)
    port = c.port if c.port is not None else (d.port if d else None)
    port_name = c.port_name or (d.port_name if d else None) or "http"
    run_as_user = c.run_as_user if c.run_as_user is not None else (d.run_as_user if d else None)
    kw: dict[str, Any] = {}
    if resources is not None:
        kw["default_resources"] = resources
    return ComponentDef(
        key=c.key,
        role=c.role,
        default_name=c.name or c.key,
        default_port=port,
        default_image=image,
        default_kind=kind,
        allowed_kinds=allowed,
        uses=tuple(c.uses),
        exports=exports,
        secret_exports=tuple(SecretRef(env_, CREDENTIALS_SUFFIX, k) for env_, k in c.secret_exports.items()),
        generated_secret=generated,
        config=config,
        config_mount_path=c.config_mount_path,
        container_env=env,
        container_secret_env=tuple(SecretRef(env_, CREDENTIALS_SUFFIX, k) for env_, k in c.secret_env.items()),
        extra_configmaps=extras,
        storage=(StorageDef(c.storage.mount_path, c.storage.size, c.storage.claim_prefix)
                 if c.storage is not None else None),
        port_name=port_name,
        third_party_path=c.third_party_path,
        run_as_user=run_as_user,
        depends_on=tuple(c.depends_on) if c.depends_on is not None else None,
        **kw,
    )


def _env_clashes(m: _Meaning, product: ProductDef) -> None:
    """An env name two sources set: the container would get one of them without a word."""
    for i, comp in enumerate(product.components):
        sources: dict[str, str] = {}

        def add(name: str, source: str, i: int = i, sources: dict[str, str] = sources) -> None:
            if name in sources and sources[name] != source:
                m.error(f"components[{i}]", f"env {name} is set by both {sources[name]} and {source}; "
                        "each env name may come from one place")
            sources.setdefault(name, source)

        for name in comp.container_env:
            add(name, "env")
        for ref in comp.container_secret_env:
            add(ref.env, "secretEnv")
        if comp.config_mount_path is None:
            for name in comp.config:
                add(name, "config")
        for used in comp.uses:
            if used not in product.keys:
                continue
            dep = product.component(used)
            for name in dep.exports:
                add(name, f"{used}'s exports")
            for ref in dep.secret_exports:
                add(ref.env, f"{used}'s secretExports")


def _object_names(m: _Meaning, product: ProductDef) -> None:
    """Two components whose default objects would share a name (a ConfigMap, Secret or Service)."""
    owner: dict[str, tuple[int, str]] = {}
    for i, comp in enumerate(product.components):
        names = [(comp.default_name, "name")]
        names += [(comp.default_name + x.suffix, f"configMaps suffix {x.suffix}") for x in comp.extra_configmaps]
        if comp.generated_secret is not None:
            names.append((comp.default_name + CREDENTIALS_SUFFIX, "credentials Secret"))
        for name, what in names:
            if name in owner and owner[name][0] != i:
                j, other = owner[name]
                m.error(f"components[{i}].name", f"objects named {name!r} would come from both components[{j}] "
                        f"({other}) and components[{i}] ({what}); derived object names must be unique")
            owner.setdefault(name, (i, what))


def crd_size(product: ProductDef) -> int:
    """Bytes of the product's CRD as compact JSON (what the API server stores)."""
    from .crd import crd_manifest

    return len(json.dumps(crd_manifest(product), separators=(",", ":")).encode())


def cel_budget_share(product: ProductDef) -> float:
    """The estimated share of the API server's CEL cost budget the product's CRD takes (see
    :data:`CEL_BUDGET_SHARE`): above 1 the API server refuses the CRD."""
    return sum(CEL_BUDGET_SHARE[c.role] for c in product.components)


def load_product(doc: Any, files: Mapping[str, str] | None = None, source: str = "product.yaml") -> ProductDef:
    """The product a parsed product file defines; :class:`ProductFileError` with every problem otherwise."""
    if not isinstance(doc, dict):
        found = type(doc).__name__ if doc is not None else "an empty document"
        raise ProductFileError([FieldError("(file)", f"expected a mapping with apiVersion: {pf.API_VERSION}, kind: "
                                           f"{pf.KIND}; found {found}")], source)
    try:
        file = pf.ProductFile.model_validate(doc)
    except ValidationError as exc:
        raise ProductFileError(_schema_errors(exc), source) from None
    m = _Meaning(file, files or {})
    for name, value in file.vars.items():
        if "${" in value:
            m.error(f"vars.{name}", "a var is plain text: it may not hold ${...}")
    names = file.names
    if names.singular != names.kind.lower():
        m.error("names.singular", f"must be the kind in lower case: {names.kind.lower()!r}")
    if len(set(names.short_names)) != len(names.short_names) or {names.plural, names.singular} & set(names.short_names):
        m.error("names.shortNames", "must be unique and differ from plural and singular")
    closure = m.check_graph()
    components = tuple(_component(m, i, c, closure) for i, c in enumerate(file.components))
    if m.errors:
        raise ProductFileError(m.errors, source)
    product = ProductDef(
        name=file.metadata.name,
        components=components,
        part_of=file.metadata.part_of or "",
        version=file.metadata.version,
        names=CrdNames(names.kind, names.plural, names.singular, tuple(names.short_names), tuple(names.categories)),
        selector_names_product=file.selector_names_product,
        removed=tuple(file.removed),
    )
    for i, key in enumerate(file.removed):
        if key in product.keys:
            m.error(f"removed[{i}]", f"{key!r} is still a component (components[{product.keys.index(key)}]): list "
                    "only keys this version no longer has")
    if len(set(file.removed)) != len(file.removed):
        m.error("removed", "a key is listed twice")
    _env_clashes(m, product)
    _object_names(m, product)
    if not m.errors:
        share = cel_budget_share(product)
        size = crd_size(product) if share <= 1.0 else 0
        if share > 1.0:
            counts = {role: sum(1 for c in product.components if c.role == role) for role in CEL_BUDGET_SHARE}
            m.error("components", f"CRD over the API server's CEL cost budget: its validation rules would take an "
                    f"estimated {share:.0%} of it ({counts['microservice']} microservices at "
                    f"{CEL_BUDGET_SHARE['microservice']:.1%} each, {counts['middleware']} middlewares at "
                    f"{CEL_BUDGET_SHARE['middleware']:.2%}); allowed: at most 100 % -- about 28 microservices; "
                    "split the product")
        elif size > CRD_MAX_BYTES:
            m.error("components", f"CRD too large: {size} bytes of JSON, at most {CRD_MAX_BYTES} (1 MiB); "
                    "split the product or drop components")
    if m.errors:
        raise ProductFileError(m.errors, source)
    return product


def check_catalogue(products: Sequence[ProductDef]) -> list[FieldError]:
    """Products served together: names, kinds, plurals and short names unique across all of them."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for i, p in enumerate(products):
        for what, value in (("metadata.name", p.name), ("names.kind", p.names.kind),
                            ("names.plural", p.names.plural), ("names.singular", p.names.singular),
                            *(("names.shortNames", s) for s in p.names.short_names)):
            claim = value.lower() if what != "metadata.name" else f"product:{value}"
            if claim in seen and seen[claim] != i:
                errors.append(FieldError(f"{p.name}: {what}", f"{value!r} is already taken by product "
                                         f"{products[seen[claim]].name}; names, kinds, plurals and short names must "
                                         "be unique"))
            seen.setdefault(claim, i)
    for i, p in enumerate(products):  # a selector without the product label selects by instance and key alone
        for legacy in [q for k, q in enumerate(products) if k != i]:
            if legacy.selector_names_product or (not p.selector_names_product and products.index(legacy) > i):
                continue
            for j, key in enumerate(p.keys):
                if key in legacy.keys:
                    errors.append(FieldError(
                        f"{p.name}: components[{j}].key",
                        f"{key!r} is also a component of {legacy.name}, whose pod selectors (instance and component "
                        "labels) predate the product label: its Services would select the pods of this product's "
                        f"instance of the same name; choose another key (taken: {', '.join(legacy.keys)})"))
    return errors


def dump_product(product: ProductDef) -> dict[str, Any]:
    """A product file that loads back to ``product`` (resolved: no vars, no includes)."""

    def component(c: ComponentDef) -> dict[str, Any]:
        out: dict[str, Any] = {"key": c.key, "role": c.role, "name": c.default_name}
        if c.default_port is not None:
            out["port"] = c.default_port
        if c.default_image is not None:
            out["image"] = c.default_image
        if c.role == "middleware":
            out["kind"] = c.default_kind.value
            out["allowedKinds"] = [k.value for k in c.allowed_kinds]
        if c.uses:
            out["uses"] = list(c.uses)
        if c.depends_on is not None:
            out["dependsOn"] = list(c.depends_on)
        if c.exports:
            out["exports"] = dict(c.exports)
        if c.secret_exports:
            out["secretExports"] = {r.env: r.key for r in c.secret_exports}
        if c.generated_secret is not None:
            out["credentials"] = {k: ({"generate": True} if v == GENERATED else v)
                                  for k, v in c.generated_secret.items()}
        out["config"] = dict(c.config)
        if c.config_mount_path is not None:
            out["configMountPath"] = c.config_mount_path
        out["env"] = dict(c.container_env)
        if c.container_secret_env:
            out["secretEnv"] = {r.env: r.key for r in c.container_secret_env}
        if c.extra_configmaps:
            out["configMaps"] = [{"suffix": x.suffix, "data": dict(x.data), "mountPath": x.mount_path,
                                  "filesFromSpec": x.files_from_spec} for x in c.extra_configmaps]
        if c.storage is not None:
            out["storage"] = {"mountPath": c.storage.mount_path, "size": c.storage.size,
                              "claimPrefix": c.storage.claim_prefix}
        out["portName"] = c.port_name
        out["resources"] = {k: dict(v) for k, v in c.default_resources.items()}
        if c.third_party_path:
            out["thirdPartyPath"] = c.third_party_path
        if c.run_as_user is not None:
            out["runAsUser"] = c.run_as_user
        return out

    meta: dict[str, Any] = {"name": product.name, "version": product.version or "0.0.0"}
    if product.part_of:
        meta["partOf"] = product.part_of
    n = product.names
    return {
        "apiVersion": pf.API_VERSION,
        "kind": pf.KIND,
        "metadata": meta,
        "names": {"kind": n.kind, "plural": n.plural, "singular": n.singular, "shortNames": list(n.short_names),
                  "categories": list(n.categories)},
        "selectorNamesProduct": product.selector_names_product,
        "components": [component(c) for c in product.components],
        **({"removed": list(product.removed)} if product.removed else {}),
    }
