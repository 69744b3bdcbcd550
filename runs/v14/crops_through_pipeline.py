"""Read AFTER v14's decision (reported only): the real crop sets through the whole pipeline (detector included)
with v14 fp32 and v7 fp32, the first plate's text against the label; paired sign test. Why: on synthetic scenes
v14 read plates >= 130 px right less often than v7 (runs/v14/e2e{83,96}-vs-m7.json), and the real crops are large."""
import csv
import json
from pathlib import Path

from thaiplate.eval.paired import paired
from thaiplate.pipeline import Pipeline

SETS = {"real-smoke": Path("../shared/real-smoke"), "crops-real": Path("../shared/datasets/thai-plate-crops-real")}
MODELS = {"v14": Path("runs/v14/m14"), "v7": Path("runs/p2/m7")}
pipes = {k: Pipeline.from_dir(v) for k, v in MODELS.items()}
out = {}
for name, root in SETS.items():
    rows = list(csv.DictReader(open(root / "labels.csv", encoding="utf-8")))
    ok: dict[str, list[bool]] = {k: [] for k in pipes}
    detected: dict[str, int] = {k: 0 for k in pipes}
    for r in rows:
        data = (root / r["file"]).read_bytes()
        for k, p in pipes.items():
            res = p.run(data)
            top = res.plates[0] if res.plates else None
            detected[k] += bool(top and top.detection_confidence > 0)
            ok[k].append(bool(top and top.text.replace(" ", "") == r["text"].replace(" ", "")))
    pr = paired(ok["v14"], ok["v7"]).as_dict()
    out[name] = {"n": len(rows), **{f"exact_{k}": round(sum(v) / len(v), 4) for k, v in ok.items()},
                 **{f"detected_{k}": v for k, v in detected.items()}, "paired_v14_vs_v7": pr}
    print(name, json.dumps(out[name]))
Path("runs/v14/crops_through_pipeline.json").write_text(json.dumps(out, indent=1))
