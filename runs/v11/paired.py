"""Read-after analysis for runs/rule-detector-v11.md: per-plate discordant counts between two detectors (which
plates one finds and the other misses), by width, on a labelled scene set. Usage: paired.py DATA_DIR A B
(A, B = model dirs); writes nothing, prints a table and a JSON line."""
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

from thaiplate.eval.detector import load_detector, match
from thaiplate.eval.paired import sign_test_p
from thaiplate.image import decode_image

root, a_dir, b_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
boxes = defaultdict(list)
for r in csv.DictReader(open(root / "labels.csv")):
    if r["x1"] and r.get("plate_text", "x"):  # synthetic sets: pasted Thai plates only (native ones carry no text)
        boxes[r["file"]].append((float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"])))
dets = [load_detector(a_dir), load_detector(b_dir)]
cells = defaultdict(lambda: [0, 0, 0, 0, 0])  # n, A found, B found, A only, B only
for f, gts in sorted(boxes.items()):
    img = decode_image((root / f).read_bytes())
    fa, fb = (match(d.detect(img), gts)[1] for d in dets)
    for i, b in enumerate(gts):
        w = b[2] - b[0]
        c = cells["<30" if w < 30 else "30-50" if w < 50 else ">=50"]
        c[0] += 1; c[1] += fa[i]; c[2] += fb[i]; c[3] += fa[i] and not fb[i]; c[4] += fb[i] and not fa[i]
out = {}
print(f"{root}: A = {a_dir}, B = {b_dir}")
for key in ("<30", "30-50", ">=50"):
    n, a, b, ao, bo = cells[key]
    p = round(sign_test_p(ao, ao + bo), 4) if ao + bo else None
    out[key] = {"n": n, "A": a, "B": b, "A_only": ao, "B_only": bo, "sign_p": p}
    print(f"{key:6s} n {n:5d}  A {a:5d}  B {b:5d}  A-only {ao:3d}  B-only {bo:3d}  p {p}")
print(json.dumps(out))
