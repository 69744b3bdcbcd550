"""Model cards (``models/NAME.md``) generated from the model YAML, so card and contract never drift.

``thaiplate train export`` writes the YAML (contract + held-out synthetic metrics); ``thaiplate eval
ocr --record`` adds the metrics measured on each evaluation folder; both regenerate the card.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from thaiplate.eval.difficulty import describe_rule

SUMMARY = {
    "recognizer": (
        "CRNN plate-text reader: conv layers (BN+ReLU; with `stem: full` a 16-channel full-resolution conv "
        "comes before the strided one) collapse the (3, 64, 192) plate tensor to a 2 x 48 "
        "feature map, read top row then bottom row (T = 96) by a BiGRU (128 per direction), then a linear "
        "CTC head over blank + 53 characters. Decoding (numpy, `thaiplate.ctc`): greedy, prefix beam search "
        "(width 10) and the Thai plate grammar (`thaiplate.labels.PATTERNS`) choosing among the beams."
    ),
    "classifier": (
        "ProvinceNet: a small ResNet (BasicBlocks, stride-2 stem, no max-pool so the ~8-10 px province line "
        "keeps its detail) over the same (3, 64, 192) tensor as the recogniser; 78 logits in "
        "`thaiplate/data/provinces.csv` order (77 provinces + Betong). The province name is classified as a "
        "word image, never spelled out."
    ),
}
KEYS = {
    "recognizer": ("n", "plate_exact", "raw_exact", "cer", "valid_rate"),
    "classifier": ("province_n", "province_top1", "province_top3"),
}


def load(models_dir: Path, kind: str) -> dict:
    return yaml.safe_load((models_dir / f"{kind}.yaml").read_text(encoding="utf-8"))


def record_metrics(models_dir: Path, kind: str, key: str, metrics: dict) -> None:
    """Store the ``kind``-relevant eval metrics of one folder under ``metrics.<key>`` and rewrite the card."""
    spec = load(models_dir, kind)
    entry = _rounded({k: v for k, v in metrics.items() if k in KEYS[kind]})
    entry["data"] = metrics.get("data")
    blocks = ("partial", "per_plate", "readable", "not_readable") if kind == "recognizer" else ("readable", "not_readable")
    for block in blocks:
        if block in metrics:
            entry[block] = _subset(kind, metrics[block])
    if "by_detail_px" in metrics:
        entry["by_detail_px"] = {k: _subset(kind, v) for k, v in metrics["by_detail_px"].items()}
    if kind == "recognizer":
        entry["confused_pairs"] = [
            f"{c['truth'] or '∅'}->{c['pred'] or '∅'} x{c['count']}" for c in metrics["confused_pairs"][:5]
        ]
        entry["ms_per_crop_batch32_onnx_plus_decode"] = round(metrics["ms_per_crop"]["recognizer"], 2)
        entry["ms_onnx_batch1"] = round(metrics["ms_per_crop"]["recognizer_onnx_batch1"], 2)
        if "read_batch1_views" in metrics["ms_per_crop"]:
            entry["views"] = metrics["reader_views"]
            for k in ("below", "min_width"):
                if metrics.get(f"reader_views_{k}") is not None:
                    entry[f"views_{k}"] = metrics[f"reader_views_{k}"]
            entry["ms_read_batch1_views"] = round(metrics["ms_per_crop"]["read_batch1_views"], 2)
            entry["ms_read_batch1_one_view"] = round(metrics["ms_per_crop"]["read_batch1_one_view"], 2)
    else:
        entry["ms_per_crop_batch32"] = round(metrics["ms_per_crop"]["classifier"], 2)
        entry["ms_onnx_batch1"] = round(metrics["ms_per_crop"]["classifier_onnx_batch1"], 2)
    spec.setdefault("metrics", {})[key] = entry
    _save(models_dir, kind, spec)


def record_gate(models_dir: Path, gate: float, chosen_on: str) -> None:
    """Store the reader's ``decoding.min_text_confidence`` (and where it was chosen) and rewrite the card."""
    spec = load(models_dir, "recognizer")
    spec.setdefault("decoding", {}).update(min_text_confidence=gate, min_text_confidence_chosen_on=chosen_on)
    _save(models_dir, "recognizer", spec)


