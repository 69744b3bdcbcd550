"""Labelled plate-crop folders -> in-memory uint8 arrays, plus the cheap on-the-fly jitter.

A folder holds ``labels.csv`` (``file,text,province_code[,plate_type,...]``) and the images it names,
as written by ``thaiplate synth ocr`` (the real eval sets use the same first three columns). The whole
set is decoded once at the model input size (60k crops x 64x192x3 = 2.2 GB), so an epoch never touches
the disk or a JPEG decoder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from thaiplate import labels
from thaiplate.preprocess import resize_crop


@dataclass
class PlateSet:
    images: np.ndarray  # (N, H, W, 3) uint8 RGB at model input size
    texts: list[str]
    provinces: np.ndarray  # (N,) int64 class index, -1 = unlabelled
    plate_types: list[str]  # "" when the folder has no plate_type column
    files: list[str]
    notes: list[str]  # "" when the folder has no notes column

    def __len__(self) -> int:
        return len(self.texts)


def read_labels(folder: str | Path) -> list[dict[str, str]]:
    with open(Path(folder) / "labels.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_rgb(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_plate_set(
    folder: str | Path, height: int = 64, width: int = 192, limit: int | None = None, progress: bool = True
) -> PlateSet:
    folder = Path(folder)
    rows = read_labels(folder)[:limit]
    images = np.empty((len(rows), height, width, 3), np.uint8)
    index = labels.province_index()
    for i, row in enumerate(tqdm(rows, desc=f"load {folder.name}", disable=not progress, mininterval=5)):
        images[i] = resize_crop(read_rgb(folder / row["file"]), height, width)
    return PlateSet(
        images=images,
        texts=[r["text"].strip() for r in rows],
        provinces=np.array([index.get((r.get("province_code") or "").strip(), -1) for r in rows], np.int64),
        plate_types=[(r.get("plate_type") or "").strip() for r in rows],
        files=[r["file"] for r in rows],
        notes=[(r.get("notes") or "").strip() for r in rows],
    )


@dataclass(frozen=True)
class Jitter:
    """Small random geometry/photometric changes on top of the synthetic engine's augmentation.

    Detector boxes are never pixel-exact, so the crop is shifted and scaled a little; the amounts stay
    small enough that no glyph leaves the frame.
    """

    shift: float = 0.03  # fraction of width / height
    scale: float = 0.06  # zoom in [1 - scale, 1 + scale]
    brightness: float = 0.2  # additive, fraction of 255
    contrast: float = 0.2  # multiplicative around the mean

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        s = 1.0 + rng.uniform(-self.scale, self.scale)
        sx = 1.0 + rng.uniform(-self.scale, self.scale) * 0.5  # mild aspect change
        tx, ty = rng.uniform(-self.shift, self.shift) * w, rng.uniform(-self.shift, self.shift) * h
        m = np.array(
            [[s * sx, 0, (1 - s * sx) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]],
            np.float32,
        )
        out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        c = 1.0 + rng.uniform(-self.contrast, self.contrast)
        b = rng.uniform(-self.brightness, self.brightness) * 255
        mean = out.mean()
        return np.clip((out - mean) * c + mean + b, 0, 255).astype(np.uint8)
