"""Progress deadlines for every kind of step, without a clock.

A component's step starts when the core first sees it not ready at a desired state (its first apply of
that state, or a third party's first failed check); the start time and the state's hash are kept in the
component's status entry (``since``, ``target``), and ``Facts.now`` says how long it has been. Past
``spec.progressDeadlineSeconds`` the component is Failed, reason ``ProgressDeadlineExceeded``, and its
message says what it waits for as precisely as the cluster tells: for a workload, the pods that are not
ready and why (the scheduler's reason for a Pending pod, a container's waiting reason), which the core
asks the shell to read (:class:`~d3os_core.types.PodQuery`) only for such a component. The rollout keeps
waiting: a component that becomes ready is Ready again on the next plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .status import ComponentStatus, find_condition
from .times import parse_time, seconds_between
from .types import PodQuery

REASON = "ProgressDeadlineExceeded"
MAX_PODS_NAMED = 3
MAX_POD_TEXT = 300


@dataclass(frozen=True, slots=True)
class Verdict:
    """A component's status with its deadline applied, and what the plan needs for it."""

    status: ComponentStatus
    wake_in: float | None = None
    """Seconds until the deadline passes (the plan requeues then), None when no clock runs."""
    inspect: PodQuery | None = None


def judge(
    cs: ComponentStatus,
    prev: Mapping[str, Any] | None,
    target: str,
    running: bool,
    now: str,
    deadline: int,
    pods: Sequence[Mapping[str, Any]] | None = None,
    selector: Mapping[str, str] | None = None,
) -> Verdict:
    """Apply the progress deadline to ``cs``.

    ``running``: the component is in a step (Progressing, or Failed by its own controller's deadline)
    rather than Ready, Waiting on others, in conflict or suspended. ``selector``: labels of its pods,
    when it has a workload. ``pods``: those pods, when the shell read them.
    """
    if not running:
        return Verdict(replace(cs, since="", target=""))
    prev = prev or {}
    since = str(prev.get("since") or "")
    if prev.get("target") != target or not since or parse_time(since) is None:
        since = now
    spent = seconds_between(since, now)
    cs = replace(cs, since=since, target=target)
    already_failed = cs.state == "Failed"
    if spent < deadline and not already_failed:
        return Verdict(cs, wake_in=deadline - spent)
    inspect = PodQuery(cs.key, dict(selector)) if selector is not None and pods is None else None
    detail = describe_pods(pods) if pods is not None and selector is not None else ""
    message = cs.message.rstrip(".") + (f": {detail}" if detail else "")
    if spent >= deadline:
        verb = "failing" if selector is None else "not ready"
        message += f"; {verb} for more than {deadline} s (progressDeadlineSeconds)"
    return Verdict(replace(cs, state="Failed", reason=REASON, message=message), inspect=inspect)


def _condition(pod: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return find_condition((pod.get("status") or {}).get("conditions"), type_)


def _short(text: str) -> str:
    """The scheduler's message without its preemption postscript, bounded."""
    text = " ".join(str(text).split())
    cut = text.find("preemption:")
    if cut > 0:
        text = text[:cut]
    text = text.rstrip(",. ")
    return text if len(text) <= MAX_POD_TEXT else text[: MAX_POD_TEXT - 1] + "…"


def _containers(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = cs.get("state") or {}
        name = cs.get("name", "?")
        waiting = state.get("waiting")
        if waiting:
            why = waiting.get("reason") or "waiting"
            more = waiting.get("message")
            return f"container {name} {why}" + (f": {_short(more)}" if more else "")
        term = state.get("terminated")
        if term and term.get("exitCode", 0) != 0:
            return f"container {name} exited {term.get('exitCode')} ({term.get('reason') or 'Error'})"
        if not cs.get("ready"):
            last = (cs.get("lastState") or {}).get("terminated")
            if last:
                return f"container {name} not ready, last exit {last.get('exitCode')} ({last.get('reason') or 'Error'})"
            return f"container {name} not ready (readiness probe failing)"
    return ""


def describe_pod(pod: Mapping[str, Any]) -> str | None:
    """Why one pod is not ready (None when it is): ``web-1 Pending: 0/3 nodes are available: …``."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", "?"))
    if meta.get("deletionTimestamp"):
        return f"{name} terminating"
    phase = str((pod.get("status") or {}).get("phase") or "Pending")
    if phase == "Running" and _condition(pod, "Ready").get("status") == "True":
        return None
    if phase == "Succeeded":
        return f"{name} Succeeded (exited)"
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") == "False":
        why = scheduled.get("message") or scheduled.get("reason") or "not scheduled"
        return f"{name} {phase}: {_short(why)}"
    detail = _containers(pod) or _short(str((pod.get("status") or {}).get("message") or ""))
    return f"{name} {phase}" + (f": {detail}" if detail else "")


def describe_pods(pods: Sequence[Mapping[str, Any]]) -> str:
    """The pods that are not ready and why, a few by name: ``mysql-0 Pending: 0/3 nodes are available: …``."""
    if not pods:
        return "no pods exist"
    lines = [d for d in (describe_pod(p) for p in sorted(pods, key=_name)) if d is not None]
    if not lines:
        return ""
    more = len(lines) - MAX_PODS_NAMED
    return "; ".join(lines[:MAX_PODS_NAMED]) + (f"; and {more} more" if more > 0 else "")


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))
