"""The Dockerfile keeps what issue 6 asks of the image, and agrees with config/manager (no engine here to build it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "Dockerfile").read_text(encoding="utf-8")
LINES = [ln.strip() for ln in TEXT.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for ln in LINES:
        if ln.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(ln)
    return stages


def _manager_pod() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "config" / "manager" / "manager.yaml").read_text(encoding="utf-8"))
    pod: dict[str, Any] = next(d for d in docs if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]
    return pod


def test_multi_stage_slim_and_the_final_stage_has_no_build_tools() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert "slim" in TEXT.split("ARG PYTHON_IMAGE=", 1)[1].split()[0]
    final = "\n".join(stages[-1])
    assert "COPY --from=build" in final
    assert not re.search(r"\b(pip install|apt-get install|gcc|build-essential)\b", final), final


def test_runs_as_the_deployments_non_root_user_with_the_operator_entrypoint() -> None:
    final = _stages()[-1]
    user = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    pod = _manager_pod()
    (c,) = pod["containers"]
    assert int(user[-1].split(":")[0]) == pod["securityContext"]["runAsUser"]
    entry = [ln for ln in final if ln.upper().startswith("ENTRYPOINT")]
    assert entry == ['ENTRYPOINT ["d3os-operator", "run"]']
    exposed = {int(p) for ln in final if ln.upper().startswith("EXPOSE ") for p in ln.split()[1:]}
    assert exposed == {p["containerPort"] for p in c["ports"]}
