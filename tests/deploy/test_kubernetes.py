"""The Kubernetes manifests: rendered with kubectl's kustomize, every object validated offline.

Core objects are validated by `kubernetes-validate` against the schemas of a current Kubernetes release
(strict: unknown fields are errors). The KEDA ScaledObject and the prometheus-operator ServiceMonitor are
custom resources whose schemas no Debian or PyPI package ships, so their required fields are checked
here, spelled out from the CRDs (keda.sh/v1alpha1, monitoring.coreos.com/v1).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33"
Docs = list[dict[str, Any]]
Rendered = tuple[str, Docs]
CUSTOM = {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "ServiceMonitor")}


def render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=["base", "overlays/hpa", "overlays/full"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def test_every_core_object_validates_against_kubernetes_schemas(
    rendered: Rendered,
) -> None:
    _, docs = rendered
    core = [d for d in docs if (d["apiVersion"], d["kind"]) not in CUSTOM]
    assert core
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_wrong_objects_are_rejected_by_the_validation() -> None:
    deployment = by_kind(render("base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["skill-engine"]
    result: dict[str, Any] = containers[0]
    return result


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration.removesuffix("s"))


def test_pods_are_locked_down_and_probed(rendered: Rendered) -> None:
    _, docs = rendered
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"] + pod.get("initContainers", []):
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    main = container(docs)
    assert main["args"] == ["serve"]
    assert main["startupProbe"]["httpGet"]["path"] == "/health"
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert {"/var/cache/skill-engine", "/var/lib/skill-engine", "/tmp", "/etc/skill-engine"} <= mounts


def test_termination_grace_covers_pre_stop_and_shutdown_grace(
    rendered: Rendered,
) -> None:
    _, docs = rendered
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    main = container(docs)
    pre_stop = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = seconds(env(main)["SHUTDOWN_GRACE"])
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + grace + 5


def test_memory_and_cache_size_come_from_the_downward_api() -> None:
    variables = env(container(render("base")))
    assert variables["MEMORY_REQUEST"] == {
        "resourceFieldRef": {"containerName": "skill-engine", "resource": "requests.memory"}
    }
    assert variables["MEMORY_LIMIT"]["resourceFieldRef"]["resource"] == "limits.memory"
    assert (
        variables["WASMTIME_CACHE_SIZE_LIMIT"]["resourceFieldRef"]["resource"] == "requests.ephemeral-storage"
    )


def test_selectors_match_the_pods(rendered: Rendered) -> None:
    _, docs = rendered
    labels = by_kind(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = by_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "metrics"}
    pdb = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_config_map_carries_config_toml_and_secrets_are_references() -> None:
    docs = render("overlays/full")
    config = by_kind(docs, "ConfigMap")
    text = config["data"]["config.toml"]
    for key in ("[namespaces.my-team]", "inference-url", "authorization-url", "otel-endpoint"):
        assert key in text
    assert "password" not in text.replace("registry-password", "")
    assert not [d for d in docs if d["kind"] == "Secret"]  # by reference only
    variables = env(container(docs))
    assert variables["NAMESPACES__MY_TEAM__REGISTRY_PASSWORD"] == {
        "secretKeyRef": {"name": "skill-engine-secrets", "key": "registry-password"}
    }
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config["metadata"]["name"]
    assert volumes["cache"] == {
        "name": "cache",
        "persistentVolumeClaim": {"claimName": "skill-engine-compiled"},
    }
    assert [c["args"] for c in pod["initContainers"]] == [["compile"]]
    pvc = by_kind(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_hpa_scales_the_deployment_on_cpu() -> None:
    hpa = by_kind(render("overlays/hpa"), "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "skill-engine",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_keda_scaled_object_has_its_required_fields_and_scales_on_in_flight() -> None:
    docs = render("overlays/full")
    scaled = by_kind(docs, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["name"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == by_kind(docs, "Deployment")["metadata"]["name"]
    assert spec["triggers"], "triggers is required and non-empty"
    for trigger in spec["triggers"]:
        assert isinstance(trigger["type"], str) and isinstance(trigger["metadata"], dict)
        assert all(isinstance(v, str) for v in trigger["metadata"].values()), "metadata values are strings"
    query = spec["triggers"][0]["metadata"]["query"]
    assert "kernel_skill_invocations_in_flight" in query and "kernel_skill_invocations_queued" in query
    assert isinstance(spec["minReplicaCount"], int) and spec["maxReplicaCount"] >= spec["minReplicaCount"]
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"], "KEDA owns the HPA"


def test_service_monitor_has_its_required_fields_and_scrapes_metrics() -> None:
    docs = render("overlays/full")
    monitor = by_kind(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= by_kind(docs, "Service")["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def test_ingress_allows_long_requests_and_unbuffered_streams() -> None:
    annotations = by_kind(render("overlays/full"), "Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 600  # SKILL_TIMEOUT 10m


def test_make_k8s_renders_the_defaults_into_one_file(tmp_path: Path) -> None:
    output = tmp_path / "k8s.yaml"
    subprocess.run(["make", "-s", f"K8S_OUT={output}", str(output)], cwd=ROOT, check=True, timeout=120)
    assert [d for d in yaml.safe_load_all(output.read_text()) if d] == render("base")
