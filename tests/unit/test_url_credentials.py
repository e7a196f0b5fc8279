"""No credential from a URL in any Event, status, log line or metric label, ConfigMap or revision (issue 24, B6).

Redaction once needed ``//``: ``thirdParty.url: admin:hunter2@db.example:3306`` and ``checkCMD: curl
user:pass@host/…`` showed the password in the InvalidSpec Event and status; a URL with userinfo was copied
into the ``UUC_URL`` ConfigMap and the ControllerRevision; ``?token=`` reached the metric label. Now a URL
with ``USER[:PASSWORD]@`` is refused by both validators with an error that says where credentials go, and
what is displayed masks userinfo (with or without a scheme) and secret-named query values.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from d3os_core import Facts, Observed, plan, validate_spec
from d3os_core.fake import FakeCluster
from d3os_core.redact import redact_text
from d3os_core.types import HttpCheck
from d3os_operator.metrics import Metrics

from .helpers import DATASERVICE, Driver, crd_pattern, crd_spec, sample

PASSWORD = "hunter2"

# (field under spec.uuc.thirdParty, value): each carries the password as userinfo
WITH_USERINFO = [
    ("url", "admin:hunter2@db.example:3306"),
    ("url", "http://admin:hunter2@uuc.example:8080/duc"),
    ("url", "mysql://root:hunter2@db.example:3306"),
    ("url", "jdbc:mysql://root:hunter2@db.example/duc"),
    ("url", "tcp://hunter2@db.example:3306"),
    ("check.http.url", "https://admin:hunter2@uuc.example/health"),
    ("checkCMD", "curl --fail user:hunter2@uuc.example/duc"),
    ("checkCMD", "curl -s http://user:hunter2@uuc.example/duc"),
    ("checkCMD", "nc -z admin:hunter2@db.example 3306"),
    ("check.tcp.host", "admin:hunter2@db.example"),
]


def third_party(field: str, value: str) -> dict[str, Any]:
    if field == "check.http.url":
        return {"check": {"http": {"url": value}}}
    if field == "check.tcp.host":
        return {"check": {"tcp": {"host": value, "port": 3306}}}
    return {field: value}


def with_uuc(tp: dict[str, Any]) -> dict[str, Any]:
    ds = sample()
    ds["spec"]["uuc"]["thirdParty"] = tp
    return ds


@pytest.mark.parametrize(("field", "value"), WITH_USERINFO)
def test_userinfo_is_refused_offline_with_where_credentials_go(field: str, value: str) -> None:
    errors = validate_spec(with_uuc(third_party(field, value))["spec"], DATASERVICE)
    assert errors, value
    said = "; ".join(str(e) for e in errors)
    assert said.startswith(f"spec.uuc.thirdParty.{field}: "), said
    assert "must not carry credentials" in said and "Secret" in said, said
    assert PASSWORD not in said, said


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, v in WITH_USERINFO if f in ("url", "check.http.url")])
def test_admission_refuses_userinfo_too(field: str, value: str) -> None:
    tp = crd_spec()["uuc"]["properties"]["thirdParty"]["properties"]
    node = tp["url"] if field == "url" else tp["check"]["properties"]["http"]["properties"]["url"]
    assert re.fullmatch(crd_pattern(node), value) is None, value
    assert "no USER:PASSWORD@" in json.dumps(node)


@pytest.mark.parametrize(("field", "value"), WITH_USERINFO)
def test_a_refused_url_puts_no_password_in_status_or_events(field: str, value: str) -> None:
    ds = with_uuc(third_party(field, value))
    ds["metadata"].update(uid="u1", namespace="ns")
    p = plan(ds, Observed(), Facts(now="2026-01-01T00:00:00Z"), DATASERVICE)
    shown = json.dumps(p.status) + repr(p.events)
    assert "InvalidSpec" in shown
    assert PASSWORD not in shown, shown
    assert not p.apply


@pytest.mark.parametrize("text", [
    "admin:hunter2@db.example:3306", "thirdParty.url 'admin:hunter2@db.example' refused",
    "curl user:hunter2@uuc.example/duc", "http://admin:hunter2@uuc.example/", "(u:hunter2@h)",
    "http://uuc.example/duc?token=hunter2", "http://uuc.example/duc?a=1&Password=hunter2#x",
    "https://s3.example/o?X-Amz-Signature=hunter2&X-Amz-Credential=hunter2", "http://h/?api_key=hunter2",
    "jdbc:mysql://db/duc?user=u&password=hunter2", "http://h/#access_token=hunter2",
])
def test_displayed_text_masks_credentials_with_or_without_a_scheme(text: str) -> None:
    shown = redact_text(text)
    assert PASSWORD not in shown and "***" in shown, shown


@pytest.mark.parametrize("text", [
    "http://uuc.example:8080/duc?id=7", "uuc.example:3306", "registry.example:5000/x:v1",
    "GET http://[::1]:80/a?q=1", "mysql-dataservice-0 Pending",
])
def test_text_without_credentials_is_shown_as_is(text: str) -> None:
    assert redact_text(text) == text


def test_a_query_token_never_reaches_a_metric_label() -> None:
    m = Metrics()
    url = "http://uuc.example:8080/duc?token=hunter2"
    m.snapshot(lambda: {"probes": [{"check": HttpCheck(url=url).describe(), "ok": False}]})
    text = m.text().decode()
    labels = {s.labels["check"] for f in text_string_to_metric_families(text) for s in f.samples
              if s.name == "d3os_thirdparty_check_up"}
    assert labels == {"HTTP GET http://uuc.example:8080/duc?token=***"}
    assert PASSWORD not in text


def test_a_query_token_is_masked_in_status_and_events_of_a_failing_check() -> None:
    url = "http://uuc.example:8080/duc?token=hunter2"
    d = Driver(with_uuc({"url": url, "checkCMD": f"curl --fail {url}"}), FakeCluster(third_party_up=False))
    for _ in range(10):
        d.step()
    uuc = d.component("uuc")
    assert uuc["ready"] is False and "?token=***" in uuc["message"], uuc
    assert PASSWORD not in json.dumps(d.ds["status"]) + repr([p.events for p in d.plans])
