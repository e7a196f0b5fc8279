"""The children diff: which live objects are ours, which are up to date, which go, and how to name them.

Mechanics, not order (that is :mod:`d3os_core.ordering`): ownership (an object another owner holds is
never taken over), the up-to-date test (desired hash + drift, memoised), objects being deleted, stale
objects to prune (claims and the credentials that open them are kept), and references to delete whose
group/version come from the kinds table (:data:`d3os_core.api.KINDS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import api, credentials, revisions
from .caches import Caches
from .drift import covers
from .memo import text_digest
from .render import ComponentState, Parent, claims_of, secret_name
from .status import State
from .types import JSON, Apply, ObjectRef, Observed

Stale = tuple[str, str, Mapping[str, Any], str]
"""(kind, name, live object, component key) of an object of ours the spec no longer wants."""


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def owned(obj: Mapping[str, Any], kind: str, parent: Parent) -> bool:
    """Ours: owned by this DataService's uid; a claim or a claim's credentials Secret (which outlive the
    DataService) by their labels."""
    if credentials.owned_by_parent(obj, parent.uid):
        return True
    return kind in ("PersistentVolumeClaim", "Secret") and credentials.label_owned(obj, kind, parent)


def holder(obj: Mapping[str, Any]) -> str:
    """Who holds an object that is not ours, for the Conflict message."""
    m = meta(obj)
    for ref in m.get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    labels = m.get("labels") or {}
    if labels.get(api.LABEL_INSTANCE):  # before other owners: a credentials Secret is owned by its claim
        product = labels.get(api.LABEL_PRODUCT)
        return f"{product + ' instance' if product else api.KIND}/{labels[api.LABEL_INSTANCE]}"
    refs = m.get("ownerReferences") or []
    if refs:
        return f"{refs[0].get('kind')}/{refs[0].get('name')}"
    return "no owner (created outside d3os-operator)"


def ref(kind: str, name: str, obj: Mapping[str, Any], parent: Parent, component: str) -> ObjectRef:
    """A delete reference to ``obj`` with its uid as precondition (a re-created namesake is never hit)."""
    uid = meta(obj).get("uid")
    return ObjectRef.of(kind, name, parent.namespace, uid if isinstance(uid, str) else None, component)


def terminating(obj: Mapping[str, Any]) -> bool:
    """Being deleted (``metadata.deletionTimestamp`` set): on its way out, whatever its content says."""
    return bool(meta(obj).get("deletionTimestamp"))


def up_to_date(desired: Mapping[str, Any], live: Mapping[str, Any], cache: Caches | None = None) -> bool:
    """The operator's rule: ``live`` carries ``desired``'s hash annotation *and* still holds every desired
    value (:func:`d3os_core.drift.covers`; the server's defaults and other managers' fields are no drift);
    an object being deleted is never up to date. ``cache`` remembers the answer per live object (its uid),
    for its latest resourceVersion and desired hash: older versions are never asked about again."""
    m = meta(live)
    if terminating(live):
        return False
    desired_hash = ((desired.get("metadata") or {}).get("annotations") or {}).get(api.ANNOTATION_HASH)
    if desired_hash is None or (m.get("annotations") or {}).get(api.ANNOTATION_HASH) != desired_hash:
        return False
    version, uid = m.get("resourceVersion"), m.get("uid")
    slot = text_digest("covered", uid) if version and uid and isinstance(uid, str) and cache is not None else None
    seen = f"{version}/{desired_hash}"
    if cache is not None and slot is not None:
        hit = cache.covered.get(slot)
        if hit is not None and hit[0] == seen:
            return hit[1]
    result = covers(live, {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")})
    if cache is not None and slot is not None:
        cache.covered.put(slot, (seen, result))
    return result


def live_secrets(observed: Observed, who: Parent) -> dict[str, Mapping[str, Any]]:
    """Our live Secrets by name (a credentials Secret keeps its values across renders)."""
    return {name: obj for (kind, name), obj in observed.objects.items() if kind == "Secret" and owned(obj, kind, who)}


def live_claims(observed: Observed, who: Parent) -> dict[str, str]:
    """uid of each live claim of ours that is not being deleted, by name."""
    return {name: str(meta(obj).get("uid") or "") for (kind, name), obj in observed.objects.items()
            if kind == "PersistentVolumeClaim" and owned(obj, kind, who) and not terminating(obj)}


def stale(who: Parent, observed: Observed, desired: set[tuple[str, str]]) -> list[Stale]:
    """Objects of ours that the current spec no longer wants (old kinds, renamed components); claims and
    their credentials are kept (they outlive any spec)."""
    out = []
    for (kind, name), obj in sorted(observed.objects.items()):
        if (kind, name) in desired or kind == revisions.KIND or kind not in api.OWNED_PLURALS \
                or not owned(obj, kind, who) \
                or credentials.retained(obj, kind, who.uid):
            continue
        comp = str((meta(obj).get("labels") or {}).get(api.LABEL_COMPONENT, ""))
        out.append((kind, name, obj, comp))
    return out


@dataclass(slots=True)
class Diff:
    """One component's desired objects against what is live."""

    outdated: list[Apply] = field(default_factory=list)
    """To apply: missing (``create``) or not up to date."""
    conflicts: list[str] = field(default_factory=list)
    """``Kind/name is held by …``: another owner's objects under a desired name."""
    terminating: list[str] = field(default_factory=list)
    """Ours, being deleted: neither up to date nor to be applied until it is gone."""


def diff(objects: Sequence[JSON], component: str, observed: Observed, who: Parent, cache: Caches | None) -> Diff:
    out = Diff()
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        live = observed.objects.get((kind, name))
        if live is None:
            out.outdated.append(Apply(obj, component, create=True))
        elif not owned(live, kind, who):
            out.conflicts.append(f"{kind}/{name} is held by {holder(live)}")
        elif terminating(live):
            out.terminating.append(f"{kind}/{name}")
        elif not up_to_date(obj, live, cache):
            out.outdated.append(Apply(obj, component))
    return out


def credentials_hold(
    who: Parent, st: ComponentState, observed: Observed, claims: Mapping[str, str]
) -> tuple[State, str] | None:
    """A component whose credentials cannot be used as they are applies nothing: a Secret on its way out
    is waited out; a claim whose Secret is gone waits for a person (new values would not open the data)."""
    keys = st.definition.generated_secret
    if keys is None:
        return None
    name = secret_name(st, "-credentials")
    mine = claims_of(st, claims)
    live = observed.objects.get(("Secret", name))
    if live is not None:
        if owned(live, "Secret", who) and credentials.standing(live, who.uid, mine.values()) == "going":
            return "Progressing", credentials.going_message(name)
        return None
    if not mine:
        return None
    # a claim recording credentials keeps data opened with them; claims recording nothing are new, or
    # re-created empty (by the StatefulSet controller, after a person deleted them as the status says)
    holding = [n for n in mine if credentials.opened_with(observed.objects[("PersistentVolumeClaim", n)])]
    if holding:
        return "Failed", credentials.lost_message(name, holding, sorted(keys), who.name)
    return None


def names(applies: Sequence[Apply]) -> list[str]:
    return [f"{a.manifest['kind']}/{a.manifest['metadata']['name']}" for a in applies]
