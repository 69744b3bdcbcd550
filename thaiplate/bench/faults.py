"""Fault recovery under load (``scripts/fault-recovery``): SIGKILL one TorchServe worker at a time.

The service runs as in the container (``scripts/serve``, ``THAIPLATE_MODE=both``: DAG workflow and
``pipeline.mar``). For each target (the detector, recognizer and classifier nodes of the DAG, then
the all-in-one pipeline worker) a closed-loop load runs against the endpoint that target serves, the
target's worker (pid from ``GET /models/NAME``) gets SIGKILL, and the run measures:

- ``failed_in_flight``: requests sent before the kill that failed (they were in that worker);
- ``failed_after``: requests sent after the kill that failed (the DAG answers 500 while a node has
  no worker; the all-in-one endpoint queues them until the new worker is up);
- ``recovery_s``: kill -> the first request *sent after the kill* answered correctly, i.e. with the
  image's reference reading (:mod:`thaiplate.bench.readings`): what a client sees;
- ``worker_restart_s`` / ``restarted``: kill -> the management API lists a READY worker with a new
  pid (TorchServe restarts a dead worker itself; nothing of ours does).

Finally the JVM itself is killed: the supervisor must exit non-zero (Cloud Run then restarts the
instance) and no worker may outlive it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from thaiplate.bench import entrypoint, load, memory, payloads, readings, report, stats
from thaiplate.serving import server as ts

ROOT = Path(__file__).resolve().parents[2]
# target -> (mode whose endpoint it serves, TorchServe model name)
TARGETS: dict[str, tuple[str, str]] = {
    "detector": ("dag", f"{ts.WORKFLOW}__detector"),
    "recognizer": ("dag", f"{ts.WORKFLOW}__recognizer"),
    "classifier": ("dag", f"{ts.WORKFLOW}__classifier"),
    "pipeline": ("pipeline", ts.PIPELINE),
}


@dataclass(frozen=True)
class KillResult:
    target: str
    endpoint: str
    old_pid: int
    new_pid: int | None
    restarted: bool
    worker_restart_s: float | None
    recovery_s: float | None  # None: no correct answer within the bound
    requests: int
    failed_in_flight: int
    failed_after: int
    error_samples: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.failed_in_flight + self.failed_after


@dataclass(frozen=True)
class JavaKill:
    java_pid: int
    exit_code: int | None  # of the supervisor; None: still running after the bound
    exit_s: float | None
    survivors: list[int]  # server processes (JVM, workers) still alive afterwards


def ready_pid(server: ts.Server, model: str) -> int | None:
    return next((pid for pid, status in entrypoint.workers(server, model) if status == "READY"), None)


def kill_worker(
    server: ts.Server,
    target: str,
    images: list[payloads.Payload],
    expected: dict[str, readings.Reading],
    *,
    concurrency: int = 2,
    before_s: float = 3.0,
    after_s: float = 3.0,
    bound_s: float = 60.0,
) -> KillResult:
    """Load, SIGKILL the target's worker, watch until it answers correctly and has a new worker."""
    mode, model = TARGETS[target]
    endpoint = entrypoint.endpoint(mode)
    old = ready_pid(server, model)
    if old is None:
        raise ts.ServeError(f"{model} has no READY worker to kill")
    log: list[readings.Outcome] = []
    lock, stop = threading.Lock(), threading.Event()
    target_ = load.Target(server.inference_url, endpoint, server.token.get("inference"))
    driver = threading.Thread(
        target=load.run_level,
        args=(lambda: readings.CheckedClient(target_, expected, log, lock), images, concurrency, 10**9,
              before_s + bound_s + after_s + 60),
        kwargs={"stop": stop}, daemon=True,
    )  # fmt: skip
    driver.start()
    time.sleep(before_s)
    t_kill = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new, restart_s, recovery_s = None, None, None
    while time.monotonic() - t_kill < bound_s and (restart_s is None or recovery_s is None):
        if restart_s is None and (pid := ready_pid(server, model)) not in (None, old):
            new, restart_s = pid, time.monotonic() - t_kill
        if recovery_s is None:
            with lock:
                good = [o.done for o in log if o.ok and o.sent >= t_kill]
            recovery_s = min(good) - t_kill if good else None
        time.sleep(0.1)
    time.sleep(after_s)  # still answering afterwards?
    stop.set()
    driver.join()
    hit = [o for o in log if not o.ok and o.done >= t_kill]
    return KillResult(
        target=target,
        endpoint=endpoint,
        old_pid=old,
        new_pid=new,
        restarted=new is not None,
        worker_restart_s=restart_s,
        recovery_s=recovery_s,
        requests=len(log),
        failed_in_flight=sum(o.sent < t_kill for o in hit),
        failed_after=sum(o.sent >= t_kill for o in hit),
        error_samples=list(dict.fromkeys(o.error or "" for o in hit))[:3],
    )


