"""graph.ancestors against a plain transitive closure, on random DAGs (it feeds every step's gate)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from d3os_core.graph import ancestors


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Nodes n0..nk; each depends on some earlier nodes (acyclic by construction)."""
    n = draw(st.integers(1, 25))
    deps: dict[str, list[str]] = {}
    for i in range(n):
        earlier = [f"n{j}" for j in range(i)]
        deps[f"n{i}"] = draw(st.lists(st.sampled_from(earlier), max_size=4)) if earlier else []
    return deps


def distance(deps: dict[str, list[str]], key: str) -> dict[str, int]:
    """Fewest edges from ``key`` to each ancestor."""
    dist = {key: 0}
    level = [key]
    while level:
        nxt = []
        for node in level:
            for dep in deps[node]:
                if dep not in dist:
                    dist[dep] = dist[node] + 1
                    nxt.append(dep)
        level = nxt
    return dist


@given(dags())
def test_ancestors_are_the_closure_once_each_nearest_first(deps: dict[str, list[str]]) -> None:
    for key in deps:
        got = ancestors(deps, key)
        assert len(got) == len(set(got)), got
        dist = distance(deps, key)
        assert set(got) == set(dist) - {key}
        assert [dist[a] for a in got] == sorted(dist[a] for a in got)


def test_chain_and_diamond() -> None:
    chain = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}
    assert ancestors(chain, "d") == ["c", "b", "a"]
    assert ancestors(chain, "a") == []
    diamond = {"top": ["l", "r"], "l": ["base"], "r": ["base"], "base": []}
    assert ancestors(diamond, "top") == ["l", "r", "base"]
