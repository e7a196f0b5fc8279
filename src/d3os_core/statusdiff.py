"""When a new status is worth writing, and when it is a step boundary: the core's decision, on its own text.

The shell writes a status only when it differs from the live one, and at once only at a *step boundary* --
a phase, a component's state, a condition's status or reason, a count... A status that changes only
progress text ("0 of 1 updated replicas available" becoming "1 of 1 …" while the component stays
Progressing) is written at most every few seconds. Which text is progress text is the core's to say: it
wrote it, including the quote of a progressing component inside the message of one that waits for it
(:func:`d3os_core.ordering`'s "waiting for eureka (progressing: <its message>)").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _strip_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def status_differs(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """True when writing ``desired`` would change the live status (null fields count as absent)."""
    live = live or {}
    if desired == live:
        return False
    return bool(_strip_none(dict(desired)) != _strip_none(dict(live)))


def _without_progress_text(status: Mapping[str, Any]) -> Any:
    """``status`` without its progress text: condition messages, the message of a Progressing component, and
    that message where another component quotes it."""
    st = _strip_none(dict(status))
    comps = st.get("components") or []
    progress = sorted({str(c["message"]) for c in comps if c.get("state") == "Progressing" and c.get("message")},
                      key=len, reverse=True)

    def unquoted(message: Any) -> Any:
        if not isinstance(message, str):
            return message
        for text in progress:
            message = message.replace(text, "…")
        return message

    return {
        **st,
        "conditions": [{k: v for k, v in c.items() if k != "message"} for c in st.get("conditions") or []],
        "components": [
            {k: unquoted(v) if k == "message" else v
             for k, v in c.items() if not (k == "message" and c.get("state") == "Progressing")}
            for c in comps
        ],
    }


def step_boundary(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """True when writing ``desired`` changes more than progress text: such a status is written at once."""
    return bool(_without_progress_text(desired) != _without_progress_text(live or {}))


def progressing(status: Mapping[str, Any]) -> bool:
    """Is this instance's rollout still moving (condition Progressing=True)? When it is not -- complete or
    stalled -- the shell settles its Events' counts."""
    return any(c.get("type") == "Progressing" and c.get("status") == "True" for c in status.get("conditions") or [])
