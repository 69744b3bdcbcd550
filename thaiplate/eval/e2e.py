"""End-to-end evaluation: whole images through the serving ``Pipeline``, scored against plate labels.

``DIR/labels.csv``, one row per plate, either

- ``file,plate_text,province_code,x1,y1,x2,y2`` (full labels), or
- ``file,x1,y1,x2,y2`` (boxes only, e.g. ``thai-street-frames``): text and province metrics are then
  ``null``.

An image without plates has one row with empty box fields. ``file`` is relative to ``DIR``.

Metrics: a prediction matches a labelled plate at IoU >= 0.5 (greedy, best detection first, one to
one). ``plate_exact`` and ``province_top1`` are end-to-end: a plate the detector missed counts as
wrong, so they are never better than ``detection_recall``. Text is compared without spaces.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thaiplate.eval import write_report
from thaiplate.results import PipelineResult

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledPlate:
    box: Box
    text: str | None = None
    province: str | None = None


@dataclass
class Sample:
    path: Path
    plates: list[LabelledPlate] = field(default_factory=list)


def load_labels(data_dir: str | Path) -> list[Sample]:
    """Read ``labels.csv`` (either format) into one :class:`Sample` per image, file order kept."""
    data_dir = Path(data_dir)
    path = data_dir / "labels.csv"
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or ())
        missing = {"file", "x1", "y1", "x2", "y2"} - cols
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        samples: dict[str, Sample] = {}
        for row in reader:
            name = row["file"].strip()
            sample = samples.setdefault(name, Sample(data_dir / name))
            coords = [row[k].strip() for k in ("x1", "y1", "x2", "y2")]
            if not all(coords):
                continue  # image without a plate
            box: Box = tuple(float(v) for v in coords)  # type: ignore[assignment]
            text = (row.get("plate_text") or "").strip() or None
            province = (row.get("province_code") or "").strip() or None
            sample.plates.append(LabelledPlate(box, text, province))
    return list(samples.values())


def iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(pred_boxes: list[Box], gt_boxes: list[Box], thr: float = 0.5) -> dict[int, int]:
    """Greedy one-to-one matching, predictions in the given (confidence) order: ``{gt: pred}``."""
    pairs: dict[int, int] = {}
    for p, pb in enumerate(pred_boxes):
        best, best_iou = -1, thr
        for g, gb in enumerate(gt_boxes):
            if g not in pairs:
                o = iou(pb, gb)
                if o >= best_iou:
                    best, best_iou = g, o
        if best >= 0:
            pairs[best] = p
    return pairs


def _same_text(a: str, b: str) -> bool:
    return a.replace(" ", "") == b.replace(" ", "")


@dataclass
class Tally:
    images: int = 0
    failed: int = 0
    plates: int = 0
    detections: int = 0
    matched: int = 0
    with_text: int = 0
    text_ok: int = 0
    with_province: int = 0
    province_ok: int = 0
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, sample: Sample, result: PipelineResult, thr: float) -> None:
        self.images += 1
        self.plates += len(sample.plates)
        self.detections += len(result.plates)
        pairs = match([p.box for p in result.plates], [g.box for g in sample.plates], thr)
        self.matched += len(pairs)
        for g, gt in enumerate(sample.plates):
            pred = result.plates[pairs[g]] if g in pairs else None
            if gt.text is not None:
                self.with_text += 1
                self.text_ok += bool(pred and _same_text(pred.text, gt.text))
            if gt.province is not None:
                self.with_province += 1
                self.province_ok += bool(pred and pred.province and pred.province.code == gt.province)
        for k, v in result.timings_ms.items():
            self.timings[k].append(v)

    def metrics(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        return {
            "n_images": self.images,
            "n_failed_images": self.failed,
            "n_plates": self.plates,
            "n_detections": self.detections,
            "detection_recall": ratio(self.matched, self.plates),
            "detection_precision": ratio(self.matched, self.detections),
            "plate_exact": ratio(self.text_ok, self.with_text),
            "province_top1": ratio(self.province_ok, self.with_province),
            "timings_ms": {k: round(sum(v) / len(v), 3) for k, v in self.timings.items() if v},
        }


def evaluate(
    pipeline: Any, samples: Iterable[Sample], *, iou_thr: float = 0.5, progress: bool = True
) -> dict:
    """Run ``pipeline.run(bytes)`` on every sample; unreadable images are counted, not fatal."""
    from tqdm import tqdm

    from thaiplate.image import ImageError

    samples = list(samples)
    tally = Tally()
    for sample in tqdm(samples, desc="e2e", unit="img", disable=not progress, file=sys.stderr):
        try:
            result = pipeline.run(sample.path.read_bytes())
        except (OSError, ImageError) as e:
            tally.images += 1
            tally.failed += 1
            tally.plates += len(sample.plates)  # missed plates still count against recall
            tally.with_text += sum(g.text is not None for g in sample.plates)
            tally.with_province += sum(g.province is not None for g in sample.plates)
            print(f"{sample.path}: {getattr(e, 'message', None) or e}", file=sys.stderr)
            continue
        tally.add(sample, result, iou_thr)
    return tally.metrics()


def format_table(metrics: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in metrics.items() if k != "timings_ms"]
    rows += [(f"time {k} (ms, mean)", v) for k, v in metrics.get("timings_ms", {}).items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in rows)


def add_e2e_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "e2e",
        help="whole images through the serving pipeline: detection recall/precision, exact plates, provinces",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--data", type=Path, required=True, help="folder with labels.csv and the images")
    p.add_argument("--out", type=Path, help="write the metrics JSON here")
    p.add_argument(
        "--models", type=Path, default=None, help="models folder (default $THAIPLATE_MODELS or models/)"
    )
    p.add_argument("--iou", type=float, default=0.5, help="IoU for a detection to match a label (0.5)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.set_defaults(func=main)


def main(args: Any) -> int:
    from thaiplate.pipeline import Pipeline

    samples = load_labels(args.data)[: args.limit]
    pipeline = Pipeline.from_dir(args.models)
    metrics = {
        "data": str(args.data),
        "models": pipeline.models,
        **evaluate(pipeline, samples, iou_thr=args.iou),
    }
    print(format_table({k: v for k, v in metrics.items() if k not in ("data", "models")}))
    if args.out:
        write_report(args.out, metrics)
    return 0
