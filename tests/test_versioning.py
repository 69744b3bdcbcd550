"""Model versioning on a REAL TorchServe (docs/VERSIONING.md): archive as N+1, register, canary,
set-default, rollback, unregister, and which version the workflow's nodes run.

Server tests (marker ``server``) use their own module-scoped server (not conftest's shared one): these tests change default versions. The
workflow only, no pipeline.mar (one worker less). Everything goes through ``thaiplate models`` /
``thaiplate archive`` in-process, so the CLI is what is tested. The rollback record's rules are
also checked without a server, against a fake client.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import models_dir, server_processes, serving_python

from thaiplate.cli import main as thaiplate
from thaiplate.serving import canary
from thaiplate.serving import server as ts
from thaiplate.serving.management import (
    ApiError,
    Client,
    History,
    ModelVersion,
    promote,
    rollback,
    version_key,
)

NODE = f"{ts.WORKFLOW}__recognizer"
# the committed recogniser, re-archived as the version after its card's (any retrain bumps the card); a served
# INT8 copy is versioned like `18-int8`, so the next number is taken from the leading digits
_CARD = str(yaml.safe_load((models_dir() / "recognizer.yaml").read_text(encoding="utf-8"))["version"])
CANDIDATE = str(int(re.match(r"\d+", _CARD).group()) + 1)
TOY = str(int(CANDIDATE) + 10)  # a constant-output recogniser: certainly worse


@dataclass
class Versioned:
    server: ts.Server
    client: Client
    store: Path
    state: Path
    card_version: str  # models/recognizer.yaml's version: what the workflow registered

    def cli(self, *args: str) -> int:
        conn = ["--management", self.server.management_url, "--inference", self.server.inference_url]
        return thaiplate(["models", *conn, "--state", str(self.state), *args])

    def dag_versions(self) -> dict[str, str]:
        """The ``models`` field of a DAG answer: which versions served it."""
        sample = canary.synthetic_set(1, seed=5)[0]
        status, body = ts._request("POST", f"{self.server.inference_url}/wfpredict/{ts.WORKFLOW}", None, 60,
                                   body=sample.data, content_type=sample.content_type)  # fmt: skip
        assert status == 200, body[:300]
        return json.loads(body)["models"]

    def versions(self) -> dict[str, bool]:
        return {v.version: v.default for v in self.client.versions(NODE)}


def archive(py: Path, *args: str) -> None:
    build = subprocess.run([str(py), "-m", "thaiplate.cli", "archive", *args], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr


@pytest.fixture(scope="module")
def versioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Versioned]:
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: TorchServe needs a JRE 17")
    mdir = models_dir()
    if not all((mdir / f"{n}.yaml").exists() for n in ("detector", "recognizer", "classifier")):
        pytest.skip(f"no complete model set in {mdir}")
    base = tmp_path_factory.mktemp("versioning")
    store, py = base / "model_store", serving_python()
    only = [a for n in ("detector", "recognizer", "classifier", ts.WORKFLOW) for a in ("--only", n)]
    archive(py, "--models-dir", str(mdir), "--out", str(store), *only)
    archive(py, "--models-dir", str(mdir), "--out", str(store), "--only", "recognizer", "--version", CANDIDATE)
    toy = pytest.importorskip("thaiplate.testing.toymodels").write_toy_models(base / "toy")  # needs onnx
    archive(py, "--models-dir", str(toy), "--out", str(store), "--only", "recognizer", "--version", TOY)

    ports = ts.Ports(ts.free_port(), ts.free_port(), ts.free_port())
    log = base / "torchserve.log"
    server = ts.start(store, ports=ports, run_dir=base / "run", auth=False, torchserve=str(py.parent / "torchserve"),
                      log_file=log)  # fmt: skip
    try:
        ts.wait_ready(server, timeout=180)
        ts.register_workflow(server)
    except Exception:
        server.stop()
        pytest.fail(f"TorchServe did not come up; log tail:\n{log.read_text(errors='replace')[-4000:]}")
    client = Client(server.management_url, server.inference_url)
    card = str(yaml.safe_load((mdir / "recognizer.yaml").read_text(encoding="utf-8"))["version"])
    yield Versioned(server, client, store, base / "defaults.json", card)
    server.stop()
    deadline = time.monotonic() + 10
    while server_processes(base / "run") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not server_processes(base / "run"), "orphan TorchServe processes after stop"


def manifest_and_yaml(mar: Path, name: str) -> tuple[str, str]:
    with zipfile.ZipFile(mar) as z:
        version = json.loads(z.read("MAR-INF/MANIFEST.json"))["model"]["modelVersion"]
        return version, str(yaml.safe_load(z.read(f"{name}.yaml"))["version"])


@pytest.mark.server
def test_versioned_archive_agrees_with_its_yaml(versioned: Versioned) -> None:
    """--version N: manifest and packed YAML both say N (responses report the YAML's); NAME.mar untouched."""
    assert manifest_and_yaml(versioned.store / f"recognizer.v{CANDIDATE}.mar", "recognizer") == (CANDIDATE,) * 2
    card = versioned.card_version
    assert manifest_and_yaml(versioned.store / "recognizer.mar", "recognizer") == (card, card)


@pytest.mark.server
def test_register_set_default_rollback_follow_the_dag(versioned: Versioned) -> None:
    v = versioned
    assert v.dag_versions()["recognizer"] == v.card_version
    assert v.cli("register", str(v.store / f"recognizer.v{CANDIDATE}.mar"), "--name", NODE) == 0
    assert v.versions() == {v.card_version: True, CANDIDATE: False}  # registering does not promote
    assert v.dag_versions()["recognizer"] == v.card_version

    # the workflow's node runs the model's DEFAULT version: set-default switches the DAG at once
    assert v.cli("set-default", NODE, CANDIDATE) == 0
    assert v.client.default_version(NODE) == CANDIDATE
    assert v.dag_versions()["recognizer"] == CANDIDATE

    assert v.cli("rollback", NODE) == 0
    assert v.client.default_version(NODE) == v.card_version
    assert v.dag_versions()["recognizer"] == v.card_version
    assert v.cli("rollback", NODE) == 2  # nothing recorded and nothing below the card version


@pytest.mark.server
def test_canary_passes_same_weights_and_fails_a_worse_model(versioned: Versioned, tmp_path: Path, capsys) -> None:
    v = versioned
    report = tmp_path / "canary.json"
    assert v.cli("canary", NODE, CANDIDATE, "--n", "12", "--json", str(report)) == 0
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["candidate"]["version"] == CANDIDATE and doc["default"]["version"] == v.card_version
    assert doc["candidate"]["served_by"] == {"recognizer": CANDIDATE}  # the version asked for answered
    assert doc["candidate"]["correct"] == doc["default"]["correct"] and not doc["worse"]
    assert "not worse" in capsys.readouterr().out

    assert v.cli("register", str(v.store / f"recognizer.v{TOY}.mar"), "--name", NODE) == 0
    capsys.readouterr()
    assert v.cli("canary", NODE, TOY, "--n", "12", "--json", "-") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["worse"] and doc["candidate"]["correct"] < doc["default"]["correct"]
    assert v.cli("unregister", NODE, TOY) == 0


@pytest.mark.server
def test_unregister_refuses_the_default(versioned: Versioned, capsys) -> None:
    v = versioned
    assert v.cli("set-default", NODE, CANDIDATE) == 0
    assert v.cli("unregister", NODE, CANDIDATE) == 2
    assert "Cannot remove default version" in capsys.readouterr().err
    assert v.cli("rollback", NODE) == 0  # recorded by set-default
    assert v.cli("unregister", NODE, CANDIDATE) == 0
    assert v.versions() == {v.card_version: True}
    assert v.dag_versions()["recognizer"] == v.card_version


@pytest.mark.server
def test_extra_node_version_blocks_workflow_unregistration(versioned: Versioned) -> None:
    """TorchServe 0.12 unregisters a workflow's nodes by their default version, which it refuses while
    another version exists: the DELETE fails half-way (other nodes gone, this one left). Last test:
    it leaves the workflow unregistered."""
    v = versioned
    assert v.cli("register", str(v.store / f"recognizer.v{CANDIDATE}.mar"), "--name", NODE) == 0
    status, _ = ts._request("DELETE", f"{v.server.management_url}/workflows/{ts.WORKFLOW}", timeout=60)
    assert status == 500
    assert v.client.models() == [NODE] and set(v.versions()) == {v.card_version, CANDIDATE}
    # recovery: remove the extra version, then the node's last one
    assert v.cli("unregister", NODE, CANDIDATE) == 0
    assert v.cli("unregister", NODE, v.card_version) == 0
    assert v.client.models() == []


# ------------------------------------------------------------------ rollback rules, no server


@dataclass
class FakeClient:
    """Just what promote/rollback use: versions with a default, set_default."""

    registered: list[str]
    default: str
    management_url: str = "http://fake:8081"

    def versions(self, name: str) -> list[ModelVersion]:
        return [ModelVersion(name, v, "", v == self.default, 1, 1, 1, 0, ()) for v in self.registered]

    def default_version(self, name: str) -> str:
        return self.default

    def set_default(self, name: str, version: str) -> str:
        assert version in self.registered
        self.default = version
        return "ok"


def test_rollback_goes_to_the_previous_default_not_the_highest(tmp_path: Path) -> None:
    c, h = FakeClient(["2", "3", "4"], "2"), History(tmp_path / "s.json")
    promote(c, h, "m", "3")
    assert rollback(c, h, "m").current == "2"  # not 4 (a canary candidate)
    promote(c, h, "m", "3")
    promote(c, h, "m", "4")
    assert [rollback(c, h, "m").current for _ in range(2)] == ["3", "2"]


def test_rollback_skips_unregistered_records_then_falls_back_below(tmp_path: Path) -> None:
    c, h = FakeClient(["2", "3", "10"], "2"), History(tmp_path / "s.json")
    promote(c, h, "m", "10")  # records 2
    c.registered.remove("2")
    change = rollback(c, h, "m")
    assert (change.current, change.reason.startswith("no usable record")) == ("3", True)  # natural order: 3 < 10
    with pytest.raises(ApiError):
        rollback(c, h, "m")  # nothing below 3


def test_version_order_is_natural() -> None:
    assert sorted(["10", "2", "2.10", "2.9", "1"], key=version_key) == ["1", "2", "2.9", "2.10", "10"]
