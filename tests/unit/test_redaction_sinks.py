"""A third-party URL's ``user:password@`` (or a secret-named query value) never reaches a metric label, a
log line, status or an Event; and the probe policy flags of ``d3os-operator run``."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from d3os_core import Facts, Observed, plan
from d3os_core.fake import FakeCluster
from d3os_core.probe_policy import decide, parse_cidr
from d3os_core.types import Event, HttpCheck
from d3os_operator.cli import build_parser, main, probe_policy
from d3os_operator.events import EventRecorder
from d3os_operator.logs import JsonFormatter, TextFormatter
from d3os_operator.metrics import Metrics

from .helpers import DATASERVICE, Driver, condition, sample

SECRET_URL = "http://admin:hunter2@uuc.example:8080/duc"


def test_metric_label_is_redacted() -> None:
    m = Metrics()
    m.snapshot(lambda: {"probes": [{"check": HttpCheck(url=SECRET_URL).describe(), "ok": False},
                                   {"check": f"HTTP GET {SECRET_URL}", "ok": True}]})
    text = m.text().decode()
    assert "hunter2" not in text
    labels = {s.labels["check"] for f in text_string_to_metric_families(text) for s in f.samples
              if s.name == "d3os_thirdparty_check_up"}
    assert labels == {"HTTP GET http://***@uuc.example:8080/duc"}


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_log_lines_are_redacted(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("d3os_operator.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("probing %s", SECRET_URL, extra={"check": f"HTTP GET {SECRET_URL}", "n": 3})
        try:
            raise ValueError(f"bad {SECRET_URL}")
        except ValueError:
            logger.exception("crashed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "hunter2" not in out
    assert out.count("http://***@uuc.example:8080/duc") >= 3


def test_events_are_redacted() -> None:
    rec = EventRecorder(kube=None)  # type: ignore[arg-type]  # record() only queues
    rec.record({"metadata": {"name": "x", "namespace": "y"}}, Event("Warning", "X", f"failed: {SECRET_URL}"))
    [(_, event, _)] = rec.queued()
    assert event.message == "failed: http://***@uuc.example:8080/duc"


def _with_uuc(url: str, check_cmd: str | None = None) -> dict[str, Any]:
    ds = sample()
    ds["metadata"].update({"uid": "u1", "namespace": "ns", "finalizers": ["d3os-product.com.d3os/finalizer"]})
    ds["spec"]["uuc"]["thirdParty"] = {"url": url, **({"checkCMD": check_cmd} if check_cmd else {})}
    return ds


def test_status_and_events_from_the_core_are_redacted() -> None:
    # a URL with userinfo is refused (InvalidSpec, issue 24): nothing of it is shown, nothing is rendered
    ds = _with_uuc(SECRET_URL, f"curl --fail {SECRET_URL}")
    driver = Driver(ds, FakeCluster(third_party_up=False))
    for _ in range(3):
        driver.step()
    assert "must not carry credentials" in condition(driver.ds, "Ready")["message"]
    assert driver.fc.objects == {}
    shown = json.dumps(driver.ds["status"]) + repr([p.events for p in driver.plans])
    assert "hunter2" not in shown
    # a secret-named query value is refused too (issue 24, B6: no revision may record it): not shown either
    url = "http://uuc.example:8080/duc?password=hunter2"
    driver = Driver(_with_uuc(url, f"curl --fail {url}"), FakeCluster(third_party_up=False))
    for _ in range(3):
        driver.step()
    assert "must not carry a secret in its query (password=…;" in condition(driver.ds, "Ready")["message"]
    assert driver.fc.objects == {}
    shown = json.dumps(driver.ds["status"]) + repr([p.events for p in driver.plans])
    assert "hunter2" not in shown
    # an invalid spec quoting the URL in its error (InvalidSpec status and Event)
    bad = _with_uuc("http://admin:hunter2@uuc.example:99999/duc")
    invalid = plan(bad, Observed(), Facts(), DATASERVICE)
    text = json.dumps(invalid.status) + repr(invalid.events)
    assert "InvalidSpec" in text and "hunter2" not in text, text


def test_probe_policy_flags() -> None:
    args = build_parser().parse_args(["run", "--probe-allow-cidr", "127.0.0.1/32", "--probe-allow-cidr", "10.0.0.0/8",
                                      "--probe-deny-cidr", "10.9.0.0/16"])
    policy = probe_policy(args)
    assert policy.allow == (parse_cidr("127.0.0.1/32"), parse_cidr("10.0.0.0/8"))
    assert policy.deny == (parse_cidr("10.9.0.0/16"),)
    assert decide(policy, "127.0.0.1").allowed and not decide(policy, "10.9.1.1").allowed
    default = probe_policy(build_parser().parse_args(["run"]))
    assert not decide(default, "127.0.0.1").allowed and not decide(default, "169.254.169.254").allowed


@pytest.mark.parametrize(
    ("argv", "says"),
    [(["--probe-allow-cidr", "10.0.0.0/33"], "--probe-allow-cidr: '10.0.0.0/33'"),
     (["--probe-deny-cidr", "nope"], "--probe-deny-cidr: 'nope'")],
)
def test_bad_probe_policy_flags_are_refused(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", *argv])
    assert e.value.code == 2
    assert says in capsys.readouterr().err
