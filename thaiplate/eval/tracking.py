"""``thaiplate eval tracking``: does a judge set's score move with a target set's score across model versions?

A rule can only see a real gain if some synthetic set predicts the real set. Every set rises with the version
number (each adopted model is better on synthetic data), which alone makes a rank correlation high, so this
reports two numbers per set: the Spearman correlation of the raw scores, and the Pearson correlation of what is
left after each series' straight-line trend over the version order is removed (do the set's ups and downs from
one version to the next line up with the target's?).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), dtype=float)
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; NaN when either series is constant (no correlation to speak of)."""
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(ranks(a), ranks(b))


def detrend(y: np.ndarray) -> np.ndarray:
    """Residuals of a least-squares line over positions 0..n-1 (the version order, not the version numbers)."""
    t = np.arange(len(y), dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    return y - (slope * t + intercept)


@dataclass
class Tracking:
    """How one judge set's scores follow the target's over the same versions."""

    name: str
    scores: list[float]
    spearman: float
    detrended_r: float


def track(target: list[float], sets: dict[str, list[float]]) -> list[Tracking]:
    t = np.asarray(target, dtype=float)
    if len(t) < 3:
        raise ValueError("need at least 3 versions to correlate")
    out = []
    for name, s in sets.items():
        y = np.asarray(s, dtype=float)
        if len(y) != len(t):
            raise ValueError(f"{name}: {len(y)} scores for {len(t)} versions")
        out.append(Tracking(name, list(s), spearman(y, t), pearson(detrend(y), detrend(t))))
    return out


def load_score(path: Path, key: str) -> float:
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))[key])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: no number under '{key}' ({exc})") from None


def load_series(pattern: str, name: str, versions: list[str], key: str) -> list[float]:
    """One set's score for each version, from the JSONs ``pattern`` names (``{set}``, ``{v}``)."""
    return [load_score(Path(pattern.format(set=name, v=v)), key) for v in versions]


def _run(args: argparse.Namespace) -> int:
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    try:
        target = load_series(args.pattern, args.target, versions, args.key)
        rows = track(target, {s: load_series(args.pattern, s, versions, args.key) for s in args.sets})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    width = max(len(s) for s in [args.target, *args.sets]) + 2
    print(f"{'version':<{width}}" + "".join(f"{v:>8}" for v in versions))
    for name, scores in [(args.target + " (target)", target), *[(r.name, r.scores) for r in rows]]:
        print(f"{name:<{width}}" + "".join(f"{100 * x:>8.1f}" for x in scores))
    print(f"\n{'set':<{width}} {'spearman':>9} {'detrended r':>12}")
    for r in rows:
        print(f"{r.name:<{width}} {r.spearman:>9.3f} {r.detrended_r:>12.3f}")
    if args.out:
        report = {"key": args.key, "versions": versions, "target": {"name": args.target, "scores": target},
                  "sets": [asdict(r) for r in rows]}  # fmt: skip
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def add_tracking_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("tracking", help="which judge sets' scores move with a target set's across model versions",
                       description=__doc__.split("\n\n")[1])  # fmt: skip
    p.add_argument("--versions", required=True, help="comma-separated, in training order, e.g. 4,5,6,26")
    p.add_argument("--pattern", required=True,
                   help="path of each metrics JSON with {set} and {v}, e.g. 'runs/proxy/{set}-m{v}.json'")  # fmt: skip
    p.add_argument("--target", required=True, help="the set to predict (e.g. real)")
    p.add_argument("--sets", nargs="+", required=True, help="the judge sets to test")
    p.add_argument("--key", default="plate_exact", help="metric key in the JSONs (default plate_exact)")
    p.add_argument("--out", help="also write the table as JSON here")
    p.set_defaults(func=_run)
    return p
