"""Leader election on a ``coordination.k8s.io/v1`` Lease, so several replicas can run and one acts.

The algorithm of client-go's ``leaderelection`` (as controller-runtime uses it): a candidate takes the
Lease when it is free or its holder has not renewed it for ``lease_duration``; the leader renews it every
``retry_period`` and gives up leadership when it could not renew within ``renew_deadline``; on a clean
stop it releases the Lease (``leaseDurationSeconds: 1``, no holder) so a successor starts at once.
Writes are optimistic (resourceVersion preconditions), so two candidates never both win.

Note: a leader renews its Lease every ``retry_period`` -- those are writes, to the Lease only. The
"zero writes in steady state" figure is measured with leader election off (the default).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.coordination_v1 import Lease
from lightkube.types import PatchType

from .apierrors import Answer, classify

log = logging.getLogger("d3os_operator.leader")

DEFAULT_ID = "d3os-operator.d3os-product.com.d3os"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_namespace() -> str:
    """The pod's namespace in cluster, else ``default``."""
    from .kube import service_account_dir

    path = os.path.join(service_account_dir(), "namespace")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return os.environ.get("POD_NAMESPACE", "default")


def new_identity() -> str:
    """``<hostname>_<8 hex>``: unique per process, also put in the User-Agent so the apiserver's audit log
    tells the replicas apart."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class LostLeadership(Exception):
    """The Lease could not be renewed in time: stop acting at once."""


class LeaderElector:
    """``async with elector.leading():`` waits to become leader, and cancels the body on loss."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        name: str = DEFAULT_ID,
        namespace: str | None = None,
        identity: str | None = None,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        """``on_change(lease name, is_leader)`` is called at start (False) and on every change."""
        self.client = client
        self.on_change = on_change
        self.name = name
        self.namespace = namespace or default_namespace()
        self.identity = identity or new_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False
        self.transitions = 0
        self._set_leader(False)

    def _set_leader(self, value: bool) -> None:
        self.is_leader = value
        if self.on_change is not None:
            self.on_change(self.name, value)

    async def _get(self) -> Any | None:
        try:
            return await self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as e:
            if classify(e) is Answer.GONE:
                return None
            raise

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the Lease afterwards."""
        now = _now()
        lease = await self._get()
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": _micro(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            try:
                await self.client.create(cast(Lease, Lease.from_dict(body)))
            except ApiError as e:
                if classify(e) is Answer.CONFLICT:
                    return False
                raise
            return True
        cur = lease.spec
        holder = cur.holderIdentity if cur else None
        renewed = (cur.renewTime or cur.acquireTime) if cur else None
        duration = (cur.leaseDurationSeconds or int(self.lease_duration)) if cur else int(self.lease_duration)
        if holder and holder != self.identity and renewed is not None and (now - renewed).total_seconds() < duration:
            return False  # held by a live leader
        if holder != self.identity:
            spec["acquireTime"] = _micro(now)
            spec["leaseTransitions"] = ((cur.leaseTransitions or 0) if cur else 0) + 1
        patch = {"metadata": {"resourceVersion": lease.metadata.resourceVersion}, "spec": spec}
        try:
            await self.client.patch(Lease, self.name, patch, namespace=self.namespace, patch_type=PatchType.MERGE)
        except ApiError as e:
            if classify(e) is Answer.CONFLICT:  # someone else wrote it first
                return False
            raise
        return True

    async def release(self) -> None:
        lease = await self._get()
        if lease is None or lease.spec is None or lease.spec.holderIdentity != self.identity:
            return
        patch = {
            "metadata": {"resourceVersion": lease.metadata.resourceVersion},
            "spec": {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": _micro(_now())},
        }
        with contextlib.suppress(ApiError):
            await self.client.patch(Lease, self.name, patch, namespace=self.namespace, patch_type=PatchType.MERGE)

    async def acquire(self) -> None:
        log.info("waiting for leadership", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity})
        while True:
            try:
                if await self.try_acquire_or_renew():
                    self._set_leader(True)
                    self.transitions += 1
                    log.info(
                        "became leader", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity}
                    )
                    return
            except (ApiError, httpx2.HTTPError, OSError) as e:
                log.warning("leader election attempt failed: %s", e, extra={"identity": self.identity})
            await anyio.sleep(self.retry_period)

    async def keep(self) -> None:
        """Renew until a renewal fails for ``renew_deadline``; then raise :class:`LostLeadership`."""
        last_ok = anyio.current_time()
        while True:
            await anyio.sleep(self.retry_period)
            try:
                with anyio.fail_after(self.renew_deadline):
                    ok = await self.try_acquire_or_renew()
            except (ApiError, httpx2.HTTPError, OSError, TimeoutError) as e:
                log.warning("lease renewal failed: %s", e, extra={"identity": self.identity})
                ok = False
            if ok:
                last_ok = anyio.current_time()
            elif anyio.current_time() - last_ok >= self.renew_deadline:
                self._set_leader(False)
                log.error(
                    "lost leadership", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity}
                )
                raise LostLeadership(self.identity)

    @asynccontextmanager
    async def leading(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.keep)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            if self.is_leader:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await self.release()
                self._set_leader(False)
