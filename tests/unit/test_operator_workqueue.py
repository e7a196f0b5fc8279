"""The operator's work queue: dedup, one worker per key, delayed and rate-limited adds.

Delays are judged on a fake clock (:mod:`tests.unit.fakeclock`), never on elapsed wall time.
"""

from __future__ import annotations

import anyio
import pytest

from d3os_operator.workqueue import WorkQueue

from .fakeclock import FakeClock, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fake_queue(clock: FakeClock, **kw: float) -> WorkQueue[str]:
    return WorkQueue(clock=clock, wait=clock.wait, **kw)


async def test_add_deduplicates_waiting_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


async def test_key_added_while_processing_is_requeued_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    assert key == "a"
    q.add("a")  # an event arrives while a worker holds "a"
    assert len(q) == 0, "must not be handed to a second worker while processing"
    q.add("a")
    q.done("a")
    assert len(q) == 1, "requeued exactly once"
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_one_key_never_processed_concurrently_with_many_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    active: dict[str, int] = {}
    max_active: dict[str, int] = {}
    processed: list[str] = []

    async def worker() -> None:
        while True:
            key = await q.get()
            if key is None:
                return
            active[key] = active.get(key, 0) + 1
            max_active[key] = max(max_active.get(key, 0), active[key])
            await anyio.sleep(0.01)
            processed.append(key)
            active[key] -= 1
            q.done(key)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(worker)
        for _ in range(5):
            for k in ("a", "b", "c"):
                q.add(k)
            await anyio.sleep(0.003)
        while len(q) or q.processing:
            await anyio.sleep(0.01)
        q.shutdown()
    assert max_active == {"a": 1, "b": 1, "c": 1}
    assert set(processed) == {"a", "b", "c"}
    assert len(processed) < 15, "adds while waiting are coalesced"


async def test_parallel_keys_run_in_parallel() -> None:
    q: WorkQueue[int] = WorkQueue()
    holding: set[int] = set()
    release = anyio.Event()

    async def worker() -> None:
        while (key := await q.get()) is not None:
            holding.add(key)
            await release.wait()
            holding.discard(key)
            q.done(key)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(worker)
        for k in range(3):
            q.add(k)
        # three different keys are held by three workers at once (none waits for another to finish)
        await until("three keys processed at once", lambda: holding == {0, 1, 2})
        assert q.processing == {0, 1, 2}
        release.set()
        await until("every key done", lambda: not q.processing)
        q.shutdown()


async def test_add_after_fires_once_and_earliest_wins() -> None:
    clock = FakeClock()
    q = fake_queue(clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.run)
        q.add_after("a", 0.375)  # (binary fractions: the fake clock's sums stay exact)
        q.add_after("a", 0.0625)  # earlier wins
        q.add_after("a", 0.25)  # later is ignored while an earlier one is pending
        assert q.waiting == {"a": 1000.0625}
        await clock.advance(0.03125)
        assert len(q) == 0, "not due yet"
        await clock.advance(0.03125)
        assert len(q) == 1
        assert await q.get() == "a"
        q.done("a")
        await clock.advance(0.5)
        assert len(q) == 0 and q.waiting == {}, "superseded delays must not fire again"
        q.shutdown()


async def test_add_after_zero_is_immediate_and_delayed_keys_dedup_with_queued() -> None:
    clock = FakeClock()
    q = fake_queue(clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.run)
        q.add_after("a", 0)
        assert len(q) == 1
        q.add_after("a", 0.125)
        await clock.advance(0.125)
        assert q.waiting == {}, "the delayed add fell due"
        assert len(q) == 1, "a due key that is already queued is not queued twice"
        q.shutdown()


async def test_rate_limited_backoff_grows_exponentially_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.1, max_delay=1.0, clock=FakeClock())
    delays = [q.add_rate_limited("a") for _ in range(6)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert q.failures("a") == 6
    q.forget("a")
    assert q.failures("a") == 0
    assert q.add_rate_limited("a") == 0.1


async def test_delayed_key_fires_after_its_delay() -> None:
    clock = FakeClock()
    q = fake_queue(clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.run)
        q.add_after("slow", 0.25)  # (binary fractions: the fake clock's sums stay exact)
        q.add_after("fast", 0.125)
        await clock.advance(0.125)
        assert await q.get() == "fast"
        await clock.advance(0.0625)
        assert len(q) == 0, "slow is not due before its 0.25 s"
        await clock.advance(0.0625)
        assert await q.get() == "slow"
        q.shutdown()


async def test_a_sooner_add_after_wakes_the_timer() -> None:
    """A new, earlier due time must not wait for the later one the timer was sleeping towards."""
    clock = FakeClock()
    q = fake_queue(clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.run)
        q.add_after("late", 60)
        await anyio.wait_all_tasks_blocked()  # the timer now waits for +60 s
        q.add_after("soon", 1)
        await clock.advance(1)
        assert await q.get() == "soon"
        assert q.waiting == {"late": 1060.0}
        q.shutdown()


async def test_shutdown_releases_waiting_workers_and_ignores_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    results: list[str | None] = []

    async def worker() -> None:
        results.append(await q.get())

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()  # both wait in get()
        q.shutdown()
    assert results == [None, None]
    q.add("x")
    assert len(q) == 0


async def test_added_at_records_latest_add() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add("a")
    assert q.added_at("a") == 1000.0
    clock.now = 1001.0
    q.add("a")
    assert q.added_at("a") == 1001.0


@pytest.mark.anyio
async def test_namespaces_take_turns_so_a_flood_does_not_queue_ahead_of_another_namespace() -> None:
    """Issue 24 A2: one namespace queues 300 DataServices, then another queues one: it is handed out second."""
    q: WorkQueue[tuple[str, str, str]] = WorkQueue()
    for i in range(300):
        q.add(("storm", f"ds{i}", "DataService"))
    q.add(("quiet", "sample", "DataService"))
    q.add(("quiet", "other", "DataService"))
    order = [await q.get() for _ in range(6)]
    assert order[:2] == [("storm", "ds0", "DataService"), ("quiet", "sample", "DataService")]
    assert order[3] == ("quiet", "other", "DataService")
    assert [k for k in order if k is not None and k[0] == "storm"] == [("storm", f"ds{i}", "DataService")
                                                                        for i in range(4)], "FIFO within one"
