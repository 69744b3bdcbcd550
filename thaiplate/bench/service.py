"""A TorchServe for a benchmark: :mod:`thaiplate.serving.server` with three bench-only twists.

``server.start`` is used as it is (same config rendering, private temp dir, shutdown path as the
container); the twists go through its ``torchserve=`` argument, a tiny launcher script that

1. appends config overrides before TorchServe reads the file (Java ``Properties``: the last
   occurrence of a key wins; ``render_config`` appends its own override the same way):
   ``metrics_mode=prometheus`` so ``:METRICS/metrics`` exposes the per-model latency counters (in the
   default log mode the endpoint is empty and ``log4j2.xml`` switches the metric loggers off), and, for
   the production config, an inference address on 127.0.0.1 instead of 0.0.0.0 (a benchmark on a
   shared machine must not listen on the network);
2. ``exec taskset -c CPUS torchserve ...``: the CPU affinity is inherited by the JVM and by every Python
   worker it forks, so the whole server runs on the given cores, and nothing else of ours does;
3. free HTTP ports per run (``render_config`` does the same for gRPC), so several servers can
   share the machine.

The production config (``config.prod.properties``: token auth, 96 MiB serial-GC JVM, 2 netty
threads, prometheus metrics, no model API) is the default because that is what is deployed; the
inference key comes back in ``BenchServer.token`` and every benchmark request carries it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from thaiplate.serving import server as ts

LAUNCHER = "torchserve-bench"


def free_ports() -> ts.Ports:
    return ts.Ports(inference=ts.free_port(), management=ts.free_port(), metrics=ts.free_port())


def serve_venv_torchserve() -> str:
    """TorchServe of the serving venv even when the benchmark itself runs in the dev venv."""
    serve = ts.ROOT / ".venv-serve" / "bin" / "torchserve"
    return str(serve) if serve.is_file() else ts.torchserve_bin()


def write_launcher(
    run_dir: Path,
    overrides: dict[str, str],
    cpus: str | None,
    torchserve: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The wrapper script passed to ``server.start(torchserve=...)``; see the module docstring.
    ``env`` is exported before TorchServe starts: the JVM and every worker inherit it."""
    config = run_dir / "config.properties"
    lines = "\n".join(f"{k}={v}" for k, v in overrides.items())
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
    real = torchserve or serve_venv_torchserve()
    pin = ""
    if cpus:
        taskset = shutil.which("taskset")
        if not taskset:
            raise ts.ServeError("taskset not found (util-linux); run without CPU pinning or install it")
        pin = f"{shlex.quote(taskset)} -c {shlex.quote(cpus)} "
    script = (
        "#!/bin/sh\n"
        "# written by thaiplate.bench.service: config overrides, then TorchServe pinned to CPUs\n"
        f"cat >> {shlex.quote(str(config))} <<'EOF'\n"
        "# appended by thaiplate.bench.service\n"
        f"{lines}\n"
        "EOF\n"
        f"{exports}"
        f'exec {pin}{shlex.quote(real)} "$@"\n'
    )
    path = run_dir / LAUNCHER
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return path


