"""Render models/detector.md from models/detector.yaml.

Why generated: the card's numbers must be the yaml's numbers. Training, the real-frame evaluator and
the benchmark each merge their section into the yaml and re-render, so nobody hand-copies metrics.
"""

from __future__ import annotations

from typing import Any


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _table(d: dict[str, Any]) -> str:
    if not d:
        return "_not measured yet_\n"
    rows = [
        f"| {k} | {', '.join(f'{a}: {b}' for a, b in v.items()) if isinstance(v, dict) else _fmt(v)} |"
        for k, v in d.items()
        if not isinstance(v, list)
    ]
    return "| metric | value |\n|---|---|\n" + "\n".join(rows) + "\n"


KNOWN_SECTIONS = ("synthetic_val", "real_thai_street", "latency")


def _sizes_table(sweep: dict[str, Any]) -> str:
    """``scripts/detector-sizes`` output: one row per export size, latency as a ratio to the first."""
    rows = [
        f"| {size} | {r['recall']:.3f} | {r['precision_filtered']:.3f} | {r['latency_ratio']:.2f} "
        f"| {r['cpu_ms_per_photo']:.1f} | {', '.join(f'{a}: {b}' for a, b in r['recall_by_width'].items())} |"
        for size, r in sweep["sizes"].items()
    ]
    return (
        f"Same weights exported at each size; `{sweep['images']}`; latency timed round-robin in one run "
        f"({sweep['timed_rounds']} rounds, one thread, decode + detect CPU ms on a shared box: read the ratio).\n\n"
        "| input | recall | precision (filtered) | latency ratio | CPU ms | recall by plate width |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _extra_sections(metrics: dict[str, Any]) -> str:
    """Any other metrics section (e.g. ``synthetic_val_onnx`` from the evaluator) as its own table."""
    return "".join(
        f"### {name}\n{_sizes_table(values) if 'sizes' in values else _table(values)}"
        for name, values in metrics.items()
        if name not in KNOWN_SECTIONS
    )


def _zoom_row(meta: dict[str, Any], base: str) -> str:
    from thaiplate.detect import ZOOM_BELOW_PX, input_hw

    zoom = ["x".join(map(str, input_hw(z))) for z in meta.get("zoom") or []]
    if not zoom:
        return f"off (`$THAIPLATE_DETECTOR_IMGSZ={base}+480x832` turns one on)"
    below = f"{float(meta.get('zoom_below', ZOOM_BELOW_PX)):g}"
    return (
        f"{', '.join(zoom)}: the same model again at that input; its boxes narrower than {below} px at the base "
        "input are added before one NMS (small plates the base size misses)"
    )


def _quantization_row(meta: dict[str, Any]) -> str:
    from thaiplate.modelcard import quantization_note

    note = quantization_note(meta)
    return f"| quantization | {note} |\n" if note else ""


def render(meta: dict[str, Any]) -> str:
    from thaiplate.detect import input_hw

    h, w = input_hw(meta.get("imgsz", 416))
    imgsz = f"{h}" if h == w else f"{h}x{w}"
    train_imgsz = meta.get("train_imgsz", h if h == w else "?")
    scale = min(w / 1280, h / 720)
    tr = meta.get("training", {})
    metrics = meta.get("metrics", {})
    status = meta.get("status", "final")
    banner = (
        "\n> **EARLY EXPORT** (mid-training snapshot): real format, weak weights. It will be replaced by the "
        "final model; do not quote its numbers.\n"
        if status == "early"
        else ""
    )
    synth = metrics.get("synthetic_val", {})
    real = metrics.get("real_thai_street", {})
    lat = metrics.get("latency", {})
    cmd = tr.get("command", "thaiplate train detector --data data/detect/data.yaml --imgsz 320")
    return f"""# detector: YOLOv8n Thai licence-plate detector
{banner}
| | |
|---|---|
| file | `{meta.get("file", "detector.onnx")}` (ONNX opset 17{", dynamic H x W" if "dynamic" in meta.get("input", {}) else ", static"}){f"; fp32 reference `{meta['fp32_file']}`" if meta.get("fp32_file") else ""}, `detector.pt` (ultralytics checkpoint, optimizer stripped) |
| architecture | YOLOv8n (ultralytics `yolov8n.yaml`), 1 class `plate`, trained **from scratch** (no pretrained weights) |
| input | `images` float32 `(1, 3, {h}, {w})` by default{" (`$THAIPLATE_DETECTOR_IMGSZ`, e.g. `480x832`, overrides it)" if "dynamic" in meta.get("input", {}) else ""}, RGB /255, letterbox (pad 114, centred); trained at {train_imgsz} |
| output | `output0` float32 `{tuple(meta.get("output", {}).get("shape", [1, 5, "A"]))}` = cx, cy, w, h, score in letterboxed pixels; no NMS inside |
| zoom pass | {_zoom_row(meta, f"{h}x{w}")} |
| serving thresholds | conf {meta.get("conf")}, NMS IoU {meta.get("iou")}, boxes taller than {meta.get("max_box_height", 1.0)} of the image dropped (`detector.yaml`) |
| status / exported | {status} / {meta.get("exported", "?")} |
{_quantization_row(meta)}
## Data
- **Training:** `{tr.get("data_command", "thaiplate synth detect")}` scenes: {tr.get("train_images", "?")} train /
  {tr.get("val_images", "?")} val images, 0–3 plates each: rendered Thai plates on procedural backgrounds, and the
  MIT-licensed `dashcam-plates-mit` frames with Thai plates pasted over the foreign ones (or, at
  `p_native_plate` in `thaiplate/configs/synth.yaml`, the real foreign plate kept as a box-only positive).
- **Never trained on** `thai-street-frames` or `thai-plate-crops-real` (evaluation only, no licence). The real-frame
  numbers below are reported for each committed model; no threshold, epoch or input size was chosen with them.

## Training
```
{cmd}
```
{_table({k: v for k, v in tr.items() if k not in ("command",)})}
Curves: `docs/detector-training.png` (plotted from ultralytics' `results.csv`).

## Metrics
### Synthetic val (ultralytics val, IoU 0.5 for mAP50)
{_table(synth)}
### Real Thai street frames (80 frames / 60 boxes, `thaiplate/eval/detector.py`, IoU 0.5)
Precision "filtered" ignores detections narrower than 18 px or touching the border (unboxed distant /
cut-off plates, see the dataset README); recall is the reliable number.

{_table(real)}
### Latency (`scripts/bench-detector`, 1280×720 photo, ONNX Runtime, 1 thread)
{_table(lat)}{_extra_sections(metrics)}
## Findings
{meta.get("findings", "_none recorded_")}

## Why imgsz {imgsz}
{meta.get("imgsz_reason", "_see training notes_")}

## Fine-tune on your own photos
Any ultralytics / Roboflow "YOLOv8" export works (a `data.yaml` with `train` and `val`/`valid` image folders and
YOLO `.txt` labels beside them in `labels/`). Paths are resolved the way Roboflow writes them; a multi-class export
is trained single-class (every box is a plate) so the exported head keeps the `(1, 5, A)` layout.
```
scripts/setup-train-yolo                                   # once: .venv-yolo (torch + ultralytics)
.venv-yolo/bin/thaiplate train detector --data my-export/data.yaml --imgsz {train_imgsz} --epochs 50 \\
    --out runs/detector-mine --init models/detector.pt   # start from this model
.venv-yolo/bin/thaiplate train detector --out runs/detector-mine --resume     # after an interruption
```
The command exports `models/detector.onnx` + `.pt` + `.yaml` + this card (use `--models-dir` to write elsewhere).
Check the result with `scripts/bench-detector` and `python -m thaiplate.eval.detector --images DIR`.

## Limits
- No real Thai photo in training: Thai plates are rendered; the only real plates are Romanian ones on dashcam
  frames (rear views). Real Thai wear, dealer plates, front views in rain and night IR are under-represented. Fine-tuning on a few hundred real labelled photos is the expected next step.
- Small plates: at input {imgsz} a 1280×720 frame is scaled by {_fmt(scale)}; a 20-px plate becomes
  ~{20 * scale:.1f} px and is near the stride-8 limit. Crop a region of interest for far plates.
- One class: it does not tell car / motorcycle / special plates apart (the recogniser's grammar does).
- Static input {imgsz}: {"a 16:9 photo wastes the letterbox padding" if h == w else "landscape, sized for 16:9 cameras; a portrait photo is scaled by " + _fmt(min(w / 720, h / 1280)) + " (rotate it, or export square with `--export-imgsz`)"}.
"""
