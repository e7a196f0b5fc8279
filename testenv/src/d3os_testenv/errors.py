"""The one error every part of the test environment raises (its own module: no part imports another for it)."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """The cluster could not be started/stopped; the message says what was not ready and why."""