def kill_java(entry: entrypoint.Entrypoint, bound_s: float = 60.0) -> JavaKill:
    """SIGKILL the JVM; the supervisor must notice and exit non-zero, taking every worker with it."""
    java = entry.server.java_pid()
    if java is None:
        raise ts.ServeError("no TorchServe pid file")
    tree = memory.process_tree(java)
    t0 = time.monotonic()
    os.kill(java, signal.SIGKILL)
    try:
        code: int | None = entry.proc.wait(bound_s)
    except subprocess.TimeoutExpired:
        code = None
    exit_s = time.monotonic() - t0 if code is not None else None
    deadline = time.monotonic() + 10  # workers exit when their socket to the JVM closes
    while (alive := [p for p in tree if memory.process_tree(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return JavaKill(java, code, exit_s, alive)


def expected_readings(server: ts.Server, modes: list[str], images: list[payloads.Payload]) -> dict[str, dict]:
    """Reference reading of every image per mode, taken before any fault (see :mod:`readings`)."""
    out = {}
    for mode in modes:
        target = load.Target(server.inference_url, entrypoint.endpoint(mode), server.token.get("inference"))
        out[mode] = readings.references(target, images)
    return out


def table(kills: list[KillResult], java: JavaKill | None) -> str:
    rows = [
        "| killed worker | endpoint | old pid -> new pid | restarted | worker READY after s "
        "| answers correctly after s | requests | failed in flight | failed after kill |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in kills:
        rows.append(
            f"| {k.target} | `{k.endpoint}` | {k.old_pid} -> {k.new_pid or '–'} | {'yes' if k.restarted else 'NO'} "
            f"| {report._f(k.worker_restart_s)} | {report._f(k.recovery_s)} | {k.requests} "
            f"| {k.failed_in_flight} | {k.failed_after} |"
        )
    if java:
        rows.append(
            f"\nJVM (pid {java.java_pid}) killed: supervisor exit code {java.exit_code} after "
            f"{report._f(java.exit_s)} s; processes left behind: {java.survivors or 'none'}"
        )
    return "\n".join(rows)


def by_target(kills: list[KillResult]) -> str:
    """Per target over the repeats: kills survived, recovery median / max, requests lost."""
    rows = [
        "| worker | kills | restarted | recovered s, median | max | requests lost |",
        "|---|---|---|---|---|---|",
    ]
    for t in dict.fromkeys(k.target for k in kills):
        ks = [k for k in kills if k.target == t]
        rec = [k.recovery_s for k in ks if k.recovery_s is not None]
        rows.append(
            f"| {t} | {len(ks)} | {sum(k.restarted for k in ks)} | {report._f(stats.percentile(rec, 50))} "
            f"| {report._f(max(rec, default=None))} | {sum(k.lost for k in ks)} |"
        )
    return "\n".join(rows)


def passed(kills: list[KillResult], java: JavaKill | None, bound_s: float) -> bool:
    ok = all(k.restarted and k.recovery_s is not None and k.recovery_s <= bound_s for k in kills)
    return ok and (java is None or (java.exit_code not in (None, 0) and not java.survivors))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/fault-recovery", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models", help="models to archive (default models/)")
    ap.add_argument("--model-store", type=Path, help="use these prebuilt archives instead of building")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma list of {', '.join(TARGETS)}")
    ap.add_argument("--repeat", type=int, default=1, help="kill every target this many times")
    ap.add_argument("--concurrency", type=int, default=2, help="client threads of the steady load")
    ap.add_argument("--before", type=float, default=3.0, help="seconds of load before each kill")
    ap.add_argument("--after", type=float, default=3.0, help="seconds of load after recovery")
    ap.add_argument("--bound", type=float, default=60.0, help="max seconds to wait for recovery")
    ap.add_argument("--scenes", type=int, default=4, help="synthetic scenes in the load (plus real crops)")
    ap.add_argument("--no-java", action="store_true", help="do not kill the JVM at the end")
    ap.add_argument("--out", type=Path, help="directory for faults.json/.md (default runs/faults/<time>)")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := set(targets) - set(TARGETS):
        ap.error(f"unknown targets {sorted(unknown)}; choose from {list(TARGETS)}")

    from thaiplate.bench import service

    tmp = tempfile.TemporaryDirectory(prefix="thaiplate-faults-")  # removed at exit
    store = args.model_store or service.build_store(args.models_dir.resolve(), Path(tmp.name) / "store")
    images = payloads.load("synthetic", n_scenes=args.scenes)
    entry = entrypoint.start(store, "both", Path(tmp.name) / "run")
    kills, java = [], None
    try:
        print(f"service up in {entry.ready_s:.1f} s; reference readings of {len(images)} images", file=sys.stderr)
        expected = expected_readings(entry.server, ["dag", "pipeline"], images)
        for t in targets * args.repeat:
            k = kill_worker(entry.server, t, images, expected[TARGETS[t][0]], concurrency=args.concurrency,
                            before_s=args.before, after_s=args.after, bound_s=args.bound)  # fmt: skip
            print(f"  {t}: recovered after {report._f(k.recovery_s)} s, {k.lost} requests lost", file=sys.stderr)
            kills.append(k)
        if not args.no_java:
            java = kill_java(entry)
    finally:
        entry.stop()
    ok = passed(kills, java, args.bound)
    doc = {
        "tool": "scripts/fault-recovery",
        "mode": "both",
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "bound_s": args.bound,
        "images": len(images),
        "service_ready_s": entry.ready_s,
        "load_avg": os.getloadavg(),
        "kills": [{**asdict(k), "lost": k.lost} for k in kills],
        "java": asdict(java) if java else None,
        "passed": ok,
    }
    out = args.out or ROOT / "runs" / "faults" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    text = table(kills, java) + ("\n\n" + by_target(kills) if args.repeat > 1 else "")
    report.write_json(out / "faults.json", doc)
    (out / "faults.md").write_text(f"# fault recovery\n\n{text}\n", encoding="utf-8")
    print(text)
    print(f"\n{'PASS' if ok else 'FAIL'}; wrote {out}/faults.json, faults.md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
