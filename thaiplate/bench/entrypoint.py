"""The service exactly as the container runs it: ``scripts/serve`` in a child process.

Why not :func:`thaiplate.bench.service.running`: fault and soak runs are about the production
process tree (supervisor -> ``torchserve`` launcher -> JVM -> workers) and its reaction to failures,
e.g. the supervisor must exit non-zero when the JVM dies. So the supervisor itself is started, on
free loopback ports with the dev config (``config.properties``: 127.0.0.1 only; the prod config
listens on 0.0.0.0, which a shared machine must not), and driven only through its environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

from thaiplate.serving import server as ts

SERVE = ts.ROOT / "scripts" / "serve"


@dataclass
class Entrypoint:
    """A running ``scripts/serve``; ``server`` views its TorchServe (URLs, run dir, JVM pid)."""

    proc: subprocess.Popen
    server: ts.Server
    mode: str
    log: Path
    ready_s: float = 0.0  # start -> every mode ready
    _log_fh: object = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The supervisor: the root of the whole process tree (PSS is summed from here)."""
        return self.proc.pid

    def endpoints(self) -> dict[str, str]:
        return endpoints_for(self.mode)

    def stop(self, grace: float = 40.0) -> int | None:
        """SIGTERM the supervisor (its own clean shutdown), SIGKILL the session if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._log_fh is not None:
            self._log_fh.close()  # type: ignore[attr-defined]
            self._log_fh = None
        return self.proc.returncode


def endpoint(mode: str) -> str:
    """The inference path of a serving mode (``dag`` or ``pipeline``)."""
    return ts.ENDPOINTS[mode]


def endpoints_for(mode: str) -> dict[str, str]:
    """Every mode ``mode`` serves (``both``: two) -> its inference path."""
    return {m: endpoint(m) for m in ts.served_modes(mode)}


def start(model_store: Path, mode: str = "both", run_dir: Path | None = None, timeout: float = 300.0) -> Entrypoint:
    """Start ``scripts/serve`` with ``THAIPLATE_MODE=mode`` and wait until it prints ready for every mode."""
    if mode not in ts.MODES:
        raise ValueError(f"mode must be one of {ts.MODES}, got {mode!r}")
    run_dir = Path(run_dir or tempfile.mkdtemp(prefix="thaiplate-entry-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = ts.Ports(ts.free_port(), ts.free_port(), ts.free_port())
    env = {
        **os.environ,
        "THAIPLATE_MODE": mode,
        "THAIPLATE_ENV": "dev",
        "MODEL_STORE": str(Path(model_store).resolve()),
        "PORT": str(ports.inference),
        "THAIPLATE_MANAGEMENT_PORT": str(ports.management),
        "THAIPLATE_METRICS_PORT": str(ports.metrics),
        "THAIPLATE_RUN_DIR": str(run_dir / "ts"),
        "THAIPLATE_START_TIMEOUT": str(timeout),
    }
    log = run_dir / "serve.log"
    fh = open(log, "ab")  # noqa: SIM115 - closed by Entrypoint.stop
    t0 = time.monotonic()
    # own session: a kill of the whole tree never reaches the caller (pytest, the fault driver)
    proc = subprocess.Popen([str(SERVE)], env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    entry = Entrypoint(proc, ts.Server(proc, run_dir / "ts", ports), mode, log, _log_fh=fh)
    wanted = len(ts.served_modes(mode))  # one "serve: ready" line per mode
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            entry.stop()
            raise ts.ServeError(f"scripts/serve exited with {proc.returncode}; log tail:\n{tail(log)}")
        if log.read_text(errors="replace").count("serve: ready (") >= wanted:
            entry.ready_s = time.monotonic() - t0
            return entry
        time.sleep(0.5)
    entry.stop()
    raise ts.ServeError(f"scripts/serve not ready within {timeout:.0f} s; log tail:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def workers(server: ts.Server, model: str) -> list[tuple[int, str]]:
    """``(pid, status)`` of each worker of ``model`` from the management API; [] if it cannot answer."""
    try:
        status, body = ts._request("GET", f"{server.management_url}/models/{model}", server.token.get("management"))
    except (urllib.error.URLError, OSError):
        return []
    if status != 200:
        return []
    doc = json.loads(body)
    return [
        (int(w["pid"]), str(w.get("status")))
        for entry in (doc if isinstance(doc, list) else [doc])
        for w in entry.get("workers", [])
        if w.get("pid")
    ]


def models(server: ts.Server) -> list[str]:
    """Every model TorchServe serves, DAG nodes included (named ``<workflow>__<node>`` in 0.12)."""
    try:
        status, body = ts._request("GET", f"{server.management_url}/models?limit=100", server.token.get("management"))
    except (urllib.error.URLError, OSError):
        return []
    return [m["modelName"] for m in json.loads(body).get("models", [])] if status == 200 else []
