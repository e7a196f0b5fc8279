"""Every spec rule fails with the field path and the allowed values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from d3os_core import validate_spec

from .helpers import DATASERVICE, sample

Mutate = Callable[[dict[str, Any]], None]


def errors_for(mutate: Mutate) -> list[str]:
    spec = sample()["spec"]
    mutate(spec)
    return [str(e) for e in validate_spec(spec, DATASERVICE)]


def test_the_seed_sample_is_valid_verbatim() -> None:
    assert validate_spec(sample()["spec"], DATASERVICE) == []


CASES: list[tuple[str, Mutate, str]] = [
    ("kind out of range", lambda s: s["eureka"].update(kind=4),
     "spec.eureka.kind: must be one of 0 (Deployment), 1 (StatefulSet), 2 (DaemonSet), 3 (thirdParty)"),
    ("kind negative", lambda s: s["uuc"].update(kind=-1), "spec.uuc.kind: must be one of 0"),
    ("kind as text", lambda s: s["eureka"].update(kind="deployment"), "spec.eureka.kind: must be one of"),
    ("kind missing", lambda s: s["eureka"].pop("kind"), "spec.eureka.kind: required field is missing"),
    ("mysql as daemonset", lambda s: s["mysql"].update(kind=2),
     "spec.mysql.kind: mysql may not be 2 (DaemonSet) (each node would keep its own copy of the data); "
     "allowed: 0 (Deployment), 1 (StatefulSet), 3 (thirdParty)"),
    ("kind 3 without thirdParty", lambda s: s["eureka"].update(kind=3),
     "spec.eureka.thirdParty: kind 3 (thirdParty) needs thirdParty.url, thirdParty.check or thirdParty.checkCMD"),
    ("kind 3 with empty thirdParty", lambda s: s["uuc"].update(thirdParty={}),
     "spec.uuc.thirdParty: kind 3 (thirdParty) needs"),
    ("checkCMD with shell syntax", lambda s: s["uuc"]["thirdParty"].update(checkCMD="curl http://a; rm -rf /"),
     "spec.uuc.thirdParty.checkCMD: checkCMD may not contain shell syntax (';')"),
    ("checkCMD other program", lambda s: s["uuc"]["thirdParty"].update(checkCMD="wget http://a"),
     "spec.uuc.thirdParty.checkCMD: checkCMD program 'wget' is not supported"),
    ("bad url", lambda s: s["uuc"]["thirdParty"].update(checkCMD=None, url="ftp://x"),
     "spec.uuc.thirdParty"),
    ("uppercase name", lambda s: s["web"].update(name="Web"), "spec.web.name: 'Web' is not a DNS-1035 label"),
    ("name with dot", lambda s: s["auth"].update(name="auth.v2"), "spec.auth.name: 'auth.v2' is not a DNS-1035"),
    ("name too long", lambda s: s["auth"].update(name="a" * 64), "spec.auth.name"),
    ("name starting with digit", lambda s: s["auth"].update(name="1auth"), "spec.auth.name"),
    ("unicode name", lambda s: s["auth"].update(name="认证"), "spec.auth.name"),
    ("duplicate names", lambda s: s["auth"].update(name="web"),
     "names must be unique within the resource"),
    ("name colliding with an extra ConfigMap", lambda s: s["proxy"].update(name="web-template"),
     "gives an object named 'web-template', which spec.proxy.name already uses"),
    ("statefulset name too long", lambda s: s["mysql"].update(name="m" * 53),
     "spec.mysql.name: a StatefulSet name may have at most 52 characters"),
    ("port zero", lambda s: s["auth"].update(port=0), "spec.auth.port: must be from 1 to 65535, got 0"),
    ("port too big", lambda s: s["auth"].update(port=70000), "spec.auth.port: must be from 1 to 65535"),
    ("port as text", lambda s: s["auth"].update(port="http"), "spec.auth.port"),
    ("nodePort out of range", lambda s: s["web"].update(nodePort=8080),
     "spec.web.nodePort: must be from 30000 to 32767 (the NodePort range), got 8080"),
    ("duplicate nodePort", lambda s: s["auth"].update(nodePort=30180),
     "30180 is already used by spec.auth.nodePort; nodePorts must be unique"),
    ("negative replica", lambda s: s["auth"].update(replica=-1), "spec.auth.replica: must be from 0 to 1000"),
    ("empty image", lambda s: s["auth"].update(image=""), "spec.auth.image"),
    ("image with space", lambda s: s["auth"].update(image="a b"), "spec.auth.image: an image reference is registry"),
    ("image missing", lambda s: s["auth"].pop("image"), "spec.auth.image: required field is missing"),
    ("bad env name", lambda s: s["api-manager"]["env"].update({"1bad": "x"}),
     "spec.api-manager.env.1bad: env name '1bad' must match"),
    ("env value not text", lambda s: s["api-manager"]["env"].update({"N": 5}), "spec.api-manager.env.N"),
    ("unknown field", lambda s: s["proxy"].update(bogus=1),
     "spec.proxy.bogus: unknown field 'bogus'; allowed: dependsOn, env, files, image, name, nodePort"),
    ("unknown component", lambda s: s.update(redis={"name": "redis"}), "spec.redis: unknown field 'redis'"),
    ("missing component", lambda s: s.pop("web"), "spec.web: required field is missing"),
    ("component null", lambda s: s.update(web=None), "spec.web"),
    ("dependsOn unknown", lambda s: s["auth"].update(dependsOn=["redis"]),
     "spec.auth.dependsOn[0]: 'redis' is not a component; allowed: mysql, uuc, eureka"),
    ("dependsOn itself", lambda s: s["auth"].update(dependsOn=["auth"]),
     "spec.auth.dependsOn[0]: a component cannot depend on itself"),
    ("dependency cycle", lambda s: s["mysql"].update(dependsOn=["web"]), "dependency cycle: mysql -> web"),
    ("storage on a component without data", lambda s: s["eureka"].update(storage={"size": "1Gi"}),
     "spec.eureka.storage: eureka keeps no data; storage applies to mysql"),
    ("bad storage size", lambda s: s["mysql"].update(storage={"size": "lots"}), "spec.mysql.storage.size"),
    ("files on a component without a file ConfigMap", lambda s: s["auth"].update(files={"a.py": ""}),
     "spec.auth.files: auth has no file ConfigMap; files applies to trd-adapter"),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(mutate: Mutate, expected: str) -> None:
    errors = errors_for(mutate)
    assert any(expected in e for e in errors), errors


def test_all_problems_are_reported_at_once() -> None:
    def many(s: dict[str, Any]) -> None:
        s["auth"]["port"] = 0
        s["web"]["name"] = "Web"
        s["eureka"]["kind"] = 9

    errors = errors_for(many)
    assert {e.split(":")[0] for e in errors} == {"spec.auth.port", "spec.web.name", "spec.eureka.kind"}


def test_cross_field_rules_are_reported_beside_schema_errors() -> None:
    """A field that breaks the schema hides no rule about other fields (one round trip fixes everything)."""
    def both(s: dict[str, Any]) -> None:
        s["mysql"]["kind"] = 2  # a cross-field rule (mysql may not be a DaemonSet)
        s["web"]["nodePort"] = 1  # a schema rule

    errors = errors_for(both)
    assert [e.split(":")[0] for e in errors] == ["spec.web.nodePort", "spec.mysql.kind"], errors

    def same_field(s: dict[str, Any]) -> None:
        s["mysql"]["kind"] = 9  # out of the schema's range: told once, not again by the kind rule
        s["web"]["nodePort"] = 1

    errors = errors_for(same_field)
    assert sorted(e.split(":")[0] for e in errors) == ["spec.mysql.kind", "spec.web.nodePort"], errors


def test_optional_additions_are_accepted() -> None:
    def extras(s: dict[str, Any]) -> None:
        s["mysql"].update(image="mysql:8.4", port=3307, replica=1,
                          storage={"size": "20Gi", "storageClassName": "fast"})
        s["auth"].update(resources={"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
                         dependsOn=["eureka"])
        s["trd-adapter"]["files"] = {"main.py": "print('hi')"}
        s["imagePullSecrets"] = ["regcred"]
        s["auth"]["env"] = None

    assert errors_for(extras) == []
