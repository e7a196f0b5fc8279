"""The seed's operator loop, reproduced so that "faster than the seed" is measured, not quoted.

What the seed (Go, kubebuilder; its log is in ``shared/seed``) did, and this baseline does too:

* **one worker**: DataServices are reconciled one at a time, from a de-duplicated queue fed by a watch
  on DataServices (its own status writes re-trigger it, so a finished DataService is walked once more);
* **sleeps inside the reconcile**: per component, in the product's order: GET every object; create the
  missing ones, *update* (PUT) the existing ones -- every pass writes everything; then sleep a fixed
  5 s; then check readiness, and while the component is not ready, sleep 10 s and look again (the seed's
  rule 流); then write ``status.phase``/``status.message`` (``<key>已部署``, the chain with ``[key]``)
  when the pass created something, as the seed's log shows;
* the third party (uuc) is checked the way its ``checkCMD`` says (parsed by the core, never a shell).

Only the loop is the seed's: the objects come from :mod:`d3os_core.render` so both operators create the
same things on the same control plane. "Done" for the seed is its last status, ``web已部署``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightkube import ALL_NS, ApiError, Client, KubeConfig
from lightkube.types import PatchType

from d3os_core import parse_spec
from d3os_core.readiness import rollout
from d3os_core.render import Parent, render_component, resolve
from d3os_core.types import HttpCheck
from d3os_operator.kube import DATASERVICE, kind_info
from d3os_operator.products import installed_product

PRODUCT = installed_product("dataservice")
"""The dataservice product as shipped (products/dataservice/product.yaml)."""
USER_AGENT = "d3os-seed-baseline/1 (bench)"
SEED_DONE = "web已部署"
log = logging.getLogger("bench.seed")


def is_seed_done(obj: Mapping[str, Any] | None) -> bool:
    """The seed's notion of finished: its last status line."""
    return ((obj or {}).get("status") or {}).get("phase") == SEED_DONE


class SeedBaseline:
    """``with SeedBaseline(kubeconfig) as seed: ...`` runs the seed's loop in two threads (watch, worker)."""

    def __init__(
        self,
        kubeconfig: str | Path,
        *,
        step_wait: float = 5.0,
        not_ready_wait: float = 10.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.client = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="d3os-seed-baseline",
                             trust_env=False)
        self.client._client._client.headers["User-Agent"] = USER_AGENT
        self.step_wait = step_wait
        self.not_ready_wait = not_ready_wait
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._queue: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        self.passes = 0
        self.writes = 0
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._watch, name="seed-watch", daemon=True),
                         threading.Thread(target=self._work, name="seed-worker", daemon=True)]

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> SeedBaseline:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)
        with contextlib.suppress(Exception):
            self.client.close()

    def __enter__(self) -> SeedBaseline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the queue: one worker, de-duplicated keys -----------------------------------------------------------

    def _enqueue(self, key: tuple[str, str]) -> None:
        with self._cond:
            if key not in self._queue:
                self._queue.append(key)
                self._cond.notify()

    def _watch(self) -> None:
        """controller-runtime's For(DataService): every change of a DataService (status included) enqueues it."""
        rv: str | None = None
        while not self._stop.is_set():
            try:
                for _typ, obj in self.client.watch(DATASERVICE.res, namespace=ALL_NS, resource_version=rv,
                                                   server_timeout=30):
                    data = dict(obj)
                    rv = data["metadata"]["resourceVersion"]
                    if self._stop.is_set():
                        return
                    if _typ != "DELETED":
                        self._enqueue((data["metadata"]["namespace"], data["metadata"]["name"]))
            except Exception as e:  # a 410 or a dropped connection: list again from scratch
                log.debug("seed watch restarts: %s", e)
                rv = None
                self._stop.wait(0.5)

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                key = self._queue.pop(0)
            try:
                self.reconcile(*key)
            except Exception as e:  # the seed logged and let controller-runtime retry
                self.errors.append(f"{key[0]}/{key[1]}: {e}")
                self._sleep(1.0)
                self._enqueue(key)

    # -- one pass of the seed's reconcile ------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        """Walk every component in order: write its objects, sleep, wait until ready, write the status."""
        self.passes += 1
        try:
            ds = dict(self.client.get(DATASERVICE.res, name, namespace=namespace))
        except ApiError as e:
            if e.status.code == 404:
                return
            raise
        meta = ds["metadata"]
        parent = Parent(meta["name"], namespace, meta["uid"])
        spec = parse_spec(ds["spec"], PRODUCT)
        states = resolve(parent, spec, PRODUCT)
        keys = PRODUCT.keys
        for k in keys:
            if self._stop.is_set():
                return
            rendered = render_component(parent, spec, PRODUCT, states, k, {}, f"seed-{meta['uid']}")
            created = [self._create_or_update(o) for o in rendered.objects]
            self._sleep(self.step_wait)
            while not self._stop.is_set() and not self._component_ready(namespace, rendered.objects, states[k]):
                self._sleep(self.not_ready_wait)
            if any(created):
                message = "->".join(f"[{x}]" if x == k else x for x in keys)
                self._write_status(namespace, name, f"{k}已部署", message)

    def _create_or_update(self, manifest: Mapping[str, Any]) -> bool:
        """The seed's Get, then Create if absent else Update; True when it created."""
        info = kind_info(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        try:
            live = self.client.get(info.res, meta["name"], namespace=meta["namespace"])
        except ApiError as e:
            if e.status.code != 404:
                raise
            self.writes += 1
            try:
                self.client.create(info.res(dict(manifest)), namespace=meta["namespace"])
            except ApiError as e2:
                if e2.status.code != 409:
                    raise
            return True
        body = dict(manifest)
        body["metadata"] = {**meta, "resourceVersion": dict(live)["metadata"]["resourceVersion"]}
        self.writes += 1
        with contextlib.suppress(ApiError):  # a conflict: the seed retried on its next pass
            self.client.replace(info.res(body), namespace=meta["namespace"])
        return False

    def _component_ready(self, namespace: str, objects: Any, state: Any) -> bool:
        if state.check is not None:
            return _probe(state.check)
        workload = next((o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")), None)
        if workload is None:
            return True
        info = kind_info(workload["apiVersion"], workload["kind"])
        live = dict(self.client.get(info.res, workload["metadata"]["name"], namespace=namespace))
        return rollout(live, workload["kind"]).ready

    def _write_status(self, namespace: str, name: str, phase: str, message: str) -> None:
        self.writes += 1
        self.client.patch(DATASERVICE.res.Status, name, {"status": {"phase": phase, "message": message}},
                          namespace=namespace, patch_type=PatchType.MERGE)


def _probe(check: Any) -> bool:
    """The seed's ``curl --head --fail`` (HTTP checks only; TCP checks connect)."""
    if isinstance(check, HttpCheck):
        req = urllib.request.Request(check.url, method=check.method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # like the operator: no env proxy
        try:
            with opener.open(req, timeout=check.timeout_seconds) as resp:
                return int(resp.status) < 400
        except OSError:
            return False
    import socket

    try:
        with socket.create_connection((check.host, check.port), timeout=check.timeout_seconds):
            return True
    except OSError:
        return False
