"""Pure parts of the reconciler's contract: when a status is a step boundary (written at once)."""

from __future__ import annotations

import copy
from typing import Any

from d3os_operator.reconciler import status_differs, step_boundary


def _status(state: str, message: str, ready: str = "0/2") -> dict[str, Any]:
    return {
        "phase": "mysql已部署",
        "message": "[mysql]->uuc",
        "ready": ready,
        "conditions": [{"type": "Ready", "status": "False", "reason": "RollingOut", "message": f"mysql: {message}"}],
        "components": [
            {"name": "mysql", "state": state, "ready": state == "Ready", "message": message},
            {"name": "uuc", "state": "Waiting", "ready": False, "message": "waiting for mysql"},
        ],
    }


def test_progress_text_of_a_progressing_component_is_not_a_boundary() -> None:
    live = _status("Progressing", "0 of 1 updated replicas available")
    desired = _status("Progressing", "1 of 1 updated replicas")
    assert status_differs(desired, live)
    assert not step_boundary(desired, live)


def test_state_ready_count_phase_and_waiting_text_are_boundaries() -> None:
    live = _status("Progressing", "0 of 1 updated replicas available")
    assert step_boundary(_status("Ready", "1/1 ready", ready="1/2"), live)
    moved = copy.deepcopy(live)
    moved["message"] = "mysql->[uuc]"
    assert step_boundary(moved, live)
    waiting = copy.deepcopy(live)
    waiting["components"][1]["message"] = "check refused"
    assert step_boundary(waiting, live), "a Waiting component's message is news (its Event follows it)"
    reason = copy.deepcopy(live)
    reason["conditions"][0]["reason"] = "Conflict"
    assert step_boundary(reason, live)
    assert step_boundary(live, None), "the first status"
