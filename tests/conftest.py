"""Shared fixtures. ``torchserve``: one REAL TorchServe per test session (tests marked ``server``);
``torchserve_prod``: another with the production config and token auth (security, metrics, logs, disk).

It builds the archives from ``$THAIPLATE_MODELS`` (else ``models/``) into a temp model store, starts
TorchServe from ``.venv-serve`` when it exists (the torch-free serving env), with token auth disabled
and free ports, registers the workflow and ``pipeline.mar``, and at the end stops it and checks that
no Java frontend or Python worker of this server is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVE_VENV = ROOT / ".venv-serve"
STAGES = ("detector", "recognizer", "classifier")


def serving_python() -> Path:
    py = SERVE_VENV / "bin" / "python"
    return py if py.exists() else Path(sys.executable)


def models_dir() -> Path:
    return Path(os.environ.get("THAIPLATE_MODELS") or ROOT / "models")



def server_processes(run_dir: Path) -> list[int]:
    """PIDs whose command line mentions this server's run dir (Java frontend and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in cmd and ("java" in cmd or "model_service_worker" in cmd):
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="session")
def torchserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with serve(tmp_path_factory.mktemp("torchserve"), env="dev", auth=False) as server:
        yield server


@contextlib.contextmanager
def serve(base: Path, *, env: str, auth: bool) -> Iterator:
    """Build the archives into ``base/model_store``, run TorchServe from ``base/run`` with the workflow
    and ``pipeline.mar``, log to ``base/torchserve.log``; on exit stop it and check for orphans."""
    from thaiplate.serving import server as ts

    if shutil.which("java") is None:
        pytest.skip("Java is not installed: TorchServe needs a JRE 17")
    mdir = models_dir()
    missing = [n for n in STAGES if not (mdir / f"{n}.yaml").exists()]
    if missing:
        pytest.skip(f"no {', '.join(missing)} model in {mdir} yet (set THAIPLATE_MODELS or add models/)")
    store, run_dir = base / "model_store", base / "run"
    py = serving_python()
    build = subprocess.run(
        [str(py), "-m", "thaiplate.cli", "archive", "--models-dir", str(mdir), "--out", str(store)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    log_path = base / "torchserve.log"
    for attempt in (1, 2):
        # free_port() is check-then-use: another server on the machine may take a port in between
        logged = log_path.stat().st_size if log_path.exists() else 0
        ports = ts.Ports(ts.free_port(), ts.free_port(), ts.free_port())
        server = ts.start(
            store,
            env=env,
            ports=ports,
            run_dir=run_dir,
            auth=auth,
            preload=[f"{ts.PIPELINE}={ts.PIPELINE}.mar"],
            torchserve=str(py.parent / "torchserve"),
            log_file=log_path,
        )
        try:
            ts.wait_ready(server, timeout=180)
            ts.register_workflow(server)
            ts._wait_model(server, ts.PIPELINE)
            break
        except Exception:
            server.stop()
            log = log_path.read_bytes()[logged:].decode(errors="replace")
            if attempt == 1 and "Address already in use" in log:
                continue
            pytest.fail(f"TorchServe did not come up; log tail:\n{log[-4000:]}")
    server.log_file = base / "torchserve.log"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
    deadline = time.monotonic() + 10
    while server_processes(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = server_processes(run_dir)
    assert not left, f"orphan TorchServe processes after stop: {left}"


@pytest.fixture(scope="session")
def torchserve_prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """TorchServe with ``config.prod.properties`` and token auth on (``THAIPLATE_TOKEN_AUTH=1``), for
    tests/test_security.py and tests/test_metrics_logs.py; ``server.token`` holds the keys."""
    with serve(tmp_path_factory.mktemp("torchserve-prod"), env="prod", auth=True) as server:
        yield server
