"""``thaiplate eval pool A.json B.json ...``: pool the paired counts that ``eval ocr --against`` wrote.

Adoption rules judge a candidate on several fresh sets at once ("pooled exact over F + L + S >= +0.5 pt, sign
test p < 0.01"); this adds the discordant counts of each set's JSON and prints every set and the pool, so a
judge script needs no arithmetic of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thaiplate.eval.paired import METRICS_KEYS as KEYS
from thaiplate.eval.paired import Paired, pool


def load_paired(path: Path, kind: str) -> Paired:
    """The ``kind`` comparison stored in one ``eval ocr --against --out`` JSON (ValueError if there is none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable metrics JSON ({exc})") from None
    d = data.get(KEYS[kind]) if isinstance(data, dict) else None
    if not d:
        raise ValueError(f"{path}: no '{KEYS[kind]}' counts (write it with `thaiplate eval ocr --against MODELS --out`)")
    return Paired.from_dict(d)


def format_row(name: str, p: Paired) -> str:
    return f"{name:<28} {p.n:>6} {p.only_a:>8} {p.only_b:>8} {100 * p.diff:>+8.2f} {p.p_value:>12.3g}"


def _run(args: argparse.Namespace) -> int:
    try:
        rows = [(Path(f).stem, load_paired(Path(f), args.kind)) for f in args.files]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pooled = pool([p for _, p in rows])
    print(f"{'set':<28} {'n':>6} {'only new':>8} {'only ref':>8} {'diff pt':>8} {'sign-test p':>12}")
    for name, p in rows:
        print(format_row(name, p))
    print(format_row("pooled", pooled))
    if args.out:
        report = {"kind": args.kind, "sets": {n: p.as_dict() for n, p in rows}, "pooled": pooled.as_dict()}
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def add_pool_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("pool", help="pool the paired counts of several `eval ocr --against` JSONs (one sign test)",
                       description=__doc__.split("\n\n")[1])  # fmt: skip
    p.add_argument("files", nargs="+", help="JSONs written by `thaiplate eval ocr --against MODELS --out`")
    p.add_argument("--kind", choices=sorted(KEYS), default="reader", help="reader exact (default), province top-1, or reader_plates (per plate, sets with several crops per plate)")
    p.add_argument("--out", help="also write the table as JSON here")
    p.set_defaults(func=_run)
    return p
