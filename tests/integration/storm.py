"""Helpers of the hostile-tenant tests (issue 24, A1 and A2): a farm of slow redirecting HTTP and HTTPS
third parties, and the operator run as a subprocess held to a CPU limit by a real mechanism.

The CPU limit is a cgroup's CFS quota, as a container runtime sets it for ``resources.limits.cpu: 500m``:
cgroup v2 ``cpu.max "50000 100000"`` where ``/sys/fs/cgroup`` is a writable v2 hierarchy, else cgroup v1
``cpu.cfs_quota_us 50000`` / ``cpu.cfs_period_us 100000`` where ``/sys/fs/cgroup/cpu`` is writable, else
(no writable cgroup: an unprivileged CI runner) a duty cycle of SIGSTOP/SIGCONT that stops the process for
the rest of each 100 ms period once it used its 50 ms of CPU (what the CFS quota does, in user space). Which
one held the operator is printed with the figures, and the CPU it used is measured either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

QUOTA_US, PERIOD_US = 50_000, 100_000
"""500m: 50 ms of CPU per 100 ms."""


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storm.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "storm.crt", directory / "storm.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class RedirectFarm:
    """Third parties that fail slowly behind redirects: ``/r/N/ID`` answers, after ``delay`` seconds, a 302
    to ``/r/N-1/ID``; ``/r/0/ID`` a 503. On HTTP (``http_port``) and HTTPS (``https_port``, self-signed),
    127.0.0.1 only; ``requests`` counts every request answered."""

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.requests = 0
        self.http_port = 0
        self.https_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="d3os-storm-")

    def url(self, i: int, hops: int = 5) -> str:
        if i % 2:
            return f"https://127.0.0.1:{self.https_port}/r/{hops}/s{i}"
        return f"http://127.0.0.1:{self.http_port}/r/{hops}/s{i}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = head.split(b" ", 2)[1].decode()
            await asyncio.sleep(self.delay)
            parts = path.split("/")
            hops = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else 0
            self.requests += 1
            if hops > 0:
                location = f"/r/{hops - 1}/{parts[3]}"
                writer.write(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n".encode())
            else:
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except Exception:  # a client that went away: nothing to answer
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def __enter__(self) -> RedirectFarm:
        cert, key = _self_signed(Path(self._tmp.name))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        started = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            plain = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024))
            tls = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ctx, backlog=1024))
            self.http_port = plain.sockets[0].getsockname()[1]
            self.https_port = tls.sockets[0].getsockname()[1]
            started.set()
            loop.run_forever()
            plain.close()
            tls.close()
            loop.close()

        self._thread = threading.Thread(target=main, name="redirect-farm", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._tmp.cleanup()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _cgroup_dir() -> tuple[str, Path] | None:
    """A new cgroup with the CPU quota set, and how: ("cgroup v2"|"cgroup v1", dir); None if none is writable."""
    name = f"d3os-test-{os.getpid()}-{time.monotonic_ns()}"
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists():
        with contextlib.suppress(OSError):
            if "cpu" not in (v2 / "cgroup.subtree_control").read_text().split():
                (v2 / "cgroup.subtree_control").write_text("+cpu")
            d = v2 / name
            d.mkdir()
            (d / "cpu.max").write_text(f"{QUOTA_US} {PERIOD_US}")
            return "cgroup v2 cpu.max", d
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        with contextlib.suppress(OSError):
            d = v1 / name
            d.mkdir()
            (d / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (d / "cpu.cfs_quota_us").write_text(str(QUOTA_US))
            return "cgroup v1 cpu.cfs_quota_us", d
    return None


class CpuLimited:
    """``subprocess.Popen(cmd)`` held to 500m of CPU (see the module docstring); ``how`` says by what."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.log = log
        self._cgroup = _cgroup_dir()
        self._stop = threading.Event()
        self._cycler: threading.Thread | None = None
        cgroup = self._cgroup

        def enter() -> None:  # in the child, before exec: join the cgroup
            if cgroup is not None:
                (cgroup[1] / "cgroup.procs").write_text(str(os.getpid()))

        with open(log, "ab") as f:
            self.p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, preexec_fn=enter)
        if cgroup is not None:
            self.how = cgroup[0] + f" {QUOTA_US}/{PERIOD_US}"
        else:
            self.how = f"SIGSTOP/SIGCONT duty cycle {QUOTA_US}/{PERIOD_US} us (no writable cgroup)"
            self._cycler = threading.Thread(target=self._duty_cycle, daemon=True)
            self._cycler.start()

    def _duty_cycle(self) -> None:
        period, quota = PERIOD_US / 1e6, QUOTA_US / 1e6
        while not self._stop.is_set() and self.p.poll() is None:
            start, used0 = time.monotonic(), cpu_seconds(self.p.pid)
            while time.monotonic() - start < period:
                if cpu_seconds(self.p.pid) - used0 >= quota:
                    os.kill(self.p.pid, signal.SIGSTOP)
                    time.sleep(max(0.0, period - (time.monotonic() - start)))
                    os.kill(self.p.pid, signal.SIGCONT)
                    break
                time.sleep(0.005)

    def throttled(self) -> str:
        """The cgroup's throttling figures (cpu.stat), or "" without a cgroup."""
        if self._cgroup is None:
            return ""
        with contextlib.suppress(OSError):
            return " ".join((self._cgroup[1] / "cpu.stat").read_text().split())
        return ""

    def stop(self) -> None:
        self._stop.set()
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.p.pid, signal.SIGCONT)
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self._cgroup is not None:
            for _ in range(50):
                try:
                    self._cgroup[1].rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


@contextlib.contextmanager
def cpu_limited(cmd: list[str], log: Path) -> Iterator[CpuLimited]:
    proc = CpuLimited(cmd, log)
    try:
        yield proc
    finally:
        proc.stop()
