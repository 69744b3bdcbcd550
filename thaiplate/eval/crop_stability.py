"""`thaiplate eval crop-stability`: does the reader's answer survive the box noise a detector adds?

Two INT8 detectors with the same AP50 as fp32 read 0.2-0.75 pt fewer plates end to end, and 4 of 60 real street
plates fewer, because their boxes move a little and the reader reads some small plates differently from a
slightly different crop (runs/rule-detector-int8.md, runs/rule-int8-fused.md); reading each crop through
shifted views gains most on real crops for the same reason (runs/rule-reader-views.md). This measures that
sensitivity directly on labelled scenes: every plate is cut by the serving crop code from its true box and from
``trials`` jittered boxes (each side moved by up to ``jitter`` of the box size, as ``synth scene-crops`` does), and
each cut is read. A plate is *unstable* when some cuts read it right and others wrong, or (``gated``) when the
reading's confidence crosses the reader's gate between cuts. *Method-mixed* plates are those whose cuts the crop
code rectifies differently (perspective on some, plain on others): instability the crop stage adds, not the reader.
``--crop margin`` cuts the plain margin crop instead, the reference arm for judging rectification.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from thaiplate.eval import write_report
from thaiplate.eval.e2e import WIDTH_BUCKETS, Sample, width_bucket


@dataclass
class StabilityTally:
    """Counts over plates: right on every cut, on none, or on some (unstable)."""

    n: int = 0
    right_true_box: int = 0
    right_cuts: int = 0
    cuts: int = 0
    all_right: int = 0
    none_right: int = 0
    unstable: int = 0
    gated_unstable: int = 0  # right on every cut, but the gate would drop some of them and not others
    method_mixed: int = 0  # the crop code rectified some cuts and not others
    unstable_method_mixed: int = 0

    def add(self, right: list[bool], kept: list[bool], methods: list[str] | None = None) -> None:
        mixed = len(set(methods or [])) > 1
        self.n += 1
        self.method_mixed += mixed
        self.unstable_method_mixed += mixed and any(right) and not all(right)
        self.right_true_box += right[0]
        self.right_cuts += sum(right)
        self.cuts += len(right)
        self.all_right += all(right)
        self.none_right += not any(right)
        self.unstable += any(right) and not all(right)
        self.gated_unstable += all(right) and any(kept) and not all(kept)

    def as_dict(self) -> dict[str, float | int]:
        n = max(self.n, 1)
        return {
            **asdict(self),
            "exact_true_box": self.right_true_box / n,
            "exact_per_cut": self.right_cuts / max(self.cuts, 1),
            "unstable_rate": self.unstable / n,
            "gated_unstable_rate": self.gated_unstable / n,
            "method_mixed_rate": self.method_mixed / n,
            "unstable_rate_method_mixed": self.unstable_method_mixed / max(self.method_mixed, 1),
            "unstable_rate_method_same": (self.unstable - self.unstable_method_mixed) / max(n - self.method_mixed, 1),
        }


@dataclass
class StabilityReport:
    reader: str
    gate: float | None
    jitter: float
    trials: int
    crop: str = "rectify"
    total: StabilityTally = field(default_factory=StabilityTally)
    by_width: dict[str, StabilityTally] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "reader": self.reader,
            "gate": self.gate,
            "jitter": self.jitter,
            "trials": self.trials,
            "crop": self.crop,
            **self.total.as_dict(),
            "by_width": {k: t.as_dict() for k, t in self.by_width.items()},
        }


def measure(
    recognizer,
    samples: list[Sample],
    *,
    jitter: float = 0.05,
    trials: int = 4,
    min_width: float = 30.0,
    seed: int = 0,
    crop: str = "rectify",
    progress: bool = True,
) -> StabilityReport:
    """Read every text-labelled plate at least ``min_width`` px wide from its true box and ``trials`` jittered
    boxes (``default_rng([seed, i, j, k])``: reruns are identical), cut by ``crop``: ``rectify`` (serving) or
    ``margin`` (:func:`thaiplate.crop.margin_crop`)."""
    from tqdm import tqdm

    from thaiplate.crop import cropper
    from thaiplate.eval.textmetrics import compact
    from thaiplate.results import Detection
    from thaiplate.synth.scene_crops import jitter_box, wide_text_plates
    from thaiplate.train.data import read_rgb

    gate = recognizer.min_text_confidence
    cut = cropper(crop)
    report = StabilityReport(recognizer.version, gate, jitter, trials, crop)
    for i, sample in enumerate(tqdm(samples, desc="crop stability", unit="img", mininterval=2, disable=not progress)):
        plates = wide_text_plates(sample, min_width)
        if not plates:
            continue
        rgb = read_rgb(sample.path)
        for j, plate in plates:
            boxes = [plate.box] + [jitter_box(plate.box, np.random.default_rng([seed, i, j, k]), jitter) for k in range(trials)]
            cuts = [cut(rgb, Detection(b, 1.0)) for b in boxes]
            readings = recognizer.read([c.pixels for c in cuts])
            right = [compact(r.text) == compact(plate.text) for r in readings]
            kept = [gate is None or r.confidence >= gate for r in readings]
            bucket = width_bucket(plate.box[2] - plate.box[0])
            methods = [c.method for c in cuts]
            report.total.add(right, kept, methods)
            report.by_width.setdefault(bucket, StabilityTally()).add(right, kept, methods)
    report.by_width = {name: report.by_width[name] for name, _ in WIDTH_BUCKETS if name in report.by_width}
    return report


def format_table(report: StabilityReport) -> str:
    head = (
        f"{'plate width':<12} {'n':>6} {'exact(true box)':>16} {'exact(per cut)':>15} {'unstable':>9} {'gate-unstable':>14}"
        f" {'method-mixed':>13}"
    )
    rows = [head]
    for name, t in [*report.by_width.items(), ("all", report.total)]:
        d = t.as_dict()
        rows.append(
            f"{name:<12} {t.n:>6} {d['exact_true_box']:>16.4f} {d['exact_per_cut']:>15.4f} "
            f"{d['unstable_rate']:>9.4f} {d['gated_unstable_rate']:>14.4f} {d['method_mixed_rate']:>13.4f}"
        )
    return "\n".join(rows)


def _run(args: argparse.Namespace) -> int:
    from thaiplate.eval.e2e import load_labels
    from thaiplate.recognize import OnnxRecognizer

    samples = load_labels(args.data, args.subset)
    if not samples:
        raise SystemExit(f"{args.data}/labels.csv has no rows under {args.subset!r}")
    report = measure(
        OnnxRecognizer.from_dir(args.models), samples, jitter=args.jitter, trials=args.trials,
        min_width=args.min_width, seed=args.seed, crop=args.crop,
    )
    print(f"reader v{report.reader}, gate {report.gate}, {args.trials} cuts at jitter {args.jitter} + the true box,"
          f" crop {report.crop}")
    t = report.total.as_dict()
    print(f"unstable among method-mixed plates {t['unstable_rate_method_mixed']:.4f},"
          f" among the rest {t['unstable_rate_method_same']:.4f}")
    print(format_table(report))
    if args.out:
        write_report(args.out, {"data": str(Path(args.data)), **report.as_dict()})
    return 0


def add_crop_stability_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "crop-stability",
        help="how often the reader's answer changes when the plate's box moves a little (labelled scenes)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--data", required=True, help="scene set with labels.csv (file,plate_text,...,x1,y1,x2,y2)")
    p.add_argument("--subset", default="images/val/", help="only files under this prefix (default images/val/)")
    p.add_argument("--models", help="models directory (default: $THAIPLATE_MODELS or repo models/)")
    p.add_argument("--jitter", type=float, default=0.05, help="box side jitter, fraction of width/height (default 0.05)")
    p.add_argument("--trials", type=int, default=4, help="jittered cuts per plate besides the true box (default 4)")
    p.add_argument("--min-width", type=float, default=30.0, help="skip plates narrower than this (px, default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", choices=("rectify", "margin"), default="rectify",  # thaiplate.crop.CROPPERS
                   help="rectify: the serving crop code (default); margin: box + margin, never rectified")
    p.add_argument("--out", help="write the report JSON here")
    p.set_defaults(func=_run)
    return p
