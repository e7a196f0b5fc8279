"""A clock the test moves by hand, for the shell's timed parts (work queue, probe manager).

Unit tests assert on what the code asked for (the delays it slept, the order keys fell due) against this
clock, never on elapsed wall time. Real time appears only as a hang guard (:func:`until`): it fails a
test that would otherwise wait forever, whatever the machine's load.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

HANG_GUARD = 30.0
"""Seconds of real time before a wait for something that should happen at once is called a hang."""


class FakeClock:
    """``clock()`` reads the time; ``sleep``/``wait`` block until :meth:`advance` moves past their deadline."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        """Every delay passed to :meth:`sleep`, in order."""
        self._tick = anyio.Event()

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        """Move time on and let every task that can run do so."""
        self.now += seconds
        tick, self._tick = self._tick, anyio.Event()
        tick.set()
        await anyio.wait_all_tasks_blocked()

    async def _until(self, deadline: float) -> None:
        while self.now < deadline:
            await self._tick.wait()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self._until(self.now + seconds)

    async def wait(self, event: anyio.Event, timeout: float | None) -> None:
        """As :func:`d3os_operator.workqueue.wait_event`, on this clock."""
        if timeout is None:
            await event.wait()
            return
        deadline = self.now + timeout
        async with anyio.create_task_group() as tg:

            async def on_event() -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            async def on_clock() -> None:
                await self._until(deadline)
                tg.cancel_scope.cancel()

            tg.start_soon(on_event)
            tg.start_soon(on_clock)


async def until(what: str, cond: Callable[[], object]) -> None:
    """Wait (yielding to other tasks, real time) until ``cond()`` holds; fail after :data:`HANG_GUARD` s."""
    try:
        with anyio.fail_after(HANG_GUARD):
            while not cond():
                await anyio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {HANG_GUARD}s of real time") from None
