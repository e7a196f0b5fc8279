"""The real browser for ``d3os ui``'s tests: the distribution's Chromium (``/usr/bin/chromium``, installed by
nox from Debian's packages), driven by Playwright's Python package -- never a browser build downloaded at run
time -- and the page's server run in-process on 127.0.0.1 with a kubeconfig of the local control plane.

``D3OS_UI_SCREENSHOTS=1`` saves the screenshots the docs show (``docs/images/ui-*.png``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .standin import wait_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

# The page's own record of what it drew: every state of every node, and PHASE/MESSAGE, as the DOM held them.
RECORDER = """
() => {
  window.d3osSeen = [];
  const take = () => {
    const nodes = [...document.querySelectorAll('#graph g.node')].map(g => ({
      key: g.dataset.key, state: g.dataset.state, kind: g.dataset.kind, current: g.dataset.current === 'true',
      fill: g.querySelector('rect').getAttribute('fill'), text: g.textContent}));
    const rec = {t: performance.timeOrigin + performance.now(),
      phase: document.getElementById('i-phase').textContent,
      message: document.getElementById('i-message').textContent, nodes};
    const prev = window.d3osSeen[window.d3osSeen.length - 1];
    const same = prev && JSON.stringify([prev.phase, prev.message, prev.nodes])
      === JSON.stringify([rec.phase, rec.message, rec.nodes]);
    if (!same)
      window.d3osSeen.push(rec);
  };
  new MutationObserver(take).observe(document.getElementById('instance-view'),
    {subtree: true, childList: true, characterData: true, attributes: true});
  take();
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: nox installs Debian's chromium (python3 -m nox -s tests)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def screenshot(page: Any, name: str, **kw: Any) -> None:
    if os.environ.get("D3OS_UI_SCREENSHOTS", "") not in ("", "0"):
        IMAGES.mkdir(parents=True, exist_ok=True)
        # written here: Playwright would write it from a thread of its event loop's executor, which would outlive
        # the test (tests/conftest.py refuses threads left running)
        (IMAGES / f"ui-{name}.png").write_bytes(page.screenshot(**kw))


def ui_server(kubeconfig: str | Path, namespace: str, products: Any = None) -> Any:
    from lightkube import KubeConfig

    from d3os_operator.products import installed
    from d3os_operator.usercli.ui.serve import UiServer

    return UiServer(KubeConfig.from_file(str(kubeconfig)), namespace, list(products or installed()))


def open_instance(page: Any, server: Any, kind: str, namespace: str, name: str) -> None:
    page.goto(server.url)
    page.goto(f"{server.origin}/#/i/{kind}/{namespace}/{name}")
    page.wait_for_selector("#instance-view:not([hidden])")


def poll(what: str, cond: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """The integration tests' one wait (``standin.wait_for``), with the timeout always said."""
    return wait_for(what, cond, timeout, interval)


def node_states(page: Any) -> dict[str, str]:
    return dict(page.eval_on_selector_all("#graph g.node", "gs => gs.map(g => [g.dataset.key, g.dataset.state])"))
