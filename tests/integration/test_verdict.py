"""Issue 12, part E: ``d3os validate`` (offline) and admission (the CRD's schema and CEL rules, on the local
control plane) give one verdict on every case of the bad-input corpus and on the examples.

Each file goes through both: ``d3os validate FILE`` in process, and a server-side dry-run create of the
file's bytes (``application/yaml``, strict field validation, so a duplicate key is the server's to refuse
too). Then:

* admission refuses  =>  ``d3os validate`` refuses (offline never accepts what the cluster refuses);
* admission admits and ``d3os validate`` refuses  =>  only for the core's cross-field rules that a CRD
  cannot state (the cases labelled ``invalid-spec``: the operator reports them as InvalidSpec, see
  test_corpus.py); for every such case the offline message carries the label's text;
* admission admits and ``d3os validate`` accepts  =>  the label says accepted, ready or known-gap.
"""

from __future__ import annotations

import collections
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client

from d3os_core import api
from tests.unit.test_one_verdict import CORPUS, EXAMPLES, expectation, offline_verdict

pytest.register_assert_rewrite("tests.integration.standin")
from .standin import figures_out  # noqa: E402

pytest_plugins = ("tests.integration.standin",)
pytestmark = pytest.mark.integration


_FIELD = re.compile(r"\b(?:spec|metadata)(?:\.[A-Za-z0-9_-]+)+")


def _same_fields(admission: str, offline: str) -> bool:
    """Both refusals name a common field (one path a prefix of the other), when admission names any."""
    theirs, ours = set(_FIELD.findall(admission)), set(_FIELD.findall(offline))
    if not theirs:
        return True
    return any(a == o or a.startswith(o + ".") or o.startswith(a + ".") for a in theirs for o in ours)


def _plural(text: str) -> str:
    """The resource a file's kind is served as (DataService unless the file says another product's kind)."""
    from d3os_operator.products import installed

    kinds = {p.names.kind: p.names.plural for p in installed()}
    found = re.search(r"^kind:\s*(\w+)\s*$", text, re.M)
    return kinds.get(found.group(1), api.PLURAL) if found else api.PLURAL


def dry_run_create(client: Client, namespace: str, text: str) -> tuple[int, str]:
    """POST the file's bytes as ``kubectl create --dry-run=server --validate=strict`` would: (status, message),
    to the collection of the file's kind."""
    http = client._client._client
    url = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{_plural(text)}"
    resp = http.post(
        url,
        params={"dryRun": "All", "fieldValidation": "Strict", "fieldManager": "verdict"},
        content=text.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    try:
        message = str(resp.json().get("message", ""))
    except ValueError:
        message = resp.text
    return resp.status_code, message


@pytest.fixture(scope="module")
def namespace(k8s_cluster: Any, client: Client, crd: None) -> Iterator[str]:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    ns = f"t-verdict-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=ns)))
    try:
        yield ns
    finally:
        k8s_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_offline_and_admission_give_one_verdict(client: Client, namespace: str) -> None:
    disagree: dict[str, Any] = {}
    tally: collections.Counter[str] = collections.Counter()
    for path in [*CORPUS, *EXAMPLES]:
        label, needle = expectation(path) if path in CORPUS else ("accepted", "")
        code, message = dry_run_create(client, namespace, path.read_text(encoding="utf-8"))
        # 201: admitted (dry run); 422 schema/CEL; 400 strict decoding (duplicate or unknown field)
        assert code in (201, 400, 422), (path.name, code, message[:400])
        admitted = code == 201
        valid, said = offline_verdict(path)
        key = f"{'admitted' if admitted else 'refused'}/{'valid' if valid else 'invalid'}"
        tally[key] += 1
        name = f"{path.parent.name}/{path.name}"
        if not admitted and valid:
            disagree[name] = f"admission refuses ({message[:300]}) but d3os validate accepts"
        elif admitted and not valid and label != "invalid-spec":
            disagree[name] = f"d3os validate refuses ({said.strip()[:300]}) but admission admits; label {label}"
        elif admitted and valid and label in ("rejected", "invalid-spec"):
            disagree[name] = f"both accept a case labelled {label}: {needle}"
        elif not admitted and label != "rejected":
            disagree[name] = f"admission refuses a case labelled {label} ({message[:300]}): re-label it"
        elif admitted and label == "rejected":
            disagree[name] = f"admission admits a case labelled rejected: {needle}"
        elif not admitted and not _same_fields(message, said):
            disagree[name] = f"refused for different fields: admission {message[:300]!r}, offline {said[:300]!r}"
        elif label == "invalid-spec" and needle not in said:
            disagree[name] = f"refused offline without {needle!r}: {said[:300]}"
    figures_out("one_verdict", {"files": len(CORPUS) + len(EXAMPLES), "tally": dict(tally)})
    assert disagree == {}, json.dumps(disagree, indent=1, ensure_ascii=False)


def test_metadata_name_rule_is_enforced_by_the_cel_rule_on_the_root(client: Client, namespace: str) -> None:
    """The apiserver checks a custom resource's name as a DNS subdomain (253, dots); the CRD's CEL rule on
    ``self.metadata.name`` narrows it to the DNS label the operator needs (it becomes a label value)."""
    sample = (Path(__file__).resolve().parents[2] / "examples" / "dataservice-sample.yaml").read_text()
    for name, ok in [("a" * 63, True), ("a" * 64, False), ("data.service", False), ("9lives", True)]:
        code, message = dry_run_create(client, namespace, sample.replace("name: dataservice-sample", f"name: {name}"))
        assert (code == 201) is ok, (name, code, message)
        if not ok:
            assert "metadata.name must be a DNS label" in message, message
