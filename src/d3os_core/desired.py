"""The desired object set of a DataService: one home for "render every component", used by the planner,
``d3os render`` and ``d3os diff`` alike (so what the CLI shows is what the operator applies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .caches import Caches
from .memo import digest, pack, unpack
from .product import ProductDef
from .render import ComponentState, Parent, Rendered, render_component, resolve, secret_name
from .spec import SpecBase
from .types import JSON


def needs_seed(states: Mapping[str, ComponentState], live_secrets: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a rendering draws on the random seed: a generated credentials Secret that is not live yet."""
    return any(st.definition.generated_secret is not None
               and secret_name(st, "-credentials") not in live_secrets for st in states.values())


def render_all(
    who: Parent,
    spec: SpecBase,
    product: ProductDef,
    states: Mapping[str, ComponentState],
    live_secrets: Mapping[str, Mapping[str, Any]],
    claims: Mapping[str, str],
    seed: str,
    *,
    spec_key: str | None = None,
    cache: Caches | None = None,
) -> dict[str, Rendered]:
    """Every component's desired objects, by component key (index it: its order is not promised).

    With ``cache`` and ``spec_key`` (a digest of the spec text) the result is memoised: the same inputs
    render the same objects. The table keeps one entry per DataService (its latest rendering: the earlier
    ones -- before its credentials or claims existed, an earlier spec -- are never asked for again), packed
    (:func:`d3os_core.memo.pack`); a hit is a fresh copy.
    """
    key = slot = None
    if cache is not None and spec_key is not None:
        secrets = sorted((name, obj.get("data") or {}) for name, obj in live_secrets.items())
        key = digest(spec_key, who.name, who.namespace, who.uid, secrets, sorted(claims.items()),
                     seed if needs_seed(states, live_secrets) else "")
        slot = digest("rendered", who.namespace, who.name, who.uid)
        hit = cache.rendered.get(slot)
        if hit is not None and hit[0] == key:
            return {k: Rendered(*r) for k, r in unpack(hit[1]).items()}
    out = {k: render_component(who, spec, product, states, k, live_secrets, seed, claims) for k in product.keys}
    if cache is None or key is None or slot is None:
        return out
    blob = pack({k: (r.key, r.objects, r.config_hash) for k, r in out.items()})
    if blob is not None:
        cache.rendered.put(slot, (key, blob), len(blob))
    return out


def desired(
    parent: Parent,
    spec: SpecBase,
    product: ProductDef,
    *,
    live_secrets: Mapping[str, Mapping[str, Any]] | None = None,
    claims: Mapping[str, str] | None = None,
    seed: str = "",
    order: Iterable[str] | None = None,
) -> list[JSON]:
    """Every object the operator wants for ``spec``, component by component (``order``, default the
    product's), as it would apply them. ``live_secrets``: the credentials Secrets already there (their
    values are kept); ``claims``: uid of each live claim by name; ``seed``: random material for
    credentials not created yet (empty: a placeholder value)."""
    secrets = live_secrets or {}
    rendered = render_all(parent, spec, product, resolve(parent, spec, product), secrets, claims or {}, seed)
    return [o for k in (order or product.keys) for o in rendered[k].objects]