def quantization_note(spec: dict) -> str:
    """One sentence on the served INT8 model and its fp32 reference, or "" when the fp32 model is served."""
    q = spec.get("quantization")
    if not q:
        return ""
    return (f"Served as INT8: {q['kind']}; calibration: {q['calibration']}; agreement with the fp32 "
            f"`{spec.get('fp32_file')}` on the calibration inputs {q['agreement_on_calibration']}. "
            f"Made by `{q['command']}`.")


def _gate_lines(decoding: dict) -> list[str]:
    lines = []
    if len(decoding.get("views") or []) > 1:
        below = decoding.get("views_below")
        wide = decoding.get("views_min_width")
        only = f"; only crops whose first reading is below {below} get the others" if below is not None else ""
        only += f" (and only crops at least {wide} px wide before resizing)" if wide is not None else ""
        lines.append(
            f"- Views: each crop is read as {', '.join(decoding['views'])} (`decoding.views`, `thaiplate.views`; "
            f"`THAIPLATE_READER_VIEWS=orig` reads it once) and the text most probable on average wins{only}. "
            f"{decoding.get('views_chosen_on', '')}".rstrip()
        )
    if "min_text_confidence" not in decoding:
        return lines
    return [
        *lines,
        f"- Reading gate: a detected plate is reported only if its reading's confidence is at least "
        f"**{decoding['min_text_confidence']}** (`decoding.min_text_confidence`: "
        f"{decoding.get('min_text_confidence_chosen_on', 'where it was chosen is not recorded')})."
    ]


def _selection(training: dict) -> str:
    """What the held-out set did: chose the exported checkpoint (best.pt, the default) or only drew the curves."""
    checkpoint = training.get("checkpoint", "best.pt")
    if checkpoint == "best.pt":
        return "used for model selection"
    return f"for the curves only (the run's `{checkpoint}` was exported: no checkpoint selection)"


