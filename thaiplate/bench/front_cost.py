"""What the HTTP front costs: the same requests to TorchServe directly and through the front, interleaved.

Why interleaved (A B B A ...) in one run: this machine's noise is larger than the effect, so both paths
must see the same moments. Server and front are pinned to one core (the front runs in the entrypoint's
process there too); the client runs on the other cores. Prints a table and writes JSON.

    python -m thaiplate.bench.front_cost --requests 300 --out docs/benchmarks/front-cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thaiplate.bench import load, payloads, service, stats
from thaiplate.serving import server as ts


def measure(store: Path, n: int, cpus: str) -> dict:
    images = payloads.load("synthetic", n_scenes=8)
    out: dict = {"requests_per_path": n, "server_cpus": cpus, "paths": {}}
    with service.running(store, "both", cpus=cpus) as bs:
        port = ts.free_port()
        front = subprocess.Popen(
            ["taskset", "-c", cpus, sys.executable, "-m", "thaiplate.serving.front",
             "--port", str(port), "--upstream-port", str(bs.server.ports.inference)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            front.stdout.readline()  # "front: ..." once it listens
            others = os.sched_getaffinity(0) - {int(c) for c in cpus.split(",")}
            for endpoint in bs.endpoints().values():
                clients = {
                    "direct": load.HttpClient(load.Target(bs.url, endpoint, bs.token)),
                    "front": load.HttpClient(load.Target(f"http://127.0.0.1:{port}", endpoint, bs.token)),
                }
                ms: dict[str, list[float]] = {k: [] for k in clients}
                with load.pinned(others or None):
                    for i in range(n + 10):
                        order = ("direct", "front") if i % 2 else ("front", "direct")
                        for k in order:
                            t = time.perf_counter()
                            ans = clients[k].send(images[i % len(images)])
                            if i >= 10 and ans.ok:  # first 10: warm-up
                                ms[k].append((time.perf_counter() - t) * 1000)
                lat = {k: stats.summarize(v) for k, v in ms.items()}
                out["paths"][endpoint] = {
                    **{f"{k}_p50_ms": round(s.p50, 2) for k, s in lat.items()},
                    **{f"{k}_p90_ms": round(s.p90, 2) for k, s in lat.items()},
                    "front_minus_direct_p50_ms": round(lat["front"].p50 - lat["direct"].p50, 2),
                    "front_over_direct_p50": round(stats.ratio(lat["front"].p50, lat["direct"].p50), 3),
                    "ok": {k: len(v) for k, v in ms.items()},
                }
        finally:
            front.terminate()
            front.wait(10)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path, default=ts.ROOT / "models")
    ap.add_argument("--requests", type=int, default=300, help="per path and endpoint")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--out", type=Path, help="JSON output")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="thaiplate-store-") as tmp:
        store = service.build_store(args.models_dir, Path(tmp))
        doc = measure(store, args.requests, args.server_cpus)
    print("| endpoint | direct p50 ms | front p50 ms | front - direct | front / direct |")
    print("|---|---|---|---|---|")
    for ep, r in doc["paths"].items():
        print(f"| {ep} | {r['direct_p50_ms']} | {r['front_p50_ms']} | {r['front_minus_direct_p50_ms']} | "
              f"{r['front_over_direct_p50']} |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