@dataclass
class BenchServer:
    server: ts.Server
    mode: str  # dag | pipeline | both
    cpus: str | None
    env: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.ports.inference}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.server.ports.metrics}/metrics"

    @property
    def token(self) -> str | None:
        return self.server.token.get("inference")

    @property
    def root_pid(self) -> int:
        """The launcher: the whole tree (launcher, JVM, workers) hangs under it."""
        return self.server.proc.pid

    def affinity(self) -> dict[str, str]:
        """``Cpus_allowed_list`` of every process of the server (launcher, JVM, workers), by role:
        proof that the pinning reached the workers TorchServe forked."""
        from thaiplate.bench import memory

        names = self.worker_names()
        out = {}
        for pid in memory.process_tree(self.root_pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            cpus = next((ln.split(":", 1)[1].strip() for ln in status.splitlines() if ln.startswith("Cpus_allowed_list")), "?")
            role = f"worker:{names[pid]}" if pid in names else memory.role(pid)
            out[f"{role} ({pid})"] = cpus
        return out

    def endpoints(self) -> dict[str, str]:
        out = {}
        if self.mode in ("dag", "both"):
            out["dag"] = f"/wfpredict/{ts.WORKFLOW}"
        if self.mode in ("pipeline", "both"):
            out["pipeline"] = f"/predictions/{ts.PIPELINE}"
        return out

    def worker_names(self) -> dict[int, str]:
        """Worker pid -> model name, from the management API (``GET /models/NAME`` lists workers)."""
        names = {}
        tok = self.server.token.get("management")
        for model in self.models():
            try:
                doc = _get_json(f"{self.server.management_url}/models/{model}", tok)
            except OSError:
                continue
            for entry in doc if isinstance(doc, list) else [doc]:
                for w in entry.get("workers", []):
                    if w.get("pid"):
                        names[int(w["pid"])] = model
        return names

    def models(self) -> list[str]:
        tok = self.server.token.get("management")
        try:
            doc = _get_json(f"{self.server.management_url}/models?limit=100", tok)
        except OSError:
            return []
        return [m["modelName"] for m in doc.get("models", [])]


def _get_json(url: str, token: str | None, timeout: float = 5.0):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _wait_ready(server: ts.Server, timeout: float) -> None:
    """``server.wait_ready``, retried while ``key_file.json`` is still being written (TorchServe creates
    it, then fills it: a read in between is a JSON error, not a failed start)."""
    for _ in range(20):
        try:
            return ts.wait_ready(server, timeout=timeout)
        except ValueError:
            import time

            time.sleep(0.25)
    ts.wait_ready(server, timeout=timeout)


@contextlib.contextmanager
def running(
    model_store: Path,
    mode: str = "both",
    *,
    cpus: str | None = "0",
    env: str = "prod",
    run_dir: Path | None = None,
    start_timeout: float = 300.0,
    auth: bool | None = None,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[BenchServer]:
    """Start TorchServe with ``mode`` registered, yield it ready, always stop it. ``overrides`` are
    extra config lines (they win over the file's), ``environ`` extra environment (JVM and workers)."""
    if mode not in ts.MODES:
        raise ValueError(f"mode must be one of {ts.MODES}, got {mode!r}")
    model_store = Path(model_store).resolve()
    needed = ([f"{ts.WORKFLOW}.war", "detector.mar", "recognizer.mar", "classifier.mar"] if mode != "pipeline" else [])
    needed += [f"{ts.PIPELINE}.mar"] if mode != "dag" else []
    missing = [n for n in needed if not (model_store / n).exists()]
    if missing:
        raise ts.ServeError(f"{', '.join(missing)} missing in {model_store}; run scripts/build-archives")
    own_dir = run_dir is None  # a temp dir of ours is removed after the stop (archives unpack there)
    run_dir = Path(run_dir or tempfile.mkdtemp(prefix="thaiplate-bench-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports()
    # (gRPC is moved off its default ports by ts.render_config, so servers can share the machine)
    extra, overrides = overrides, {"metrics_mode": "prometheus"}
    if env == "prod":
        overrides["inference_address"] = f"http://127.0.0.1:{ports.inference}"
    overrides.update(extra or {})
    launcher = write_launcher(run_dir, overrides, cpus, env=environ)
    preload = [f"{ts.PIPELINE}={ts.PIPELINE}.mar"] if mode != "dag" else None
    server = ts.start(
        model_store, env=env, ports=ports, run_dir=run_dir, preload=preload, torchserve=str(launcher),
        log_file=run_dir / "torchserve.log", auth=auth,
    )  # fmt: skip
    try:
        _wait_ready(server, start_timeout)
        if mode != "pipeline":
            ts.register_workflow(server, timeout=start_timeout)
        if mode != "dag":
            ts._wait_model(server, ts.PIPELINE, timeout=start_timeout)
        yield BenchServer(server, mode, cpus, env)
    except ts.ServeError as e:
        log = run_dir / "torchserve.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise ts.ServeError(f"{e}\n--- {log} (tail) ---\n{tail}") from e
    finally:
        server.stop()
        if own_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def build_store(models_dir: Path, out: Path) -> Path:
    """Archives of ``models_dir`` into ``out`` with the serving venv's archivers (``thaiplate archive``)."""
    import subprocess
    import sys

    py = ts.ROOT / ".venv-serve" / "bin" / "python"
    cmd = [str(py if py.is_file() else sys.executable), "-m", "thaiplate.cli", "archive",
           "--models-dir", str(models_dir), "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ts.ServeError(f"building archives from {models_dir} failed:\n{proc.stderr or proc.stdout}")
    return out


def model_versions(models_dir: Path) -> dict[str, str]:
    import yaml

    out = {}
    for name in ("detector", "recognizer", "classifier"):
        p = Path(models_dir) / f"{name}.yaml"
        if p.is_file():
            out[name] = str((yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("version", "?"))
    return out
