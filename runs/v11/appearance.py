"""Read-after, aggregate only: how do small plates look in the real street frames vs the synthetic judge set?
Per labelled plate (by width bucket): box height and aspect, contrast inside the box, contrast against a ring
around it, and edge sharpness (mean gradient magnitude / std inside the box, so contrast does not count twice).
Medians per set; nothing here picks a model or a setting. Usage: appearance.py DATA_DIR [DATA_DIR ...]"""
import csv
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from thaiplate.image import decode_image


def stats(gray: np.ndarray, b: tuple[float, float, float, float]) -> dict[str, float]:
    x1, y1, x2, y2 = (int(round(v)) for v in b)
    w, h = x2 - x1, y2 - y1
    crop = gray[max(y1, 0):y2, max(x1, 0):x2].astype(np.float32)
    pad = max(2, h // 2)
    ring = gray[max(y1 - pad, 0):y2 + pad, max(x1 - pad, 0):x2 + pad].astype(np.float32)
    ring_mean = (ring.sum() - crop.sum()) / max(ring.size - crop.size, 1)
    gx, gy = cv2.Sobel(crop, cv2.CV_32F, 1, 0), cv2.Sobel(crop, cv2.CV_32F, 0, 1)
    std = float(crop.std()) + 1e-6
    return {"h": h, "aspect": w / max(h, 1), "contrast": std / 255, "vs_ring": abs(float(crop.mean()) - ring_mean) / 255,
            "sharp": float(np.hypot(gx, gy)[1:-1, 1:-1].mean()) / std if min(w, h) > 2 else float("nan"),
            "luma": float(crop.mean()) / 255}


for root in map(Path, sys.argv[1:]):
    rows = defaultdict(list)
    by_file = defaultdict(list)
    for r in csv.DictReader(open(root / "labels.csv")):
        if r["x1"] and r.get("plate_text", "x"):
            by_file[r["file"]].append(tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")))
    for f, bs in sorted(by_file.items()):
        img = decode_image((root / f).read_bytes())
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        for b in bs:
            w = b[2] - b[0]
            rows["<30" if w < 30 else "30-50" if w < 50 else ">=50"].append(stats(gray, b))
    for key in ("<30", "30-50", ">=50"):
        if rows[key]:
            med = {k: np.nanmedian([s[k] for s in rows[key]]) for k in rows[key][0]}
            print(f"{str(root):45s} {key:6s} n {len(rows[key]):5d}  " + "  ".join(f"{k} {v:.3f}" for k, v in med.items()))
