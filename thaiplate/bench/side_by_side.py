"""``scripts/benchmark``: DAG vs all-in-one vs the library in-process, in one run, on one pinned core.

One TorchServe (production config) with BOTH modes registered runs under ``taskset -c 0`` (launcher,
JVM and every worker inherit the affinity); the load client runs on the other cores. The in-process
baseline (``Pipeline.from_dir(...).run(bytes)`` + JSON encoding, the physical floor of the service)
runs in this process on the server's core while the server is idle. Per concurrency level the three
modes are measured back to back with the same images in the same order, so a drift of the machine
hits them alike. Then the stall count: >= 2,000 DAG requests of 1280x720 photos (the size the latency
goal is stated for) at concurrency 1, 4 and 8. Then, unless ``--no-memory``, ``measure-memory`` for each
mode. Output: ``REPORT.md``, ``report.json``, ``latency.png``.

Why in one run: the machine is shared and its speed drifts with the load of others; numbers from
different runs cannot be divided by each other, numbers from the same minutes can.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thaiplate.bench import load, payloads, report, service, stats
from thaiplate.bench.cli import load_timeouts, parse_levels

ROOT = Path(__file__).resolve().parents[2]
MODES = ("inprocess", "dag", "pipeline")
GOALS = {"dag_p50_ms": 40.0, "p99_over_p50": 2.0, "images_per_s": 25.0, "serving_overhead": 1.3}


def busy_processes() -> list[str]:
    """Other heavy jobs on the machine (training, data synthesis): the report says if they ran."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if "thaiplate train" in cmd or "thaiplate synth" in cmd or "bin/thaiplate train" in cmd:
            out.append(f"{entry.name}: {cmd[:120]}")
    return sorted(out)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def by(results: list[load.LevelResult], mode: str, c: int) -> load.LevelResult | None:
    return next((r for r in results if r.mode == mode and r.concurrency == c), None)


def ratios(results: list[load.LevelResult], levels: list[int]) -> list[dict]:
    """Per level: p50(dag|pipeline)/p50(inprocess) (serving overhead) and p50(dag)/p50(pipeline)."""
    out = []
    for c in levels:
        p50 = {m: r.latency.p50 for m in MODES if (r := by(results, m, c))}
        over = stats.overhead_ratios(p50, "inprocess")
        goal = {m: r.p50_by_size.get(payloads.GOAL_SIZE, math.nan) for m in MODES if (r := by(results, m, c))}
        over_goal = stats.overhead_ratios(goal, "inprocess")
        out.append({
            "concurrency": c,
            "dag_over_inprocess": over.get("dag", math.nan),
            "pipeline_over_inprocess": over.get("pipeline", math.nan),
            "dag_over_pipeline": stats.ratio(p50.get("dag", math.nan), p50.get("pipeline", math.nan)),
            f"dag_over_inprocess_{payloads.GOAL_SIZE}": over_goal.get("dag", math.nan),
            f"pipeline_over_inprocess_{payloads.GOAL_SIZE}": over_goal.get("pipeline", math.nan),
        })  # fmt: skip
    return out


def goals(stall_runs: list[load.LevelResult], results: list[load.LevelResult], ratio_rows: list[dict]) -> list[dict]:
    """The issue's targets, each with the measurement it is judged on."""
    c1 = next((r for r in stall_runs if r.concurrency == 1), None)
    best = max(stall_runs, key=lambda r: r.throughput_rps, default=None)
    best_mixed = max((r for r in results if r.mode == "dag"), key=lambda r: r.throughput_rps, default=None)
    r1 = next((row for row in ratio_rows if row["concurrency"] == 1), None)
    rows = []

    def add(goal: str, value: float, limit: float, higher_is_better: bool, basis: str) -> None:
        met = None if math.isnan(value) else (value >= limit if higher_is_better else value <= limit)
        rows.append({"goal": goal, "value": value, "limit": limit, "met": met, "basis": basis})

    if c1:
        add("DAG p50 per 1280x720 photo <= 40 ms", c1.latency.p50, GOALS["dag_p50_ms"], False,
            f"DAG, concurrency 1, {c1.requests} 1280x720 photos")  # fmt: skip
        add("DAG p99 <= 2 x p50", stats.ratio(c1.latency.p99, c1.latency.p50), GOALS["p99_over_p50"], False,
            f"same run: p99 {c1.latency.p99:.1f} ms / p50 {c1.latency.p50:.1f} ms")  # fmt: skip
    if best:
        add(">= 25 images/s at best concurrency (DAG)", best.throughput_rps, GOALS["images_per_s"], True,
            f"DAG, 1280x720 photos, best at concurrency {best.concurrency}")  # fmt: skip
    if best_mixed:
        rows.append({"goal": "(info) DAG throughput, mixed image set", "value": best_mixed.throughput_rps,
                     "limit": GOALS["images_per_s"], "met": best_mixed.throughput_rps >= GOALS["images_per_s"],
                     "basis": f"best at concurrency {best_mixed.concurrency}"})  # fmt: skip
    if r1:
        add("serving overhead p50(DAG)/p50(in-process) <= 1.3", r1["dag_over_inprocess"], GOALS["serving_overhead"],
            False, "concurrency 1, mixed image set")  # fmt: skip
        add("serving overhead p50(all-in-one)/p50(in-process) <= 1.3", r1["pipeline_over_inprocess"],
            GOALS["serving_overhead"], False, "concurrency 1, mixed image set")  # fmt: skip
    return rows


