"""Contact sheets: synthetic crops with their labels, optionally next to real crops."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from thaiplate.labels import PlateType, pattern_for
from thaiplate.synth import fonts
from thaiplate.synth.augment import augment_config, load_config
from thaiplate.synth.crops import ocr_sample

TILE = (200, 90)  # w, h of each crop on the sheet
CAPTION = 22


def _tile(img: np.ndarray, caption: str, colour: tuple[int, int, int]) -> np.ndarray:
    crop = cv2.resize(img, TILE, interpolation=cv2.INTER_AREA)
    tile = Image.new("RGB", (TILE[0], TILE[1] + CAPTION), colour)
    tile.paste(Image.fromarray(crop), (0, 0))
    font = fonts.load(fonts.find_fonts().choices("province")[0][0], 15)
    ImageDraw.Draw(tile).text((4, TILE[1] + 2), caption, font=font, fill=(255, 255, 255))
    return np.asarray(tile)


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    blank = np.zeros_like(tiles[0])
    tiles = tiles + [blank] * (-len(tiles) % cols)
    return np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])


def real_rows(real_dir: str, n: int, plate_type: PlateType | None = None) -> list[dict[str, str]]:
    """Up to ``n`` rows of ``real_dir/labels.csv`` spread over the file; with ``plate_type``, only texts
    that fit its grammar (the real sets do not label the kind of plate)."""
    with open(Path(real_dir) / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if plate_type:
        rows = [r for r in rows if pattern_for(plate_type).fullmatch(r["text"])]
    return rows[:: max(1, len(rows) // n)][:n]


def contact_sheet(n: int, seed: int, config: str | None = None, real_dir: str | None = None, cols: int = 5,
                  plate_type: PlateType | None = None) -> np.ndarray:
    """Synthetic tiles (blue captions); with ``real_dir``, real tiles (green captions) on the left.
    ``plate_type`` keeps one kind: synthetic plates of it, real crops whose text fits its grammar."""
    cfg = augment_config(load_config(config))
    synth = []
    for i in range(n):
        s = ocr_sample(np.random.default_rng([seed, i]), cfg, plate_type=plate_type)
        synth.append(_tile(s.image, f"synth {s.spec.text} {s.spec.plate_type.value}", (30, 60, 140)))
    sheet = _grid(synth, cols)
    if not real_dir:
        return sheet
    rows = real_rows(real_dir, n, plate_type)
    real = []
    for r in rows:
        bgr = cv2.imread(str(Path(real_dir) / r["file"]))
        if bgr is not None:
            real.append(_tile(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), f"real {r['text']}", (20, 110, 50)))
    real_sheet = _grid(real, cols)
    h = max(sheet.shape[0], real_sheet.shape[0])
    pad = lambda a: np.pad(a, ((0, h - a.shape[0]), (0, 0), (0, 0)))  # noqa: E731
    gap = np.full((h, 12, 3), 255, np.uint8)
    return np.hstack([pad(real_sheet), gap, pad(sheet)])
