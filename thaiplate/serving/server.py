"""Run TorchServe for thaiplate: the container entrypoint (``scripts/serve``) and the test fixture.

One process owns one TorchServe: it renders the config, starts ``torchserve --foreground`` in its
own session, waits for ``/ping``, registers the workflow and/or pipeline, and then only watches.

Why each piece:

- Private ``TMPDIR``/``TEMP`` per server: ``torchserve`` keeps its pid file in the temp dir and
  refuses to start when another TorchServe owns it (several servers share this machine), and Java
  unpacks archives into ``TEMP``.
- SIGTERM goes to the Java frontend (its pid is in that pid file), whose shutdown hook stops the
  Python workers; SIGKILL to the whole session only if it has not exited after a grace period.
- If TorchServe dies on its own, :func:`main` exits non-zero so Cloud Run restarts the instance.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = "thaiplate"
PIPELINE = "pipeline"
MODES = ("dag", "pipeline", "both")


def served_modes(mode: str) -> tuple[str, ...]:
    """The endpoints' modes a ``THAIPLATE_MODE`` serves: ``both`` is the DAG and the all-in-one pipeline."""
    return ("dag", "pipeline") if mode == "both" else (mode,)


ENDPOINTS = {"dag": f"/wfpredict/{WORKFLOW}", "pipeline": f"/predictions/{PIPELINE}"}


def endpoints_hint(mode: str) -> str:
    """What a 404 on an inference path tells the caller (the HTTP front appends it)."""
    served = served_modes(mode)
    hint = f"this server (THAIPLATE_MODE={mode}) answers POST {' and '.join(ENDPOINTS[m] for m in served)}"
    others = [m for m in ENDPOINTS if m not in served]
    return hint + "".join(f"; {ENDPOINTS[m]} is served with THAIPLATE_MODE={m} or both" for m in others)


# Environment of a production TorchServe (the JVM and every worker inherit it; the process environment
# wins). Measured together in docs/benchmarks/MEMORY.md (DAG idle -60 MB): a fixed glibc mmap threshold
# makes big buffers (decoded images, tensors) mmapped and returned to the OS on free, and ONNX Runtime
# then allocates through malloc instead of keeping its arena. The two go together: without the fixed
# threshold, no arena raised the DAG's peak by ~100 MB (freed blocks stayed in the glibc heap).
PROD_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "THAIPLATE_ORT_ARENA": "0"}


class ServeError(RuntimeError):
    pass


@dataclass
class Ports:
    inference: int = 8080
    management: int = 8081
    metrics: int = 8082


@dataclass
class Server:
    """A running TorchServe started by :func:`start`."""

    proc: subprocess.Popen
    run_dir: Path
    ports: Ports
    host: str = "127.0.0.1"
    token: dict[str, str] = field(default_factory=dict)  # "management"/"inference" keys if auth is on

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.ports.inference}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.management}"

    def java_pid(self) -> int | None:
        pid_file = self.run_dir / "tmp" / ".model_server.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request_stop(self) -> None:
        """SIGTERM the Java frontend; its shutdown hook stops the Python workers. Signal-handler safe."""
        if self.alive():
            pid = self.java_pid()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM) if pid else self.proc.terminate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, grace: float = 30.0) -> int:
        """Graceful stop, then SIGKILL to the whole session if it lingers. Not for signal handlers."""
        self.request_stop()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(5)
        return self.proc.returncode


# ------------------------------------------------------------------------------- config


