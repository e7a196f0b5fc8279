"""The worker gives each answer of a reconcile its own behaviour (d3os_operator.outcome): a transient error
takes the queue's exponential backoff, a refusal a steady retry, a crash is contained in the status."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from d3os_operator.controller import Operator, Settings
from d3os_operator.outcome import REFUSED_RETRY, RefusedError, Result, TransientError

KEY = ("ns", "ds", "DataService")


def _operator(answers: list[BaseException | Result]) -> tuple[Operator, list[Any]]:
    op = Operator(SimpleNamespace(on_response=None, field_manager="m"),  # type: ignore[arg-type]
                  Settings(backoff_base=0.005, backoff_max=1000.0))
    reported: list[Any] = []

    async def reconcile(key: Any, woke_at: float | None = None) -> Result:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def report(key: Any, error: BaseException) -> None:
        reported.append((key, str(error)))

    op.reconciler.reconcile = reconcile  # type: ignore[method-assign]
    op.reconciler.flush_status = lambda key: anyio.sleep(0)  # type: ignore[assignment,method-assign]
    import d3os_operator.controller as controller
    controller.report_reconcile_error = lambda rec, key, error: report(key, error)  # type: ignore[assignment]
    return op, reported


async def _one_pass(op: Operator) -> None:
    """One worker takes KEY and answers it; then it is stopped (the queue's timer is not running, so a delayed
    requeue stays in ``waiting``)."""
    op.queue.add(KEY)
    async with anyio.create_task_group() as tg:
        tg.start_soon(op._worker, 0)
        with anyio.fail_after(5):
            while len(op.queue) or KEY in op.queue.processing:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()


def _due_in(op: Operator) -> float:
    return op.queue.waiting[KEY] - time.monotonic()


@pytest.fixture(autouse=True)
def _restore_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import d3os_operator.controller as controller
    monkeypatch.setattr(controller, "report_reconcile_error", controller.report_reconcile_error)


@pytest.mark.anyio
async def test_a_transient_error_backs_off_exponentially() -> None:
    op, reported = _operator([TransientError("503"), TransientError("503"), TransientError("503")])
    delays = [op.queue.add_rate_limited(("x", "y", "z")) for _ in range(3)]  # the queue's own backoff
    assert delays == [0.005, 0.01, 0.02]
    await _one_pass(op)
    assert op.queue.failures(KEY) == 1 and reported == []
    assert _due_in(op) <= 0.005


@pytest.mark.anyio
async def test_a_refusal_is_retried_steadily_not_with_the_fast_backoff() -> None:
    op, reported = _operator([RefusedError("422 Invalid: spec.ports[0].nodePort: Invalid value")])
    await _one_pass(op)
    assert op.queue.failures(KEY) == 0, "a refusal does not grow the backoff"
    assert REFUSED_RETRY - 1.0 <= _due_in(op) <= REFUSED_RETRY
    assert reported == [] and op.errors == 1


@pytest.mark.anyio
async def test_anything_else_is_contained_in_the_status_and_retried_with_backoff() -> None:
    op, reported = _operator([KeyError("boom")])
    await _one_pass(op)
    assert reported == [(KEY, "'boom'")]
    assert op.queue.failures(KEY) == 1


@pytest.mark.anyio
async def test_a_result_requeues_as_it_says() -> None:
    op, reported = _operator([Result(requeue_after=7.0)])
    await _one_pass(op)
    assert op.queue.failures(KEY) == 0 and reported == [] and op.errors == 0
    assert 6.0 <= _due_in(op) <= 7.0
