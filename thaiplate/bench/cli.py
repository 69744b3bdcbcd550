"""``thaiplate bench``: load-test a running thaiplate service and report latency, throughput, stalls,
TorchServe's own queue/model times and the server's memory, per concurrency level.

    thaiplate bench --url http://127.0.0.1:8080 --endpoint /wfpredict/thaiplate --concurrency 1,2,4,8 \\
        --requests 200 --duration 60 --images synthetic --out runs/bench/dag

Every level is bounded twice (``--requests`` and ``--duration``, whichever comes first) so a slow or
stalling server cannot make a run last forever. Only loopback targets unless ``--allow-remote``.
The side-by-side comparison of the modes (one pinned server, in-process floor) is ``scripts/benchmark``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_YAML = ROOT / "archive" / "workflow.yaml"


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"concurrency must be like 1,2,4,8, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be >= 1")
    return levels


def load_timeouts(path: Path = WORKFLOW_YAML) -> dict[str, float]:
    """Node timeouts of the DAG (the stall bands); empty if the file is missing."""
    import yaml

    from thaiplate.bench.stats import node_timeouts

    if not path.is_file():
        return {}
    return node_timeouts(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def other_cpus(pid: int | None) -> set[int] | None:
    """CPUs the server may not use (its affinity's complement), for the client threads; None if none."""
    if not pid or not hasattr(os, "sched_getaffinity"):
        return None
    try:
        rest = os.sched_getaffinity(0) - os.sched_getaffinity(pid)
    except OSError:
        return None
    return rest or None


def default_out(kind: str) -> Path:
    return ROOT / "runs" / kind / time.strftime("%Y%m%d-%H%M%S")


def write_outputs(out: Path, doc: dict, results: list, title: str) -> None:
    from thaiplate.bench import report

    out.mkdir(parents=True, exist_ok=True)
    table = report.markdown_table(results)
    report.write_json(out / "report.json", doc)
    (out / "report.md").write_text(f"# {title}\n\n{table}\n", encoding="utf-8")
    report.plot(results, out / "latency.png", title)
    print(table)
    print(f"\nwrote {out / 'report.md'}, report.json, latency.png")


def cmd_bench(args: argparse.Namespace) -> int:
    from thaiplate.bench import load, payloads

    try:
        load.check_loopback(args.url, args.allow_remote)
    except load.RemoteTargetError as e:
        print(f"thaiplate bench: {e}", file=sys.stderr)
        return 2
    if not load.port_open(args.url):
        print(f"thaiplate bench: nothing listens at {args.url}", file=sys.stderr)
        return 1
    host = urllib.parse.urlsplit(args.url).hostname or "127.0.0.1"
    metrics_url = None if args.metrics_url == "none" else (args.metrics_url or f"http://{host}:8082/metrics")
    if metrics_url:
        load.check_loopback(metrics_url, args.allow_remote)
    port = urllib.parse.urlsplit(args.url).port or 80
    server_pid = args.server_pid if args.server_pid else load.listener_pid(port)
    client_cpus = other_cpus(server_pid)

    images = payloads.load(args.images, n_scenes=args.scenes)
    target = load.Target(args.url, args.endpoint, args.token, args.timeout)
    mode = args.label or load.mode_of(args.endpoint)
    timeouts = load_timeouts() if mode == "dag" else {}
    print(
        f"bench {mode}: {args.url}{args.endpoint}, {len(images)} images, levels {args.concurrency}, "
        f"<= {args.requests} requests / <= {args.duration:.0f} s each"
        + (f", open loop at {args.rate} req/s" if args.rate else ", closed loop")
        + (f"; server pid {server_pid}" if server_pid else "; server pid unknown (no PSS)"),
        file=sys.stderr,
    )
    if args.warmup:
        warm = load.run_level(lambda: load.HttpClient(target), images, 1, args.warmup, args.duration)
        bad = [r for r in warm.records if not r.ok]
        if len(bad) == len(warm.records):
            print(f"thaiplate bench: every warm-up request failed: {bad[0].error}", file=sys.stderr)
            return 1
    results = []
    for c in args.concurrency:
        r = load.measure_level(
            mode, args.endpoint, lambda: load.HttpClient(target), images, c, args.requests, args.duration,
            rate=args.rate, timeouts_ms=timeouts, metrics_url=metrics_url, server_pid=server_pid,
            client_cpus=client_cpus,
        )  # fmt: skip
        results.append(r)
        print(f"  c={c}: {r.requests} req, {r.errors} err, {r.throughput_rps:.1f} req/s, p50 {r.latency.p50:.1f} ms",
              file=sys.stderr)  # fmt: skip
    doc = {
        "tool": "thaiplate bench",
        "url": args.url,
        "endpoint": args.endpoint,
        "mode": mode,
        "images": {"source": args.images, "count": len(images), "sizes": sorted({p.size for p in images})},
        "limits": {"requests": args.requests, "duration_s": args.duration, "rate": args.rate},
        "server_pid": server_pid,
        "client_cpus": sorted(client_cpus) if client_cpus else None,
        "stall_timeouts_ms": timeouts,
        "load_avg": os.getloadavg(),
        "levels": [r.to_dict() for r in results],
    }
    write_outputs(Path(args.out) if args.out else default_out("bench"), doc, results, f"thaiplate bench: {mode}")
    return 1 if any(r.errors for r in results) and args.fail_on_error else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="load-test a running service (latency, throughput, stalls, memory)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--url", default="http://127.0.0.1:8080", help="inference API base URL")
    p.add_argument("--endpoint", default="/wfpredict/thaiplate", help="/wfpredict/thaiplate or /predictions/pipeline")
    p.add_argument("--token", help="inference token (TorchServe key_file.json) when auth is on")
    p.add_argument("--concurrency", type=parse_levels, default=[1, 2, 4, 8], help="levels, e.g. 1,2,4,8")
    p.add_argument("--requests", type=int, default=200, help="max requests per level")
    p.add_argument("--duration", type=float, default=60.0, help="max seconds per level")
    p.add_argument("--rate", type=float, help="open loop: arrivals per second (default: closed loop)")
    p.add_argument("--images", default="synthetic", help="'synthetic' or a directory of images")
    p.add_argument("--scenes", type=int, default=20, help="synthetic scenes to render")
    p.add_argument("--out", help="output directory (default runs/bench/<time>)")
    p.add_argument("--metrics-url", help="TorchServe metrics API (default http://HOST:8082/metrics; 'none' to skip)")
    p.add_argument("--server-pid", type=int, help="server JVM pid for PSS (default: owner of the URL's port)")
    p.add_argument("--label", help="mode name in the report (default from the endpoint)")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured requests first")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --url")
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 if any request failed")
    p.set_defaults(func=cmd_bench)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="thaiplate")
    register(parser.add_subparsers())
    a = parser.parse_args(["bench", *sys.argv[1:]])
    sys.exit(a.func(a))
