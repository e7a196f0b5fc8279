"""Guards for every test: nothing a test starts outlives it, and no test hangs forever.

* An exception in a thread the test left running fails the run (``PytestUnhandledThreadExceptionWarning``
  is an error), instead of a warning at the end of the session that names no test.
* A thread or a child process started while a test ran (its setup, call or teardown) and still alive
  after its teardown fails that test. What a session- or module-scoped fixture starts (the local control
  plane) lives as long as its fixture and is left out, also when a test restarts it (the same command
  line); a thread gets a few seconds to finish; a child that exited but was never waited for (a zombie)
  counts as left behind.
* Each test has a timeout (pytest-timeout): integration tests ``INTEGRATION_TIMEOUT`` s, others
  ``UNIT_TIMEOUT`` s, unless the test sets its own ``timeout`` marker or ``--timeout`` is given.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

INTEGRATION_TIMEOUT = 1800
UNIT_TIMEOUT = 1200
"""Hang guards, not speed limits: on a 2-core machine shared with other work a property test alone took over
5 minutes (test_address_fuzz); a guard must never fail a test that is only slow."""
THREAD_GRACE = 10.0
"""Seconds a thread or process the test asked to stop gets to end, after its teardown."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
    # as a plugin, not as this conftest's hooks: pytest asks a conftest only about nodes under its directory,
    # and a session-scoped fixture is set up for the session node
    config.pluginmanager.register(LeakGuard(), "d3os-leak-guard")


@pytest.hookimpl(trylast=True)  # after the testenv plugin has marked the integration tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("timeout", None) is not None:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            limit = INTEGRATION_TIMEOUT if item.get_closest_marker("integration") else UNIT_TIMEOUT
            item.add_marker(pytest.mark.timeout(limit))


# -- what is running ---------------------------------------------------------------------------------------


def _children() -> dict[int, tuple[str, str]]:
    """This process's children: pid -> (state, command line)."""
    me = os.getpid()
    out: dict[int, tuple[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[1]) != me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        out[int(entry.name)] = (fields[0], cmd or stat[stat.index("(") : stat.rindex(")") + 1])
    return out


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


class LeakGuard:
    """See the module docstring."""

    def __init__(self) -> None:
        self.long_lived_threads: set[threading.Thread] = set()
        self.long_lived_pids: set[int] = set()
        self.long_lived_commands: set[str] = set()
        """Command lines of those processes: a test that restarts one (an API server outage) starts it again."""
        self.before: dict[str, tuple[set[threading.Thread], set[int]]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        if fixturedef.scope == "function":
            return (yield)
        threads, pids = _threads(), set(_children())
        try:
            return (yield)
        finally:
            self.long_lived_threads.update(_threads() - threads)
            for pid, (_, cmd) in _children().items():
                if pid not in pids:
                    self.long_lived_pids.add(pid)
                    self.long_lived_commands.add(cmd)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        self.before[item.nodeid] = (_threads(), set(_children()))
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
        result = yield
        threads0, pids0 = self.before.pop(item.nodeid, (set(), set()))
        deadline = time.monotonic() + THREAD_GRACE
        while True:
            threads = {t for t in _threads() - threads0 - self.long_lived_threads if t.is_alive()}
            children = {
                pid: (state, cmd)
                for pid, (state, cmd) in _children().items()
                if pid not in pids0 and pid not in self.long_lived_pids and cmd not in self.long_lived_commands
            }
            if (not threads and not children) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if threads or children:
            lines = [f"thread {t.name!r} (daemon={t.daemon})" for t in sorted(threads, key=lambda t: t.name)]
            lines += [
                f"child process {pid} ({'exited, never waited for' if state == 'Z' else 'running'}): {cmd[:200]}"
                for pid, (state, cmd) in sorted(children.items())
            ]
            head = f"left running after the test ({THREAD_GRACE:.0f}s after teardown):"
            raise AssertionError("\n  ".join([head, *lines]))
        return result
