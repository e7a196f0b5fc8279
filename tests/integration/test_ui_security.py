"""The local web server's refusals, each tried for real against ``d3os ui`` started as a user starts it (the
command line, printing its URL): no token, a wrong token, a foreign Host (DNS rebinding: also from the
distribution's Chromium, with a name resolved to 127.0.0.1), a change without the token header or from
another origin (also a real cross-origin page in the browser) -- the API server shows nothing changed -- and
no credential of the kubeconfig in anything the server sends."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.uibrowser")
from .standin import Env  # noqa: E402
from .uibrowser import ARGS, CHROMIUM, poll  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

NAME = "dataservice-sample"


class Ui:
    """``d3os ui`` run as a command; ``request`` speaks raw HTTP to it (any Host, any header)."""

    def __init__(self, url: str) -> None:
        m = re.match(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)$", url)
        assert m, url
        self.port, self.token = int(m.group(1)), m.group(2)
        self.origin = f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None,
                read: float | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        if read is None:
            data = resp.read()
        else:  # a stream: what it sent in ``read`` seconds
            data = b""
            conn.sock.settimeout(read)
            try:
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    data += chunk
            except TimeoutError:
                pass
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


@pytest.fixture
def ui(env: Env, sample: dict[str, Any]) -> Iterator[Ui]:
    env.apply(sample)
    proc = subprocess.Popen([sys.executable, "-m", "d3os_operator.usercli", "ui", "--kubeconfig",
                             str(env.cluster.kubeconfig), "-n", env.namespace], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "127.0.0.1" not in first and "serving namespace" in first, first
        yield Ui(proc.stdout.readline().strip())
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _suspended(env: Env) -> bool:
    return bool((env.ds() or {}).get("spec", {}).get("suspend"))


def test_requests_without_the_token_or_from_elsewhere_are_refused(env: Env, ui: Ui) -> None:
    base = f"/api/i/DataService/{env.namespace}/{NAME}"
    status, _, body = ui.request("GET", "/")
    assert status == 403 and b"token" in body
    assert ui.request("GET", "/?token=" + "x" * len(ui.token))[0] == 403
    assert ui.request("GET", "/api/overview")[0] == 403
    assert ui.request("GET", base + "/history")[0] == 403
    assert ui.request("GET", "/static/app.js")[0] == 403
    # DNS rebinding: the right token, a foreign Host
    status, _, body = ui.request("GET", f"/?token={ui.token}", {"Host": f"rebind.example:{ui.port}"})
    assert status == 403 and b"DNS rebinding" in body
    assert ui.request("GET", base + "/history", {"Host": f"rebind.example:{ui.port}",
                                                 "X-D3os-Token": ui.token})[0] == 403
    # with the token: a cookie for this port, then the page
    status, headers, _ = ui.request("GET", f"/?token={ui.token}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie == f"d3os-ui-{ui.port}={ui.token}" and "httponly" in headers["set-cookie"].lower()
    status, _, page = ui.request("GET", "/", {"Cookie": cookie})
    assert status == 200 and b"d3os" in page

    # a change: cookie alone, a wrong header token, a foreign Origin, no Origin -- all refused
    body = json.dumps({"suspend": True}).encode()
    post = {"Cookie": cookie, "Content-Type": "application/json"}
    for extra, why in (({"Origin": ui.origin}, b"token"),
                       ({"Origin": ui.origin, "X-D3os-Token": "x" * len(ui.token)}, b"token"),
                       ({"Origin": "http://evil.example", "X-D3os-Token": ui.token}, b"cross-origin"),
                       ({"Origin": f"http://localhost:{ui.port + 1}", "X-D3os-Token": ui.token}, b"cross-origin"),
                       ({"X-D3os-Token": ui.token}, b"cross-origin")):
        status, _, answer = ui.request("POST", base + "/suspend", {**post, **extra}, body)
        assert status == 403 and why in answer, (extra, answer)
    assert ui.request("OPTIONS", base + "/suspend", {"Origin": "http://evil.example"})[0] == 403
    assert not _suspended(env)  # the API server: nothing changed
    # the same request, from this origin with the token: done (the refusals above were the guard's)
    status, _, answer = ui.request("POST", base + "/suspend", {**post, "Origin": ui.origin,
                                                                "X-D3os-Token": ui.token}, body)
    assert status == 200 and b"suspended" in answer, answer
    assert _suspended(env)
    env.cluster.kubectl("patch", "dataservice", NAME, "-n", env.namespace, "--type=merge",
                        "-p", '{"spec":{"suspend":false}}')


def _secrets_of(kubeconfig: Any) -> list[str]:
    """Every credential string of a kubeconfig: its users' data as written and decoded (PEM bodies' lines)."""
    with open(kubeconfig, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    out: list[str] = []
    for user in doc.get("users") or []:
        for key, value in (user.get("user") or {}).items():
            if key in ("client-key-data", "client-certificate-data", "token", "password"):
                out.append(str(value))
                if key.endswith("-data"):
                    pem = base64.b64decode(value).decode()
                    out += [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    return out


def test_no_credential_of_the_kubeconfig_reaches_the_page(env: Env, ui: Ui) -> None:
    secrets = _secrets_of(env.cluster.kubeconfig)
    assert secrets, "the test kubeconfig carries credentials"
    auth = {"Cookie": f"d3os-ui-{ui.port}={ui.token}"}
    base = f"/api/i/DataService/{env.namespace}/{NAME}"
    poll("the instance's status", lambda: (env.ds() or {}).get("status"), 60)
    sent = b""
    for path in ("/", "/static/app.js", "/static/app.css", base + "/history", base + "/export/svg",
                 base + "/export/dot", base + "/export/mermaid"):
        status, _, body = ui.request("GET", path, auth)
        assert status == 200, (path, body[:200])
        sent += body
    for path in ("/api/overview", base):
        status, _, body = ui.request("GET", path, auth, read=3.0)
        assert status == 200 and b"event: " in body, body[:300]
        sent += body
    assert b"event: instance" in sent and b"event: rows" in sent
    text = sent.decode("utf-8", "replace")
    leaked = [s[:12] + "…" for s in secrets if s in text]
    assert leaked == []
    where = text.find("managedFields")
    assert where < 0, text[max(0, where - 600):where + 100]


def test_in_the_browser_a_rebound_name_and_another_origin_are_refused(env: Env, ui: Ui) -> None:
    from playwright.sync_api import sync_playwright

    attacker_html = f"""<!doctype html><title>elsewhere</title><script>
      fetch("{ui.origin}/api/i/DataService/{env.namespace}/{NAME}/suspend", {{method: "POST", mode: "no-cors",
        credentials: "include", headers: {{"Content-Type": "text/plain"}}, body: '{{"suspend": true}}'}})
        .then(r => document.title = "sent " + r.type, e => document.title = "failed");
      fetch("{ui.origin}/api/i/DataService/{env.namespace}/{NAME}/suspend", {{method: "POST",
        credentials: "include", headers: {{"Content-Type": "application/json", "X-D3os-Token": "guess"}},
        body: '{{"suspend": true}}'}})
        .then(r => document.body.dataset.second = "answered " + r.status,
              e => document.body.dataset.second = "blocked");
    </script>""".encode()

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(attacker_html)

        def log_message(self, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM,
                                        args=[*ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"])
            try:
                page = browser.new_page()
                answer = page.goto(f"http://rebind.test:{ui.port}/?token={ui.token}")
                assert answer is not None and answer.status == 403
                assert "DNS rebinding" in page.inner_text("body")
                page.goto(ui.origin + f"/?token={ui.token}")  # the user's own tab: the cookie is set
                page.wait_for_selector("#overview-view")
                other = browser.new_page()  # same browser, so the cookie would go along
                other.goto(f"http://127.0.0.1:{site.server_address[1]}/")
                poll("the attacker's requests to end", lambda: other.title().startswith(("sent", "failed"))
                     and other.evaluate("document.body.dataset.second"), 10)
                assert other.evaluate("document.body.dataset.second") == "blocked"  # the preflight was refused
                time.sleep(0.5)
            finally:
                browser.close()
    finally:
        site.shutdown()
    assert not _suspended(env)  # the API server: nothing changed
