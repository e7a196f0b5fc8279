"""Operations from ``d3os ui``'s page, in the distribution's Chromium, the operator running: a diff between two
revisions, rollback to a revision (applied: the API server's spec is that revision's, then rolled out), suspend
and resume -- each only after an explicit confirmation -- and a user without update rights refused with the
API server's own message (the same request made directly as that user is the oracle)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.types import PatchType

from d3os_operator.kube import DATASERVICE

pytest.register_assert_rewrite("tests.integration.standin", "tests.integration.uibrowser")
from .standin import Env  # noqa: E402
from .uibrowser import DESKTOP, browser, open_instance, poll, screenshot, ui_server  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration
__all__ = ["browser"]

VIEWER = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer, namespace: NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: d3os-viewer, namespace: NS}
rules:
- apiGroups: [d3os-product.com.d3os]
  resources: [dataservices, analyticsservices]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: d3os-viewer, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: d3os-viewer}
subjects: [{kind: ServiceAccount, name: viewer, namespace: NS}]
"""


def _confirm(page: Any, button: str) -> str:
    page.click(button)
    page.wait_for_selector("#confirm[open]")
    text = page.inner_text("#confirm-text")
    page.click("#confirm-ok")
    page.wait_for_selector("#result:not([hidden])")
    return text


def _history(page: Any) -> list[list[str]]:
    return page.eval_on_selector_all("#history tbody tr",
                                     "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")


def test_diff_rollback_suspend_from_the_page_and_refusals(env: Env, sample: dict[str, Any], browser: Any) -> None:
    ns = env.namespace
    old_image = sample["spec"]["web"]["image"]
    new_image = old_image.rsplit(":", 1)[0] + ":v9.9"
    env.apply(sample)
    env.wait_ready()
    changed = copy.deepcopy(sample)
    changed["spec"]["web"]["image"] = new_image
    env.apply(changed)
    env.wait_ready(generation=2)

    with ui_server(env.cluster.kubeconfig, ns) as server:
        page = browser.new_page(viewport=DESKTOP)
        open_instance(page, server, "DataService", ns, "dataservice-sample")
        poll("two revisions on the page", lambda: len(_history(page)) == 2, 60)
        page.select_option("#diff-a", "1")
        page.select_option("#diff-b", "2")
        page.click("#diff-form button")
        page.wait_for_selector("#diff:not([hidden])")
        diff = page.inner_text("#diff")
        assert f"-  image: {old_image}\n+  image: {new_image}" in diff, diff

        # cancelling changes nothing
        page.click("#act-rollback")
        page.wait_for_selector("#confirm[open]")
        page.click("#confirm-cancel")
        poll("the page to say Cancelled", lambda: "Cancelled" in page.inner_text("#result"), 30)
        assert env.ds()["spec"]["web"]["image"] == new_image

        page.select_option("#rb-revision", "1")
        page.click("#act-rollback")
        page.wait_for_selector("#confirm[open]")
        assert "revision 1" in page.inner_text("#confirm-text")
        screenshot(page, "rollback-confirm")
        page.click("#confirm-ok")
        poll("the rollback's answer", lambda: "rolled back to revision 1" in page.inner_text("#result"), 60)
        assert env.ds()["spec"]["web"]["image"] == old_image  # the API server holds revision 1's spec
        env.wait_ready(generation=3)
        poll("revision 3 current on the page", lambda: any(r[0] == "3" and r[1] == "*" for r in _history(page)), 90)
        screenshot(page, "history", full_page=True)

        text = _confirm(page, "#act-suspend")
        assert "Suspend" in text and "Suspended" not in page.inner_text("#result")
        assert env.ds()["spec"]["suspend"] is True
        poll("Resume offered", lambda: page.inner_text("#act-suspend") == "Resume…", 30)
        _confirm(page, "#act-suspend")
        assert env.ds()["spec"]["suspend"] is False

    # a user who may read but not update: the page shows the API server's refusal, and nothing changes
    env.cluster.kubectl("apply", "-f", "-", input=VIEWER.replace("NS", ns))
    kubeconfig = env.cluster.service_account_kubeconfig(ns, "viewer", duration="1h")
    as_viewer = Client(config=KubeConfig.from_file(str(kubeconfig)), trust_env=False)
    with pytest.raises(ApiError) as direct:
        as_viewer.patch(DATASERVICE.res, "dataservice-sample", {"spec": {"suspend": True}}, namespace=ns,
                        patch_type=PatchType.MERGE)
    assert direct.value.status.code == 403
    before = env.ds()
    with ui_server(kubeconfig, ns) as server:
        page = browser.new_page(viewport=DESKTOP)
        open_instance(page, server, "DataService", ns, "dataservice-sample")
        # (revision 1's spec became revision 3, as a Deployment's rollback renumbers it)
        poll("the revisions on the viewer's page", lambda: [r[0] for r in _history(page)] == ["2", "3"], 60)
        page.select_option("#rb-revision", "2")
        _confirm(page, "#act-rollback")
        refused = page.inner_text("#result")
        assert page.eval_on_selector("#result", "r => r.classList.contains('error')")
        assert refused.startswith("forbidden: ") and 'cannot patch resource "dataservices"' in refused
        assert direct.value.status.message in refused.replace("\n", " ") or refused.endswith(
            direct.value.status.message.split(": ", 1)[-1]), (refused, direct.value.status.message)
        screenshot(page, "refused")
        _confirm(page, "#act-suspend")
        assert page.inner_text("#result").strip() == f"forbidden: {direct.value.status.message}"
    after = env.ds()
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]
