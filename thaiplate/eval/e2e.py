"""End-to-end evaluation: whole images through the serving ``Pipeline``, scored against plate labels.

``DIR/labels.csv``, one row per plate, either

- ``file,plate_text,province_code,x1,y1,x2,y2`` (full labels), or
- ``file,x1,y1,x2,y2`` (boxes only, e.g. ``thai-street-frames``): text and province metrics are then
  ``null``.

An image without plates has one row with empty box fields. ``file`` is relative to ``DIR``. Scene sets
from ``thaiplate synth detect`` also carry ``plate_blur_px,plate_fade`` (the pasted plate's optics); the
results are then also split into crisp, soft and native (real, box-only) plates (``by_optics``).

Metrics: a prediction matches a labelled plate at IoU >= 0.5 (greedy, best detection first, one to
one). ``plate_exact`` and ``province_top1`` are end-to-end: a plate the detector missed counts as
wrong, so they are never better than ``detection_recall``. Text is compared without spaces.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thaiplate.eval import write_report
from thaiplate.results import PipelineResult

Box = tuple[float, float, float, float]
# labelled plate width in image pixels: where the pipeline stops finding and reading plates
WIDTH_BUCKETS: tuple[tuple[str, float], ...] = (("<30", 30), ("30-50", 50), ("50-80", 80), ("80-130", 130), (">=130", float("inf")))
DEFAULT_GATES = "0,0.01,0.02,0.03,0.05,0.07,0.1,0.15,0.2,0.3"


def width_bucket(width: float) -> str:
    """The :data:`WIDTH_BUCKETS` name of a plate ``width`` px wide."""
    return next(name for name, hi in WIDTH_BUCKETS if width < hi)


@dataclass(frozen=True)
class LabelledPlate:
    box: Box
    text: str | None = None
    province: str | None = None
    optics: str | None = None  # synthetic scenes: "crisp" / "soft" / "native"; None when not recorded


def optics_name(blur: str | None, fade: str | None, text: str | None) -> str | None:
    """A scene plate's look: ``native`` (a real plate kept box-only, no text), ``crisp`` (pasted without
    the engine's soft optics) or ``soft``; None when the labels do not record it."""
    if not (blur or "").strip() and not (fade or "").strip():
        return None
    if text is None:
        return "native"
    return "crisp" if float(blur or 0) == 0 and float(fade or 0) == 0 else "soft"


@dataclass
class Sample:
    path: Path
    plates: list[LabelledPlate] = field(default_factory=list)


def load_labels(data_dir: str | Path, subset: str = "") -> list[Sample]:
    """Read ``labels.csv`` (either format) into one :class:`Sample` per image, file order kept; only the
    rows whose file starts with ``subset`` (e.g. ``images/val/`` of a scene set) when given."""
    data_dir = Path(data_dir)
    path = data_dir / "labels.csv"
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or ())
        missing = {"file", "x1", "y1", "x2", "y2"} - cols
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        samples: dict[str, Sample] = {}
        for row in reader:
            name = row["file"].strip()
            if not name.startswith(subset):
                continue
            sample = samples.setdefault(name, Sample(data_dir / name))
            coords = [row[k].strip() for k in ("x1", "y1", "x2", "y2")]
            if not all(coords):
                continue  # image without a plate
            box: Box = tuple(float(v) for v in coords)  # type: ignore[assignment]
            text = (row.get("plate_text") or "").strip() or None
            province = (row.get("province_code") or "").strip() or None
            optics = optics_name(row.get("plate_blur_px"), row.get("plate_fade"), text)
            sample.plates.append(LabelledPlate(box, text, province, optics))
    return list(samples.values())


def iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(pred_boxes: list[Box], gt_boxes: list[Box], thr: float = 0.5) -> dict[int, int]:
    """Greedy one-to-one matching, predictions in the given (confidence) order: ``{gt: pred}``."""
    pairs: dict[int, int] = {}
    for p, pb in enumerate(pred_boxes):
        best, best_iou = -1, thr
        for g, gb in enumerate(gt_boxes):
            if g not in pairs:
                o = iou(pb, gb)
                if o >= best_iou:
                    best, best_iou = g, o
        if best >= 0:
            pairs[best] = p
    return pairs


def _same_text(a: str, b: str) -> bool:
    return a.replace(" ", "") == b.replace(" ", "")