def stage_times(pipe, images: list[payloads.Payload], n: int, cpus: set[int]) -> dict[str, float]:
    """Mean stage timings (ms) of the library over ``n`` requests, pinned like the server: where the
    floor's time goes. Decoding is timed here (``decode_image`` then ``run_array``, which is what
    ``Pipeline.run`` does) because ``run``'s own ``decode`` entry is overwritten by ``run_array``'s 0."""
    from thaiplate.image import decode_image

    sums: dict[str, float] = {}
    with load.pinned(cpus):
        for i in range(n):
            t0 = time.perf_counter()
            image = decode_image(images[i % len(images)].data)
            t1 = time.perf_counter()
            res = pipe.run_array(image)
            t2 = time.perf_counter()
            parts = {"decode": (t1 - t0) * 1000, **{k: v for k, v in res.timings_ms.items() if k not in ("decode", "total")},
                     "total": (t2 - t0) * 1000}  # fmt: skip
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
    return {k: v / n for k, v in sums.items()}


def node_breakdown(r: load.LevelResult | None) -> dict[str, dict[str, float]]:
    """TorchServe's per-model means of one level: ``{model: {queue_ms, model_ms}}``."""
    if r is None:
        return {}
    return {m: {"queue_ms": t.queue_ms, "model_ms": t.model_ms} for m, t in r.server.items()}


# ------------------------------------------------------------------------------ markdown


