"""``scripts/measure-memory --mode dag|pipeline``: what one serving mode costs in memory.

Starts TorchServe (production config) with only that mode, warms it, samples the process tree idle,
then sends mixed requests (default 500 at concurrency 4) while :class:`~thaiplate.bench.memory.PssSampler`
records the tree's total PSS; reports idle and peak totals plus every process's RSS/PSS, as a table
and JSON. The sum is over the TorchServe JVM and all its descendants (the Python workers); the
``torchserve`` launcher above the JVM (a Python process that only waits) is listed but not summed, like
``scripts/serve``'s supervisor, which this tool does not start.

Why warm first: ONNX Runtime allocates its arenas and OpenCV/PIL their buffers on the first images,
so "idle" means idle after the first requests, which is the state of a running instance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from thaiplate.bench import memory
from thaiplate.serving import server as ts

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MemoryReport:
    mode: str
    requests: int
    concurrency: int
    errors: int
    idle_total_mb: float
    peak_total_mb: float
    idle: list[memory.ProcessMemory]
    peak: list[memory.ProcessMemory]
    launcher: memory.ProcessMemory | None
    samples: int
    idle_unique_mb: float | None = (
        None  # every physical page once (memory.unique_kb): immune to other servers
    )
    peak_unique_mb: float | None = None  # sampled every 2 s, see memory.PssSampler.summary
    p50_ms: float = float("nan")  # of the measured requests (at ``concurrency``: mostly queueing)
    throughput_rps: float = float("nan")
    mappings: dict[str, list[memory.MappingMemory]] = field(default_factory=dict)  # idle, per process
    mappings_after: dict[str, list[memory.MappingMemory]] = field(default_factory=dict)  # after the load

    def to_dict(self) -> dict:
        d = asdict(self)
        d["launcher"] = asdict(self.launcher) if self.launcher else None
        return d


def measure(
    mode: str,
    store: Path,
    images: list,
    *,
    requests: int = 500,
    concurrency: int = 4,
    warmup: int = 20,
    settle_s: float = 2.0,
    cpus: str | None = None,
    duration_s: float = 600.0,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> MemoryReport:
    """``overrides``/``environ``: extra config lines / environment for this server (memory levers)."""
    from thaiplate.bench import load, service

    with service.running(store, mode, cpus=cpus, overrides=overrides, environ=environ) as bs:
        endpoint = bs.endpoints()[mode]
        target = load.Target(bs.url, endpoint, bs.token)
        java = bs.server.java_pid()
        if java is None:
            raise RuntimeError("TorchServe pid file not found")
        names = bs.worker_names()
        load.run_level(lambda: load.HttpClient(target), images, 1, warmup, duration_s)
        time.sleep(settle_s)
        idle = memory.snapshot(java, names)
        mappings = {p.name: memory.by_mapping(p.pid) for p in idle}
        launcher = next((p for p in memory.snapshot(bs.root_pid) if p.pid == bs.root_pid), None)
        sampler = memory.PssSampler(java, interval=0.25, names=names, unique=True, unique_every=8).start()
        try:
            run = load.run_level(lambda: load.HttpClient(target), images, concurrency, requests, duration_s)
        finally:
            summary = sampler.stop()
        mappings_after = {p.name: memory.by_mapping(p.pid) for p in memory.snapshot(java, names)}
    from thaiplate.bench import stats

    ok = [r.latency_ms for r in run.records if not stats.is_error(r.status, r.ok)]
    return MemoryReport(
        mode=mode,
        requests=len(run.records),
        concurrency=concurrency,
        errors=stats.count_errors((r.status, r.ok) for r in run.records),
        idle_total_mb=memory.total_pss_kb(idle) / 1024.0,
        peak_total_mb=summary.peak_pss_mb,
        idle=idle,
        peak=summary.peak_processes,
        launcher=launcher,
        samples=summary.samples,
        idle_unique_mb=summary.idle_unique_mb,
        peak_unique_mb=summary.peak_unique_mb,
        p50_ms=stats.percentile(ok, 50),
        throughput_rps=stats.throughput(len(ok), run.wall_s),
        mappings=mappings,
        mappings_after=mappings_after,
    )


def table(rep: MemoryReport) -> str:
    """Per process: idle and peak RSS/PSS (MB); totals are PSS sums (RSS double-counts shared pages)."""
    peak_by_name = {p.name: p for p in rep.peak}
    rows = [
        f"| {rep.mode}: process | pid | idle RSS MB | idle PSS MB | peak RSS MB | peak PSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for p in sorted(rep.idle, key=lambda p: p.name):
        q = peak_by_name.get(p.name)
        rows.append(
            f"| {p.name} | {p.pid} | {p.rss_kb / 1024:.0f} | {p.pss_kb / 1024:.0f} "
            f"| {q.rss_kb / 1024 if q else float('nan'):.0f} | {q.pss_kb / 1024 if q else float('nan'):.0f} |"
        )
    rows.append(
        f"| **total PSS (JVM + workers)** | | | **{rep.idle_total_mb:.0f}** | | **{rep.peak_total_mb:.0f}** |"
    )
    if rep.idle_unique_mb is not None and rep.peak_unique_mb is not None:
        rows.append(
            f"| **every page once (unique, see MEMORY.md)** | | | **{rep.idle_unique_mb:.0f}** | | **{rep.peak_unique_mb:.0f}** |"
        )
    if rep.launcher:
        rows.append(
            f"| (torchserve launcher, not summed) | {rep.launcher.pid} | {rep.launcher.rss_kb / 1024:.0f} "
            f"| {rep.launcher.pss_kb / 1024:.0f} | | |"
        )
    return "\n".join(rows)


def mapping_table(rep: MemoryReport, top: int = 6) -> str:
    """Per process, the mappings holding most of its idle PSS (``/proc/PID/smaps`` by file)."""
    rows = [f"| {rep.mode}: process | largest PSS (MB): mapping pss/private-dirty |", "|---|---|"]
    for when, by_name in (("idle", rep.mappings), ("after load", rep.mappings_after)):
        for name, maps in sorted(by_name.items()):
            cells = ", ".join(
                f"{m.mapping} {m.pss_kb / 1024:.1f}/{m.private_dirty_kb / 1024:.1f}" for m in maps[:top]
            )
            rows.append(f"| {name} ({when}) | {cells} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from thaiplate.bench import memory_levers, payloads, report, service

    ap = argparse.ArgumentParser(prog="scripts/measure-memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument(
        "--mode",
        choices=("dag", "pipeline", "both"),
        default="both",
        help="both (default): one after the other",
    )
    ap.add_argument("--levers", metavar="NAMES|all",
                    help="also run each memory lever in isolation next to a baseline (comma-separated names or "
                         "'all'; see --list-levers) and write memory-levers.md/.json")  # fmt: skip
    ap.add_argument("--list-levers", action="store_true", help="print the known levers and exit")
    ap.add_argument(
        "--models-dir", type=Path, default=ROOT / "models", help="models to archive (default models/)"
    )
    ap.add_argument("--model-store", type=Path, help="use these prebuilt archives instead of building")
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--images", default="synthetic", help="'synthetic' or a directory of images")
    ap.add_argument("--scenes", type=int, default=20)
    ap.add_argument("--cpus", help="pin the server with taskset -c CPUS (default: not pinned)")
    ap.add_argument(
        "--out", type=Path, help="directory for memory-MODE.json/.md (default runs/memory/<time>)"
    )
    args = ap.parse_args(argv)
    if args.list_levers:
        for lv in memory_levers.LEVERS:
            print(f"{lv.name:28s} {lv.what}")
        return 0

    levers = memory_levers.select(args.levers) if args.levers else []
    store = args.model_store
    if store is None:
        tmp_store = tempfile.TemporaryDirectory(prefix="thaiplate-store-")  # removed at exit
        store = service.build_store(args.models_dir, Path(tmp_store.name))
    images = payloads.load(args.images, n_scenes=args.scenes)
    out = args.out or ROOT / "runs" / "memory" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    modes = ts.served_modes(args.mode)

    def run(mode: str, **kw: object) -> MemoryReport:
        return measure(
            mode, store, images, requests=args.requests, concurrency=args.concurrency, cpus=args.cpus, **kw
        )  # type: ignore[arg-type]

    if args.levers:
        runs = memory_levers.run_all(levers, modes, run)
        text = memory_levers.table(runs)
        report.write_json(out / "memory-levers.json", {"runs": [r.to_dict() for r in runs]})
        (out / "memory-levers.md").write_text(text + "\n", encoding="utf-8")
        print(text + f"\nwrote {out}/memory-levers.json")
        return 1 if any(r.report.errors for r in runs) else 0
    errors = 0
    for mode in modes:
        rep = run(mode)
        text = table(rep) + "\n\n" + mapping_table(rep)
        report.write_json(out / f"memory-{mode}.json", rep.to_dict())
        (out / f"memory-{mode}.md").write_text(text + "\n", encoding="utf-8")
        print(text)
        print(f"\n{rep.requests} requests at concurrency {rep.concurrency}, {rep.errors} errors, {rep.samples} samples, "
              f"p50 {rep.p50_ms:.1f} ms, {rep.throughput_rps:.1f} req/s; wrote {out}/memory-{mode}.json\n")  # fmt: skip
        errors += rep.errors
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
