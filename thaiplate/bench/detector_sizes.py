"""What the detector's input size buys: recall on real frames against latency, side by side in one run.

The weights are exported once (``.venv-yolo``: ONNX export needs torch; the ONNX input is dynamic), then
every size is evaluated on the same labelled images and timed round-robin on the same photos, one ONNX
Runtime thread each, so the latency *ratios* hold on a noisy shared box even when the absolute
milliseconds do not. ``--record`` stores the table under ``metrics.input_size_sweep`` in
``models/detector.yaml`` and re-renders the card.

    scripts/detector-sizes --sizes 320x544,480x832,640x1120 [--images DIR] [--n 20] [--record]

A size ``320x544+480x832`` is the base input plus a zoom pass (see ``OnnxDetector``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thaiplate.detect import OnnxDetector, input_sizes
from thaiplate.eval.detector import evaluate, load_yolo_folder

REPO = Path(__file__).resolve().parents[2]
DEFAULT_IMAGES = REPO.parent / "shared" / "datasets" / "thai-street-frames" / "images"


def export(weights: Path, size: str, out: Path, yolo_python: Path) -> Path:
    """Dynamic-input ONNX export of ``weights`` (default size ``size``) into ``out``, a scratch models dir."""
    # the exporter works in the checkpoint's run folder (weights/../): give it a scratch one, not models/..
    staged = out / "run" / "weights" / "best.pt"
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, staged)
    cmd = [
        str(yolo_python),
        "-m",
        "thaiplate.cli",
        "train",
        "detector",
        "--export-only",
        "--weights",
        str(staged),
        "--export-imgsz",
        size,
        "--models-dir",
        str(out),
        "--out",
        str(out / "run"),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    if done.returncode or not (out / "detector.onnx").exists():
        raise SystemExit(f"export at {size} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return out


def interleaved_latency(dets: dict[str, OnnxDetector], photos: list[bytes], n: int) -> dict[str, float]:
    """CPU ms per photo (decode + detect) for each size, timed in turns so load swings hit all alike."""
    import statistics

    from thaiplate.image import decode_image

    cpu: dict[str, list[float]] = {k: [] for k in dets}
    for i in range(n + 3):
        data = photos[i % len(photos)]
        for k, det in dets.items():
            c0 = time.process_time()
            det.detect(decode_image(data))
            if i >= 3:  # warm-up
                cpu[k].append((time.process_time() - c0) * 1000)
    return {k: round(statistics.median(v), 2) for k, v in cpu.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/detector-sizes", description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes",
        default="320x544,480x832,640x1120",
        help="comma-separated HxW input sizes; HxW+HxW adds a zoom pass to a base size",
    )
    p.add_argument("--weights", type=Path, default=REPO / "models" / "detector.pt")
    p.add_argument(
        "--images", type=Path, default=DEFAULT_IMAGES, help="labelled images (YOLO .txt beside them)"
    )
    p.add_argument("--n", type=int, default=20, help="timed rounds per size (after 3 warm-up rounds)")
    p.add_argument("--yolo-python", type=Path, default=REPO / ".venv-yolo" / "bin" / "python")
    p.add_argument("--record", action="store_true", help="store under metrics.input_size_sweep in models/")
    a = p.parse_args(argv)
    if not a.yolo_python.exists():
        raise SystemExit(f"{a.yolo_python} missing: run scripts/setup-train-yolo (the export needs torch)")
    if not a.images.is_dir():
        raise SystemExit(
            f"{a.images}: no such folder (labelled frames, e.g. ../shared/datasets/thai-street-frames/images)"
        )
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    samples = load_yolo_folder(a.images)
    photos = [s.path.read_bytes() for s in samples[:20]]
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="detsizes-") as tmp:
        print(f"export {a.weights} ...", file=sys.stderr, flush=True)
        models = export(a.weights, sizes[0].split("+")[0], Path(tmp) / "models", a.yolo_python)
        # explicit sizes: $THAIPLATE_DETECTOR_IMGSZ must not turn every row into the same size
        dets = {
            size: OnnxDetector.from_dir(models, threads=1, imgsz=hw[0], zoom=hw[1:])
            for size, hw in ((size, input_sizes(size)) for size in sizes)
        }
        for size, det in dets.items():
            r = evaluate(det, samples)
            rows[size] = {k: r[k] for k in ("recall", "precision", "precision_filtered", "recall_by_width")}
        print(f"timing {len(sizes)} sizes x {a.n} rounds, interleaved ...", file=sys.stderr, flush=True)
        cpu = interleaved_latency(dets, photos, a.n)
    base = cpu[sizes[0]]
    for size in sizes:
        rows[size]["cpu_ms_per_photo"] = cpu[size]
        rows[size]["latency_ratio"] = round(cpu[size] / base, 2)
    print(f"{'input':<18}{'recall':>8}{'prec.f':>8}{'CPU ms':>9}{'ratio':>7}  recall by plate width")
    for size, r in rows.items():
        print(
            f"{size:<18}{r['recall']:>8.3f}{r['precision_filtered']:>8.3f}{r['cpu_ms_per_photo']:>9.1f}"
            f"{r['latency_ratio']:>7.2f}  {r['recall_by_width']}"
        )
    result = {
        "images": str(a.images.resolve().relative_to(REPO.parent))
        if a.images.resolve().is_relative_to(REPO.parent)
        else str(a.images),
        "weights": a.weights.name,
        "timed_rounds": a.n,
        "sizes": rows,
    }
    print(json.dumps(result))
    if a.record:
        from thaiplate.train.detector import record_metrics

        record_metrics(REPO / "models", "input_size_sweep", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
