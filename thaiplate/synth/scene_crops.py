"""Recogniser training crops cut from labelled scenes the way serving cuts them.

``thaiplate synth ocr`` draws crops straight from the plate renderer. In serving the recogniser reads
something else: a plate pasted into a photo (re-sampled, faded, JPEG'd at scene scale), cut by a
detector box that is never pixel-exact, then rectified by :func:`thaiplate.crop.rectify_plate`. On
synthetic scenes a found 50-80 px plate is read right ~57 % of the time against ~85 % for renderer
crops of that size (stop-18 note). Cutting training crops from the scene sets with the serving crop
code, from jittered true boxes, trains on what is served.

Only the *train* split of a scene set should be cut (``--subset images/train/``): its val split chooses
the reading gate and a fresh set judges the reader.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from thaiplate.crop import rectify_plate
from thaiplate.eval.e2e import Box, LabelledPlate, Sample, load_labels
from thaiplate.results import Detection
from thaiplate.train.data import read_rgb

FIELDS = ["file", "text", "province_code", "plate_type", "detail_px", "source"]


def jitter_box(box: Box, rng: np.random.Generator, amount: float) -> Box:
    """Move each side by up to ``amount`` of the box's width (x) or height (y), as a detector would."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx = rng.uniform(-amount, amount, 2) * w
    dy = rng.uniform(-amount, amount, 2) * h
    return (x1 + dx[0], y1 + dy[0], x2 + dx[1], y2 + dy[1])


def wide_text_plates(sample: Sample, min_width: float) -> list[tuple[int, LabelledPlate]]:
    """``(index, plate)`` of the sample's plates that carry text and are at least ``min_width`` px wide."""
    return [(j, p) for j, p in enumerate(sample.plates) if p.text and p.box[2] - p.box[0] >= min_width]


def cut_scene_crops(
    data: str | Path,
    out: str | Path,
    *,
    subset: str = "images/train/",
    copies: int = 2,
    jitter: float = 0.05,
    min_width: float = 40.0,
    seed: int = 0,
) -> int:
    """Write ``copies`` jittered, rectified crops of every text-labelled plate at least ``min_width`` px
    wide in ``data``'s ``subset`` to ``out/images`` + ``out/labels.csv``; returns the number written.

    Crops are PNG (the scene is already JPEG; a second lossy pass is not what serving sees). Copy ``k``
    of plate ``j`` of image ``i`` is drawn from ``default_rng([seed, i, j, k])``: reruns are identical.
    """
    data, out = Path(data), Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    samples = load_labels(data, subset)
    if not samples:
        raise ValueError(f"{data}/labels.csv has no rows under {subset!r}")
    n = 0
    with open(out / "labels.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FIELDS)
        for i, sample in enumerate(tqdm(samples, desc="scene crops", unit="img", mininterval=2)):
            plates = wide_text_plates(sample, min_width)
            if not plates:
                continue
            rgb = read_rgb(sample.path)
            source = sample.path.relative_to(data).as_posix()
            for j, plate in plates:
                for k in range(copies):
                    box = jitter_box(plate.box, np.random.default_rng([seed, i, j, k]), jitter)
                    crop = rectify_plate(rgb, Detection(box, 1.0)).pixels
                    name = f"images/{i:06d}_{j}_{k}.png"
                    cv2.imwrite(str(out / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                    w.writerow([name, plate.text, plate.province or "", "", f"{plate.box[2] - plate.box[0]:.1f}", source])
                    n += 1
    return n
