"""When each object first met a condition, from watches on the API server: the bench's one watcher.

The benchmarks time "all Ready" the same way for every contender -- the operator's instances turning Ready,
the workloads that the cluster alone or Helm rolled out (by the core's readiness rules) -- so one watcher
records, per object key, the first moment (this process's monotonic clock) its predicate held. One thread
per watched resource, all namespaces, no label selector (Helm labels what it installs its own way); a 410
Gone lists again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightkube import ALL_NS, ApiError, Client, KubeConfig

Key = Callable[[str, Mapping[str, Any]], Hashable | None]
"""(kind, object) -> the key to record it under, or None to ignore it."""
Pred = Callable[[str, Mapping[str, Any]], bool]


class FirstSeen:
    """See the module docstring. ``resources``: (kind, lightkube resource) pairs."""

    def __init__(self, kubeconfig: Path | str, resources: Sequence[tuple[str, Any]], key: Key, pred: Pred) -> None:
        self.kubeconfig = str(kubeconfig)
        self.key = key
        self.pred = pred
        self.ready_at: dict[Hashable, float] = {}
        self.seen: set[Hashable] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._clients: list[Client] = []
        self._threads = [threading.Thread(target=self._run, args=(kind, res), daemon=True, name=f"first-seen-{kind}")
                         for kind, res in resources]

    def __enter__(self) -> FirstSeen:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=1)
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()

    def _run(self, kind: str, res: Any) -> None:
        client = Client(config=KubeConfig.from_file(self.kubeconfig), trust_env=False)
        self._clients.append(client)
        rv: str | None = None
        while not self._stop.is_set():
            try:
                for _typ, obj in client.watch(res, namespace=ALL_NS, resource_version=rv, server_timeout=60):
                    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
                    rv = data["metadata"]["resourceVersion"]
                    key = self.key(kind, data)
                    if key is not None:
                        with self._cond:
                            self.seen.add(key)
                            if key not in self.ready_at and self.pred(kind, data):
                                self.ready_at[key] = time.monotonic()
                                self._cond.notify_all()
                    if self._stop.is_set():
                        return
            except ApiError as e:
                if e.status.code == 410:
                    rv = None
                time.sleep(0.2)
            except Exception:
                time.sleep(0.2)

    def wait(self, n: int, timeout: float, alive: Callable[[], None] | None = None) -> bool:
        """Until ``n`` keys have met the predicate (False after ``timeout`` seconds); ``alive`` is called
        about every second (it raises when what is measured died)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.ready_at) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))
                if alive is not None:
                    alive()
        return True
