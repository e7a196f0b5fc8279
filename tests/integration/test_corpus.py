"""The bad-input corpus (tests/corpus/*.yaml) against the real control plane.

Every case is sent as ``kubectl apply --server-side --field-validation=Strict`` would send it (the file's
bytes, ``application/apply-patch+yaml``) and must end as its ``# expect:`` header says:

* ``rejected: X``     -- the kube-apiserver refuses it and its message contains X;
* ``invalid-spec: X`` -- admitted; the operator reports Ready=False, reason InvalidSpec, a message with X
  and a Warning Event, and keeps serving the others;
* ``accepted``        -- admitted (server-side dry run) and valid: the shell syntax in it ends up as inert
  data (an env value or a ConfigMap file, never a command);
* ``ready``           -- the valid sample of the operator run: it reaches Ready beside the invalid ones;
* ``known-gap: X``    -- admitted and valid for the core, but the apiserver then refuses a child (X): a gap
  reported for the core, pinned as it is (a dry run) so that closing it fails here and gets the case re-labelled.
"""

from __future__ import annotations

import collections
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from lightkube import Client

from d3os_core import api
from d3os_testenv import harness

pytest.register_assert_rewrite("tests.integration.standin")
from ..corpus_cases import CASES, Case  # noqa: E402
from .standin import StandIn, ensure_volumes, events_for, figures_out, list_kind, point_uuc_at, wait_for  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration

def apply_raw(client: Client, namespace: str, case: Case, dry_run: bool = False) -> tuple[int, str]:
    """Server-side apply the file's bytes with strict field validation; (HTTP status, message)."""
    http = client._client._client
    name = str((case.doc.get("metadata") or {}).get("name", case.name))
    url = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURAL}/{quote(name, safe='')}"
    params = {"fieldManager": "corpus", "fieldValidation": "Strict", "force": "true"}
    if dry_run:
        params["dryRun"] = "All"
    resp = http.patch(
        url, params=params, content=case.text.encode(), headers={"Content-Type": "application/apply-patch+yaml"}
    )
    try:
        message = str(resp.json().get("message", ""))
    except ValueError:
        message = resp.text
    return resp.status_code, message


@pytest.fixture(scope="module")
def admission(k8s_cluster: Any, client: Client, crd: None) -> Iterator[tuple[str, dict[str, tuple[int, str]]]]:
    """Every case sent to the apiserver once, in one namespace: (namespace, name -> (status, message)).
    Cases expected admitted for the core to refuse (and the valid sample) are stored; accepted ones are
    dry runs (they would all claim the same object names)."""
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    ns = f"t-corpus-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    results = {}
    try:
        for case in CASES:
            if case.outcome == "ready":
                continue  # applied by the operator run, with uuc pointed at the stand-in
            results[case.name] = apply_raw(client, ns, case, dry_run=case.outcome in ("accepted", "known-gap"))
        yield ns, results
    finally:
        harness.delete_dataservices(client, ns, timeout=30)
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_every_case_ends_as_expected_at_admission(admission: tuple[str, dict[str, tuple[int, str]]]) -> None:
    _, results = admission
    wrong = {}
    outcomes: collections.Counter[str] = collections.Counter()
    for case in CASES:
        if case.outcome == "ready":
            continue
        code, message = results[case.name]
        # 422: schema or CEL; 400: strict decoding (duplicate keys); 500: server-side apply's "failed to
        # create typed patch object" for a wrong type or an undeclared field (still a refusal)
        refused = code in (400, 422, 500) and case.needle in message
        ok = refused if case.outcome == "rejected" else code in (200, 201)
        outcomes[f"{case.outcome}:{code}"] += 1
        if not ok:
            wrong[case.name] = (case.outcome, case.needle, code, message[:400])
    figures_out("corpus_admission", {"cases": len(CASES), "outcomes": dict(outcomes)})
    assert wrong == {}, json.dumps(wrong, indent=1, ensure_ascii=False)


def test_operator_reports_invalid_spec_and_keeps_serving(
    k8s_cluster: Any,
    client: Client,
    admission: tuple[str, dict[str, tuple[int, str]]],
    uuc: StandIn,
) -> None:
    ns, _ = admission
    ensure_volumes(client)
    invalid = [c for c in CASES if c.outcome == "invalid-spec"]
    (valid,) = [c for c in CASES if c.outcome == "ready"]
    with harness.RunningOperator(k8s_cluster.kubeconfig, namespaces=[ns]) as op:
        harness.apply_dataservice(client, point_uuc_at(valid.doc, uuc), ns)

        def reported() -> list[str] | None:
            op.check_alive()
            pending = []
            for c in invalid:
                ds = harness.get_dataservice(client, ns, c.name)
                cond = harness.condition(ds, "Ready")
                if not (cond.get("status") == "False" and cond.get("reason") == "InvalidSpec"):
                    pending.append(c.name)
            return None if pending else []

        wait_for("every invalid case reported InvalidSpec", lambda: reported() == [], 60, interval=0.5)
        wait_for(
            "the valid sample Ready",
            lambda: op.check_alive() or harness.is_ready(harness.get_dataservice(client, ns, valid.name)),
            180,
            interval=0.5,
        )
        wrong = {}
        for c in invalid:
            ds = harness.get_dataservice(client, ns, c.name)
            cond = harness.condition(ds, "Ready")
            events = [e for e in events_for(client, ns, c.name) if e.get("type") == "Warning"]
            if c.needle not in cond.get("message", ""):
                wrong[c.name] = cond.get("message")
            elif not any(c.needle in (e.get("message") or "") for e in events):
                wrong[c.name] = f"no Warning Event with {c.needle!r}: {[e.get('message') for e in events]}"
            for kind in ("Deployment", "StatefulSet", "ConfigMap", "Secret", "Service"):
                made = list_kind(client, kind, ns, labels={api.LABEL_INSTANCE: c.name})
                if made:
                    wrong[c.name] = f"{kind} created for an invalid spec: {[o['metadata']['name'] for o in made]}"
        assert wrong == {}, json.dumps(wrong, indent=1, ensure_ascii=False)
        # the shell syntax of the valid sample is data in the cluster: env values as written
        manager = next(o for o in list_kind(client, "Deployment", ns) if o["metadata"]["name"] == "api-manager")
        env = {e["name"]: e.get("value") for e in manager["spec"]["template"]["spec"]["containers"][0]["env"]}
        injected = valid.doc["spec"]["api-manager"]["env"]
        assert {k: env.get(k) for k in injected} == injected
        op.check_alive()
        figures_out(
            "corpus_operator",
            {"invalid_spec_reported": len(invalid), "valid_sample_ready": True, "operator_alive": True},
        )
