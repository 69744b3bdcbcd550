"""Deployment artefacts cannot silently rot: Dockerfile invariants, deploy dry run, manifests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_invariants():
    text = _dockerfile()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(b.startswith("python:3.11-slim") for b in bases)
    runtime = text.split("# ---- stage 2")[1]
    user = re.search(r"^USER\s+(\S+)", runtime, re.M)
    assert user and user.group(1) not in ("root", "0")
    assert re.search(r"^ENTRYPOINT \[\"scripts/serve\"\]", runtime, re.M)
    assert "PORT=8080" in runtime and re.search(r"^EXPOSE 8080", runtime, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/ping", runtime, re.M)
    assert "scripts/patch-torchserve" in text and "scripts/build-archives" in text
    assert "openjdk-17-jre-headless" in runtime
    # serving must never install torch
    for line in re.findall(r"pip install[^\n]*", text):
        assert "torch==" not in line and "[train" not in line
    assert 'import torch' in text  # the build asserts torch is NOT importable


def test_entrypoint_and_copied_files_exist():
    text = _dockerfile()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for item in src.split():
            assert (ROOT / item).exists(), f"Dockerfile copies missing {item}"
    assert (ROOT / "scripts" / "serve").stat().st_mode & 0o111


def test_dockerignore_keeps_the_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for item in (".git", ".venv*", "data/", "runs/", "model_store/"):
        assert item in ignored


def test_deploy_dry_run_prints_the_exact_commands():
    r = subprocess.run([str(ROOT / "scripts" / "deploy-cloudrun"), "--project", "p1", "--tag", "t1", "--dry-run"],
                       capture_output=True, text=True, check=True)
    image = "asia-southeast1-docker.pkg.dev/p1/ocr-api-repo/ocr-api-image:t1"
    assert f"docker build -t {image}" in r.stdout and f"docker push {image}" in r.stdout
    deploy = next(line for line in r.stdout.splitlines() if line.startswith("gcloud run deploy"))
    for flag in ("--cpu 1", "--memory 512Mi", "--max-instances 1", "--region asia-southeast1", "--concurrency 4"):
        assert flag in deploy
    assert "--startup-probe" in deploy


def test_deploy_refuses_concurrency_above_the_dag_batch_size():
    r = subprocess.run([str(ROOT / "scripts" / "deploy-cloudrun"), "--project", "p", "--concurrency", "16", "--dry-run"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "stall" in r.stderr


def test_knative_service_matches_the_deploy_script():
    svc = yaml.safe_load((ROOT / "deploy" / "service.yaml").read_text())
    spec = svc["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert spec["containerConcurrency"] <= 4
    assert svc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/maxScale"] == "1"
    assert c["startupProbe"]["httpGet"]["path"] == "/ping"


def test_kubernetes_manifest_validates_against_the_api_models():
    kube = pytest.importorskip("kubernetes.client", reason="pip install kubernetes (dev extra) for schema checks")
    api = kube.ApiClient()
    kinds = {"Deployment": "V1Deployment", "Service": "V1Service", "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler"}
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s.yaml").read_text()))
    assert sorted(d["kind"] for d in docs) == sorted(kinds)
    for doc in docs:
        obj = api._ApiClient__deserialize(doc, kinds[doc["kind"]])  # raises on missing/mistyped fields
        # unknown (misspelt) keys are dropped by the models: a round trip must give the same document
        assert api.sanitize_for_serialization(obj) == doc
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