def _f(x: float | None, d: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def render(doc: dict, results: list[load.LevelResult], stall_runs: list[load.LevelResult], mem_tables: list[str]) -> str:
    env, setup = doc["environment"], doc["setup"]
    lines = [
        "# thaiplate serving benchmark: DAG vs all-in-one vs in-process",
        "",
        f"Generated by `{' '.join(['scripts/benchmark', *doc['argv']])}` at {doc['started']} (commit `{doc['commit']}`).",
        "Regenerate with the same command; every number below is also in `report.json`.",
        "",
        "## Setup",
        "",
        f"- Machine: {env['cpu']}, {env['cpus']} CPUs; load average before the run {env['load_avg_before']}, "
        f"after {env['load_avg_after']}.",
        f"- **Pinned to one core**: TorchServe ran under `taskset -c {setup['server_cpus']}` (the `torchserve` "
        "launcher, the JVM and every Python worker inherit that affinity; `Cpus_allowed_list` of all "
        f"{len(setup['server_affinity'])} server processes read from `/proc/PID/status`: "
        f"{'all ' + setup['server_cpus'] if setup['pinning_verified'] else 'NOT all pinned: ' + str(setup['server_affinity'])}); "
        f"the load client ran on CPU(s) {setup['client_cpus']}; the in-process baseline ran on CPU "
        f"{setup['server_cpus']} while the server was idle.",
        "- Server: TorchServe 0.12, production config (`config.prod.properties`: token auth on, 96 MiB "
        "serial-GC JVM, 2 netty threads) with `metrics_mode=prometheus`, both modes registered in the same "
        "server; one worker per model, ONNX Runtime 1 intra-op thread. DAG: `archive/workflow.yaml` "
        f"(batch-size {setup['workflow'].get('batch-size')}, max-batch-delay {setup['workflow'].get('max-batch-delay')} ms, "
        f"node timeouts {setup['stall_timeouts_ms']} ms). All-in-one: `pipeline.mar`, batch size 1.",
        f"- Models: {setup['models']}.",
        f"- Images: {setup['images']['count']} ({', '.join(setup['images']['sizes_summary'])}); every mode and level "
        "sends them in the same order, cycling.",
        f"- Per level: <= {setup['requests']} requests and <= {setup['duration_s']:.0f} s, closed loop, after "
        f"{setup['warmup']} warm-up requests per mode.",
        "- Stalls: a latency within ±15 % of a node `timeout-ms`, or above one.",
    ]
    if env["busy_processes"]:
        lines.append(f"- **Not a quiet machine**: {len(env['busy_processes'])} training/synthesis processes "
                     "were running; treat absolute numbers as pessimistic.")  # fmt: skip
    lines += ["", "## Latency and throughput per mode and concurrency", "", report.markdown_table(results), ""]
    lines += [
        "`TS queue ms` / `TS model ms`: TorchServe's own means from `ts_queue_latency_microseconds` and "
        "`ts_inference_latency_microseconds` (minus the queue part), summed over the models a request "
        "passes (3 nodes for the DAG). `PSS peak MB`: the server tree (JVM + all workers of both modes).",
        "",
        "![latency and throughput](latency.png)",
        "",
        "## Ratios (p50)",
        "",
        f"| conc | DAG / in-process | all-in-one / in-process | DAG / all-in-one | DAG / in-process ({payloads.GOAL_SIZE}) "
        f"| all-in-one / in-process ({payloads.GOAL_SIZE}) |",
        "|---|---|---|---|---|---|",
    ]
    g = payloads.GOAL_SIZE
    for row in doc["ratios"]:
        lines.append(
            f"| {row['concurrency']} | {_f(row['dag_over_inprocess'])} | {_f(row['pipeline_over_inprocess'])} "
            f"| {_f(row['dag_over_pipeline'])} | {_f(row[f'dag_over_inprocess_{g}'])} "
            f"| {_f(row[f'pipeline_over_inprocess_{g}'])} |"
        )
    lines += [
        "",
        f"## DAG stalls ({g} photos)",
        "",
        "| conc | requests | errors | stalls | by node | req/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in stall_runs:
        lines.append(
            f"| {r.concurrency} | {r.requests} | {r.errors} | {r.stalls.total} | {r.stalls.by_node or '–'} "
            f"| {_f(r.throughput_rps, 1)} | {_f(r.latency.p50, 1)} | {_f(r.latency.p99, 1)} | {_f(r.latency.max, 1)} |"
        )
    lines += ["", "## Where the time goes (concurrency 1)", ""]
    st = doc.get("inprocess_stage_ms") or {}
    if st:
        lines.append(f"In-process `Pipeline.run` on {g} photos, mean ms: "
                     + ", ".join(f"{k} {v:.1f}" for k, v in st.items()) + ".")  # fmt: skip
        lines.append("")
    lines += ["| server model (TorchServe metrics) | queue ms | model ms |", "|---|---|---|"]
    for label, nodes in (("dag", doc["breakdown_c1"].get("dag", {})), ("pipeline", doc["breakdown_c1"].get("pipeline", {}))):
        for m, t in nodes.items():
            lines.append(f"| {label}: {m} | {_f(t['queue_ms'], 1)} | {_f(t['model_ms'], 1)} |")
    lines += [
        "",
        "`queue ms` is job creation -> taken by the worker (it includes the batch window of a DAG node at low "
        "load); `model ms` is the rest (frontend <-> worker transfer, handler, ONNX). The gap between the "
        "client's p50 and the sum of these is the HTTP/frontend/DAG-executor path.",
    ]
    if mem_tables:
        lines += ["", "## Memory per mode (`scripts/measure-memory`, server not pinned)", ""]
        for t in mem_tables:
            lines += [t, ""]
    lines += ["", "## Goals", "", "| goal | measured | met | basis |", "|---|---|---|---|"]
    for row in doc["goals"]:
        met = {True: "yes", False: "**no**", None: "–"}[row["met"]]
        lines.append(f"| {row['goal']} | {_f(row['value'])} | {met} | {row['basis']} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- run


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from thaiplate.pipeline import Pipeline

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    busy = busy_processes()
    if busy:
        log(f"warning: {len(busy)} training/synthesis processes are running; numbers will be pessimistic")
    load_before = [round(x, 2) for x in os.getloadavg()]
    store = args.model_store
    if store is None:
        log(f"building archives from {args.models_dir}")
        tmp_store = tempfile.TemporaryDirectory(prefix="thaiplate-store-")  # removed at exit
        store = service.build_store(args.models_dir, Path(tmp_store.name))
    log("rendering images")
    images = payloads.load(args.images, n_scenes=args.scenes)
    goal_images = payloads.of_size(images)
    if not goal_images:
        goal_images = payloads.synthetic(4, seed=11)[2:3]  # scene 2 of SCENE_SIZES is 1280x720
    timeouts = load_timeouts()
    pipe = Pipeline.from_dir(args.models_dir)
    server_cpus = {int(c) for c in args.server_cpus.split(",")}
    all_cpus = os.sched_getaffinity(0)
    client_cpus = (all_cpus - server_cpus) or None
    results: list[load.LevelResult] = []
    stall_runs: list[load.LevelResult] = []

    log(f"starting TorchServe (both modes) pinned to CPU {args.server_cpus}")
    with service.running(store, "both", cpus=args.server_cpus) as bs:
        java = bs.server.java_pid()
        names = bs.worker_names()
        affinity = bs.affinity()
        pinned_ok = bool(affinity) and all(v == args.server_cpus for v in affinity.values())
        if not pinned_ok:
            log(f"warning: server processes are not all pinned to {args.server_cpus}: {affinity}")
        eps = bs.endpoints()
        http = {m: load.Target(bs.url, eps[m], bs.token) for m in ("dag", "pipeline")}

        def client_for(mode: str):
            if mode == "inprocess":
                return lambda: load.InProcessClient(pipe)
            return lambda: load.HttpClient(http[mode])

        log("warm-up")
        for mode in MODES:
            cpus = server_cpus if mode == "inprocess" else client_cpus
            with load.pinned(cpus):
                for c in (1, 4):
                    load.run_level(client_for(mode), images, c, args.warmup, args.duration)
        for c in args.concurrency:
            for mode in MODES:
                inproc = mode == "inprocess"
                r = load.measure_level(
                    mode, "Pipeline.run" if inproc else eps[mode], client_for(mode), images, c,
                    args.requests, args.duration,
                    timeouts_ms=timeouts if mode == "dag" else None,
                    metrics_url=None if inproc else bs.metrics_url,
                    server_pid=None if inproc else java, worker_names=names,
                    client_cpus=server_cpus if inproc else client_cpus,
                )  # fmt: skip
                results.append(r)
                log(f"c={c} {mode:<9} {r.requests} req {r.errors} err {r.throughput_rps:6.1f} req/s "
                    f"p50 {r.latency.p50:7.1f} p99 {r.latency.p99:7.1f} ms stalls {r.stalls.total}")  # fmt: skip
        stage_ms = stage_times(pipe, goal_images, args.stage_requests, server_cpus)
        for c in args.stall_levels:
            r = load.measure_level(
                "dag", eps["dag"], client_for("dag"), goal_images, c, args.stall_requests, args.stall_duration,
                timeouts_ms=timeouts, metrics_url=bs.metrics_url, server_pid=java, worker_names=names,
                client_cpus=client_cpus,
            )  # fmt: skip
            stall_runs.append(r)
            log(f"stalls c={c}: {r.requests} req {r.errors} err {r.stalls.total} stalls {r.stalls.by_node} "
                f"{r.throughput_rps:.1f} req/s p50 {r.latency.p50:.1f} p99 {r.latency.p99:.1f} ms")  # fmt: skip
    load_after = [round(x, 2) for x in os.getloadavg()]

    mem_reports = []
    if not args.no_memory:
        from thaiplate.bench import memory_cli

        for mode in ("dag", "pipeline"):
            log(f"measure-memory --mode {mode}")
            mem_reports.append(memory_cli.measure(mode, store, images, requests=args.memory_requests, concurrency=4))

    import yaml

    wf = (yaml.safe_load((ROOT / "archive" / "workflow.yaml").read_text(encoding="utf-8")) or {}).get("models", {})
    sizes: dict[str, int] = {}
    for p in images:
        key = p.size if p.width >= 320 else "real crops (<320 px)"
        sizes[key] = sizes.get(key, 0) + 1
    ratio_rows = ratios(results, args.concurrency)
    doc = {
        "tool": "scripts/benchmark",
        "argv": argv,
        "started": started,
        "commit": git_commit(),
        "environment": {
            "cpu": cpu_model(), "cpus": len(all_cpus), "load_avg_before": load_before, "load_avg_after": load_after,
            "busy_processes": busy, "python": platform.python_version(),
        },
        "setup": {
            "server_cpus": args.server_cpus,
            "server_affinity": affinity,
            "pinning_verified": pinned_ok,
            "client_cpus": ",".join(map(str, sorted(client_cpus))) if client_cpus else "same as server (1 CPU)",
            "workflow": {k: v for k, v in wf.items() if not isinstance(v, dict)},
            "stall_timeouts_ms": timeouts,
            "models": service.model_versions(args.models_dir),
            "images": {"source": args.images, "count": len(images),
                       "sizes_summary": [f"{n} x {s}" for s, n in sizes.items()], "goal_images": len(goal_images)},
            "requests": args.requests, "duration_s": args.duration, "warmup": args.warmup,
            "stall_requests": args.stall_requests, "stall_levels": args.stall_levels,
        },
        "levels": [r.to_dict() for r in results],
        "ratios": ratio_rows,
        "stalls": [r.to_dict() for r in stall_runs],
        "memory": [m.to_dict() for m in mem_reports],
        "inprocess_stage_ms": stage_ms,
        "breakdown_c1": {m: node_breakdown(by(results, m, 1)) for m in ("dag", "pipeline")},
    }  # fmt: skip
    doc["goals"] = goals(stall_runs, results, ratio_rows)

    from thaiplate.bench.memory_cli import table as mem_table

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json", doc)
    report.plot(results, out / "latency.png", f"thaiplate on 1 pinned core: DAG vs all-in-one vs in-process ({doc['started']})")
    (out / "REPORT.md").write_text(render(report.clean(doc), results, stall_runs, [mem_table(m) for m in mem_reports]),
                                   encoding="utf-8")  # fmt: skip
    print(report.markdown_table(results))
    print()
    for row in doc["goals"]:
        print(f"{'MET ' if row['met'] else 'MISS' if row['met'] is False else '  - '} {row['goal']}: {_f(row['value'])}")
    log(f"wrote {out}/REPORT.md, report.json, latency.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="scripts/benchmark", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models", help="models (in-process + archives)")
    ap.add_argument("--model-store", type=Path, help="prebuilt archives of --models-dir (default: build them)")
    ap.add_argument("--images", default="synthetic", help="'synthetic' or a directory of images")
    ap.add_argument("--scenes", type=int, default=20, help="synthetic scenes (sizes 320x240 .. 1920x1080)")
    ap.add_argument("--concurrency", type=parse_levels, default=[1, 2, 4, 8])
    ap.add_argument("--requests", type=int, help="max requests per mode and level (default 300; quick 40)")
    ap.add_argument("--duration", type=float, default=120.0, help="max seconds per mode and level")
    ap.add_argument("--warmup", type=int, default=20, help="unmeasured requests per mode, at concurrency 1 and 4")
    ap.add_argument("--stall-requests", type=int, help="DAG requests per stall level (default 2000; quick 100)")
    ap.add_argument("--stall-levels", type=parse_levels, default=[1, 4, 8])
    ap.add_argument("--stall-duration", type=float, default=900.0, help="max seconds per stall level")
    ap.add_argument("--stage-requests", type=int, default=50, help="in-process requests for the stage breakdown")
    ap.add_argument("--memory-requests", type=int, help="requests per measure-memory run (default 500; quick 50)")
    ap.add_argument("--no-memory", action="store_true", help="skip measure-memory of each mode")
    ap.add_argument("--server-cpus", default="0", help="taskset CPU list for TorchServe")
    ap.add_argument("--quick", action="store_true", help="a few requests everywhere: proves the run works")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = ap.parse_args(argv)
    args.requests = args.requests or (40 if args.quick else 300)
    args.stall_requests = args.stall_requests or (100 if args.quick else 2000)
    args.memory_requests = args.memory_requests or (50 if args.quick else 500)
    if args.quick:
        args.warmup = min(args.warmup, 5)
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
