"""One table says what an API answer means (d3os_operator.apierrors): checked against the reasons the API
server itself gives with each code (k8s.io/apimachinery/pkg/api/errors), not against the table."""

from __future__ import annotations

import httpx2
import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from d3os_operator.apierrors import Answer, classify, is_answer

# (code, the API server's StatusReason for it) -> what retrying the same request can do
APIMACHINERY = [
    (400, "BadRequest", Answer.REFUSED),
    (403, "Forbidden", Answer.REFUSED),
    (422, "Invalid", Answer.REFUSED),
    (404, "NotFound", Answer.GONE),
    (409, "AlreadyExists", Answer.CONFLICT),
    (409, "Conflict", Answer.CONFLICT),
    (410, "Expired", Answer.EXPIRED),
    (429, "TooManyRequests", Answer.TRANSIENT),
    (500, "InternalError", Answer.TRANSIENT),
    (503, "ServiceUnavailable", Answer.TRANSIENT),
    (504, "Timeout", Answer.TRANSIENT),
]


@pytest.mark.parametrize(("code", "reason", "answer"), APIMACHINERY)
def test_each_api_answer_has_one_meaning(code: int, reason: str, answer: Answer) -> None:
    assert classify(ApiError(status=Status(code=code, reason=reason, message="m"))) is answer


def test_network_errors_are_transient_and_other_exceptions_are_not_api_answers() -> None:
    assert classify(httpx2.ConnectError("refused")) is Answer.TRANSIENT
    assert classify(ConnectionResetError()) is Answer.TRANSIENT
    assert classify(TimeoutError()) is Answer.TRANSIENT
    with pytest.raises(TypeError):
        classify(KeyError("x"))
    assert not is_answer(KeyError("x"), Answer.TRANSIENT)
    assert is_answer(ApiError(status=Status(code=422, reason="Invalid")), Answer.REFUSED)