def free_port() -> int:
    """A free TCP port on loopback (tests, benchmarks, and TorchServe's unused gRPC listeners)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_config(
    env: str, ports: Ports, model_store: Path, *, auth: bool | None = None, inference_host: str | None = None
) -> str:
    """``config.properties`` (dev) or ``config.prod.properties`` with ports and paths filled in.

    ``inference_host`` overrides the template's bind address (the HTTP front keeps TorchServe on loopback).
    """
    template = ROOT / ("config.prod.properties" if env == "prod" else "config.properties")
    text = template.read_text(encoding="utf-8")
    text = text.replace("${PORT}", str(ports.inference)).replace("${MODEL_STORE}", str(model_store))
    text = text.replace("${THAIPLATE_ROOT}", str(ROOT))  # files shipped with the package (metrics_config)
    text = re.sub(r"(?m)^(inference_address=http://[^:]+:)\d+", rf"\g<1>{ports.inference}", text)
    if inference_host:
        text = re.sub(r"(?m)^(inference_address=http://)[^:]+", rf"\g<1>{inference_host}", text)
    text = re.sub(r"(?m)^(management_address=http://[^:]+:)\d+", rf"\g<1>{ports.management}", text)
    text = re.sub(r"(?m)^(metrics_address=http://[^:]+:)\d+", rf"\g<1>{ports.metrics}", text)
    text = re.sub(r"(?m)^(model_store|workflow_store)=.*$", rf"\g<1>={model_store}", text)
    # TorchServe 0.12 always starts gRPC (unused here) on 7070/7071: a second server on the same machine
    # then dies with "Address already in use". Loopback-only, free ports instead.
    text += f"\n# set by thaiplate.serving.server\ngrpc_inference_port={free_port()}\ngrpc_management_port={free_port()}\n"
    if auth is not None:
        text += f"disable_token_authorization={'false' if auth else 'true'}\n"
    return text


def torchserve_bin() -> str:
    local = Path(sys.executable).parent / "torchserve"
    return str(local) if local.exists() else "torchserve"


# ------------------------------------------------------------------------------ control


def start(
    model_store: Path,
    *,
    env: str = "dev",
    ports: Ports | None = None,
    run_dir: Path | None = None,
    auth: bool | None = None,
    preload: list[str] | None = None,
    torchserve: str | None = None,
    log_file: Path | None = None,
    inference_host: str | None = None,
) -> Server:
    """Start TorchServe in the background (its own session) and return at once; see :func:`wait_ready`."""
    ports = ports or Ports()
    run_dir = Path(run_dir or tempfile.mkdtemp(prefix="thaiplate-serve-"))
    (run_dir / "tmp").mkdir(parents=True, exist_ok=True)
    config = run_dir / "config.properties"
    rendered = render_config(env, ports, model_store, auth=auth, inference_host=inference_host)
    config.write_text(rendered, encoding="utf-8")
    cmd = [
        torchserve or torchserve_bin(), "--start", "--foreground",
        "--ts-config", str(config),
        "--model-store", str(model_store),
        "--workflow-store", str(model_store),
        "--log-config", str(ROOT / "log4j2.xml"),
        "--ncs",  # no config snapshots: nothing written to disk per registration
    ]  # fmt: skip
    if preload:
        cmd += ["--models", *preload]
    env_vars = {
        **(PROD_ENV if env == "prod" else {}),
        **os.environ,
        "TMPDIR": str(run_dir / "tmp"),
        "TEMP": str(run_dir / "tmp"),
        "LOG_LOCATION": str(run_dir / "logs"),
        "METRICS_LOCATION": str(run_dir / "logs"),
        "TS_DECODE_INPUT_REQUEST": "false",
    }
    out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(cmd, cwd=run_dir, env=env_vars, start_new_session=True, stdout=out, stderr=out)
    return Server(proc, run_dir, ports)


def _request(
    method: str,
    url: str,
    token: str | None = None,
    timeout: float = 5.0,
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, bytes]:
    """One HTTP call -> (status, body); HTTP errors are answers, not exceptions (URLError still raises)."""
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    """Until ``/ping`` answers (and the token file exists when auth is on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServeError(f"TorchServe exited with code {server.proc.returncode} while starting")
        try:
            # with token auth on, 0.12 wants the inference key even on /ping (else HTTP 400)
            server.token = read_tokens(server.run_dir)
            url = f"http://127.0.0.1:{server.ports.inference}/ping"
            status, _ = _request("GET", url, server.token.get("inference"), timeout=2)
            if status == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ServeError(f"TorchServe did not answer /ping within {timeout:.0f} s")


def read_tokens(run_dir: Path) -> dict[str, str]:
    """Keys from ``key_file.json`` (written to the frontend's working directory when auth is on)."""
    path = run_dir / "key_file.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # not written yet, or caught half-written while the frontend starts: ask again later
    return {k: v["key"] for k, v in doc.items() if isinstance(v, dict) and "key" in v}


def register_workflow(server: Server, war: str = f"{WORKFLOW}.war", timeout: float = 300.0) -> str:
    status, body = _request(
        "POST",
        f"{server.management_url}/workflows?url={war}",
        server.token.get("management"),
        timeout=timeout,
    )
    if status != 200:
        raise ServeError(f"registering {war} failed: HTTP {status} {body.decode(errors='replace')}")
    return body.decode()


def register_model(server: Server, mar: str, name: str, timeout: float = 300.0) -> str:
    url = f"{server.management_url}/models?url={mar}&model_name={name}&initial_workers=1&synchronous=true"
    status, body = _request("POST", url, server.token.get("management"), timeout=timeout)
    if status != 200:
        raise ServeError(f"registering {mar} failed: HTTP {status} {body.decode(errors='replace')}")
    return body.decode()


def curl_hint(server: Server, mode: str, image: Path | None, public_host: str = "localhost") -> str:
    path = ENDPOINTS[mode]
    auth = ""
    if server.token.get("inference"):
        auth = f" -H \"Authorization: Bearer $(jq -r .inference.key {server.run_dir / 'key_file.json'})\""
    img = image or Path("your-car-photo.jpg")
    return f"curl -s{auth} -H 'Content-Type: image/jpeg' --data-binary @{img} http://{public_host}:{server.ports.inference}{path}"


def example_image() -> Path | None:
    for d in (Path("/work/shared/real-smoke"), ROOT / "tests" / "data"):
        found = sorted(d.glob("*.jpg")) if d.is_dir() else []
        if found:
            return found[0]
    return None


# --------------------------------------------------------------------------------- main


def main() -> int:
    mode = os.environ.get("THAIPLATE_MODE", "dag")
    if mode not in MODES:
        print(f"serve: THAIPLATE_MODE must be one of {MODES}, got {mode!r}", file=sys.stderr)
        return 2
    env = os.environ.get("THAIPLATE_ENV", "dev")
    store = Path(os.environ.get("MODEL_STORE", ROOT / "model_store")).resolve()
    needed = ([f"{WORKFLOW}.war", "detector.mar", "recognizer.mar", "classifier.mar"] if mode != "pipeline" else [])
    needed += ["pipeline.mar"] if mode != "dag" else []
    missing = [n for n in needed if not (store / n).exists()]
    if env != "prod" and (missing or _stale(store)):
        # dev convenience: the README's first command works on a fresh checkout; prod bakes archives
        from thaiplate.serving.archive import ArchiveError, build_all

        try:
            for path in build_all(ROOT / "models", store):
                print(f"serve: built {path}", flush=True)
        except ArchiveError as e:
            print(f"serve: cannot build archives: {e}", file=sys.stderr)
            return 1
        missing = []
    if missing:
        print(f"serve: {', '.join(missing)} missing in {store}; run scripts/build-archives", file=sys.stderr)
        return 1
    ports = Ports(
        inference=int(os.environ.get("PORT", "8080")),
        management=int(os.environ.get("THAIPLATE_MANAGEMENT_PORT", "8081")),
        metrics=int(os.environ.get("THAIPLATE_METRICS_PORT", "8082")),
    )
    run_dir = Path(os.environ.get("THAIPLATE_RUN_DIR") or tempfile.mkdtemp(prefix="thaiplate-serve-"))
    # The HTTP front (thaiplate.serving.front) owns $PORT and gives /wfpredict real 4xx statuses;
    # TorchServe's inference API moves to a loopback port. THAIPLATE_FRONT=0 exposes TorchServe directly.
    public_port, front = ports.inference, None
    if os.environ.get("THAIPLATE_FRONT", "1") != "0":
        from thaiplate.serving.front import Front, serve_in_thread

        ports.inference = free_port()
        host = "0.0.0.0" if env == "prod" else "127.0.0.1"
        front = Front((host, public_port), ports.inference, not_found_hint=endpoints_hint(mode))
    # pipeline.mar is loaded at startup (works with enable_model_api=false); the workflow has no
    # startup flag in 0.12, so it is registered over the management API once /ping is healthy.
    preload = [f"{PIPELINE}={PIPELINE}.mar"] if mode != "dag" else None
    # THAIPLATE_TOKEN_AUTH=1 turns TorchServe's bearer tokens on (self-hosted without an auth proxy);
    # unset, the config file decides (prod: off, Cloud Run IAM authenticates callers).
    auth = True if os.environ.get("THAIPLATE_TOKEN_AUTH") == "1" else None
    server = start(
        store,
        env=env,
        ports=ports,
        run_dir=run_dir,
        preload=preload,
        auth=auth,
        inference_host="127.0.0.1" if front else None,
    )
    if front:
        serve_in_thread(front)

    stop_deadline: float | None = None

    def on_signal(signum: int, _frame: object) -> None:
        # only flag + SIGTERM here: waiting on the child inside a handler would deadlock with the
        # main thread's wait on the same Popen
        nonlocal stop_deadline
        if stop_deadline is None:
            stop_deadline = time.monotonic() + 30.0
            print(f"serve: {signal.Signals(signum).name}, stopping TorchServe", flush=True)
        server.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        wait_ready(server, timeout=float(os.environ.get("THAIPLATE_START_TIMEOUT", "180")))
        if mode != "pipeline":
            register_workflow(server)
        if mode != "dag":
            _wait_model(server, PIPELINE)
    except ServeError as e:
        if stop_deadline is not None:
            return _wait_exit(server, stop_deadline)
        print(f"serve: {e}", file=sys.stderr)
        server.stop()
        return 1
    public = replace(server, ports=replace(ports, inference=public_port))
    for m in served_modes(mode):
        print(f"serve: ready ({m}, {env}); try:\n  {curl_hint(public, m, example_image())}", flush=True)
    while server.alive() and stop_deadline is None:
        time.sleep(0.5)
    if stop_deadline is not None:
        return _wait_exit(server, stop_deadline)
    rc = server.proc.returncode
    print(f"serve: TorchServe exited unexpectedly with code {rc}", file=sys.stderr)
    return rc or 1


def _wait_exit(server: Server, deadline: float) -> int:
    """After a stop request: wait for TorchServe until ``deadline``, then SIGKILL its session."""
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if server.alive():
        print("serve: TorchServe did not stop in time, killing it", file=sys.stderr, flush=True)
        server.kill()
        server.proc.wait(5)
    print("serve: stopped", flush=True)
    return 0


def _stale(store: Path) -> bool:
    """True when the default model store is older than models/, handlers/ or archive/ (dev only)."""
    if store != (ROOT / "model_store").resolve() or not (store / f"{WORKFLOW}.war").exists():
        return False
    built = min(p.stat().st_mtime for p in store.glob("*.?ar"))
    sources = [p for d in ("models", "handlers", "archive") for p in (ROOT / d).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources)


def _wait_model(server: Server, name: str, timeout: float = 180.0) -> None:
    """Block until a preloaded model has a READY worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = _request("GET", f"{server.management_url}/models/{name}", server.token.get("management"))
        if status == 200 and '"READY"' in body.decode(errors="replace"):
            return
        if not server.alive():
            raise ServeError(f"TorchServe exited with code {server.proc.returncode}")
        time.sleep(0.5)
    raise ServeError(f"model {name} has no ready worker after {timeout:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
