"""No credential from a URL in any Event, status, log line or metric label, ConfigMap or revision (issue 24, B6).

Redaction once needed ``//``: ``thirdParty.url: admin:hunter2@db.example:3306`` and ``checkCMD: curl
user:pass@host/…`` showed the password in the InvalidSpec Event and status; a URL with userinfo was copied
into the ``UUC_URL`` ConfigMap and the ControllerRevision; ``?token=`` reached the metric label and stayed in
every ControllerRevision. Now a URL with ``USER[:PASSWORD]@`` or a secret-named query value is refused by both
validators with an error that says where credentials go (so no revision ever records one), and what is
displayed masks userinfo (with or without a scheme) and secret-named query values.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from d3os_core import Facts, Observed, plan, validate_spec
from d3os_core.redact import redact_text
from d3os_core.types import HttpCheck
from d3os_operator.metrics import Metrics

from .helpers import DATASERVICE, crd_pattern, crd_spec, sample

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


# each carries the password as a secret-named query (or fragment) value: kept in clear in every revision
WITH_QUERY_SECRET = [
    ("url", "http://uuc.example:8080/duc?token=hunter2"),
    ("url", "db.example:3306/duc?useSSL=false&password=hunter2"),
    ("url", "jdbc:mysql://db.example/duc?user=u&Password=hunter2"),
    ("check.http.url", "https://s3.example/o?X-Amz-Signature=hunter2"),
    ("check.http.url", "https://uuc.example/health#access_token=hunter2"),
    ("checkCMD", "curl --fail https://uuc.example/duc?api_key=hunter2"),
    ("checkCMD", "curl -s uuc.example/duc?a=1;secret=hunter2"),
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


@pytest.mark.parametrize(("field", "value"), WITH_QUERY_SECRET)
def test_a_secret_query_value_is_refused_offline_naming_the_parameter_not_its_value(field: str, value: str) -> None:
    errors = validate_spec(with_uuc(third_party(field, value))["spec"], DATASERVICE)
    said = "; ".join(str(e) for e in errors)
    assert said.startswith(f"spec.uuc.thirdParty.{field}: "), said
    assert "must not carry a secret in its query" in said and "ControllerRevision" in said, said
    name = re.search(r"[?&;#]([^=?&;#]+)=hunter2", value)
    assert name is not None and f"({name.group(1)}=…;" in said, said
    assert PASSWORD not in said, said


def test_a_secret_query_value_in_the_url_is_refused_even_when_checkcmd_does_the_check() -> None:
    """The url is what dependents are given (UUC_URL), checked or not: its token would be recorded too."""
    tp = {"url": "https://uuc.example/duc?token=hunter2", "checkCMD": "curl --fail https://uuc.example/health"}
    said = "; ".join(str(e) for e in validate_spec(with_uuc(tp)["spec"], DATASERVICE))
    assert said.startswith("spec.uuc.thirdParty.url: must not carry a secret in its query (token=…;"), said


@pytest.mark.parametrize(("field", "value"), WITH_QUERY_SECRET)
def test_admission_refuses_a_secret_query_value_with_the_same_pattern(field: str, value: str) -> None:
    tp = crd_spec()["uuc"]["properties"]["thirdParty"]["properties"]
    node = (tp["url"] if field == "url" else tp["checkCMD"] if field == "checkCMD"
            else tp["check"]["properties"]["http"]["properties"]["url"])
    rules = [r["rule"] for r in node["x-kubernetes-validations"] if "secret in its query" in r["message"]]
    assert len(rules) == 1 and rules[0].startswith("!self.matches(")
    regex = json.loads(rules[0][len("!self.matches("):-1])  # the CEL string literal is JSON's
    assert re.search(regex, value), value
    assert not re.search(regex, value.replace("=hunter2", "=")), "an empty value carries no secret"


@pytest.mark.parametrize("value", [
    "http://uuc.example:8080/duc?id=7", "http://uuc.example/duc?tenant=a&token=", "db.example:3306/duc?useSSL=false",
])
def test_a_query_without_a_secret_value_is_accepted(value: str) -> None:
    assert validate_spec(with_uuc({"url": value})["spec"], DATASERVICE) == []


@pytest.mark.parametrize(("field", "value"), WITH_USERINFO + WITH_QUERY_SECRET)
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
