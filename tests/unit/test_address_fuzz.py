"""Fuzz: any check address a DataService author can write -- in ``checkCMD`` (curl, nc), ``thirdParty.url``,
``check.http.url`` or ``check.tcp`` -- is refused with a field path, or accepted and then rendered and planned.
Nothing raises out of the parser, validation, the renderer or ``plan`` (issue 12, part B; the probe code is
fuzzed on its own in the operator's tests).

The alphabet is what broke the seed's successor: IDNA and full-width letters, Unicode dots, brackets and
IPv6 literals, ports 0 and 65536, empty hosts and labels, names longer than DNS allows, userinfo, percent.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from d3os_core import Facts, HttpCheck, Observed, TcpCheck, plan, validate_spec
from d3os_core.planner import ERROR_REASON
from d3os_core.render import Parent, render_component, resolve
from d3os_core.validation import parse_spec

from .helpers import DATASERVICE, sample

EXAMPLES = int(os.environ.get("D3OS_ADDRESS_FUZZ_EXAMPLES", "5000"))

FULL_WIDTH = "".join(chr(c) for c in range(0xFF10, 0xFF5B) if chr(c).isalnum())  # ０-９ Ａ-Ｚ ａ-ｚ
DOTS = [".", "。", "．", "｡", "..", ""]
PIECES = ["a", "b", "x", "example", "com", "xn--bcher-kva", "xn--", "ä", "ü", "例え", "bücher", "ß", "İ", "ﬁ",
          "_svc", "-a", "a-", "0", "127", "1", "255", "256", "0x7f000001", "localhost", "[", "]", "::1", "[::1]",
          "[zz]", "[::ffff:127.0.0.1]", "fe80::1%25eth0", "%41", "@", "user:pw@", ":", "\u200b", "\u00a0", " ",
          "\t", "a" * 63, "a" * 64, "*", "?", "#", "/"]
PORTS = ["", ":", ":0", ":1", ":80", ":65535", ":65536", ":99999", ":-1", ":08", ":８０", ":x", "::80"]
PATHS = ["", "/", "/duc", "/a b", "/ä", "?q=1", "#f", "/%zz"]
SCHEMES = ["http://", "https://", "tcp://", "mysql://", "jdbc:mysql://", "ftp://", "", "HTTP://", "http:/", "//",
           "http://", "https://"]

labels = st.one_of(
    st.sampled_from(PIECES),
    st.text(alphabet=FULL_WIDTH, min_size=1, max_size=8),
    st.text(alphabet="abcxyz09-_äöü例", min_size=0, max_size=10),
    st.integers(0, 70).map(lambda n: "l" * n),
)
plausible_hosts = st.lists(st.from_regex(r"[a-z0-9_]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True),
                          min_size=1, max_size=4).map(".".join)
hosts = st.one_of(
    plausible_hosts,
    plausible_hosts,
    st.lists(st.tuples(labels, st.sampled_from(DOTS)), min_size=0, max_size=6).map(
        lambda parts: "".join(label + dot for label, dot in parts)
    ),
    st.integers(240, 270).map(lambda n: ("a" * 62 + ".") * (n // 63) + "a" * (n % 63)),  # around 253 in all
    st.sampled_from(["", "[", "[]", "[zz]", "[::1", "::1]", "[::1]", "[1:2:3:4:5:6:7:8]", "[1::2::3]", "1.2.3.4",
                     "999.1.1.1", "ｅｘａｍｐｌｅ.com", "ä..b", "a..b", ".a", "a.", "..", "."]),
)
ports = st.one_of(st.sampled_from(PORTS), st.integers(-2, 70000).map(lambda p: f":{p}"),
                  st.sampled_from(["", ":80", ":8080", ":3306"]))
urls = st.builds(lambda s, h, p, path: s + h + p + path,
                 st.sampled_from(SCHEMES), hosts, ports, st.sampled_from(PATHS))
port_words = st.one_of(st.sampled_from(["0", "1", "80", "65535", "65536", "", "x", "３３０６", "-1", "08"]),
                       st.integers(-1, 70000).map(str))

CURL_FLAGS = st.lists(st.sampled_from(["--head", "--fail", "-s", "-k", "-L", "-m 3", "--output /dev/null"]),
                      max_size=3).map(" ".join)


def _third_party(draw: st.DrawFn) -> dict[str, Any]:
    form = draw(st.sampled_from(["curl", "nc", "url", "http", "tcp", "curl+url"]))
    if form == "curl":
        return {"checkCMD": f"curl {draw(CURL_FLAGS)} {draw(urls)}".replace("  ", " ")}
    if form == "nc":
        return {"checkCMD": f"nc -z {draw(hosts)} {draw(port_words)}"}
    if form == "url":
        return {"url": draw(urls)}
    if form == "http":
        return {"check": {"http": {"url": draw(urls)}}}
    if form == "tcp":
        return {"check": {"tcp": {"host": draw(hosts), "port": draw(st.integers(-1, 70000))}}}
    return {"checkCMD": f"curl -f {draw(urls)}", "url": draw(urls)}


third_parties = st.composite(_third_party)()


def _dataservice(tp: dict[str, Any], key: str) -> dict[str, Any]:
    spec = sample()["spec"]
    spec[key]["kind"] = 3
    spec[key]["thirdParty"] = copy.deepcopy(tp)
    return {
        "apiVersion": "d3os-product.com.d3os/v1",
        "kind": "DataService",
        "metadata": {"name": "fuzz", "namespace": "fuzz", "uid": "fuzz-uid", "generation": 1,
                     "finalizers": ["d3os-product.com.d3os/finalizer"]},
        "spec": spec,
    }


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tp=third_parties, key=st.sampled_from(["mysql", "uuc"]))
def test_every_address_is_refused_with_a_field_path_or_rendered_and_planned(tp: dict[str, Any], key: str) -> None:
    ds = _dataservice(tp, key)
    errors = validate_spec(ds["spec"], DATASERVICE)  # raises nothing
    assert all(e.path.startswith(f"spec.{key}.thirdParty") and e.message for e in errors), errors
    result = plan(ds, Observed(), Facts(), DATASERVICE)  # raises nothing, by contract; and must not have needed to
    ready = {c["type"]: c for c in result.status["conditions"]}["Ready"]
    assert ready["reason"] != ERROR_REASON, ready["message"]
    event(f"{next(iter(tp))}: {'refused' if errors else 'accepted'}")
    if errors:
        assert ready["reason"] == "InvalidSpec" and f"spec.{key}.thirdParty" in ready["message"]
        assert not result.apply and not result.probes
        return
    spec = parse_spec(ds["spec"], DATASERVICE)
    parent = Parent("fuzz", "fuzz", "fuzz-uid")
    states = resolve(parent, spec, DATASERVICE)
    for k in DATASERVICE.keys:
        render_component(parent, spec, DATASERVICE, states, k, {}, "")
    check = states[key].check
    assert isinstance(check, (HttpCheck, TcpCheck))
    host = check.url if isinstance(check, HttpCheck) else check.host
    assert host.isascii() and not any(c.isspace() for c in host), check  # what the probe gets is plain ASCII
    if isinstance(check, TcpCheck):
        assert 1 <= check.port <= 65535 and check.host
    ep = states[key].endpoint
    assert ep.host.isascii() and 1 <= ep.port <= 65535, ep
    assert [p.check for p in result.probes if p.component == key] in ([check], [])
    assert ready["reason"] in ("RollingOut", "Waiting", "AllComponentsReady"), ready
