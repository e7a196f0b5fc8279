"""Credentials live as long as their data.

A component with storage (mysql) keeps its data in a claim that outlives the DataService, and the
generated password in a credentials Secret. If the Secret died with the DataService while the claim
stayed, a re-created DataService would generate a new password that no longer opens the initialised
database. So the two share one lifetime:

* the Secret has no ownerReference to the DataService; it is found again by its labels (like the
  claim) when a DataService of the same name comes back, or when mysql is renamed and renamed back;
* once the claims exist, the Secret carries an ownerReference to every claim of the component (no
  ``controller``, no ``blockOwnerDeletion``): the garbage collector deletes the Secret only with the last
  of them, as each replica of a StatefulSet initialised its own data with the same password;
* every claim records the name of the Secret its data is opened with (annotation
  :data:`ANNOTATION_CREDENTIALS`): claim 0 is written with it in the same pass, right after that Secret (a
  failed write stops the pass before the claim), so neither object waits for the other's uid but the
  Secret's ownerReference, and a first rollout writes the claim once; the other replicas' claims, made by
  the StatefulSet controller, get the record in the first pass that sees them with the Secret. A claim that
  records credentials which are gone keeps data that new credentials would not open: while any does, the
  planner generates none and says how to recover (restore the Secret, or delete the claims). Claims
  recording nothing are new, or made again empty by the StatefulSet controller after a person deleted them
  as the status says (it may do so before the operator's next pass): they get fresh credentials;
* a Secret whose claim is gone (garbage collection pending) is waited out, never reused.

Neither object is ever deleted by the operator.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from . import api
from .product import ProductDef
from .types import Parent

CLAIM_KIND = "PersistentVolumeClaim"
ANNOTATION_CREDENTIALS = f"{api.GROUP}/credentials"
"""On a claim: name of the credentials Secret its data is opened with."""
ANNOTATION_CREDENTIALS_UID = f"{api.GROUP}/credentials-uid"
"""What earlier versions wrote instead (the Secret's uid, known one pass later): still read as a record."""
LOST_REASON = "CredentialsLost"
"""Degraded reason when a claim's credentials Secret is gone."""
LOST = "credentials lost: "
"""Prefix of a component message about lost credentials (the status maps it to :data:`LOST_REASON`)."""

Standing = Literal["usable", "going"]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labelled_for(obj: Mapping[str, Any], parent: Parent) -> bool:
    """Our labels for ``parent``: its instance name and its product label (none for DataService)."""
    labels = _meta(obj).get("labels") or {}
    return bool(labels.get(api.LABEL_MANAGED_BY) == api.MANAGED_BY and labels.get(api.LABEL_INSTANCE) == parent.name
                and labels.get(api.LABEL_PRODUCT, "") == parent.product)


def owned_by_parent(obj: Mapping[str, Any], parent_uid: str) -> bool:
    return any(ref.get("uid") == parent_uid for ref in _meta(obj).get("ownerReferences") or [])


def retained(obj: Mapping[str, Any], kind: str, parent_uid: str) -> bool:
    """Objects that outlive the DataService: claims, and Secrets not owned by it (a claim's credentials).

    They are found by their labels and never deleted by the operator (not pruned, not on deletion)."""
    return kind == CLAIM_KIND or (kind == "Secret" and not owned_by_parent(obj, parent_uid))


def deletes_secrets(product: ProductDef) -> bool:
    """Whether the operator ever deletes a Secret of ``product``'s instances.

    Only a credentials Secret of a component without storage is the instance's own child (pruned when the
    spec no longer wants it, deleted with the instance); one of a component with data belongs to its claims
    and is never deleted by the operator (:func:`retained`). The generated RBAC grants ``delete`` on Secrets
    only when a served product needs it: least privilege."""
    return any(c.generated_secret is not None and c.storage is None for c in product.components)


def label_owned(obj: Mapping[str, Any], kind: str, parent: Parent) -> bool:
    """A retained object of ``parent``: our labels, and no owner but a claim or an instance of its kind
    (an earlier one of the same name: then the Secret is :func:`standing` ``going``)."""
    if not _labelled_for(obj, parent):
        return False
    return all(ref.get("kind") in (CLAIM_KIND, parent.kind) for ref in _meta(obj).get("ownerReferences") or [])


def claim_owner_reference(name: str, uid: str) -> dict[str, Any]:
    """The Secret's ownerReference to its claim: garbage collection only (no controller, no blocking)."""
    return {"apiVersion": api.kind_def(CLAIM_KIND).api_version, "kind": CLAIM_KIND, "name": name, "uid": uid}


def standing(secret: Mapping[str, Any], parent_uid: str, claim_uids: Collection[str]) -> Standing:
    """``going`` when the Secret is being deleted, or belongs only to claims that no longer exist, or to an
    earlier DataService of the same name (the garbage collector deletes it); ``usable`` otherwise (no
    owner yet, this DataService, or a live claim of the component among its owners)."""
    meta = _meta(secret)
    if meta.get("deletionTimestamp"):
        return "going"
    refs = meta.get("ownerReferences") or []
    if any(ref.get("apiVersion") == api.API_VERSION and ref.get("uid") != parent_uid for ref in refs):
        return "going"  # an earlier instance of the same name (of any product kind)
    held = [ref.get("uid") for ref in refs if ref.get("kind") == CLAIM_KIND]
    if held and not any(u in claim_uids for u in held):
        return "going"
    return "usable"


def opened_with(claim: Mapping[str, Any]) -> str:
    """The credentials Secret the claim's data is opened with, as recorded ("" when none is recorded)."""
    notes = _meta(claim).get("annotations") or {}
    return str(notes.get(ANNOTATION_CREDENTIALS) or notes.get(ANNOTATION_CREDENTIALS_UID) or "")


def lost_message(secret: str, claims: Sequence[str], keys: list[str], instance: str) -> str:
    """Why a component with data waits for a person when its credentials Secret is gone, and what to do."""
    which = ", ".join(f"{CLAIM_KIND}/{c}" for c in claims)
    one = len(claims) == 1
    return (
        f"{LOST}{which} {'keeps' if one else 'keep'} data but {'its' if one else 'their'} Secret/{secret} is "
        f"gone; new credentials would not open that data, so none are generated: re-create Secret/{secret} "
        f"with the old values (keys {', '.join(keys)}; labels {api.LABEL_MANAGED_BY}={api.MANAGED_BY} and "
        f"{api.LABEL_INSTANCE}={instance}), or delete {'the claim' if one else 'the claims'} to start with "
        "empty data"
    )


def going_message(secret: str) -> str:
    return (
        f"waiting for Secret/{secret} to be removed: it belongs to a claim or a DataService that is gone "
        "(the garbage collector deletes it), so its credentials open no data of this DataService"
    )
