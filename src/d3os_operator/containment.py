"""Containment: a reconcile that fails unexpectedly ends in its own DataService's status, never further.

The worker calls :func:`report_reconcile_error` for any exception that is not a transient API or network
error (those are retried quietly with backoff). The DataService then shows Degraded=True, reason
``ReconcileError``, with the error, and gets a Warning Event (once per distinct message, as the core
decides); the worker retries it with backoff and keeps serving every other DataService. Reporting is
best effort: if the report itself fails, that is logged and the retry goes on. The status takes the one
status path (:class:`d3os_operator.statuswriter.StatusPath`), after any status a pass handed over.
"""

from __future__ import annotations

import logging

from d3os_core.planner import plan_failed
from d3os_core.types import Facts

from .kube import api_error_text
from .parents import ParentKey, fmt_key
from .reconciler import Reconciler, utc_now

log = logging.getLogger("d3os_operator.containment")


async def report_reconcile_error(reconciler: Reconciler, key: ParentKey, error: BaseException) -> bool:
    """Write ``error`` into the DataService's status and record a Warning Event; True if reported."""
    try:
        parent = reconciler.parents.get(*key)
        if parent is None:
            return False
        plan = plan_failed(parent, error, Facts(now=utc_now()), what="reconcile")
        if plan.status:
            parent = await reconciler.status.write_now(key, parent, plan.status)  # after what was handed over
        for event in plan.events:
            reconciler.events.record(parent, event)
        return True
    except Exception as e:  # best effort: the worker's backoff retry goes on regardless
        log.warning(
            "could not report the reconcile error in status",
            extra={"ds": fmt_key(key), "error": api_error_text(e)},
        )
        return False
