"""The dependency graph of a DataService: a DAG over component keys (default: the product's chain)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """One dependency cycle as a list of keys, or an empty list when the graph is acyclic."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, ()):
            if state.get(dep) == 1:
                return stack[stack.index(dep):]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in deps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def topo_order(keys: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Keys ordered so every key comes after its dependencies; ties keep the product order."""
    placed: set[str] = set()
    order: list[str] = []
    remaining = list(keys)
    while remaining:
        for key in remaining:
            if all(d in placed for d in deps.get(key, ())):
                order.append(key)
                placed.add(key)
                remaining.remove(key)
                break
        else:  # a cycle: validation refuses these; keep going deterministically anyway
            order.extend(remaining)
            break
    return order


def dependents_closure(deps: Mapping[str, Sequence[str]], key: str) -> set[str]:
    """Every key that depends on ``key``, directly or through others."""
    out: set[str] = set()
    frontier = [key]
    while frontier:
        cur = frontier.pop()
        for k, ds in deps.items():
            if cur in ds and k not in out:
                out.add(k)
                frontier.append(k)
    return out


def ancestors(deps: Mapping[str, Sequence[str]], key: str) -> list[str]:
    """Everything ``key`` depends on, directly or through others, nearest first.

    Breadth-first with a seen set, so each ancestor is visited once: a list membership test and
    ``pop(0)`` made a 200-component layered product spend a third of ``plan`` here."""
    order = [key]
    seen = {key}
    for cur in order:  # grows while walked: breadth-first
        for dep in deps.get(cur, ()):
            if dep not in seen:
                seen.add(dep)
                order.append(dep)
    return order[1:]
