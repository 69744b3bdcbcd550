"""Split-half reliability of each set's trend-free wiggles across the 14 readers (runs/rule-proxy-video.md, after).

If two random halves of a set (by plate group for the real crops) disagree about which readers are above their
trend, no proxy can track that set's wiggles: they are noise at its size.
"""
import json
import sys

import numpy as np

from thaiplate.eval.ocr import evaluate
from thaiplate.eval.tracking import detrend, pearson

VERSIONS = [4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 18, 24, 25, 26]
sets = {"real": "../shared/datasets/thai-plate-crops-real", "ocr_proxy90": "data/ocr_proxy90",
        "scene_crops76": "data/scene_crops76"}
out = {}
rng = np.random.default_rng(0)
for name, folder in sets.items():
    ok, groups = [], None
    for v in VERSIONS:
        _, rows = evaluate(folder, f"runs/proxy/m{v}")
        ok.append([r.ok for r in rows if not r.partial])
        groups = [r.group or r.file for r in rows if not r.partial]
    ok = np.array(ok, dtype=float)  # versions x items
    uniq = sorted(set(groups))
    gidx = np.array([uniq.index(g) for g in groups])
    rs = []
    for _ in range(500):
        half = rng.permutation(len(uniq))[: len(uniq) // 2]
        a = np.isin(gidx, half)
        ra = pearson(detrend(ok[:, a].mean(1)), detrend(ok[:, ~a].mean(1)))
        rs.append(ra)
    r = float(np.nanmean(rs))
    out[name] = {"items": int(ok.shape[1]), "groups": len(uniq), "split_half_detrended_r": r,
                 "spearman_brown_full": 2 * r / (1 + r) if r > -1 else None,
                 "residual_sd_pt": float(100 * detrend(ok.mean(1)).std())}
    print(name, out[name], flush=True)
json.dump(out, open("runs/proxy/splithalf.json", "w"), indent=1)
