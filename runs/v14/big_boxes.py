"""After v14's decision, reported only: do v14's boxes on plates >= 130 px differ from v7's? (v14 read such plates
right less often end to end: runs/v14/e2e{83,96}-vs-m7.json.) Per labelled plate found by both (IoU >= 0.5):
IoU with the label and width/height relative to it. Usage: python runs/v14/big_boxes.py data/detect96/images/val"""
import json
import sys
from pathlib import Path

import numpy as np

from thaiplate.eval.detector import load_detector, load_yolo_folder
from thaiplate.image import decode_image

images = Path(sys.argv[1])
dets = {k: load_detector(Path(v), threads=1) for k, v in (("v14", "runs/v14/m14"), ("v7", "runs/p2/m7"))}


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


stats = {k: {"iou": [], "w": [], "h": []} for k in dets}
for s in load_yolo_folder(images):
    big = [g for g in s.boxes if g[2] - g[0] >= 130]
    if not big:
        continue
    img = decode_image(s.path.read_bytes())
    found = {k: d.detect(img) for k, d in dets.items()}
    for g in big:
        best = {k: max(found[k], key=lambda d: iou(d.box, g), default=None) for k in dets}
        if all(b is not None and iou(b.box, g) >= 0.5 for b in best.values()):
            gw, gh = g[2] - g[0], g[3] - g[1]
            for k, b in best.items():
                stats[k]["iou"].append(iou(b.box, g))
                stats[k]["w"].append((b.box[2] - b.box[0]) / gw)
                stats[k]["h"].append((b.box[3] - b.box[1]) / gh)
out = {k: {m: {"median": round(float(np.median(v)), 4), "p10": round(float(np.percentile(v, 10)), 4),
               "p90": round(float(np.percentile(v, 90)), 4)} for m, v in st.items()} | {"n": len(st["iou"])}
       for k, st in stats.items()}
print(json.dumps(out))
