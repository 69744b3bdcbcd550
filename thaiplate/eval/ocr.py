"""OCR + province evaluation of the committed ONNX models on a labelled crop folder.

Reads ``DIR/labels.csv`` (``file,text,province_code`` at least; empty ``province_code`` =
unlabelled). Optional columns are used when present: ``plate_type`` (per-type accuracy), ``notes``
(``[partial]`` crops are scored separately: their label is the full plate but the crop is cut),
``label_confidence`` and ``group_id`` (per physical plate, since near-duplicate video frames are
correlated), and the difficulty columns ``synth ocr`` writes (accuracy by plate resolution and on
"readable" crops: :mod:`thaiplate.eval.difficulty`). Runs the same code path as serving: ``plate_tensor``
once, shared by both models when their input sizes agree.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thaiplate.classify import OnnxClassifier
from thaiplate.eval.difficulty import Difficulty, DifficultyRules, describe_rule
from thaiplate.eval.textmetrics import cer, compact, confused_pairs, exact
from thaiplate.preprocess import batch_tensor
from thaiplate.recognize import OnnxRecognizer
from thaiplate.results import ProvinceGuess, TextReading
from thaiplate.train.data import read_labels, read_rgb


@dataclass
class Row:
    file: str
    text: str
    province: str
    plate_type: str
    partial: bool
    label_confidence: str
    group: str
    crop: np.ndarray
    difficulty: Difficulty | None = None
    reading: TextReading | None = None
    provinces: list[ProvinceGuess] | None = None

    @property
    def ok(self) -> bool:
        return self.reading is not None and compact(self.reading.text) == compact(self.text)

    @property
    def province_ok(self) -> bool:
        return bool(self.provinces) and self.provinces[0].code == self.province


def load_rows(folder: Path) -> list[Row]:
    rows = []
    for r in read_labels(folder):
        rows.append(
            Row(
                file=r["file"],
                text=r["text"].strip(),
                province=(r.get("province_code") or "").strip(),
                plate_type=(r.get("plate_type") or "").strip(),
                partial="[partial]" in (r.get("notes") or ""),
                label_confidence=(r.get("label_confidence") or "").strip(),
                group=(r.get("group_id") or "").strip(),
                crop=read_rgb(folder / r["file"]),
                difficulty=Difficulty.from_row(r),
            )
        )
    return rows


def _text_block(rows: list[Row]) -> dict[str, float | None]:
    """Text metrics of ``rows``, and the province top-1 of those with a labelled province (None if none)."""
    pairs = [(r.text, r.reading.text) for r in rows]
    raw = [(r.text, r.reading.raw_text) for r in rows]
    return {"n": len(rows), "plate_exact": exact(pairs), "raw_exact": exact(raw), "cer": cer(pairs),
            "province_top1": _province_top1(rows)}


def _read_latency(rec: OnnxRecognizer, rows: list[Row], n: int = 16, repeats: int = 3) -> dict[str, float]:
    """Mean ms to read one crop (ONNX + decoding, batch 1) through the reader's views and through one view,
    over the first ``n`` crops, the two interleaved crop by crop so they are comparable on a shared host.
    Over several crops, not one: with ``views_below`` the cost depends on how sure the first reading is."""
    if not rows or len(rec.views) == 1:
        return {}
    xs = [(batch_tensor([r.crop], rec.spec.height, rec.spec.width), [r.crop.shape[1]]) for r in rows[:n]]
    views = rec.views
    one = copy.copy(rec)  # shares the ONNX session; reads through the first view only
    one.views = views[:1]
    times: dict[tuple[str, ...], list[float]] = {views: [], views[:1]: []}
    for i in range(repeats + 1):
        for x, width in xs:
            for reader in (rec, one):
                t0 = time.perf_counter()
                reader.read(x, width)
                if i:  # the first round warms up
                    times[reader.views].append(1000 * (time.perf_counter() - t0))
    return {"read_batch1_views": float(np.mean(times[views])), "read_batch1_one_view": float(np.mean(times[views[:1]]))}


def _province_top1(rows: list[Row]) -> float | None:
    labelled = [r for r in rows if r.province]
    return float(np.mean([r.province_ok for r in labelled])) if labelled else None


def _latency(model: OnnxRecognizer | OnnxClassifier, rows: list[Row], repeats: int = 30) -> float | None:
    """Median ms of one ONNX forward pass at batch 1 (one ORT thread), the serving worst case."""
    if not rows:
        return None
    x = batch_tensor([rows[0].crop], model.spec.height, model.spec.width)
    model.run(x)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.run(x)
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def evaluate(
    folder: str | Path, models_dir: str | Path | None = None, batch_size: int = 32
) -> tuple[dict, list[Row]]:
    """Run both models over ``folder``; returns the metrics dict and the scored rows."""
    folder = Path(folder)
    rec = OnnxRecognizer.from_dir(models_dir)
    cls = OnnxClassifier.from_dir(models_dir)
    rows = load_rows(folder)
    shared = (rec.spec.height, rec.spec.width) == (cls.spec.height, cls.spec.width)  # one tensor for both
    t_rec = t_cls = t_pre = t_dec = 0.0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        t0 = time.perf_counter()
        x = batch_tensor([r.crop for r in chunk], rec.spec.height, rec.spec.width)
        t1 = time.perf_counter()
        readings, _, decode_s = rec.read_timed(x, [r.crop.shape[1] for r in chunk])
        t_dec += decode_s
        t2 = time.perf_counter()
        guesses = cls.classify(x if shared else [r.crop for r in chunk])
        t3 = time.perf_counter()
        t_pre, t_rec, t_cls = t_pre + t1 - t0, t_rec + t2 - t1, t_cls + t3 - t2
        for r, reading, g in zip(chunk, readings, guesses, strict=True):
            r.reading, r.provinces = reading, g

    batch1 = {"recognizer_onnx_batch1": _latency(rec, rows), "classifier_onnx_batch1": _latency(cls, rows),
              **_read_latency(rec, rows)}
    scored = [r for r in rows if not r.partial]
    partial = [r for r in rows if r.partial]
    labelled = [r for r in rows if r.province]
    n = max(1, len(rows))
    whole = _text_block(scored)
    metrics: dict = {
        "data": str(folder),
        "models": {"recognizer": rec.version, "classifier": cls.version},
        "reader_views": list(rec.views),
        "reader_views_below": rec.views_below if len(rec.views) > 1 else None,
        "reader_views_min_width": rec.views_min_width if len(rec.views) > 1 else None,
        **whole,
        "province_top1_non_partial": whole["province_top1"],  # the table's first row; province_top1 counts all
        "province_n": len(labelled),
        "province_top1": _province_top1(labelled),
        "province_top3": (
            float(np.mean([any(g.code == r.province for g in r.provinces) for r in labelled]))
            if labelled
            else None
        ),
        "valid_rate": float(np.mean([r.reading.valid for r in scored])) if scored else None,
        "confused_pairs": confused_pairs([(r.text, r.reading.text) for r in scored]),
        "ms_per_crop": {
            "preprocess": 1000 * t_pre / n,
            "recognizer": 1000 * t_rec / n,  # ONNX + CTC decoding
            "ctc_decode": 1000 * t_dec / n,
            "classifier": 1000 * t_cls / n,
            "batch_size": batch_size,
            **batch1,
        },
    }
    if partial:
        metrics["partial"] = _text_block(partial)
    for key, attr in (("by_plate_type", "plate_type"), ("by_label_confidence", "label_confidence")):
        groups: dict[str, list[Row]] = defaultdict(list)
        for r in scored:
            if getattr(r, attr):
                groups[getattr(r, attr)].append(r)
        if groups:
            metrics[key] = {k: _text_block(v) for k, v in sorted(groups.items())}
    metrics.update(_by_difficulty(scored, DifficultyRules.load()))
    plates: dict[str, list[Row]] = defaultdict(list)
    for r in scored:
        if r.group:
            plates[r.group].append(r)
    if plates:
        metrics["per_plate"] = {
            "n": len(plates),
            "any_crop_exact": float(np.mean([any(r.ok for r in v) for v in plates.values()])),
            "all_crops_exact": float(np.mean([all(r.ok for r in v) for v in plates.values()])),
        }
    return metrics, rows


def _by_difficulty(rows: list[Row], rules: DifficultyRules) -> dict:
    """``by_detail_px`` (buckets in increasing resolution) and ``readable`` / ``not_readable`` blocks."""
    rated = [r for r in rows if r.difficulty is not None]
    if not rated:
        return {}
    buckets: dict[str, list[Row]] = {k: [] for k in rules.bucket_names()}
    for r in rated:
        buckets[rules.bucket(r.difficulty.detail_px)].append(r)
    readable = [r for r in rated if rules.readable(r.difficulty)]
    unreadable = [r for r in rated if not rules.readable(r.difficulty)]
    rule = {"min_detail_px": rules.min_detail_px, "max_blur_px": rules.max_blur_px, "min_jpeg_q": rules.min_jpeg_q}
    out: dict = {"by_detail_px": {k: _text_block(v) for k, v in buckets.items() if v}}
    if readable:
        out["readable"] = {"rule": rule, **_text_block(readable)}
    if unreadable:
        out["not_readable"] = _text_block(unreadable)
    return out


def format_table(m: dict) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:5.1f} %"

    def block(name: str, b: dict) -> None:
        prov = pct(b.get("province_top1"))
        lines.append(f"{name:<24}{b['n']:>6}{pct(b['plate_exact']):>10}{pct(b['raw_exact']):>11}{b['cer']:>8.3f}{prov:>10}")

    lines = [
        f"{m['data']}  (recognizer v{m['models']['recognizer']}, classifier v{m['models']['classifier']})",
        f"{'subset':<24}{'n':>6}{'exact':>10}{'raw exact':>11}{'CER':>8}{'province':>10}",
    ]
    block("all (non-partial)", {**m, "province_top1": m.get("province_top1_non_partial")})
    if "partial" in m:
        block("[partial]", m["partial"])

    for key in ("by_plate_type", "by_label_confidence"):
        for name, b in m.get(key, {}).items():
            block("  " + name, b)
    for name, b in m.get("by_detail_px", {}).items():
        block(f"  detail {name} px", b)
    if "readable" in m:
        lines.append(f"readable = {describe_rule(m['readable']['rule'])}:")
        block("  readable", m["readable"])
    if "not_readable" in m:
        block("  not readable", m["not_readable"])
    if "per_plate" in m:
        pp = m["per_plate"]
        lines.append(
            f"per plate ({pp['n']}): any crop exact {pct(pp['any_crop_exact'])}, all crops {pct(pp['all_crops_exact'])}"
        )
    lines.append(
        f"province ({m['province_n']} labelled): top-1 {pct(m['province_top1'])}, top-3 {pct(m['province_top3'])}"
    )
    lines.append(f"grammar-valid readings: {pct(m['valid_rate'])}")
    lines.append(
        "confused (truth->pred): "
        + ", ".join(f"{c['truth'] or '∅'}->{c['pred'] or '∅'} x{c['count']}" for c in m["confused_pairs"])
    )
    t = m["ms_per_crop"]
    lines.append(
        f"ms/crop at batch {t['batch_size']}: preprocess {t['preprocess']:.2f}, recognizer {t['recognizer']:.2f} "
        f"(of which CTC decode {t['ctc_decode']:.2f}), "
        f"classifier {t['classifier']:.2f}; ONNX at batch 1: recognizer {t['recognizer_onnx_batch1']:.2f}, "
        f"classifier {t['classifier_onnx_batch1']:.2f}"
    )
    if "read_batch1_views" in t:
        lines.append(
            f"read a crop (ONNX + decode, batch 1, mean of the first 16) through {len(m['reader_views'])} views "
            f"({', '.join(m['reader_views'])}"
            + (f"; the others only below confidence {m['reader_views_below']}" if m.get("reader_views_below") else "")
            + (f" for crops >= {m['reader_views_min_width']} px wide" if m.get("reader_views_min_width") else "")
            + f"): {t['read_batch1_views']:.2f} ms vs one view "
            f"{t['read_batch1_one_view']:.2f} ms (interleaved)"
        )
    return "\n".join(lines)


def save_failures(rows: list[Row], png: str | Path, limit: int = 48) -> int:
    """Grid of failed crops with truth / prediction (and province when wrong)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = ["Loma", "Noto Sans Thai", "DejaVu Sans"]
    bad = [r for r in rows if not r.ok or (r.province and r.provinces and not r.province_ok)]
    bad = bad[:limit]
    if not bad:
        return 0
    cols = 4
    nrows = (len(bad) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 3.2, nrows * 1.75), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, bad, strict=False):
        ax.imshow(r.crop)
        title = f"T: {r.text}\nP: {r.reading.text} ({r.reading.confidence:.2f})"
        if r.province and r.provinces[0].code != r.province:
            title += f"\nprov {r.province} -> {r.provinces[0].code}"
        ax.set_title(title, fontsize=8, color="black" if r.ok else "crimson")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return len(bad)