def _save(models_dir: Path, kind: str, spec: dict) -> None:
    """Write the YAML and re-render its card (a folder without a card, e.g. test models, gets none)."""
    (models_dir / f"{kind}.yaml").write_text(
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    if (models_dir / f"{kind}.md").exists():
        write_card(models_dir, kind)


def _rounded(block: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in block.items()}


def _subset(kind: str, block: dict) -> dict:
    """A metrics sub-block as ``kind``'s card keeps it: the classifier's only the province numbers."""
    if kind == "classifier":
        block = {k: v for k, v in block.items() if k in {"n", "province_top1", "rule"}}
    return _rounded(block)


FRACTIONS = {
    "exact",
    "plate_exact",
    "raw_exact",
    "valid_rate",
    "top1",
    "top3",
    "province_top1",
    "province_top3",
}


def _fmt(key: str, v: object) -> str:
    if isinstance(v, float):
        return f"{100 * v:.1f} %" if key in FRACTIONS else f"{v:.3f}"
    return "-" if v is None else str(v)


def _resolution_table(name: str, m: dict, kind: str) -> list[str]:
    """Accuracy by plate width in pixels of real detail (``thaiplate eval ocr`` on a synthetic set), then the
    "readable" split (its rule in ``thaiplate/configs/eval_ocr.yaml``)."""
    cols = ("plate_exact", "cer") if kind == "recognizer" else ("province_top1",)

    def row(label: str, b: dict) -> str:
        return f"| {label} | {b['n']} | " + " | ".join(_fmt(c, b.get(c)) for c in cols) + " |"

    rows = [row(f"{b} px", v) for b, v in m["by_detail_px"].items()]
    if "readable" in m:
        rows.append(row(f"readable ({describe_rule(m['readable']['rule'])})", m["readable"]))
    if "not_readable" in m:
        rows.append(row("not readable", m["not_readable"]))
    return ["", f"By plate resolution (`{name}`; `thaiplate eval ocr --plot-difficulty`):", "",
            "| plate width of real detail | n | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|", *rows]


def write_card(models_dir: Path, kind: str) -> Path:
    spec = load(models_dir, kind)
    tr = spec.get("training", {})
    inp, out = spec["input"], spec["output"]
    lines = [
        f"# {kind} v{spec['version']} ({spec.get('status', '')})",
        "",
        SUMMARY[kind],
        "",
        "## Contract",
        f"- `{spec['file']}`: input `{inp['name']}` float32 `(N, 3, {inp['height']}, {inp['width']})`, RGB, "
        f"`{inp['normalize']}`, {inp['resize']} (`{inp['preprocess']}`).",
        f"- output `{out['name']}` `{tuple(out['shape'])}`: {out['kind']}.",
        f"- `{spec.get('weights', kind + '.pt')}`: the torch state dict (`thaiplate.nets`), for fine-tuning.",
        f"- sha256 of the ONNX file: `{spec.get('sha256', '?')}`.",
        *([f"- {quantization_note(spec)}"] if spec.get("quantization") else []),
        *_gate_lines(spec.get("decoding", {})),
        "",
        "## Training",
        f"- Data: **synthetic only** (`thaiplate synth ocr`), `{tr.get('data')}`; held-out synthetic set "
        f"`{tr.get('val_data')}` {_selection(tr)}. Training data made with "
        f"`{tr.get('data_command', 'thaiplate synth ocr --n 60000 --seed 1')}`; `data/ocr_val` is "
        "`thaiplate synth ocr --n 2000 --seed 2` as the engine stood at commit 8af809f (it has changed since), "
        "`data/ocr_val2` the same command with today's engine (it also writes each crop's difficulty). "
        "Real crops were never used for training, tuning or selection.",
        f"- {tr.get('epochs_completed')} of {tr.get('epochs_planned')} planned epochs, batch {tr.get('batch_size')}, "
        f"AdamW lr {tr.get('lr')} with warmup + cosine, seed {tr.get('seed')}; model kwargs `{tr.get('model')}`.",
        *([f"- Warm start: {tr['warm_start']}."] if tr.get("warm_start") else []),
        f"- Curves: `docs/{kind}-curves.png`. Reproduce: `thaiplate train {kind}` then "
        f"`thaiplate train export {kind} --run runs/{kind}`.",
        "",
        "## Metrics",
    ]
    metrics = spec.get("metrics", {})
    keys = KEYS[kind]
    lines += ["| data | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, m in metrics.items():
        if name == "synthetic_heldout":
            continue
        lines.append(f"| {name} | " + " | ".join(_fmt(k, m.get(k)) for k in keys) + " |")
    syn = metrics.get("synthetic_heldout", {})
    if syn:
        lines.append("")
        lines.append(
            "Held-out synthetic during training (greedy decode, torch): "
            + ", ".join(f"{k} {_fmt(k, v)}" for k, v in syn.items() if k not in {"epoch", "step"})
            + "."
        )
    for name, m in metrics.items():
        extra = (
            {k: v for k, v in m.items() if k not in keys and k not in {"data", "by_detail_px", "readable", "not_readable"}}
            if name != "synthetic_heldout"
            else {}
        )
        if extra:
            lines.append(f"- `{name}`: " + "; ".join(f"{k}: {v}" for k, v in extra.items()))
    for name, m in metrics.items():
        if m.get("by_detail_px"):
            lines += _resolution_table(name, m, kind)
    lines += [
        "",
        "`plate_exact` compares the grammar-constrained `text` with the label, spaces ignored; `raw_exact` the "
        "greedy reading. `[partial]` crops (plate cut by the crop) are scored separately. Real sets: "
        "`/work/shared/real-smoke` (30 crops, 4 plates) and `thai-plate-crops-real` (169 crops, 57 plates; "
        "EasyOCR baseline 24.9 % exact, CER 0.247). Both are evaluation-only, tiny and correlated (video frames).",
    ]
    if spec.get("notes"):
        lines += ["", "## Notes"] + [f"- {n}" for n in spec["notes"]]
    lines += [
        "",
        "## Limitations",
        "- Trained on rendered plates: fonts are free look-alikes of the real plate lettering, so real-crop "
        "accuracy trails the synthetic numbers; confusable pairs (พ/ฬ, ฎ/ฏ, ข/ช, ด/ต) suffer most.",
        "- Crops are stretched to 64 x 192: very loose detector boxes shrink the glyphs; the synthetic crop "
        "margins and the training jitter cover moderate looseness only.",
    ]
    if kind == "classifier":
        lines.append(
            "- Real test crops are almost all Bangkok; province accuracy on other provinces is untested on real data."
        )
    path = models_dir / f"{kind}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
