"""`thaiplate eval lookalikes`: can the recogniser tell look-alike letters apart when nothing else is hard?

Each trial renders one clean car plate per letter of a look-alike group (ฎ/ฏ, ซ/ช/ข, ...) with the same seed,
so font, layout, digits and colours are identical and only that letter differs; no blur, noise or tilt.
A letter read wrong here is a model gap, not a data-quality limit: the synthetic held-out sets cannot
separate the two. Recogniser v11 read ฏ as ฎ on about half of such plates.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from thaiplate.eval import write_report


@dataclass
class LetterScore:
    letter: str
    n: int = 0
    correct: int = 0
    read_as: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")


LETTER_POS = 2  # the probed letter's index in "{digit}{letter}{probed} {number}"


def plate_px(px_per_mm: float) -> int:
    """Width in pixels of a car plate rendered at ``px_per_mm`` (before the model's resize)."""
    from thaiplate.synth.render import SIZES_MM

    return round(SIZES_MM["car"][0] * px_per_mm)


def _letter_read(text: str, truth: str, pos: int) -> str:
    """The character the reader put where the probed letter is (``?`` if it read a different length)."""
    return text[pos] if len(text) == len(truth) else "?"


def probe(recognizer, groups: list[str], trials: int, px_per_mm: float, seed: int = 0) -> dict[str, LetterScore]:
    """Read ``trials`` same-seed plates per letter of each group; returns scores by letter."""
    from thaiplate.labels import CONSONANTS, PlateType
    from thaiplate.synth.grammar import sample_plate
    from thaiplate.synth.render import render_plate

    scores: dict[str, LetterScore] = {}
    for g, group in enumerate(groups):
        for t in range(trials):
            rng = np.random.default_rng([seed, g, t])
            base = sample_plate(rng, PlateType.PRIVATE_CAR)
            lead, first = int(rng.integers(1, 10)), CONSONANTS[int(rng.integers(len(CONSONANTS)))]
            number = int(rng.integers(1, 10000))
            style_seed = int(rng.integers(2**31))
            images, texts = [], []
            for letter in group:
                text = f"{lead}{first}{letter} {number}"
                spec = replace(base, text=text, lines=(text, base.province_th))
                images.append(render_plate(spec, np.random.default_rng(style_seed), px_per_mm=px_per_mm).rgb)
                texts.append(text)
            for letter, text, reading in zip(group, texts, recognizer.read(images), strict=True):
                s = scores.setdefault(letter, LetterScore(letter))
                got = _letter_read(reading.text, text, LETTER_POS)
                s.n += 1
                s.correct += got == letter
                s.read_as[got] += 1
    return scores


def format_table(scores: dict[str, LetterScore], px_per_mm: float) -> str:
    lines = [f"clean car plates, {plate_px(px_per_mm)} px wide", "letter     n  correct  read as"]
    for s in scores.values():
        wrong = ", ".join(f"{k} {v}" for k, v in s.read_as.most_common() if k != s.letter)
        lines.append(f"{s.letter:>6} {s.n:5d}  {100 * s.accuracy:6.1f} %  {wrong}")
    total = sum(s.n for s in scores.values())
    correct = sum(s.correct for s in scores.values())
    lines.append(f"{'all':>6} {total:5d}  {100 * correct / max(total, 1):6.1f} %")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from thaiplate.recognize import OnnxRecognizer
    from thaiplate.synth.augment import augment_config, load_config

    rec = OnnxRecognizer.from_dir(args.models)
    groups = args.groups.split(",") if args.groups else list(augment_config(load_config()).confusable_groups)
    report = {"recognizer": rec.spec.version, "trials": args.trials, "sizes": {}}
    for ppm in args.px_per_mm:
        scores = probe(rec, groups, args.trials, ppm, args.seed)
        print(format_table(scores, ppm), end="\n\n")
        report["sizes"][f"{plate_px(ppm)}px"] = {
            k: {**asdict(s), "read_as": dict(s.read_as), "accuracy": s.accuracy} for k, s in scores.items()
        }
    if args.out:
        write_report(args.out, report)
    return 0


def add_lookalikes_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "lookalikes",
        help="read clean renders that differ in one look-alike letter (ฎ/ฏ, ซ/ช, ...)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--models", help="models directory (default: $THAIPLATE_MODELS or repo models/)")
    p.add_argument("--groups", help="comma-separated look-alike groups, e.g. ฎฏ,ซช (default: synth.yaml confusable_groups)")
    p.add_argument("--trials", type=int, default=60, help="plates per letter (default 60)")
    p.add_argument(
        "--px-per-mm", type=float, nargs="+", default=[1.0, 0.5], help="plate scales (1.0 = a 340 px wide car plate; default 1.0 0.5)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the scores JSON here")
    p.set_defaults(func=_run)
    return p