@dataclass
class Tally:
    images: int = 0
    failed: int = 0
    plates: int = 0
    detections: int = 0
    matched: int = 0
    with_text: int = 0
    text_ok: int = 0
    with_province: int = 0
    province_ok: int = 0
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # per group: [plates, found, with text, read right, found with text]
    by_width: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 5))
    by_optics: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 5))
    reads: list[tuple[str, bool]] = field(default_factory=list)  # per labelled text: (width bucket, read right)

    def add_failed(self, sample: Sample) -> None:
        """An image that could not be decoded: its plates still count as missed."""
        self.failed += 1
        self.add(sample, PipelineResult(plates=[], image={}), 0.5)

    def add(self, sample: Sample, result: PipelineResult, thr: float) -> None:
        self.images += 1
        self.plates += len(sample.plates)
        self.detections += len(result.plates)
        pairs = match([p.box for p in result.plates], [g.box for g in sample.plates], thr)
        self.matched += len(pairs)
        for g, gt in enumerate(sample.plates):
            pred = result.plates[pairs[g]] if g in pairs else None
            w = gt.box[2] - gt.box[0]
            groups = [self.by_width[width_bucket(w)]]
            if gt.optics:
                groups.append(self.by_optics[gt.optics])
            right = bool(gt.text is not None and pred and _same_text(pred.text, gt.text))
            for counts in groups:
                counts[0] += 1
                counts[1] += pred is not None
                counts[2] += gt.text is not None
                counts[3] += right
                counts[4] += gt.text is not None and pred is not None
            if gt.text is not None:
                self.with_text += 1
                self.text_ok += right
                self.reads.append((width_bucket(w), right))
            if gt.province is not None:
                self.with_province += 1
                self.province_ok += bool(pred and pred.province and pred.province.code == gt.province)
        for k, v in result.timings_ms.items():
            self.timings[k].append(v)

    def metrics(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        def group(c: list[int]) -> dict[str, Any]:
            # read_given_found: the reader's share, apart from what the detector missed
            return {"n": c[0], "detection_recall": ratio(c[1], c[0]), "plate_exact": ratio(c[3], c[2]),
                    "read_given_found": ratio(c[3], c[4])}

        return {
            "n_images": self.images,
            "n_failed_images": self.failed,
            "n_plates": self.plates,
            "n_detections": self.detections,
            "detection_recall": ratio(self.matched, self.plates),
            "detection_precision": ratio(self.matched, self.detections),
            "plate_exact": ratio(self.text_ok, self.with_text),
            "province_top1": ratio(self.province_ok, self.with_province),
            "timings_ms": {k: round(sum(v) / len(v), 3) for k, v in self.timings.items() if v},
            "by_width": {name: group(c) for name, _ in WIDTH_BUCKETS if (c := self.by_width.get(name))},
            **({"by_optics": {name: group(c) for name, c in sorted(self.by_optics.items())}} if self.by_optics else {}),
        }


Outcome = tuple[Sample, PipelineResult | None]  # None: the image could not be decoded


def run_all(pipeline: Any, samples: Iterable[Sample], *, progress: bool = True) -> list[Outcome]:
    """Run ``pipeline.run(bytes)`` on every sample; unreadable images are reported, not fatal."""
    from tqdm import tqdm

    from thaiplate.image import ImageError

    samples = list(samples)
    out: list[Outcome] = []
    for sample in tqdm(samples, desc="e2e", unit="img", disable=not progress, file=sys.stderr):
        try:
            out.append((sample, pipeline.run(sample.path.read_bytes())))
        except (OSError, ImageError) as e:
            out.append((sample, None))
            print(f"{sample.path}: {getattr(e, 'message', None) or e}", file=sys.stderr)
    return out


def score(outcomes: Iterable[Outcome], *, iou_thr: float = 0.5, gate: float | None = None,
          reads: list[tuple[str, bool]] | None = None) -> dict[str, Any]:
    """Metrics over pipeline outcomes; ``gate`` also drops plates read below that text confidence. ``reads``
    collects, per labelled plate text in order, its width bucket and whether it was read right."""
    tally = Tally()
    for sample, result in outcomes:
        if result is None:
            tally.add_failed(sample)
            continue
        if gate is not None:
            result = dataclasses.replace(result, plates=[p for p in result.plates if p.text_confidence >= gate])
        tally.add(sample, result, iou_thr)
    if reads is not None:
        reads.extend(tally.reads)
    return tally.metrics()


def evaluate(pipeline: Any, samples: Iterable[Sample], *, iou_thr: float = 0.5, progress: bool = True) -> dict:
    """Run and score every sample at the pipeline's own reading gate."""
    return score(run_all(pipeline, samples, progress=progress), iou_thr=iou_thr)


def f1(metrics: dict[str, Any]) -> float:
    r, p = metrics["detection_recall"] or 0.0, metrics["detection_precision"] or 0.0
    return round(2 * r * p / (r + p), 4) if r + p else 0.0


def sweep_gate(
    outcomes: list[Outcome], gates: Sequence[float], *, iou_thr: float = 0.5, max_read_loss: float = 0.005
) -> dict[str, Any]:
    """Score the same outcomes (run with no gate) at each reading gate and pick the highest safe one.

    The gate abstains on plates read unsurely: almost all false detections and the true plates that are
    misread anyway. It is chosen as the highest gate that still keeps ``1 - max_read_loss`` of the plates
    read right with no gate, not by detection F1: synthetic scenes have far fewer false detections than
    real streets, so F1 there would choose no gate at all.
    """
    rows = []
    for g in sorted(gates):
        m = score(outcomes, iou_thr=iou_thr, gate=g)
        rows.append({"min_text_confidence": g, "n_detections": m["n_detections"],
                     "detection_recall": m["detection_recall"], "detection_precision": m["detection_precision"],
                     "f1": f1(m), "plate_exact": m["plate_exact"]})
    base = rows[0]["plate_exact"] or 0.0
    safe = [r for r in rows if (r["plate_exact"] or 0.0) >= base * (1 - max_read_loss)]
    return {"sweep": rows, "max_read_loss": max_read_loss, "best_min_text_confidence": safe[-1]["min_text_confidence"]}


def format_sweep(rows: list[dict[str, Any]]) -> str:
    cols = ("min_text_confidence", "n_detections", "detection_recall", "detection_precision", "f1", "plate_exact")
    lines = ["  ".join(cols)]
    lines += ["  ".join(f"{'-' if r[c] is None else r[c]!s:>{len(c)}}" for c in cols) for r in rows]
    return "\n".join(lines)


def format_table(metrics: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in metrics.items() if k not in ("timings_ms", "by_width", "by_optics")]
    rows += [(f"time {k} (ms, mean)", v) for k, v in metrics.get("timings_ms", {}).items()]
    for block, label in (("by_width", "plate width {} px"), ("by_optics", "{} plates")):
        rows += [(f"{label.format(k)}: n / recall / exact / read|found",
                  " / ".join(_dash(v[c]) for c in ("n", "detection_recall", "plate_exact", "read_given_found")))
                 for k, v in metrics.get(block, {}).items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {_dash(v)}" for k, v in rows)


def _dash(v: object) -> str:
    return "-" if v is None else str(v)


def add_e2e_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "e2e",
        help="whole images through the serving pipeline: detection recall/precision, exact plates, provinces",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--data", type=Path, required=True, help="folder with labels.csv and the images")
    p.add_argument("--out", type=Path, help="write the metrics JSON here")
    p.add_argument(
        "--models", type=Path, default=None, help="models folder (default $THAIPLATE_MODELS or models/)"
    )
    p.add_argument("--iou", type=float, default=0.5, help="IoU for a detection to match a label (0.5)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--subset", metavar="PREFIX", default="",
                   help="only label rows whose file starts with PREFIX (e.g. images/val/ of a synth detect set)")
    p.add_argument(
        "--sweep", nargs="?", const=DEFAULT_GATES, metavar="T,T,...",
        help="also score reading gates (min_text_confidence) on one ungated run and pick the highest that "
        f"loses at most --max-read-loss of the right readings (default list {DEFAULT_GATES}); "
        "choose it on synthetic scenes, never real ones",
    )
    p.add_argument("--max-read-loss", type=float, default=0.005,
                   help="share of right readings the chosen gate may drop (default 0.005)")
    p.add_argument("--record", action="store_true",
                   help="with --sweep: store the best gate in the models folder's recognizer.yaml + card")
    p.add_argument("--against", type=Path, metavar="MODELS",
                   help="also run this models folder (at its own gate) on the same images and add `against`: its "
                   "metrics and, per plate width, the plates only one of the two reads right with the sign test "
                   "(only_a = --models only). Two pipelines' exact rates on one set are strongly correlated; the "
                   "discordant plates are the signal")
    p.set_defaults(func=main)


def against(models: Path, samples: list[Sample], reads: list[tuple[str, bool]], iou_thr: float) -> dict[str, Any]:
    """The reference pipeline on the same samples, at its own gate, and the paired comparison of the plates read."""
    from thaiplate.eval.paired import paired_by_bucket
    from thaiplate.pipeline import Pipeline

    ref = Pipeline.from_dir(models)
    ref_reads: list[tuple[str, bool]] = []
    m = score(run_all(ref, samples), iou_thr=iou_thr, gate=ref.min_text_confidence, reads=ref_reads)
    pairs = paired_by_bucket(reads, ref_reads, [name for name, _ in WIDTH_BUCKETS])
    a = pairs["all"]
    print(f"against {models} ({', '.join(f'{k} {v}' for k, v in ref.models.items())}): plate_exact "
          f"{_dash(m['plate_exact'])}; read right by --models only {a['only_a']}, by {models} only {a['only_b']}, "
          f"sign test p {a['p_value']}")
    return {"models_dir": str(models), "models": ref.models, "min_text_confidence": ref.min_text_confidence,
            **m, "paired": pairs}


def main(args: Any) -> int:
    from thaiplate.pipeline import Pipeline, default_models_dir, own_reading_gate

    if args.record and not args.sweep:
        print("--record needs --sweep", file=sys.stderr)
        return 2
    samples = load_labels(args.data, args.subset)[: args.limit]
    try:
        pipeline = Pipeline.from_dir(args.models)
    except (FileNotFoundError, ValueError) as e:  # missing models, or a bad setting such as THAIPLATE_CROP
        print(f"thaiplate eval e2e: cannot start: {e}", file=sys.stderr)
        return 2
    gate = pipeline.min_text_confidence
    gate_from = "recognizer.yaml" if own_reading_gate(pipeline.recognizer) is not None else "fallback"
    if gate_from == "fallback":  # e.g. a fresh `train export`: comparing it with a gated reader compares gates too
        print(f"thaiplate eval e2e: note: the reader's YAML names no reading gate (decoding.min_text_confidence); "
              f"scoring at the fallback {gate}", file=sys.stderr)
    if args.sweep:
        pipeline.min_text_confidence = 0.0  # gates are applied afterwards, on the same outcomes
    outcomes = run_all(pipeline, samples)
    reads: list[tuple[str, bool]] = []
    metrics = {"data": str(args.data), "subset": args.subset or None, "models": pipeline.models,
               "min_text_confidence": gate, "min_text_confidence_from": gate_from,
               **score(outcomes, iou_thr=args.iou, gate=gate, reads=reads)}
    print(format_table({k: v for k, v in metrics.items() if k not in ("data", "subset", "models")}))
    if args.against:
        try:
            metrics["against"] = against(args.against, samples, reads, args.iou)
        except (FileNotFoundError, ValueError) as e:
            print(f"thaiplate eval e2e: --against {args.against}: cannot start: {e}", file=sys.stderr)
            return 2
    if args.sweep:
        gates = [float(t) for t in str(args.sweep).split(",")]
        metrics.update(sweep_gate(outcomes, gates, iou_thr=args.iou, max_read_loss=args.max_read_loss))
        print(format_sweep(metrics["sweep"]))
        best = metrics["best_min_text_confidence"]
        print(f"highest gate keeping {1 - args.max_read_loss:.1%} of the right readings: min_text_confidence {best}")
        if args.record:
            from thaiplate.modelcard import record_gate

            where = f"{args.data}/{args.subset}" if args.subset else str(args.data)
            models_dir = Path(args.models) if args.models else default_models_dir()
            chosen_on = (
                f"chosen as the highest gate losing <= {args.max_read_loss:.1%} of right readings on {where} "
                f"({len(samples)} images) by `thaiplate eval e2e --sweep --record`"
            )
            record_gate(models_dir, metrics["best_min_text_confidence"], chosen_on)
            print(f"recorded decoding.min_text_confidence in {models_dir}/recognizer.yaml + .md")
    if args.out:
        write_report(args.out, metrics)
    return 0
