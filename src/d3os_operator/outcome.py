"""What one reconcile pass answers the worker, as controller-runtime's ``reconcile.Result`` and errors.

Each answer has its own behaviour in the worker (:meth:`d3os_operator.controller.Operator._worker`), tested
in ``tests/unit/test_operator_worker.py``:

* :class:`Result` -- requeue after ``requeue_after`` seconds (0: at once), or only on the next event;
* :class:`TransientError` -- retried with the queue's exponential backoff (5 ms doubling up to 1000 s), a
  WARNING log line per failure;
* :class:`RefusedError` -- the API server refused a request (:attr:`~d3os_operator.apierrors.Answer.REFUSED`):
  the status and a Warning Event already name it, so it is retried at a steady :data:`REFUSED_RETRY` (not
  the fast backoff: the same request is refused until something changes -- RBAC, a freed NodePort, the
  instance itself, whose change queues it at once) and logged at INFO;
* any other exception -- contained: written into the instance's status (:mod:`d3os_operator.containment`)
  and retried with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass

REFUSED_RETRY = 10.0
"""Seconds between two tries of a pass the API server refused (see the module docstring)."""


@dataclass(frozen=True)
class Result:
    """A pass that succeeded: ``requeue_after`` seconds until the next one (0: at once), None: only on events."""

    requeue_after: float | None = None


class ReconcileError(Exception):
    """A pass that failed; the worker decides what the queue does with the key."""


class TransientError(ReconcileError):
    """Worth retrying as it is (the API server away, a conflict, a timeout): retried with backoff."""


class RefusedError(ReconcileError):
    """The API server refused a request (400/403/422): the status names it; retried every
    :data:`REFUSED_RETRY` seconds, since only a change elsewhere (RBAC, a freed NodePort) lets it through."""
