"""Print runs/rule-detector-v11.md's bars from the judge JSONs (v7 = runs/p2/m7, v10-p2 = runs/p2/mP)."""
import json
from pathlib import Path

R, P = Path("runs/v11"), Path("runs/p2")


def load(p: Path) -> dict | None:
    return json.loads(p.read_text()) if p.exists() and p.stat().st_size else None


def small(d: dict) -> tuple[int, int]:
    found = total = 0
    for k in ("w<30px", "w30-50px"):
        a, b = d["recall_by_width"][k].split("/")
        found, total = found + int(a), total + int(b)
    return found, total


det = {m: load(R / f"det93-{m}.json") for m in ("m7", "m11", "mP")}
e2e = {"m7": load(P / "e2e83-m7.json"), "mP": load(P / "e2e83-mP.json"), "m11": load(R / "e2e83-m11.json")}
print("model  small<50px      AP50    recall  prec_f  dets  | e2e83 exact  recall")
for m in ("m7", "m11", "mP"):
    d, e = det[m], e2e[m]
    row = f"{m:5}"
    if d:
        f, t = small(d)
        row += f"  {f}/{t} ({f / t:.3f})  {d['AP50']:.4f}  {d['recall']:.4f}  {d['precision_filtered']:.3f}  {d['detections']:5}"
        row += "  " + " ".join(f"{k}={v}" for k, v in d["recall_by_width"].items())
    if e:
        row += f"  | {e['plate_exact']:.4f}  {e['detection_recall']:.4f}"
    print(row)
lat = load(R / "latency.json")
if lat:
    print("latency:", [(r["model"], r["cpu_ms"], r["cpu_ratio"]) for r in lat["rows"]], "load", lat["load_avg_1m"])
