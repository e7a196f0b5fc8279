"""What an API server's answer means to the operator: one :func:`classify`, used by every caller.

Before, each module tested HTTP codes of its own (``in (400, 403, 422)`` here, ``in (400, 403, 404, 422)``
there, ``== 409`` elsewhere) and two lists disagreed on whether 404 is a refusal. One table now says what each
answer means, and every decision is taken on its :class:`Answer`, never on a bare code.
"""

from __future__ import annotations

import enum

import httpx2
from lightkube.core.exceptions import ApiError


class Answer(enum.Enum):
    """What a failed request tells the operator."""

    REFUSED = "refused"
    """400/403/422: the request as it is will not pass (invalid, forbidden, a NodePort taken): retrying the
    same request cannot change it, a change elsewhere (RBAC, the instance, a freed port) may."""
    GONE = "gone"
    """404: the object (or its namespace) is not there."""
    CONFLICT = "conflict"
    """409: a create found the name held, a precondition (uid, resourceVersion) failed, or a Lease was
    written first by someone else."""
    EXPIRED = "expired"
    """410: a watch's resourceVersion is too old: list again."""
    TRANSIENT = "transient"
    """Anything else -- 429, 5xx, a timeout, a connection lost: the same request may pass later."""


_BY_CODE = {400: Answer.REFUSED, 403: Answer.REFUSED, 422: Answer.REFUSED,
            404: Answer.GONE, 409: Answer.CONFLICT, 410: Answer.EXPIRED}


def classify(error: BaseException) -> Answer:
    """The meaning of ``error``: an :class:`ApiError` by its status code, a network error as transient."""
    if isinstance(error, ApiError):
        return _BY_CODE.get(int(error.status.code or 0), Answer.TRANSIENT)
    if isinstance(error, (httpx2.HTTPError, OSError, TimeoutError)):
        return Answer.TRANSIENT
    raise TypeError(f"not an API or network error: {type(error).__name__}")


def is_answer(error: BaseException, answer: Answer) -> bool:
    """True when ``error`` is an API or network error meaning ``answer`` (any other exception: False)."""
    try:
        return classify(error) is answer
    except TypeError:
        return False
