"""Soak (``scripts/soak``): steady loopback load for minutes, PSS of the whole process tree over time.

A leak shows as PSS that keeps rising once the service is warm. "Warm" excludes the first part of
the run: ONNX Runtime grows its arenas, glibc its heaps and the JVM its heap on the first few hundred
requests, a one-off rise that a short run would misread as a leak. So growth is measured from
``window_from_s`` (2 minutes for the 10-minute soak) to the end, each end being the mean of a few
samples (one sample can sit on a transient: a GC, an arena growing before it is reused).

The tree is summed from the supervisor (``scripts/serve``) down: supervisor, ``torchserve``
launcher, JVM and every worker, i.e. what the container's memory limit sees. Pass/fail
(``--max-growth``) is judged on the anonymous memory of the tree's Python processes (supervisor,
launcher, workers: our code and ONNX Runtime, where a leak of ours would live), not on PSS and not on
the JVM. PSS moves with other people's processes on a shared machine (see :class:`TimedSampler`;
measured: +34 MB in one 2 s step with anonymous memory unchanged). The JVM runs with the dev config
here (loopback ports), which leaves its heap to G1's defaults (up to a quarter of the machine's RAM):
it grows lazily under load, e.g. 239 -> 304 MB anonymous in the first 30 s and on by a few % later,
which made the 60 s test fail on growth that is not a leak. In the container the JVM is capped by
``-Xmx96m`` with the serial GC (``config.prod.properties``). The JVM's share is reported and plotted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from thaiplate.bench import load, memory, payloads, report, stats

ROOT = Path(__file__).resolve().parents[2]


class TimedSampler(memory.PssSampler):
    """:class:`~thaiplate.bench.memory.PssSampler` that also keeps when each sample was taken and the
    tree's anonymous memory. Why the latter: PSS splits library pages between every process that
    maps them, so it drops when another server starts from the same venv on this machine and rises
    when one stops; anonymous memory (heaps, arenas: where a leak lives) is ours alone."""

    def __init__(self, root_pid: int, interval: float, proc: Path = memory.PROC) -> None:
        super().__init__(root_pid, interval, proc=proc)
        self.t0 = time.monotonic()
        self.times_s: list[float] = []
        self.anon_kb: list[int] = []  # whole tree
        self.jvm_anon_kb: list[int] = []  # of which the JVM's

    def sample(self, *args, **kwargs) -> int:  # noqa: ANN002, ANN003 - whatever the base takes
        n = len(self.totals)
        total = super().sample(*args, **kwargs)
        if len(self.totals) > n:
            self.times_s.append(time.monotonic() - self.t0)
            self.anon_kb.append(sum(p.anon_kb for p in self.last))
            self.jvm_anon_kb.append(sum(p.anon_kb for p in self.last if p.name == "java"))
        return total


@dataclass
class SoakResult:
    duration_s: float
    interval_s: float
    window_from_s: float
    concurrency: int  # client threads per endpoint
    endpoints: list[str]
    requests: int
    errors: int
    throughput_rps: float
    growth_pct: float  # PSS, window start -> end
    python_anon_growth_pct: float  # anonymous memory of the Python processes (judged), same window
    jvm_anon_growth_pct: float  # the JVM's anonymous memory (reported: its heap is bounded by -Xmx in prod)
    slope_mb_per_min: float  # least-squares slope over the window
    window_start_mb: float
    window_end_mb: float
    peak_mb: float
    times_s: list[float] = field(default_factory=list)
    pss_mb: list[float] = field(default_factory=list)
    anon_mb: list[float] = field(default_factory=list)  # whole tree
    jvm_anon_mb: list[float] = field(default_factory=list)
    python_anon_mb: list[float] = field(default_factory=list)  # the rest of the tree (judged)
    p50_ms: dict[str, float] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)


def drive(
    targets: Mapping[str, load.Target], images: list[payloads.Payload], concurrency: int, requests: int, duration_s: float
) -> dict[str, load.LevelRun]:
    """``concurrency`` closed-loop clients on every target at once, each target bounded alike."""
    runs: dict[str, load.LevelRun] = {}

    def one(mode: str) -> None:
        runs[mode] = load.run_level(lambda: load.HttpClient(targets[mode]), images, concurrency, requests, duration_s)

    threads = [threading.Thread(target=one, args=(m,), daemon=True) for m in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return runs


def run(
    url: str,
    endpoints: Mapping[str, str],
    root_pid: int,
    images: list[payloads.Payload],
    *,
    duration_s: float = 600.0,
    concurrency: int = 2,
    interval_s: float = 10.0,
    window_from_s: float = 120.0,
    token: str | None = None,
    warmup_passes: int = 3,
) -> SoakResult:
    """Warm up with the load itself (``warmup_passes`` over the images, same concurrency: batches and
    arenas reach their working size), then the same load for ``duration_s`` while PSS is sampled."""
    targets = {m: load.Target(url, ep, token) for m, ep in endpoints.items()}
    drive(targets, images, concurrency, warmup_passes * len(images), 300.0)
    sampler = TimedSampler(root_pid, interval_s).start()
    runs = drive(targets, images, concurrency, 10**9, duration_s)
    sampler.stop()
    recs = [r for lr in runs.values() for r in lr.records]
    errors = stats.count_errors((r.status, r.ok) for r in recs)
    mb = [kb / 1024.0 for kb in sampler.totals]
    anon = [kb / 1024.0 for kb in sampler.anon_kb]
    jvm = [kb / 1024.0 for kb in sampler.jvm_anon_kb]
    python = [a - j for a, j in zip(anon, jvm, strict=True)]
    grow = stats.growth(sampler.times_s, mb, window_from_s)
    return SoakResult(
        duration_s=duration_s,
        interval_s=interval_s,
        window_from_s=window_from_s,
        concurrency=concurrency,
        endpoints=list(endpoints.values()),
        requests=len(recs),
        errors=errors,
        throughput_rps=stats.throughput(len(recs) - errors, max(lr.wall_s for lr in runs.values())),
        growth_pct=grow.pct,
        python_anon_growth_pct=stats.growth(sampler.times_s, python, window_from_s).pct,
        jvm_anon_growth_pct=stats.growth(sampler.times_s, jvm, window_from_s).pct,
        slope_mb_per_min=60.0 * grow.slope_per_s,
        window_start_mb=grow.start,
        window_end_mb=grow.end,
        peak_mb=max(mb, default=float("nan")),
        times_s=sampler.times_s,
        pss_mb=mb,
        anon_mb=anon,
        jvm_anon_mb=jvm,
        python_anon_mb=python,
        p50_ms={m: stats.percentile([r.latency_ms for r in lr.records if r.ok], 50) for m, lr in runs.items()},
        error_samples=list(dict.fromkeys(r.error for r in recs if r.error))[:3],
    )


def plot(res: SoakResult, path: Path) -> None:
    """PSS over time, the measured window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(res.times_s, res.pss_mb, marker="o", ms=3, label="PSS, whole tree")
    ax.plot(res.times_s, res.anon_mb, marker=".", ms=3, color="C2", label="of which anonymous (RSS)")
    ax.plot(res.times_s, res.python_anon_mb, marker=".", ms=3, color="C3", label="anonymous, Python processes (judged)")
    ax.plot(res.times_s, res.jvm_anon_mb, marker=".", ms=3, color="C4", label="anonymous, JVM")
    ax.axvspan(res.window_from_s, max(res.times_s, default=res.window_from_s), alpha=0.12, color="C1",
               label=f"window: {report._f(res.growth_pct, 2)} %, {report._f(res.slope_mb_per_min, 2)} MB/min")  # fmt: skip
    ax.set_xlabel("seconds of load")
    ax.set_ylabel("MB")
    ax.set_title(f"soak: {res.requests} requests, {res.errors} errors, {' + '.join(res.endpoints)}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(res: SoakResult) -> str:
    return (
        f"soak {res.duration_s:.0f} s, {res.concurrency} clients per endpoint ({', '.join(res.endpoints)}): "
        f"{res.requests} requests, {res.errors} errors, {res.throughput_rps:.1f} req/s; PSS "
        f"{report._f(res.window_start_mb, 0)} MB at {res.window_from_s:.0f} s -> {report._f(res.window_end_mb, 0)} MB "
        f"at the end ({report._f(res.growth_pct, 2)} %, {report._f(res.slope_mb_per_min, 2)} MB/min), "
        f"peak {report._f(res.peak_mb, 0)} MB; anonymous memory of the Python processes "
        f"{report._f(res.python_anon_growth_pct, 2)} % (judged), of the JVM {report._f(res.jvm_anon_growth_pct, 2)} %"
    )


def write(res: SoakResult, out: Path, extra: Mapping[str, object] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "soak.json", {"tool": "scripts/soak", **(extra or {}), **asdict(res)})
    plot(res, out / "soak.png")


def main(argv: list[str] | None = None) -> int:
    from thaiplate.bench import entrypoint, service

    ap = argparse.ArgumentParser(prog="scripts/soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--mode", choices=("dag", "pipeline", "both"), default="both", help="endpoints to load")
    ap.add_argument("--concurrency", type=int, default=2, help="client threads per endpoint")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between PSS samples")
    ap.add_argument("--window-from", type=float, help="growth is measured from here (default min(120, duration/3))")
    ap.add_argument("--max-growth", type=float, default=5.0, help="exit 1 above this growth of the Python processes' anonymous memory, percent")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models", help="models to archive (default models/)")
    ap.add_argument("--model-store", type=Path, help="use these prebuilt archives instead of building")
    ap.add_argument("--scenes", type=int, default=20, help="synthetic scenes in the load (plus real crops)")
    ap.add_argument("--out", type=Path, help="directory for soak.json/.png (default runs/soak/<time>)")
    ap.add_argument("--container", action="store_true",
                    help="the container's configuration instead of scripts/serve's dev one: config.prod.properties "
                         "(JVM -Xmx96m, serial GC, token auth; inference on 127.0.0.1), pinned to --cpus")  # fmt: skip
    ap.add_argument("--cpus", default="0", help="with --container: taskset CPU list (default 0: one CPU, as Cloud Run)")
    args = ap.parse_args(argv)
    window = args.window_from if args.window_from is not None else min(120.0, args.duration / 3)

    tmp = tempfile.TemporaryDirectory(prefix="thaiplate-soak-")  # removed at exit
    store = args.model_store or service.build_store(args.models_dir.resolve(), Path(tmp.name) / "store")
    images = payloads.load("synthetic", n_scenes=args.scenes)

    def measure(url: str, root_pid: int, token: str | None = None) -> SoakResult:
        return run(url, entrypoint.endpoints_for(args.mode), root_pid, images, duration_s=args.duration, concurrency=args.concurrency,
                   interval_s=args.interval, window_from_s=window, token=token)  # fmt: skip

    if args.container:
        with service.running(store, args.mode, env="prod", cpus=args.cpus, run_dir=Path(tmp.name) / "run") as srv:
            res = measure(srv.url, srv.root_pid, srv.token)
    else:
        entry = entrypoint.start(store, args.mode, Path(tmp.name) / "run")
        try:
            res = measure(entry.server.inference_url, entry.pid)
        finally:
            entry.stop()
    out = args.out or ROOT / "runs" / "soak" / time.strftime("%Y%m%d-%H%M%S")
    config = {"config": "container (prod)", "cpus": args.cpus} if args.container else {"config": "dev (scripts/serve)"}
    write(res, out, {"mode": args.mode, **config, "images": len(images), "load_avg": os.getloadavg()})
    print(summary(res))
    print(f"wrote {out}/soak.json, soak.png")
    return 0 if res.errors == 0 and res.python_anon_growth_pct < args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
