"""How a plan's applies go out: in waves, each sent at once, each only after the one before it succeeded.

The plan lists its applies in dependency order, one object after another; sending them one round trip
each would add a round trip per object to every step of a rollout. Which of them may travel together is
an ordering rule, so it lives here, read from the kinds table (:attr:`d3os_core.api.KindDef.leaf`).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import api
from .types import Apply


def apply_waves(steps: Sequence[Apply]) -> list[list[Apply]]:
    """The plan's applies as waves.

    The plan's order is kept between components (a component's objects all come after those of the one
    before it in the plan) and, within a component, for every object but the leaves (kinds whose manifest
    refers to no other object), which all join the component's first wave: sent no later than in the plan,
    they can only be earlier than an object that needs them. Every other object is a wave of its own, in
    the plan's order, so a workload still goes after the ConfigMaps, Secrets and claims it mounts and a
    claim after the Secret it records. The sample's mysql takes 3 round trips instead of 6 (Secret + 2
    ConfigMaps + Service, then the claim, then the StatefulSet); a microservice 2 instead of 3.
    """
    waves: list[list[Apply]] = []
    block: str | None = None
    first = 0  # index of the current component's first wave
    for step in steps:
        if block is None or step.component != block:
            block, first = step.component, len(waves)
            waves.append([])
        kind = api.KINDS_BY_NAME.get(step.manifest["kind"])
        if kind is not None and kind.leaf:
            waves[first].append(step)
        else:
            waves.append([step])
    return [w for w in waves if w]
