"""What a new version of a product file does to the instances that exist: which components roll, and which
changes are refused because an existing instance could stop being valid or lose what it has.

Refused (breaking), each with its path:
* a component removed without being listed in the new file's ``removed`` -- an instance's ``spec.<key>``
  would be pruned away by the API server, and the removal may be a slip; listed, it is accepted: every
  instance deletes the component's objects once Ready (claims and their credentials are kept);
* a middleware's allowed kinds narrowed -- an instance using the dropped kind would become invalid;
* a component added -- every instance lacks ``spec.<key>``, a required field without a default;
* the custom resource renamed (kind, plural) -- existing instances live under the old name.

Which components roll is judged by rendering, not by comparing definitions: the objects a sample instance
gets from each version are compared, component by component (a changed export rolls its users too).
The same judgement runs at operator start against the installed CRD (:func:`crd_compatibility`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import api
from .desired import desired
from .product import ProductDef
from .render import parent_of
from .sample import sample
from .validation import FieldError, SpecError, parse_spec


@dataclass(frozen=True, slots=True)
class ProductDiff:
    """``rolls``: component keys whose objects change; ``removes``: components removed on purpose (their objects
    go); ``breaking``: refused changes (empty: safe)."""

    old_version: str
    new_version: str
    rolls: tuple[str, ...]
    breaking: tuple[FieldError, ...]
    removes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.rolls or self.removes or self.breaking or self.old_version != self.new_version)


def _by_component(objects: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str], str]]:
    out: dict[str, dict[tuple[str, str], str]] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = (meta.get("labels") or {}).get(api.LABEL_COMPONENT, "")
        digest = (meta.get("annotations") or {}).get(api.ANNOTATION_HASH, "")
        out.setdefault(key, {})[(obj["kind"], meta.get("name", ""))] = digest
    return out


def _rendered(product: ProductDef, doc: Mapping[str, Any]) -> dict[str, dict[tuple[str, str], str]]:
    meta = {"name": "diff", "namespace": "diff", "uid": "diff"}
    return _by_component(desired(parent_of(meta, product), parse_spec(doc["spec"], product), product, seed="diff"))


def breaking_changes(old: ProductDef, new: ProductDef) -> list[FieldError]:
    """Changes of ``new`` that an existing instance of ``old`` may not survive."""
    errors: list[FieldError] = []
    if (old.names.kind, old.names.plural) != (new.names.kind, new.names.plural):
        errors.append(FieldError("names", f"the custom resource is renamed ({old.names.kind}/{old.names.plural} -> "
                                 f"{new.names.kind}/{new.names.plural}): existing instances live under the old name; "
                                 "a renamed product is a new product"))
    new_keys = set(new.keys)
    for i, comp in enumerate(old.components):
        if comp.key not in new_keys:
            if comp.key not in new.removed:
                errors.append(FieldError(f"components (was components[{i}])", f"{comp.key} is removed: every "
                                         f"instance's spec.{comp.key} would be pruned; if that is meant, list it "
                                         f"in removed: [{comp.key}] (its objects are then deleted from every "
                                         "instance once Ready; claims and their credentials are kept)"))
            continue
        now = new.component(comp.key)
        lost = [k for k in comp.allowed_kinds if k not in now.allowed_kinds]
        if comp.role == "middleware" and now.role == "middleware" and lost:
            errors.append(FieldError(f"components[{new.keys.index(comp.key)}].allowedKinds",
                                     "narrowed: an instance with kind " + ", ".join(str(k.value) for k in lost)
                                     + " would become invalid; allowed: keep every kind the previous version allowed"))
        if comp.role != now.role:
            errors.append(FieldError(f"components[{new.keys.index(comp.key)}].role",
                                     f"{comp.key} changes role ({comp.role} -> {now.role}): its spec fields differ"))
    old_keys = set(old.keys)
    for i, comp in enumerate(new.components):
        if comp.key not in old_keys:
            errors.append(FieldError(f"components[{i}]", f"{comp.key} is added: every existing instance lacks "
                                     f"spec.{comp.key}, a required field without a default"))
    return errors


def diff_products(old: ProductDef, new: ProductDef) -> ProductDiff:
    """What moving the instances of ``old`` to ``new`` means (see the module docstring)."""
    breaking = breaking_changes(old, new)
    rolls: tuple[str, ...] = ()
    if not breaking:
        doc = sample(old)
        try:
            before, after = _rendered(old, doc), _rendered(new, doc)
        except SpecError as exc:  # the old sample is not valid for the new product: say so, field by field
            breaking = [FieldError(e.path, f"an instance valid for {old.version or 'the old version'} is not for "
                                   f"{new.version or 'the new one'}: {e.message}") for e in exc.errors]
        else:
            rolls = tuple(k for k in new.keys if before.get(k) != after.get(k))
    removes = tuple(c.key for c in old.components if c.key not in new.keys and c.key in new.removed)
    return ProductDiff(old.version, new.version, rolls, tuple(breaking), removes)


def crd_compatibility(installed_crd: Mapping[str, Any], new: ProductDef) -> list[FieldError]:
    """The installed CRD against a product file: components it knows that the file drops or lacks (by the
    CRD's ``spec`` properties), and a different kind; what :func:`breaking_changes` says, from the CRD alone."""
    spec = installed_crd.get("spec") or {}
    versions = spec.get("versions") or [{}]
    schema = ((versions[0].get("schema") or {}).get("openAPIV3Schema") or {})
    props = (((schema.get("properties") or {}).get("spec") or {}).get("properties") or {})
    installed_keys = [k for k, v in props.items() if isinstance(v, Mapping) and "name" in (v.get("properties") or {})]
    errors: list[FieldError] = []
    kind = (spec.get("names") or {}).get("kind")
    if kind and kind != new.names.kind:
        errors.append(FieldError("names.kind", f"the installed CRD serves {kind}, the product file {new.names.kind}"))
    errors += [FieldError("components", f"{k} is removed: the installed CRD has spec.{k} (list it in removed: "
                          f"[{k}] if that is meant)")
               for k in installed_keys if k not in new.keys and k not in new.removed]
    errors += [FieldError("components", f"{k} is added: instances made with the installed CRD lack spec.{k}")
               for k in new.keys if installed_keys and k not in installed_keys]
    return errors
