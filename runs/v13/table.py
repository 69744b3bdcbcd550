"""Print the bars of runs/rule-detector-vN.md (and its INT8 check) from the judge JSONs: python runs/v13/table.py 13.
v7's numbers: runs/v11/det9[34]-m7.json, runs/p2/e2e83-m7.json (same sets, deterministic)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tables import load, small  # noqa: E402

V = sys.argv[1] if len(sys.argv) > 1 else "13"
R, R11, P = Path(f"runs/v{V}"), Path("runs/v11"), Path("runs/p2")


rows = {
    "v7": (R11 / "det94-m7.json", R11 / "det93-m7.json", P / "e2e83-m7.json"),
    f"v{V}": (R / "det94.json", R / "det93.json", R / "e2e83.json"),
    f"v{V} INT8": (None, R / f"det93-m{V}q.json", R / f"e2e83-m{V}q.json"),
}
print("model | A far <50px | B detect93 AP50, recall, <50px, prec_f | C e2e83 exact | detect92 AP50")
for name, (a, b, c) in rows.items():
    da, db, dc = (load(p) if p else None for p in (a, b, c))
    d92 = load(R / f"det92-m{V}{'q' if 'INT8' in name else ''}.json")
    cells = [name]
    cells.append(small(da) if da else "-")
    cells.append(f"{db['AP50']:.4f} {db['recall']:.4f} {small(db)} {db['precision_filtered']:.3f}" if db else "-")
    cells.append(f"{dc['plate_exact']:.4f}" if dc else "-")
    cells.append(f"{d92['AP50']:.4f} {d92['recall']:.4f}" if d92 else "-")
    print(" | ".join(cells))
for name in ("latency.json", f"latency-int8-m{V}.json"):
    lat = load(R / name)
    if lat:
        print(name, [(r["model"], r["cpu_ms"], r["cpu_ratio"]) for r in lat["rows"]], "load", lat["load_avg_1m"])
