"""Registration strings that follow the real Thai plate grammar, sampled for coverage.

Consonants and provinces are drawn uniformly (with Bangkok boosted, as on real roads) so every class
appears often; numbers mix random values with auction-style "beautiful" numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from thaiplate.labels import CONSONANTS, PlateType, provinces


@dataclass(frozen=True)
class PlateSpec:
    plate_type: PlateType
    text: str  # label, canonical: "1กข 1234", "70-1234", motorcycle "1กข 123"
    province_code: str
    province_th: str
    lines: tuple[str, ...]  # what is printed, top to bottom


BEAUTIFUL = ["9", "99", "999", "9999", "1111", "8888", "5555", "1234", "6789", "1000", "2000", "9000", "123",
             "888", "111", "7777", "2345", "1221", "4554", "9119", "5959", "8989", "1", "8"]

# plate-type mix for the training data (private cars dominate real traffic)
TYPE_WEIGHTS: dict[PlateType, float] = {
    PlateType.PRIVATE_CAR: 0.40,
    PlateType.VAN: 0.05,
    PlateType.PICKUP: 0.08,
    PlateType.TAXI: 0.08,
    PlateType.RENTAL: 0.04,
    PlateType.TEMPORARY: 0.06,
    PlateType.AUCTION: 0.06,
    PlateType.MOTORCYCLE: 0.13,
    PlateType.COMMERCIAL: 0.10,
}


def sample_type(rng: np.random.Generator) -> PlateType:
    types = list(TYPE_WEIGHTS)
    p = np.array([TYPE_WEIGHTS[t] for t in types])
    return types[rng.choice(len(types), p=p / p.sum())]


def _number(rng: np.random.Generator, max_digits: int = 4) -> str:
    if rng.random() < 0.12:
        n = str(rng.choice(BEAUTIFUL))
        if len(n) <= max_digits:
            return n
    digits = int(rng.choice(np.arange(1, max_digits + 1), p=_digit_weights(max_digits)))
    first = str(rng.integers(1, 10))
    return first + "".join(str(d) for d in rng.integers(0, 10, size=digits - 1))


def _digit_weights(max_digits: int) -> np.ndarray:
    w = np.array([0.06, 0.12, 0.25, 0.57][:max_digits])
    return w / w.sum()


def _cons(rng: np.random.Generator, k: int) -> str:
    return "".join(CONSONANTS[i] for i in rng.integers(0, len(CONSONANTS), size=k))


# Series run in dictionary order (shared/thai/formats.md §1): a province works through 1กก..9กฮ before
# 1ขก, so on digit-led plates the FIRST letter is mostly an early consonant. Uniform letters taught the
# recogniser that ก and ภ are equally likely, and real ก came out as ภ. Half the draws keep uniform
# letters so that late series (and every letter) are still learnt.
SERIES_DECAY = 0.8
SERIES_SHARE = 0.5


def _series_letter(rng: np.random.Generator) -> str:
    if rng.random() >= SERIES_SHARE:
        return _cons(rng, 1)
    w = SERIES_DECAY ** np.arange(len(CONSONANTS))
    return CONSONANTS[int(rng.choice(len(CONSONANTS), p=w / w.sum()))]


def _province(rng: np.random.Generator):
    provs = provinces()
    if rng.random() < 0.25:
        return provs[0]  # Bangkok
    return provs[int(rng.integers(0, len(provs)))]


def sample_plate(rng: np.random.Generator, plate_type: PlateType | None = None) -> PlateSpec:
    """One random plate of ``plate_type`` (random type if None)."""
    pt = plate_type or sample_type(rng)
    prov = _province(rng)
    if pt is PlateType.COMMERCIAL:
        code = int(rng.integers(10, 100))
        serial = int(rng.integers(1, 10000))
        text = f"{code}-{serial:04d}"
        lta_code = f"{int(rng.integers(1, 78)):02d}"
        return PlateSpec(pt, text, prov.code, prov.name_th, (f"THAILAND {lta_code}", text, prov.name_th))
    if pt is PlateType.MOTORCYCLE:
        head = str(rng.integers(1, 10)) + _series_letter(rng) + _cons(rng, 1)
        num = _number(rng, max_digits=3 if rng.random() < 0.8 else 4)
        return PlateSpec(pt, f"{head} {num}", prov.code, prov.name_th, (head, prov.name_th, num))
    if pt is PlateType.TEMPORARY:
        head = _cons(rng, int(rng.integers(1, 3)))
        num = _number(rng)
    else:
        lead = str(rng.integers(1, 10)) if rng.random() < 0.55 else ""
        head = lead + (_series_letter(rng) + _cons(rng, 1) if lead else _cons(rng, 2))
        num = _number(rng)
    text = f"{head} {num}"
    return PlateSpec(pt, text, prov.code, prov.name_th, (text, prov.name_th))


_LETTER_PAIR = re.compile(r"([ก-ฮ])([ก-ฮ])")
_LETTER_RUN = re.compile(r"[ก-ฮ]+")


def _rewrite_registration(spec: PlateSpec, old: str, new: str) -> PlateSpec:
    """``spec`` with the first ``old`` of its registration replaced by ``new``, on the label and on the printed
    registration line only: the province line can hold the same letters (กร in กรุงเทพมหานคร)."""
    lines = tuple(line if line == spec.province_th else line.replace(old, new, 1) for line in spec.lines)
    return replace(spec, text=spec.text.replace(old, new, 1), lines=lines)


def double_letter(spec: PlateSpec) -> PlateSpec:
    """The same plate with its series letters made a pair (``1กข 1234`` -> ``1กก 1234``). CTC must emit a
    blank between two identical glyphs: recogniser v8 read 22 of the 38 doubled-letter plates of the
    synthetic held-out set (88 % of all plates), 11 misses dropping one letter of the pair. Plates
    without two adjacent letters come back unchanged."""
    m = _LETTER_PAIR.search(spec.text)
    if not m:
        return spec
    return _rewrite_registration(spec, m.group(0), m.group(1) * 2)


def confusable_letter(spec: PlateSpec, rng: np.random.Generator, groups: dict[str, float]) -> PlateSpec:
    """The same plate with one series letter swapped for a letter of a look-alike group (``ฎฏ``, ``ซช``...),
    group drawn by weight, letter uniformly within it. Recogniser v11 read ฏ as ฎ on 32 of 60 clean,
    full-size renders: at the uniform letter mix each pair is ~4 % of plates, too little signal for a
    2-5 px tail. Plates without series letters (``70-1234``) come back unchanged, drawing nothing."""
    m = _LETTER_RUN.search(spec.text)
    if not m or not groups:
        return spec
    names = list(groups)
    w = np.array([groups[g] for g in names], float)
    group = names[int(rng.choice(len(names), p=w / w.sum()))]
    run = m.group(0)
    i = int(rng.integers(len(run)))
    letter = group[int(rng.integers(len(group)))]
    return _rewrite_registration(spec, run, run[:i] + letter + run[i + 1 :])
