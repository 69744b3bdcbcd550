"""Print the bars of runs/rule-detector-v11.md and -v12.md from the judge JSONs (v7 = runs/p2/m7, v10-p2 = runs/p2/mP)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tables import load, small  # noqa: E402

R, P = Path("runs/v11"), Path("runs/p2")


E2E = {"m7": P / "e2e83-m7.json", "mP": P / "e2e83-mP.json"}
print("model | detect93 <50px, AP50, recall, prec_f | detect94 (far) <50px, AP50 | e2e83 exact")
for m in ("m7", "m11", "mP", "m12"):
    row = [m]
    for s in ("93", "94"):
        d = load(R / f"det{s}-{m}.json")
        row.append(f"{small(d)} {d['AP50']:.4f} {d['recall']:.4f} {d['precision_filtered']:.3f}" if d else "-")
    e = load(E2E.get(m, R / f"e2e83-{m}.json"))
    row.append(f"{e['plate_exact']:.4f}" if e else "-")
    print(" | ".join(row))
for name in ("latency.json", "latency12.json"):
    lat = load(R / name)
    if lat:
        print(name, [(r["model"], r["cpu_ms"], r["cpu_ratio"]) for r in lat["rows"]], "load", lat["load_avg_1m"])
