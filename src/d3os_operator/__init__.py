"""d3os-operator: the thin shell that runs :func:`d3os_core.plan` against a Kubernetes cluster.

Watch (list+watch caches) -> work queue -> reconcile (plan, then server-side apply, delete, status,
events, finalizer) -> requeue. Third-party probes run here too; the core only reads their results.
"""

__version__ = "0.1.0"
