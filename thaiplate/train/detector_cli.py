"""`thaiplate train detector`: train (or fine-tune) YOLOv8n, validate, export, install into models/.

Kept apart from the recogniser/classifier CLI so `thaiplate.train.cli` only needs one call,
``add_detector_parser(train_subparsers)``. ultralytics is imported only when the command runs; in a
venv without it the command prints how to create ``.venv-yolo``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path


def add_detector_parser(train_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = train_subparsers.add_parser(
        "detector",
        help="train the YOLOv8n plate detector (needs .venv-yolo) and export it to models/",
        description=(
            "Train YOLOv8n on any ultralytics/Roboflow YOLOv8 export (data.yaml + train/val folders), "
            "then export ONNX and write models/detector.{onnx,pt,yaml,md}. Runs in .venv-yolo "
            "(scripts/setup-train-yolo)."
        ),
    )
    p.add_argument("--data", type=Path, help="data.yaml (required unless --resume or --export-only)")
    p.add_argument("--imgsz", type=int, default=320, help="square input size (default 320)")
    p.add_argument(
        "--arch",
        help="ultralytics model yaml (default: --init's own architecture, else yolov8n.yaml; yolov8n-p2.yaml "
        "adds a stride-4 head for small plates). With --init, layers whose names and shapes match are copied "
        "from that checkpoint",
    )
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/detector"), help="run folder")
    p.add_argument("--resume", action="store_true", help="resume the run in --out from weights/last.pt")
    p.add_argument(
        "--init", type=Path, help="start from this checkpoint (fine-tune), e.g. models/detector.pt"
    )
    p.add_argument("--threads", type=int, help="torch threads (share the CPU with other jobs)")
    p.add_argument("--hours", type=float, help="wall-clock budget; ultralytics then re-fits the number of epochs (and with it the LR "
                   "schedule) to the budget after epoch 1, more or fewer than --epochs: leave it out for an exact schedule")
    p.add_argument("--patience", type=int, default=100, help="early-stopping patience (epochs)")
    p.add_argument("--close-mosaic", type=int, default=3, help="final epochs without mosaic (default 3)")
    p.add_argument("--scale", type=float, default=0.5,
                   help="random zoom range 1 +- SCALE (ultralytics 'scale', default 0.5; 0.7 for small far plates)")
    p.add_argument("--lr0", type=float,
                   help="fine-tune: AdamW at this learning rate (e.g. 0.0005) instead of ultralytics' auto choice")
    p.add_argument("--warmup-epochs", type=float, default=3.0,
                   help="learning-rate warm-up (default 3, ultralytics'; 0.3 for a short fine-tune)")
    p.add_argument("--export-imgsz", metavar="HxW",
                   help="ONNX input size if not square --imgsz, e.g. 320x544 for 16:9 cameras (same pixels as 416x416)")
    p.add_argument("--models-dir", type=Path, help="where to install detector.* (default: repo models/)")
    p.add_argument("--no-export", action="store_true", help="train only")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="skip training: export --weights (default OUT/weights/best.pt, else last.pt)",
    )
    p.add_argument("--weights", type=Path, help="checkpoint for --export-only")
    p.add_argument("--early", action="store_true", help="mark the export as an early mid-training snapshot")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from thaiplate.detect import input_hw
    from thaiplate.train import detector as det

    out: Path = args.out.resolve()
    models_dir: Path = (args.models_dir or det.DEFAULT_MODELS_DIR).resolve()
    try:
        det.import_ultralytics(out)
    except det.UltralyticsMissing as e:
        print(e, file=sys.stderr)
        return 2

    info: dict[str, object] = {}
    if args.export_only:
        weights = args.weights or next(
            (w for w in (out / "weights" / "best.pt", out / "weights" / "last.pt") if w.exists()), None
        )
        if weights is None:
            print(f"no checkpoint in {out}/weights", file=sys.stderr)
            return 2
    else:
        if not args.resume and args.data is None:
            print("--data is required (or --resume / --export-only)", file=sys.stderr)
            return 2
        t0 = time.time()
        weights = det.train_detector(
            args.data,
            out,
            imgsz=args.imgsz,
            epochs=args.epochs,
            batch=args.batch,
            resume=args.resume,
            seed=args.seed,
            threads=args.threads,
            hours=args.hours,
            patience=args.patience,
            init=args.init,
            close_mosaic=args.close_mosaic,
            scale=args.scale,
            lr0=args.lr0,
            warmup_epochs=args.warmup_epochs,
            arch=args.arch,
        )
        info["wall_minutes"] = round((time.time() - t0) / 60, 1)
        if args.no_export:
            print(f"trained: {weights}")
            return 0

    info.update(_training_info(out))
    resolved = out / "data.resolved.yaml"
    metrics = None
    if resolved.exists() and weights.exists():
        metrics = det.validate(weights, resolved, info.get("imgsz", args.imgsz), out)  # type: ignore[arg-type]
    imgsz = int(info.get("imgsz", args.imgsz))  # type: ignore[call-overload]
    export_hw = input_hw(args.export_imgsz) if args.export_imgsz else None
    onnx = det.export_detector(
        weights, imgsz, models_dir, metrics=metrics, training=info, early=args.early, export_imgsz=export_hw
    )
    print(f"exported {onnx} (input {export_hw or imgsz}); synthetic val: {metrics}")
    if det.read_results_csv(out):
        det.plot_curves(out, out / "curves.png")
        if models_dir == det.DEFAULT_MODELS_DIR.resolve():  # the committed model: its curves go in docs/
            det.plot_curves(out, det.REPO_ROOT / "docs" / "detector-training.png")
        print(f"curves: {out / 'curves.png'}")
    return 0


def _training_info(out: Path) -> dict[str, object]:
    """What the card needs about the run: args ultralytics recorded, epochs done, seconds per epoch."""
    import yaml

    from thaiplate.train import detector as det

    info: dict[str, object] = {"command": " ".join(["thaiplate", *map(shlex.quote, sys.argv[1:])])}
    args_file = out / "args.yaml"
    if args_file.exists():
        a = yaml.safe_load(args_file.read_text()) or {}
        info.update({k: a[k] for k in ("imgsz", "epochs", "batch", "seed") if k in a})
    rows = det.read_results_csv(out)
    if rows:
        info["epochs_done"] = int(rows[-1]["epoch"])
        if "time" in rows[-1]:
            info["sec_per_epoch"] = round(rows[-1]["time"] / len(rows), 1)
        best = max(rows, key=lambda r: r.get("metrics/mAP50(B)", 0.0))
        info["best_epoch"] = int(best["epoch"])
    resolved = out / "data.resolved.yaml"
    if resolved.exists():
        spec = yaml.safe_load(resolved.read_text())
        source = Path(spec.get("source", ""))
        if source.is_file():  # `thaiplate synth detect` writes its command as the yaml's first line
            first = source.read_text().split("\n", 1)[0]
            info["data_command"] = first.lstrip("# ").strip() if first.startswith("#") else str(source)
        for split in ("train", "val"):
            folder = Path(spec[split] if isinstance(spec[split], str) else spec[split][0])
            if folder.is_dir():
                n = sum(1 for f in folder.rglob("*") if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
                info[f"{split}_images"] = n
    return info
