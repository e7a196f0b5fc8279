"""Process supervision for one run directory: a pidfile and a log file per program, each program in its own
session, stopped by exactly the pid it was started with (or adopted from its pidfile, for a handle on a run
that another process started).

Nothing here knows what the programs are: :mod:`d3os_testenv.components` gives their command lines and
:mod:`d3os_testenv.cluster` decides when to start and stop them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ClusterError


def free_port(exclude: set[int]) -> int:
    """A loopback port nobody listens on now, not in ``exclude`` (ports other runs recorded)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in exclude:
            return port
    raise ClusterError("could not find a free loopback port")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def tail(path: Path, lines: int = 30) -> str:
    try:
        data = path.read_bytes()[-64_000:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


@contextlib.contextmanager
def flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to kill the child when the parent thread exits (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        # SIGKILL, not SIGTERM: an ephemeral cluster's data is discarded anyway, and a kube-apiserver
        # whose etcd is terminated at the same moment takes ~20 s for a graceful shutdown.
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


def kill_pid(pid: int, popen: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """``sig`` to the process and its group, SIGKILL after ``grace`` seconds; returns once it is gone."""

    # Each program runs in its own session/process group; signal the group (go binaries do not fork, but be
    # thorough).
    def send(s: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, s)

    send(sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if popen is not None:
            if popen.poll() is not None:
                return
        elif not pid_alive(pid):
            return
        time.sleep(0.05)
    send(signal.SIGKILL)
    if popen is not None:
        with contextlib.suppress(Exception):
            popen.wait(5)
    else:
        end = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.05)


@dataclass
class Proc:
    pid: int
    popen: subprocess.Popen[bytes] | None  # None when adopted from a pidfile of another process


class Supervisor:
    """The programs of one run directory (``pids/<name>.pid``, ``logs/<name>.log``).

    A process counts as the run's only when its executable is one of ``programs`` and an argument points
    into the run directory, so a recycled pid is never signalled.
    """

    def __init__(self, run_dir: Path, programs: Sequence[str]) -> None:
        self.run_dir = run_dir
        self.programs = tuple(programs)
        self.procs: dict[str, Proc] = {}

    def pidfile(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def read_pid(self, name: str) -> int | None:
        try:
            return int(self.pidfile(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def _points_here(self, args: list[str]) -> bool:
        marker = str(self.run_dir) + "/"
        return bool(args) and os.path.basename(args[0]) in self.programs and any(marker in a for a in args[1:])

    def is_ours(self, pid: int) -> bool:
        """True when ``pid`` is alive and is a process of this run (its arguments name the run dir)."""
        return pid_alive(pid) and self._points_here(cmdline(pid))

    def pids_anywhere(self) -> list[int]:
        """Processes whose command line points into this run directory (pidfiles may be lost)."""
        me = os.getpid()
        return [
            int(d)
            for d in os.listdir("/proc")
            if d.isdigit() and int(d) != me and self._points_here(cmdline(int(d))) and pid_alive(int(d))
        ]

    def adopt(self) -> None:
        """Take the pidfiles of a run started elsewhere as this handle's processes."""
        for name in self.programs:
            pid = self.read_pid(name)
            if pid is not None and name not in self.procs:
                self.procs[name] = Proc(pid, None)

    def status(self) -> dict[str, str]:
        """Program -> 'running (pid N)' / 'stopped' / 'dead (pid N)'."""
        out = {}
        for name in self.programs:
            pid = self.read_pid(name)
            if pid is None:
                out[name] = "stopped"
            elif self.is_ours(pid):
                out[name] = f"running (pid {pid})"
            else:
                out[name] = f"dead (pid {pid})"
        return out

    def spawn(self, name: str, cmd: Sequence[str], env: Mapping[str, str], die_with_parent: bool) -> int:
        """Start ``cmd`` in its own session, output appended to its log; record its pid."""
        log = self.log_file(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as lf:
            lf.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
            lf.flush()
            popen = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=lf,
                stderr=subprocess.STDOUT,
                cwd=self.run_dir,
                env=dict(env),
                start_new_session=True,
                close_fds=True,
                # An ephemeral cluster (pytest session) dies with its owner even on SIGKILL. Only from
                # the main thread: PDEATHSIG fires when the *thread* that forked exits.
                preexec_fn=_die_with_parent if die_with_parent and _on_main_thread() else None,
            )
        self.pidfile(name).write_text(f"{popen.pid}\n")
        self.procs[name] = Proc(popen.pid, popen)
        return popen.pid

    def alive(self, name: str) -> bool:
        pr = self.procs.get(name)
        if pr is None:
            return False
        if pr.popen is not None:
            return pr.popen.poll() is None
        return self.is_ours(pr.pid)

    def crash_report(self, name: str) -> str:
        pr = self.procs.get(name)
        code = pr.popen.returncode if pr and pr.popen else "unknown: not our child"
        log = self.log_file(name)
        return f"{name} exited (exit code {code}); last lines of {log}:\n{tail(log)}"

    def refresh(self) -> None:
        """Follow the pidfiles of adopted processes: another process may have stopped or restarted them."""
        for name, pr in list(self.procs.items()):
            if pr.popen is None:
                pid = self.read_pid(name)
                if pid is None:
                    del self.procs[name]
                elif pid != pr.pid:
                    self.procs[name] = Proc(pid, None)

    def check_alive(self, names: Sequence[str] | None = None) -> None:
        """Raise ClusterError with the tail of its log if one of ``names`` (default: all) has exited."""
        for name in names or list(self.procs):
            if name in self.procs and not self.alive(name):
                raise ClusterError(self.crash_report(name))

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        pr = self.procs.pop(name, None)
        pid = pr.pid if pr else self.read_pid(name)
        if pid is not None:
            if pr is not None and pr.popen is not None:
                kill_pid(pid, pr.popen, sig)
            elif self.is_ours(pid):
                kill_pid(pid, None, sig)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile(name).unlink()

    def stop_all(self, say: Callable[[str], None]) -> None:
        """Stop in reverse start order, then anything left that points into the run dir (a lost pidfile)."""
        for name in reversed(self.programs):
            self.stop(name)
        for pid in self.pids_anywhere():
            say(f"stopping stray process {pid}: {' '.join(cmdline(pid))[:120]}")
            kill_pid(pid, None)
        self.procs.clear()
