"""A secret in a URL's query string (``?token=``) is never copied into a ConfigMap in clear (issue 24, B6):
settings that carry one go to a Secret beside the component's ConfigMap, consumed the same way (envFrom, or
the same files projected together), and the rollout converges through the operator's bounded cache."""

from __future__ import annotations

import base64
import json
from typing import Any

from d3os_core import Facts, Observed, plan
from d3os_core.fake import FakeCluster
from d3os_core.render import ENV_SECRET_SUFFIX, carries_secret
from d3os_operator import cachefilter

from .helpers import DATASERVICE, Driver, sample

TOKEN = "hunter2hunter2"
URL = f"http://uuc.example:8080/duc?token={TOKEN}"
KEYS = frozenset(k for c in DATASERVICE.components for k in (*(c.generated_secret or {}), *c.config, *c.exports))


def with_token() -> dict[str, Any]:
    ds = sample()
    ds["metadata"].update(uid="u1", namespace="ns")
    ds["spec"]["uuc"]["thirdParty"] = {"url": URL, "checkCMD": f"curl --fail {URL}"}
    return ds


def rendered(ds: dict[str, Any]) -> list[dict[str, Any]]:
    d = Driver(ds, FakeCluster())
    d.converge()
    return list(d.fc.objects.values())


def test_no_configmap_holds_the_token_and_each_consumer_reads_it_from_a_secret() -> None:
    objects = rendered(with_token())
    configmaps = [o for o in objects if o["kind"] == "ConfigMap"]
    assert configmaps and all(TOKEN not in json.dumps(o) for o in configmaps)
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"
               and o["metadata"]["name"].endswith(ENV_SECRET_SUFFIX)}
    assert "uuc" + ENV_SECRET_SUFFIX in secrets and "api-manager" + ENV_SECRET_SUFFIX in secrets
    assert base64.b64decode(secrets["api-manager" + ENV_SECRET_SUFFIX]["data"]["UUC_URL"]).decode() == URL
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api-manager")
    env_from = deploy["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"configMapRef": {"name": "api-manager"}}, {"secretRef": {"name": "api-manager-secret-env"}}]
    uuc = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "uuc")
    assert "data" not in uuc, "its one setting moved out: no empty map the API server would not keep (drift)"
    # only Secrets hold it -- and the ControllerRevision, a copy of the spec itself (issue 24 B6: not done here)
    shown = [o for o in objects if o["kind"] not in ("Secret", "ControllerRevision")]
    assert TOKEN not in json.dumps(shown)


def test_without_a_secret_in_the_url_nothing_changes() -> None:
    ds = with_token()
    ds["spec"]["uuc"]["thirdParty"] = {"url": "http://uuc.example:8080/duc?tenant=a"}
    objects = rendered(ds)
    assert not [o for o in objects if o["metadata"]["name"].endswith(ENV_SECRET_SUFFIX)]
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api-manager")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "api-manager"}}]


def test_carries_secret() -> None:
    assert carries_secret("http://h/?token=x") and carries_secret("http://h/?a=1&Password=x")
    assert not carries_secret("http://h/?tenant=a") and not carries_secret("jdbc:mysql://db:3306/x?useSSL=false")


def test_the_rollout_converges_and_stays_quiet_through_the_bounded_cache() -> None:
    d = Driver(with_token(), FakeCluster())
    d.converge()
    cached = {k: cachefilter.transform_for(k[0], KEYS)(dict(o)) for k, o in d.fc.objects.items()}
    p = plan(d.ds, Observed(objects=cached, probes=d.fc.probes), Facts(now="2026-01-01T00:10:00Z", secret_seed="s"),
             DATASERVICE)
    assert not p.apply and not p.delete, [a.manifest["metadata"]["name"] for a in p.apply]
    stored = json.dumps([o for (k, _), o in d.fc.objects.items() if k != "Secret" and k != "ControllerRevision"])
    assert TOKEN not in stored
