"""Read-after analysis for runs/rule-detector-p2.md: data/detect92 recall split into pasted Thai plates and the
dashcam frames' own (Romanian, 'native') plates, by width; per-plate discordant counts (P2 only / v7 only)."""
import csv
import json
from collections import defaultdict
from pathlib import Path

from thaiplate.eval.detector import load_detector, match
from thaiplate.eval.paired import sign_test_p
from thaiplate.image import decode_image

root = Path("data/detect92")
boxes = defaultdict(list)
for r in csv.DictReader(open(root / "labels.csv")):
    if r["x1"]:
        boxes[r["file"]].append(((float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"])), bool(r["plate_text"])))
dets = {m: load_detector(Path(f"runs/p2/{m}")) for m in ("m7", "mP")}
cells = defaultdict(lambda: [0, 0, 0, 0])  # n, v7 found, P2 found, P2-only minus v7-only pieces below
disc = defaultdict(lambda: [0, 0])
for f, bx in sorted(boxes.items()):
    img = decode_image((root / f).read_bytes())
    gts = [b for b, _ in bx]
    found = {m: match(d.detect(img), gts)[1] for m, d in dets.items()}
    for i, (b, thai) in enumerate(bx):
        w = b[2] - b[0]
        key = ("thai" if thai else "native", "<30" if w < 30 else "30-50" if w < 50 else ">=50")
        a, p = found["m7"][i], found["mP"][i]
        c = cells[key]
        c[0] += 1; c[1] += a; c[2] += p
        disc[key][0] += p and not a; disc[key][1] += a and not p
out = {}
for key in sorted(cells):
    n, a, p, _ = cells[key]
    po, ao = disc[key]
    out["/".join(key)] = {"n": n, "v7": a, "p2": p, "p2_only": po, "v7_only": ao, "sign_p": round(sign_test_p(po, po + ao), 4) if po + ao else None}
    print(f"{'/'.join(key):14s} n {n:5d}  v7 {a:5d}  P2 {p:5d}  P2-only {po:3d}  v7-only {ao:3d}")
Path("runs/p2/split_native.json").write_text(json.dumps(out, indent=1))
