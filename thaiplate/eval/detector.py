"""Detector recall / precision at IoU 0.5 on a folder of images with YOLO labels (serving path, no torch).

Why our own evaluator rather than ultralytics val: it measures what serving runs (`OnnxDetector`:
our letterbox, decode and NMS at the yaml's conf), on the real Thai frames, in the torch-free venv.
Precision is reported twice because `thai-street-frames` boxes only the readable, approaching plates:
"filtered" ignores detections narrower than 18 px or touching the image border (see the dataset README).
Recall is split by plate width, which is what the input size trades against latency.

    python -m thaiplate.eval.detector --images /work/shared/datasets/thai-street-frames/images [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from thaiplate.eval.e2e import iou
from thaiplate.results import Detection

Box = tuple[float, float, float, float]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
WIDTH_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("w<30px", 0, 30),
    ("w30-50px", 30, 50),
    ("w>=50px", 50, float("inf")),
)


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class Sample:
    path: Path
    boxes: list[Box]  # ground truth, x1 y1 x2 y2 in image pixels


def label_path(image: Path) -> Path:
    """ultralytics' rule: .../images/x.jpg -> .../labels/x.txt, else the .txt beside the image."""
    parts = list(image.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        candidate = Path(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
        if candidate.exists():
            return candidate
    return image.with_suffix(".txt")


def load_yolo_folder(images: Path, size_of: dict[Path, tuple[int, int]] | None = None) -> list[Sample]:
    """Images in ``images`` (recursive) with their YOLO ``cls cx cy w h`` labels in pixels."""
    from PIL import Image

    samples = []
    for img in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        w, h = size_of[img] if size_of and img in size_of else Image.open(img).size
        boxes: list[Box] = []
        lbl = label_path(img)
        if lbl.exists():
            for line in lbl.read_text().split("\n"):
                v = line.split()
                if len(v) >= 5:
                    cx, cy, bw, bh = (float(x) for x in v[1:5])
                    boxes.append(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        samples.append(Sample(img, boxes))
    return samples


def match(dets: list[Detection], gts: list[Box], thr: float = 0.5) -> tuple[list[bool], list[bool]]:
    """Greedy by score: each detection takes the best unmatched GT with IoU >= thr.

    Returns (per-detection is-TP, per-GT is-found), detections in the given order.
    """
    order = sorted(range(len(dets)), key=lambda i: -dets[i].confidence)
    tp = [False] * len(dets)
    found = [False] * len(gts)
    for i in order:
        best, best_j = thr, -1
        for j, g in enumerate(gts):
            if not found[j] and (o := iou(dets[i].box, g)) >= best:
                best, best_j = o, j
        if best_j >= 0:
            tp[i], found[best_j] = True, True
    return tp, found


def _ignored_for_precision(box: Box, w: int, h: int, min_width: float, margin: float = 2.0) -> bool:
    x1, y1, x2, y2 = box
    return (x2 - x1) < min_width or x1 <= margin or y1 <= margin or x2 >= w - margin or y2 >= h - margin


def evaluate(
    detector: Detector,
    samples: Iterable[Sample],
    thr: float = 0.5,
    min_width: float = 18.0,
    hits: list[tuple[str, bool]] | None = None,
) -> dict[str, float | int | dict[str, float | int]]:
    """Recall, precision and AP over ``samples``; ``hits``, if given, gets (width bucket, found) per labelled
    box in sample order, for a per-plate comparison of two detectors (:func:`compare`)."""
    from thaiplate.image import decode_image

    n_img = n_gt = n_det = tp = n_det_f = tp_f = 0
    bucket_hits = {name: [0, 0] for name, _, _ in WIDTH_BUCKETS}
    scored: list[tuple[float, bool]] = []
    for s in samples:
        rgb = decode_image(s.path.read_bytes())
        h, w = rgb.shape[:2]
        dets = detector.detect(rgb)
        is_tp, found = match(dets, s.boxes, thr)
        n_img += 1
        n_gt += len(s.boxes)
        n_det += len(dets)
        tp += sum(is_tp)
        scored += [(d.confidence, t) for d, t in zip(dets, is_tp, strict=True)]
        for d, t in zip(dets, is_tp, strict=True):
            if t or not _ignored_for_precision(d.box, w, h, min_width):
                n_det_f += 1
                tp_f += t
        for g, f in zip(s.boxes, found, strict=True):
            for name, lo, hi in WIDTH_BUCKETS:
                if lo <= g[2] - g[0] < hi:
                    bucket_hits[name][0] += f
                    bucket_hits[name][1] += 1
                    if hits is not None:
                        hits.append((name, f))
    return {
        "images": n_img,
        "gt_boxes": n_gt,
        "detections": n_det,
        "true_positives": tp,
        "recall": round(tp / n_gt, 4) if n_gt else 0.0,
        "precision": round(tp / n_det, 4) if n_det else 0.0,
        "precision_filtered": round(tp_f / n_det_f, 4) if n_det_f else 0.0,
        "AP50": round(average_precision(scored, n_gt), 4),
        "recall_by_width": {k: f"{a}/{b}" for k, (a, b) in bucket_hits.items()},
    }


def compare(hits_a: list[tuple[str, bool]], hits_b: list[tuple[str, bool]]) -> dict[str, dict[str, float | int]]:
    """Per width bucket and over all: the plates only one detector finds and the sign test on them. Two
    detectors' recalls on one set are strongly correlated; the discordant plates are the signal."""
    from thaiplate.eval.paired import paired_by_bucket

    return paired_by_bucket(hits_a, hits_b, [name for name, _, _ in WIDTH_BUCKETS])


def average_precision(scored: list[tuple[float, bool]], n_gt: int) -> float:
    """All-point interpolated AP over the detections the detector returned (above its conf)."""
    if not n_gt or not scored:
        return 0.0
    scored = sorted(scored, key=lambda x: -x[0])
    tps = np.cumsum([t for _, t in scored])
    precision = tps / np.arange(1, len(scored) + 1)
    recall = tps / n_gt
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [recall[-1]]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    return float(np.sum((mrec[1:] - mrec[:-1]) * mpre[1:]))


def load_detector(models_dir: Path, threads: int = 1, conf: float | None = None) -> Detector:
    """The serving detector from ``models_dir`` (detector.onnx + detector.yaml)."""
    from thaiplate.detect import OnnxDetector

    kwargs: dict[str, float | int] = {"threads": threads}
    if conf is not None:
        kwargs["conf"] = conf
    return OnnxDetector.from_dir(models_dir, **kwargs)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from thaiplate.train.detector import DEFAULT_MODELS_DIR

    p.add_argument("--images", type=Path, required=True, help="folder of images with YOLO labels")
    p.add_argument("--models", type=Path, default=DEFAULT_MODELS_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iou", type=float, default=0.5, help="match IoU (default 0.5)")
    p.add_argument("--conf", type=float, help="override detector.yaml conf")
    p.add_argument(
        "--against",
        type=Path,
        metavar="MODELS",
        help="also evaluate this models folder on the same images and add `against`: its result and, per width, "
        "the plates only one of the two finds with the sign test (only_a = --models only)",
    )
    p.add_argument(
        "--record",
        metavar="SECTION",
        nargs="?",
        const="real_thai_street",
        help="merge the result into models/detector.yaml metrics[SECTION] and re-render the card",
    )
    p.set_defaults(func=run)
    return p


def add_detector_eval_parser(eval_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``thaiplate eval detector``: one call for the eval CLI to register this evaluator."""
    return add_arguments(
        eval_subparsers.add_parser(
            "detector", help="detector recall/precision at IoU 0.5 on images with YOLO labels"
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m thaiplate.eval.detector", description=__doc__.split("\n")[0])
    return run(add_arguments(p).parse_args(argv))


def _dataset_name(images: Path) -> str:
    images = images.resolve()
    return f"{images.parent.name}/{images.name}" if images.name in {"images", "val", "valid"} else images.name


def run(a: argparse.Namespace) -> int:
    try:  # both before any evaluation: a bad --against should not wait for the first model's whole run
        detector = load_detector(a.models, a.threads, a.conf)
        reference = load_detector(a.against, a.threads, a.conf) if a.against else None
    except (FileNotFoundError, ValueError) as e:
        print(f"thaiplate eval detector: cannot load models: {e}", file=sys.stderr)
        return 2
    samples = load_yolo_folder(a.images)
    hits: list[tuple[str, bool]] = []
    result = evaluate(detector, samples, a.iou, hits=hits)
    report = result
    if reference is not None:
        ref_hits: list[tuple[str, bool]] = []
        ref = evaluate(reference, samples, a.iou, hits=ref_hits)
        report = {**result, "against": {"models": str(a.against), **ref, "paired": compare(hits, ref_hits)}}
    print(json.dumps(report, indent=2))
    if a.record:  # the card records this model's own numbers, never the comparison
        from thaiplate.train.detector import record_metrics

        record_metrics(a.models, a.record, {"dataset": _dataset_name(a.images), "match_iou": a.iou, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
