"""Label data: the plate charset, the 78 provinces and the plate grammar.

Everything here comes from the package's own copy of ``shared/thai`` (``thaiplate/data``), so
serving never reads anything outside the installed package.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

CONSONANTS = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ"
DIGITS = "0123456789"
BLANK = 0  # CTC blank index; charset entries are 1..len(CHARSET)


@dataclass(frozen=True)
class Province:
    code: str
    name_th: str
    name_en: str
    region: str


class PlateType(StrEnum):
    """Plate categories from ``formats.md`` §2 (the ones the synthetic engine renders)."""

    PRIVATE_CAR = "private_car"
    VAN = "van"
    PICKUP = "pickup"
    TAXI = "taxi"
    RENTAL = "rental"
    TEMPORARY = "temporary"  # red dealer plate
    AUCTION = "auction"  # picture background
    MOTORCYCLE = "motorcycle"
    COMMERCIAL = "commercial"  # Land Transport Act, digits only NN-NNNN


@cache
def charset() -> str:
    """The 53 label characters in their fixed order (digits, 42 consonants, '-')."""
    text = resources.files("thaiplate.data").joinpath("charset.txt").read_text(encoding="utf-8")
    chars = "".join(line.strip() for line in text.splitlines() if line.strip())
    assert len(chars) == 53, len(chars)
    return chars


@cache
def provinces() -> tuple[Province, ...]:
    """The 78 province classes (77 provinces + Betong), in file order = class index."""
    text = resources.files("thaiplate.data").joinpath("provinces.csv").read_text(encoding="utf-8")
    return tuple(Province(**row) for row in csv.DictReader(text.splitlines()))


@cache
def province_index() -> dict[str, int]:
    return {p.code: i for i, p in enumerate(provinces())}


def encode(text: str) -> list[int]:
    """Text -> CTC label ids (1-based; spaces are layout and dropped)."""
    table = {c: i + 1 for i, c in enumerate(charset())}
    try:
        return [table[c] for c in text if c != " "]
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} in {text!r} is not in the plate charset") from None


def decode_ids(ids: list[int]) -> str:
    cs = charset()
    return "".join(cs[i - 1] for i in ids if i != BLANK)


_CONS = "[กขคฆ-รลว-ฮ]"
PATTERNS: dict[str, re.Pattern[str]] = {
    # current car-type line 1: optional digit, 2 consonants, number 1-9999
    "car": re.compile(rf"^[1-9]?{_CONS}{{2}} ?[1-9][0-9]{{0,3}}$"),
    # red dealer plates and old plates: 1-2 consonants
    "legacy": re.compile(rf"^[1-9]?{_CONS}{{1,2}} ?[1-9][0-9]{{0,3}}$"),
    # motorcycle, lines 1 and 3 joined as "1กข 123"
    "motorcycle": re.compile(rf"^(?:[1-9]|{_CONS}){_CONS}{{2}} ?[1-9][0-9]{{0,3}}$"),
    # Land Transport Act
    "commercial": re.compile(r"^[1-9][0-9]-(?!0000)[0-9]{4}$"),
}

TYPE_PATTERN = {
    PlateType.MOTORCYCLE: "motorcycle",
    PlateType.COMMERCIAL: "commercial",
    PlateType.TEMPORARY: "legacy",
}


def pattern_for(plate_type: PlateType) -> re.Pattern[str]:
    return PATTERNS[TYPE_PATTERN.get(plate_type, "car")]


def is_valid_plate(text: str) -> bool:
    """True if ``text`` matches any real Thai plate grammar (spaces optional)."""
    return any(p.match(text) for p in PATTERNS.values())


def normalize(text: str) -> str:
    """Canonical display form: ``1กข 1234`` (one space between letters and number)."""
    compact = text.replace(" ", "")
    m = re.match(rf"^([1-9]?{_CONS}{{1,3}})([0-9]+)$", compact)
    return f"{m.group(1)} {m.group(2)}" if m else compact
