"""Tiny hand-made plate crops (PIL text on white) for tests and smoke runs before real synthetic data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from thaiplate import labels

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/tlwg/Loma-Bold.ttf",
    "/usr/share/fonts/truetype/tlwg/Loma.ttf",
    "/usr/share/fonts/opentype/tlwg/Loma-Bold.otf",
    "/usr/share/fonts/opentype/tlwg/Loma.otf",
]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def random_text(rng: np.random.Generator) -> str:
    cons = labels.CONSONANTS
    lead = str(rng.integers(1, 10)) if rng.random() < 0.5 else ""
    letters = "".join(rng.choice(list(cons), 2))
    return f"{lead}{letters} {rng.integers(1, 10000)}"


def toy_crop(text: str, province_th: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """A 2-line car-plate-like crop: registration on top, province name below."""
    rng = rng or np.random.default_rng(0)
    img = Image.new("RGB", (300, 136), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle((2, 2, 297, 133), outline=(0, 0, 0), width=3)
    d.text((150, 48), text, font=font(58), fill=(0, 0, 0), anchor="mm")
    d.text((150, 108), province_th, font=font(26), fill=(0, 0, 0), anchor="mm")
    arr = np.asarray(img).astype(np.int16) + rng.integers(-10, 10, (136, 300, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_toy_set(folder: Path, n: int, seed: int = 0, n_provinces: int = 4) -> Path:
    """Write ``n`` toy crops + ``labels.csv`` (file,text,province_code,plate_type) into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    provs = labels.provinces()[:n_provinces]
    with open(folder / "labels.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "text", "province_code", "plate_type"])
        for i in range(n):
            text = random_text(rng)
            p = provs[int(rng.integers(len(provs)))]
            name = f"{i:05d}.png"
            Image.fromarray(toy_crop(text, p.name_th, rng)).save(folder / name)
            w.writerow([name, text, p.code, "private_car"])
    return folder
