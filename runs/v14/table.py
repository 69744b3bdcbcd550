"""Print the bars of runs/rule-detector-v14.md (and its INT8 check) from the judge JSONs in runs/v14.
v7 on data/detect94 / detect93 / detect83: runs/v11/det9[34]-m7.json, runs/p2/e2e83-m7.json (deterministic)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tables import load, small  # noqa: E402

R, R11, P = Path("runs/v14"), Path("runs/v11"), Path("runs/p2")


def det(d: dict | None) -> str:
    return f"AP50 {d['AP50']:.4f} recall {d['recall']:.4f} <50px {small(d)} prec_f {d['precision_filtered']:.3f}" if d else "-"


def e2e(d: dict | None) -> str:
    return f"{d['plate_exact']:.4f} (found {d['detection_recall']:.4f}, province {d['province_top1']:.4f})" if d else "-"


d96 = load(R / "det96.json")
rows = {
    "A far <50px (detect94)": (small(load(R11 / "det94-m7.json")), small(load(R / "det94.json")) if load(R / "det94.json") else "-", "-"),
    "B detect96": (det(d96["against"]) if d96 else "-", det(d96), det(load(R / "det96-m14q.json"))),
    "C e2e detect96": (e2e(load(R / "e2e96-m7.json")), e2e(load(R / "e2e96.json")), e2e(load(R / "e2e96-m14q.json"))),
    "old: detect93": (det(load(R11 / "det93-m7.json")), det(load(R / "det93.json")), "-"),
    "old: e2e detect83": (e2e(load(P / "e2e83-m7.json")), e2e(load(R / "e2e83.json")), "-"),
    "detect92": ("-", det(load(R / "det92-m14.json")), det(load(R / "det92-m14q.json"))),
}
for name, (v7, v14, q) in rows.items():
    print(f"{name}\n  v7   {v7}\n  v14  {v14}\n  INT8 {q}")
if d96:
    print("paired detect96 (v14 = a, v7 = b):", json.dumps(d96["against"]["paired"]["all"]))
for name in ("latency.json", "latency-int8-m14.json"):
    lat = load(R / name)
    if lat:
        print(name, [(r["model"], r["cpu_ms"], r["cpu_ratio"]) for r in lat["rows"]], "load", lat["load_avg_1m"])
