"""``scripts/cold-start``: process start -> first successful prediction, per serving mode.

One repetition: start TorchServe with the production config the way :mod:`thaiplate.bench.service`
does (same launcher: loopback inference address, ``taskset -c CPUS`` inherited by the JVM and every
worker), then poll every ``poll_s``: ``/ping`` until the frontend answers, then (DAG) register the
workflow the way ``scripts/serve`` does, then POST one 1280x720 photo until an answer with a result
comes back. The clock starts just before the launcher is spawned and stops at that first good answer;
the phases in between say where the time goes. The server is stopped and its run dir removed after
each repetition, so every repetition is a cold start (the OS page cache stays warm, as on a restarted
Cloud Run instance of the same revision; a brand-new instance also pulls the image).

Timings are wall-clock on a shared machine: other jobs on the pinned core slow them down, so the
median of several repetitions is reported with the load average, and next to it the CPU time the
server's processes used until the first answer, which the load of others does not change: on a
dedicated core (Cloud Run's 1 vCPU) the cold start is about that long, since start-up is CPU-bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from thaiplate.bench import load, memory, payloads, report, service
from thaiplate.serving import server as ts

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ColdStart:
    """Seconds since the launcher was spawned."""

    mode: str
    ping_s: float  # the frontend answers /ping
    ready_s: float  # DAG: workflow registered (its workers are up); pipeline: same as first_ok_s
    first_ok_s: float  # first prediction with a result
    attempts: int  # predictions sent until then
    cpu_s: float  # CPU time the server's processes used until then: load-robust; on a dedicated core
    # wall time >= this (equal when start-up is CPU-bound, as it is: JVM start, imports, sessions)


@dataclass
class ColdStartReport:
    mode: str
    cpus: str | None
    runs: list[ColdStart] = field(default_factory=list)
    loadavg_before: tuple[float, ...] = ()
    loadavg_after: tuple[float, ...] = ()

    def median(self, attr: str = "first_ok_s") -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["median_s"] = (
            {a: self.median(a) for a in ("ping_s", "ready_s", "first_ok_s", "cpu_s")} if self.runs else {}
        )
        return d


def tree_cpu_s(root: int, proc: Path = memory.PROC) -> float:
    """User + system CPU seconds of ``root`` and its live descendants (and their reaped children)."""
    ticks = 0
    for pid in memory.process_tree(root, proc):
        try:
            stat = (proc / str(pid) / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _poll(check, deadline: float, poll_s: float) -> int:
    """Call ``check()`` every ``poll_s`` until it is true; the number of calls. TimeoutError at deadline."""
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        if check():
            return n
        time.sleep(poll_s)
    raise TimeoutError("cold start: no answer before the deadline")


def one(store: Path, mode: str, image: payloads.Payload, *, cpus: str | None = "0", poll_s: float = 0.05,
        timeout_s: float = 180.0, environ: dict[str, str] | None = None) -> ColdStart:  # fmt: skip
    """One cold start of ``mode`` (``dag`` or ``pipeline``) from the archives in ``store``."""
    run_dir = Path(tempfile.mkdtemp(prefix="thaiplate-cold-"))
    ports = service.free_ports()
    launcher = service.write_launcher(
        run_dir, {"inference_address": f"http://127.0.0.1:{ports.inference}"}, cpus, env=environ
    )
    preload = [f"{ts.PIPELINE}={ts.PIPELINE}.mar"] if mode == "pipeline" else None
    endpoint = f"/wfpredict/{ts.WORKFLOW}" if mode == "dag" else f"/predictions/{ts.PIPELINE}"
    t0 = time.perf_counter()
    server = ts.start(store, env="prod", ports=ports, run_dir=run_dir, preload=preload,
                      torchserve=str(launcher), log_file=run_dir / "torchserve.log")  # fmt: skip
    deadline = t0 + timeout_s
    try:

        def ping() -> bool:
            if not server.alive():
                raise ts.ServeError(f"TorchServe exited with {server.proc.returncode}; see {run_dir}")
            with contextlib.suppress(OSError, ValueError):
                server.token = ts.read_tokens(run_dir)
                return (
                    ts._request("GET", f"{server.inference_url}/ping", server.token.get("inference"), 1.0)[0]
                    == 200
                )
            return False

        _poll(ping, deadline, poll_s)
        ping_s = time.perf_counter() - t0
        if mode == "dag":
            ts.register_workflow(server, timeout=timeout_s)
        ready_s = time.perf_counter() - t0
        target = load.Target(server.inference_url, endpoint, server.token.get("inference"), timeout_s=30.0)

        def predict() -> bool:
            client = load.HttpClient(target)
            try:
                return client.send(image).ok
            finally:
                client.close()

        attempts = _poll(predict, deadline, poll_s)
        first_ok_s = time.perf_counter() - t0
        cpu_s = tree_cpu_s(server.proc.pid)
        return ColdStart(mode, ping_s, ready_s if mode == "dag" else first_ok_s, first_ok_s, attempts, cpu_s)
    finally:
        server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def measure(store: Path, mode: str, image: payloads.Payload, repeats: int = 5, cpus: str | None = "0",
            environ: dict[str, str] | None = None, log=print) -> ColdStartReport:  # fmt: skip
    rep = ColdStartReport(mode, cpus, loadavg_before=os.getloadavg())
    for i in range(repeats):
        r = one(store, mode, image, cpus=cpus, environ=environ)
        rep.runs.append(r)
        log(
            f"{mode:8s} #{i + 1}: ping {r.ping_s:5.2f} s  ready {r.ready_s:5.2f} s  first OK {r.first_ok_s:5.2f} s"
            f"  server CPU {r.cpu_s:5.2f} s"
        )
    rep.loadavg_after = os.getloadavg()
    return rep


def table(reports: list[ColdStartReport]) -> str:
    rows = [
        "| mode | runs | /ping (median s) | ready (median s) | first OK (median s) | first OK min–max s "
        "| server CPU s to first OK (median) | load avg before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        firsts = [x.first_ok_s for x in r.runs]
        rows.append(
            f"| {r.mode} | {len(r.runs)} | {r.median('ping_s'):.2f} | {r.median('ready_s'):.2f} "
            f"| **{r.median():.2f}** | {min(firsts):.2f}–{max(firsts):.2f} | {r.median('cpu_s'):.2f} "
            f"| {r.loadavg_before[0]:.1f} → {r.loadavg_after[0]:.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/cold-start", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--mode", choices=("dag", "pipeline", "both"), default="both")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cpus", default="0", help="taskset -c CPUS for the server (default 0; '' = not pinned)")
    ap.add_argument(
        "--models-dir", type=Path, default=ROOT / "models", help="models to archive (default models/)"
    )
    ap.add_argument("--model-store", type=Path, help="use these prebuilt archives instead of building")
    ap.add_argument("--goal", type=float, default=5.0, help="seconds; exit 1 if a median is above it")
    ap.add_argument(
        "--out", type=Path, help="directory for cold-start.json/.md (default runs/cold-start/<time>)"
    )
    args = ap.parse_args(argv)

    store = args.model_store
    if store is None:
        tmp_store = tempfile.TemporaryDirectory(prefix="thaiplate-store-")  # removed at exit
        store = service.build_store(args.models_dir, Path(tmp_store.name))
    image = payloads.of_size(payloads.synthetic(n_scenes=3))[0]
    modes = ts.served_modes(args.mode)
    reports = [measure(store.resolve(), m, image, args.repeats, args.cpus or None) for m in modes]
    out = args.out or ROOT / "runs" / "cold-start" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    text = table(reports)
    report.write_json(
        out / "cold-start.json", {"goal_s": args.goal, "reports": [r.to_dict() for r in reports]}
    )
    (out / "cold-start.md").write_text(text + "\n", encoding="utf-8")
    print(text + f"\nwrote {out}/cold-start.json")
    return 1 if any(r.median() > args.goal for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
