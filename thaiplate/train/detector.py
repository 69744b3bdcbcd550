"""Train the YOLOv8n plate detector with ultralytics and export it to the serving contract.

Why ultralytics and not our own loop: the detector is a stock YOLOv8n, and ultralytics owns its loss,
augmentation and export. We only pin what this project needs around it:

* fully offline (no hub, no font or asset downloads, no telemetry), CPU, reproducible seed;
* any ultralytics/Roboflow "YOLOv8" export (``data.yaml`` + ``train``/``val`` folders) is accepted,
  so a user can fine-tune on their own photos; multi-class exports are trained ``single_cls`` so the
  ONNX output always keeps the ``(1, 5, A)`` layout the serving code decodes;
* the run folder keeps everything ultralytics produces; ``models/`` gets only the contract files
  (``detector.onnx``, ``detector.pt``, ``detector.yaml``, ``detector.md``).

``ultralytics`` and ``torch`` are imported inside functions only: this module is importable from the
torch-free serving venv (the CLI help must work there).
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from thaiplate.train import detector_card

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = REPO_ROOT / "models"
YOLO_VENV = REPO_ROOT / ".venv-yolo"
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)
# Serving defaults written to detector.yaml. conf is low on purpose: small real plates score lower than
# synthetic ones and the recogniser rejects non-plates cheaply; NMS IoU 0.45 keeps neighbouring plates.
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.45
# Plates in the training scenes are at most ~0.22 of the image height; frame-tall boxes seen on real
# daylight frames are never plates. Close-up plate photos go through the pipeline's crop fallback.
DEFAULT_MAX_BOX_HEIGHT = 0.5


class UltralyticsMissing(RuntimeError):
    """Raised when the training venv is not set up; the message says how to set it up."""


def setup_offline(run_dir: Path) -> None:
    """Make ultralytics work without internet. Must run before ``import ultralytics``.

    Measured here: without these it tries to download Arial.ttf, checks PyPI for updates, pip-installs
    missing requirements and sends telemetry; each either hangs on the sandbox network or fails.
    """
    cfg = run_dir / ".ultralytics"
    font_dir = cfg / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    font = next((f for f in FONT_CANDIDATES if f.exists()), None)
    if font is not None:
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            if not (font_dir / name).exists():
                shutil.copyfile(font, font_dir / name)


def import_ultralytics(run_dir: Path) -> Any:
    """Import ultralytics offline, or raise `UltralyticsMissing` with setup instructions."""
    setup_offline(run_dir)
    try:
        import ultralytics
        from ultralytics import settings
    except ModuleNotFoundError as e:
        raise UltralyticsMissing(
            f"{e.name} is not installed in this Python ({sys.executable}).\n"
            "Detector training runs in its own venv (ultralytics pulls a large torch):\n"
            "  scripts/setup-train-yolo            # creates .venv-yolo\n"
            "  .venv-yolo/bin/thaiplate train detector --data data.yaml"
        ) from e
    settings.update(sync=False)
    return ultralytics


def prepare_data_yaml(data_yaml: Path, out: Path) -> tuple[Path, bool]:
    """Resolve a user's data.yaml into an absolute, single-class copy in the run folder.

    Returns (resolved yaml, single_cls). Handles Roboflow quirks: ``valid`` instead of ``val``,
    ``../train/images`` paths written relative to a parent folder, ``path:`` relative to the yaml, and
    several classes (all trained as "plate" so the exported head keeps one score row).
    """
    data_yaml = data_yaml.resolve()
    spec = yaml.safe_load(data_yaml.read_text()) or {}
    base = Path(spec.get("path") or data_yaml.parent)
    if not base.is_absolute():
        base = (data_yaml.parent / base).resolve()
    if "val" not in spec and "valid" in spec:
        spec["val"] = spec.pop("valid")
    for split in ("train", "val", "test"):
        value = spec.get(split)
        if not value:
            continue
        paths = value if isinstance(value, list) else [value]
        spec[split] = [_resolve_split(base, data_yaml.parent, str(p)) for p in paths]
        if not isinstance(value, list):
            spec[split] = spec[split][0]
    for split in ("train", "val"):
        if not spec.get(split):
            raise ValueError(f"{data_yaml}: no '{split}' entry")
    names = spec.get("names") or ["plate"]
    n_classes = len(names)
    single_cls = n_classes != 1
    spec.update(path=str(base), nc=1, names={0: "plate"}, source=str(data_yaml))
    spec.pop("download", None)
    out.mkdir(parents=True, exist_ok=True)
    resolved = out / "data.resolved.yaml"
    resolved.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return resolved, single_cls


def _resolve_split(base: Path, yaml_dir: Path, value: str) -> str:
    p = Path(value)
    if p.is_absolute():
        return str(p)
    for candidate in (base / p, yaml_dir / p, base / value.removeprefix("../"), yaml_dir.parent / p):
        if candidate.exists():
            return str(candidate.resolve())
    raise FileNotFoundError(f"data split '{value}' not found under {base} or {yaml_dir}")


def train_detector(
    data_yaml: Path,
    out: Path,
    imgsz: int = 320,
    epochs: int = 30,
    batch: int = 16,
    resume: bool = False,
    seed: int = 0,
    threads: int | None = None,
    hours: float | None = None,
    patience: int = 100,
    init: Path | None = None,
    close_mosaic: int = 3,
    scale: float = 0.5,
    lr0: float | None = None,
    warmup_epochs: float = 3.0,
    arch: str | None = None,
) -> Path:
    """Train YOLOv8n from scratch (``yolov8n.yaml``, no pretrained download) and return best.pt.

    ``init`` starts from an existing checkpoint instead (e.g. ``models/detector.pt`` to fine-tune it on
    real photos); architecture and class count stay the same. ``arch`` names an ultralytics model
    yaml instead (default: ``init``'s own architecture, else ``yolov8n.yaml``), e.g. ``yolov8n-p2.yaml``
    (an extra stride-4 head for small plates); with ``init`` as well, the layers whose names and shapes
    match are copied from the checkpoint (YOLOv8n's backbone and first neck layers for P2), the rest
    start fresh. ``close_mosaic`` is 3, not
    ultralytics' 10: CPU runs here are ~15 epochs, and mosaic is what packs many small plates per batch.
    ``scale`` is ultralytics' random zoom (gain in ``1 ± scale``); 0.7 lets the 100 px dashcam plates
    shrink to the 20-40 px of a roadside camera.

    ``lr0`` pins AdamW at that rate instead of ultralytics' "auto" choice, and the warm-up then starts
    biases at ``lr0`` too: the default warm-up (3 epochs, bias lr from 0.1) spans most of a short
    fine-tune and shakes a trained detector (v5 and v6 lost synthetic recall under it).

    The run folder is ``out`` itself (ultralytics' project/name are derived from it), so args,
    weights, results.csv and the log stay together.
    """
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    import_ultralytics(out)
    import torch
    from ultralytics import YOLO

    if threads:
        torch.set_num_threads(threads)
        # ultralytics' select_device("cpu") resets torch to its NUM_THREADS = cpu_count - 1, i.e. one
        # thread on this 2-core box (measured: 4.4 s/batch instead of ~2)
        from ultralytics.utils import torch_utils

        torch_utils.NUM_THREADS = threads
    last = out / "weights" / "last.pt"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"--resume: {last} does not exist")
        YOLO(str(last)).train(resume=True)
    else:
        resolved, single_cls = prepare_data_yaml(data_yaml, out)
        extra: dict[str, Any] = {"time": hours} if hours else {}
        if lr0 is not None:
            extra.update(optimizer="AdamW", lr0=lr0, warmup_bias_lr=lr0)
        # with arch and init both given, `pretrained` below copies init's tensors whose names and shapes match
        YOLO(arch or (str(init) if init else "yolov8n.yaml")).train(
            data=str(resolved),
            imgsz=imgsz,
            epochs=epochs,
            batch=batch,
            seed=seed,
            deterministic=True,
            device="cpu",
            amp=False,
            plots=False,
            workers=0,
            # False would make ultralytics drop the init checkpoint's weights (measured, 8.4)
            pretrained=str(init) if init else False,
            single_cls=single_cls,
            patience=patience,
            close_mosaic=close_mosaic,
            scale=scale,
            warmup_epochs=warmup_epochs,
            project=str(out.parent),
            name=out.name,
            exist_ok=True,
            verbose=True,
            **extra,
        )
    best = out / "weights" / "best.pt"
    return best if best.exists() else last


def validate(weights: Path, data_yaml: Path, imgsz: int, run_dir: Path) -> dict[str, float]:
    """ultralytics val of a checkpoint: P, R, mAP50, mAP50-95 on the data.yaml's val split."""
    import_ultralytics(run_dir)
    from ultralytics import YOLO

    m = YOLO(str(weights)).val(
        data=str(data_yaml),
        imgsz=imgsz,
        batch=16,
        device="cpu",
        plots=False,
        workers=0,
        project=str(run_dir),
        name="val",
        exist_ok=True,
        verbose=False,
    )
    p, r, map50, map5095 = (float(x) for x in m.mean_results())
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "mAP50": round(map50, 4),
        "mAP50_95": round(map5095, 4),
    }


def export_detector(
    weights: Path,
    imgsz: int,
    models_dir: Path = DEFAULT_MODELS_DIR,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    early: bool = False,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    export_imgsz: tuple[int, int] | None = None,
) -> Path:
    """Export a checkpoint to ONNX and install detector.{onnx,pt,yaml,md} into ``models_dir``.

    ``export_imgsz`` ``(h, w)`` fixes a non-square ONNX input (the net is fully convolutional, so a
    model trained on square mosaics runs on any stride-32 rectangle); default: square ``imgsz``.

    ``early`` marks a mid-training snapshot so serving engineers can test the real format before the
    final model lands. The .pt is stripped of optimizer state (small enough to commit).
    """
    run_dir = weights.resolve().parent.parent
    import_ultralytics(run_dir)
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import strip_optimizer

    models_dir.mkdir(parents=True, exist_ok=True)
    stripped = run_dir / "export" / "detector.pt"
    stripped.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, stripped)
    strip_optimizer(str(stripped))
    h, w = export_imgsz or (imgsz, imgsz)
    model = YOLO(str(stripped))
    arch = Path(str(model.model.yaml.get("yaml_file", "yolov8n.yaml"))).stem
    strides = [int(s) for s in model.model.stride]  # 8, 16, 32; 4 as well with the P2 head
    onnx_path = Path(
        # dynamic H, W (and batch): one file serves any input size, picked at load ($THAIPLATE_DETECTOR_IMGSZ);
        # same speed and boxes as a static export at the same size (measured side by side)
        model.export(format="onnx", imgsz=[h, w], opset=17, simplify=False, dynamic=True)
    )
    _check_onnx(onnx_path)
    shutil.copyfile(onnx_path, models_dir / "detector.onnx")
    shutil.copyfile(stripped, models_dir / "detector.pt")

    meta = load_meta(models_dir)
    meta.update(
        file="detector.onnx",
        weights="detector.pt",
        version=next_version(meta),
        status="early" if early else "final",
        arch=arch,
        imgsz=h if h == w else [h, w],  # what serving letterboxes to: the ONNX input, not the training size
        train_imgsz=imgsz,
        conf=conf,
        iou=iou,
        max_box_height=DEFAULT_MAX_BOX_HEIGHT,
        input={
            "name": "images",
            "shape": [1, 3, "H", "W"],
            "dynamic": "H and W: any multiples of 32; imgsz is the default, $THAIPLATE_DETECTOR_IMGSZ overrides it",
            "dtype": "float32",
            "format": "RGB, /255, letterbox pad 114, centred",
        },
        output={
            "name": "output0",
            "shape": [1, 5, "A"],
            "layout": "cx, cy, w, h, score; A = " + " + ".join(f"(H/{s})(W/{s})" for s in strides) + " anchors",
            "units": "letterboxed input pixels",
        },
        classes=["plate"],
        exported=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    if training:
        meta["training"] = {**meta.get("training", {}), **training}
    if metrics is not None:
        meta.setdefault("metrics", {})["synthetic_val"] = metrics
    save_meta(models_dir, meta)
    return models_dir / "detector.onnx"


def _check_onnx(path: Path) -> None:
    """Fail the export early if the graph does not match the serving contract (dynamic H, W)."""
    import onnx

    graph = onnx.load(str(path)).graph
    (inp,), (outp,) = graph.input, graph.output
    in_shape = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    out_shape = [d.dim_value or d.dim_param for d in outp.type.tensor_type.shape.dim]
    if inp.name != "images" or len(in_shape) != 4 or in_shape[1] != 3 or any(isinstance(d, int) for d in in_shape[2:]):
        raise RuntimeError(f"unexpected ONNX input {inp.name} {in_shape}; expected (N, 3, H, W), H and W dynamic")
    # a dynamic export leaves even the 5 symbolic; tests/test_detector_model.py runs the graph to see it
    if len(out_shape) != 3 or (isinstance(out_shape[1], int) and out_shape[1] != 5):
        raise RuntimeError(f"unexpected ONNX output {outp.name} {out_shape}; expected (N, 5, A)")


def next_version(meta: dict[str, Any]) -> str:
    """The version an export over ``meta`` gets: one more than a final model's, the same as an early one's.

    Served answers name it (``"models": {"detector": "2"}``), so replacing a model must change it.
    """
    from thaiplate.train.quantize import fp32_version

    try:  # "7-int8" is the INT8 copy of 7, so the next export is 8
        current = int(fp32_version(meta.get("version", "0")))
    except ValueError:
        return "1"
    return str(current if meta.get("status") == "early" else current + 1)


def load_meta(models_dir: Path) -> dict[str, Any]:
    f = models_dir / "detector.yaml"
    return (yaml.safe_load(f.read_text()) or {}) if f.exists() else {}


def save_meta(models_dir: Path, meta: dict[str, Any]) -> None:
    """Write detector.yaml and re-render the model card from it (the yaml is the source of truth)."""
    (models_dir / "detector.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    (models_dir / "detector.md").write_text(detector_card.render(meta))


def record_metrics(models_dir: Path, section: str, values: dict[str, Any]) -> None:
    """Merge one metrics section (e.g. ``real_thai_street``, ``latency``) into detector.yaml + card."""
    meta = load_meta(models_dir)
    meta.setdefault("metrics", {})[section] = values
    save_meta(models_dir, meta)


def read_results_csv(run_dir: Path) -> list[dict[str, float]]:
    """ultralytics' per-epoch results.csv as floats (column names stripped of padding)."""
    f = run_dir / "results.csv"
    if not f.exists():
        return []
    with f.open() as fh:
        return [{k.strip(): float(v) for k, v in row.items() if v.strip()} for row in csv.DictReader(fh)]


def plot_curves(run_dir: Path | list[Path], png: Path) -> Path:
    """Training curves from results.csv (we train with plots=False, so ultralytics draws none).

    Several run folders (e.g. from-scratch then a fine-tune with ``--init``) are drawn end to end,
    with a dotted line where each later stage starts.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = run_dir if isinstance(run_dir, list) else [run_dir]
    rows: list[dict[str, float]] = []
    starts: list[float] = []
    for r in runs:
        stage = read_results_csv(r)
        offset = rows[-1]["epoch"] if rows else 0.0
        if rows:
            starts.append(offset + 0.5)
        rows += [{**row, "epoch": row["epoch"] + offset} for row in stage]
    if not rows:
        raise FileNotFoundError(f"no results.csv rows in {runs}")
    ep = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for key, label in (("train/box_loss", "box"), ("train/cls_loss", "cls"), ("train/dfl_loss", "dfl")):
        axes[0].plot(ep, [r.get(key, float("nan")) for r in rows], label=f"train {label}")
        vkey = key.replace("train/", "val/")
        axes[0].plot(ep, [r.get(vkey, float("nan")) for r in rows], "--", label=f"val {label}")
    axes[0].set_title("losses (log)")
    axes[0].set_yscale("log")
    for key, label in (("metrics/mAP50(B)", "mAP50"), ("metrics/mAP50-95(B)", "mAP50-95")):
        axes[1].plot(ep, [r.get(key, float("nan")) for r in rows], label=label)
    axes[1].set_title("synthetic val mAP")
    axes[1].set_ylim(0, 1)
    for key, label in (("metrics/precision(B)", "precision"), ("metrics/recall(B)", "recall")):
        axes[2].plot(ep, [r.get(key, float("nan")) for r in rows], label=label)
    axes[2].set_title("synthetic val P / R")
    axes[2].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("epoch")
        for x in starts:
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("YOLOv8n plate detector: " + " -> ".join(r.name for r in runs))
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
