"""Side-by-side latency of ONNX models at batch 1 on one ORT thread (e.g. fp32 vs INT8 of one model).

    python -m thaiplate.bench.onnx_latency models/recognizer.onnx models/recognizer.int8.onnx [--runs 200]

Runs are interleaved (A, B, A, B, ...) in one process, so a noisy shared host slows both alike; the table gives
median wall and CPU ms and each model's ratio to the first. CPU ms is what an idle core would take: with one
ORT thread the work runs on the calling thread. Prints a table, then one JSON line (``--out`` also writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from thaiplate.bench.side_by_side import cpu_model


def dummy_input(session, shape: list[int] | None = None) -> np.ndarray:
    """A fixed random input for the model's first input: symbolic batch -> 1; other symbolic dims need ``shape``."""
    dims = session.get_inputs()[0].shape
    if shape is None:
        if any(not isinstance(d, int) for d in dims[1:]):
            raise SystemExit(f"input shape {dims} has symbolic dims: pass --shape N,C,H,W")
        shape = [1, *dims[1:]]
    return np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)


def measure(paths: list[Path], runs: int = 200, warmup: int = 20, shape: list[int] | None = None) -> list[dict]:
    from thaiplate.runtime import OrtOptions, ort_session

    sessions = [ort_session(p, OrtOptions.from_env().but(threads=1)) for p in paths]
    feeds = [{s.get_inputs()[0].name: dummy_input(s, shape)} for s in sessions]
    wall: list[list[float]] = [[] for _ in paths]
    cpu: list[list[float]] = [[] for _ in paths]
    for i in range(warmup + runs):
        for k, (s, feed) in enumerate(zip(sessions, feeds, strict=True)):
            w0, c0 = time.perf_counter(), time.thread_time()
            s.run(None, feed)
            if i >= warmup:
                wall[k].append(1000 * (time.perf_counter() - w0))
                cpu[k].append(1000 * (time.thread_time() - c0))
    base = statistics.median(cpu[0])
    return [
        {
            "model": str(p),
            "mb": round(p.stat().st_size / 2**20, 2),
            "wall_ms": round(statistics.median(w), 3),
            "cpu_ms": round(statistics.median(c), 3),
            "cpu_ratio": round(statistics.median(c) / base, 3),
        }
        for p, w, c in zip(paths, wall, cpu, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m thaiplate.bench.onnx_latency", description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path, help="ONNX files; ratios are to the first")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per model (after 20 warm-up runs)")
    ap.add_argument("--shape", help="input shape N,C,H,W when the model's is symbolic (the detector)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    shape = [int(v) for v in args.shape.split(",")] if args.shape else None
    rows = measure(args.models, args.runs, shape=shape)
    print(f"{'model':<48}{'MB':>7}{'wall ms':>10}{'CPU ms':>9}{'x first':>9}")
    for r in rows:
        print(f"{r['model']:<48}{r['mb']:>7.2f}{r['wall_ms']:>10.2f}{r['cpu_ms']:>9.2f}{r['cpu_ratio']:>9.2f}")
    doc = {"rows": rows, "runs": args.runs, "load_avg_1m": os.getloadavg()[0], "cpu": cpu_model()}
    print(json.dumps(doc, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
