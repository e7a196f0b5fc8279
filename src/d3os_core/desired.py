"""The desired object set of a DataService: one home for "render every component", used by the planner,
``d3os render`` and ``d3os diff`` alike (so what the CLI shows is what the operator applies)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .caches import IN_MEMORY, Caches
from .memo import digest
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
    render the same objects. Callers must treat a memoised result as read-only.
    """
    key = None
    if cache is not None and spec_key is not None:
        secrets = sorted((name, obj.get("data") or {}) for name, obj in live_secrets.items())
        key = digest(spec_key, who.name, who.namespace, who.uid, secrets, sorted(claims.items()),
                     seed if needs_seed(states, live_secrets) else "")
        hit = cache.rendered.get(key)
        if hit is not None:
            return hit
    out = {k: render_component(who, spec, product, states, k, live_secrets, seed, claims) for k in product.keys}
    if cache is None or key is None:
        return out
    weight = sum(len(json.dumps(o, default=str)) for r in out.values() for o in r.objects) * IN_MEMORY
    return cache.rendered.put(key, out, weight)


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
