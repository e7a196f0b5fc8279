"""A secret in a setting's text (a URL's ``?token=``) is never copied into a ConfigMap in clear (issue 24, B6).

A spec can no longer carry one (a URL or checkCMD with a secret-named query value is refused by both
validators: tests/unit/test_url_credentials.py), but a product file's own settings can: those settings go to
a Secret beside the component's ConfigMap, consumed the same way (envFrom, or the same files projected
together), and the rollout converges through the operator's bounded cache. Nothing of the product file's
settings is recorded in a ControllerRevision (it records the spec)."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from d3os_core import Facts, Observed, plan
from d3os_core.fake import FakeCluster
from d3os_core.product import ProductDef
from d3os_core.render import ENV_SECRET_SUFFIX, carries_secret
from d3os_operator import cachefilter

from .helpers import DATASERVICE, Driver, sample

TOKEN = "hunter2hunter2"
URL = f"http://report.example:8080/hook?token={TOKEN}"


def with_token(url: str = URL) -> ProductDef:
    """The dataservice product whose api-manager has one more setting: ``REPORT_URL``."""
    components = tuple(dataclasses.replace(c, config={**c.config, "REPORT_URL": url}) if c.key == "api-manager"
                       else c for c in DATASERVICE.components)
    return dataclasses.replace(DATASERVICE, components=components)


KEYS = frozenset(k for c in with_token().components for k in (*(c.generated_secret or {}), *c.config, *c.exports))


def instance() -> dict[str, Any]:
    ds = sample()
    ds["metadata"].update(uid="u1", namespace="ns")
    return ds


def rendered(product: ProductDef) -> list[dict[str, Any]]:
    d = Driver(instance(), FakeCluster(), product)
    d.converge()
    return list(d.fc.objects.values())


def test_no_configmap_or_revision_holds_the_token_and_the_consumer_reads_it_from_a_secret() -> None:
    objects = rendered(with_token())
    configmaps = [o for o in objects if o["kind"] == "ConfigMap"]
    assert configmaps and all(TOKEN not in json.dumps(o) for o in configmaps)
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"
               and o["metadata"]["name"].endswith(ENV_SECRET_SUFFIX)}
    assert set(secrets) == {"api-manager" + ENV_SECRET_SUFFIX}
    assert base64.b64decode(secrets["api-manager" + ENV_SECRET_SUFFIX]["data"]["REPORT_URL"]).decode() == URL
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api-manager")
    env_from = deploy["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"configMapRef": {"name": "api-manager"}}, {"secretRef": {"name": "api-manager-secret-env"}}]
    assert any(o["kind"] == "ControllerRevision" for o in objects)
    shown = [o for o in objects if o["kind"] != "Secret"]
    assert TOKEN not in json.dumps(shown)


def test_without_a_secret_in_the_setting_nothing_changes() -> None:
    objects = rendered(with_token("http://report.example:8080/hook?tenant=a"))
    assert not [o for o in objects if o["metadata"]["name"].endswith(ENV_SECRET_SUFFIX)]
    deploy = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api-manager")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "api-manager"}}]


def test_carries_secret() -> None:
    assert carries_secret("http://h/?token=x") and carries_secret("http://h/?a=1&Password=x")
    assert not carries_secret("http://h/?tenant=a") and not carries_secret("jdbc:mysql://db:3306/x?useSSL=false")


def test_the_rollout_converges_and_stays_quiet_through_the_bounded_cache() -> None:
    product = with_token()
    d = Driver(instance(), FakeCluster(), product)
    d.converge()
    cached = {k: cachefilter.transform_for(k[0], KEYS)(dict(o)) for k, o in d.fc.objects.items()}
    p = plan(d.ds, Observed(objects=cached, probes=d.fc.probes), Facts(now="2026-01-01T00:10:00Z", secret_seed="s"),
             product)
    assert not p.apply and not p.delete, [a.manifest["metadata"]["name"] for a in p.apply]
    stored = json.dumps([o for (k, _), o in d.fc.objects.items() if k != "Secret"])
    assert TOKEN not in stored
