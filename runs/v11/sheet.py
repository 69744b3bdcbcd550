"""Contact sheet: plates 30-50 px wide with context (3x the box), real street frames vs synthetic detect93,
each tile labelled with which detectors found it (7 = v7, 11 = v11, P = v10-p2). Read-after picture only."""
import csv
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from thaiplate.eval.detector import load_detector, match
from thaiplate.image import decode_image

MODELS = {"7": "runs/p2/m7", "11": "runs/v11/m11", "P": "runs/p2/mP"}
TILE = 160


def tiles(root: Path, limit: int) -> list[np.ndarray]:
    by_file = defaultdict(list)
    for r in csv.DictReader(open(root / "labels.csv")):
        if r["x1"] and r.get("plate_text", "x"):
            b = tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2"))
            if 30 <= b[2] - b[0] < 50:
                by_file[r["file"]].append(b)
    dets = {k: load_detector(Path(v)) for k, v in MODELS.items()}
    out = []
    for f, bs in sorted(by_file.items()):
        img = decode_image((root / f).read_bytes())
        found = {k: match(d.detect(img), bs)[1] for k, d in dets.items()}
        for i, (x1, y1, x2, y2) in enumerate(bs):
            cx, cy, s = (x1 + x2) / 2, (y1 + y2) / 2, 1.5 * (x2 - x1)
            X1, Y1 = int(max(cx - s, 0)), int(max(cy - s * 0.6, 0))
            X2, Y2 = int(min(cx + s, img.shape[1])), int(min(cy + s * 0.6, img.shape[0]))
            t = cv2.resize(np.ascontiguousarray(img[Y1:Y2, X1:X2]), (TILE, int(TILE * 0.4)), interpolation=cv2.INTER_NEAREST)
            t = cv2.copyMakeBorder(t, 0, 16, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
            tag = " ".join(k if found[k][i] else "-" for k in MODELS)
            cv2.putText(t, tag, (4, t.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
            out.append(t)
            if len(out) >= limit:
                return out
    return out


def grid(ts: list[np.ndarray], cols: int = 8) -> np.ndarray:
    h, w = ts[0].shape[:2]
    rows = (len(ts) + cols - 1) // cols
    g = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i, t in enumerate(ts):
        r, c = divmod(i, cols)
        g[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + w] = t
    return g


real = grid(tiles(Path("../shared/datasets/thai-street-frames"), 26))
far = grid(tiles(Path("data/detect94"), 24))
synth = grid(tiles(Path("data/detect93"), 32))
bar = np.full((24, real.shape[1], 3), 255, np.uint8)
cv2.putText(bar, "above: real street frames, plates 30-50 px | below: synthetic detect93 | tags: found by v7, v11, P2",
            (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
bar2 = bar.copy(); bar2[:] = 255
cv2.putText(bar2, "below: far dashcam scenes (data/detect94, p_far_dashcam), plates 30-50 px", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
out = np.vstack([real, bar, synth[:, : real.shape[1]], bar2, far[:, : real.shape[1]]])
cv2.imwrite(sys.argv[1] if len(sys.argv) > 1 else "docs/small-plates.jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
