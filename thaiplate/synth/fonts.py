"""Font discovery for plate rendering: Debian's TLWG, Noto and DejaVu faces.

Plate lettering has no published typeface (shared/thai/formats.md §3), so we mix loopless bold Thai
faces for line 1, condensed bold Latin digits, and small looped sans faces for the province line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageFont

# the package's own OFL faces (thaiplate/data/fonts/README.md) ship with it; the rest come from Debian
PACKAGE_FONTS = Path(__file__).resolve().parents[1] / "data" / "fonts"
FONT_DIRS = [PACKAGE_FONTS, Path("/usr/share/fonts/truetype"), Path("/usr/local/share/fonts"), Path.home() / ".fonts"]
INSTALL_HINT = (
    "Thai plate fonts are missing. Install them with:\n"
    "  sudo apt-get update && sudo apt-get install -y fonts-thai-tlwg fonts-noto-core fonts-dejavu-extra\n"
    "or point THAIPLATE_FONT_DIR at a folder holding the .ttf files."
)

# role -> candidate files (weight = how often the face is picked)
FACES: dict[str, dict[str, float]] = {
    # line-1 consonants: current plates are bold, geometric, mostly loopless; older ones looped
    "letters": {
        "NotoSansThai-Bold.ttf": 4.0,
        "Sawasdee-Bold.ttf": 1.0,
        "Garuda-Bold.ttf": 1.5,
        "Loma-Bold.ttf": 1.0,
        "Umpush-Bold.ttf": 1.0,
        "Waree-Bold.ttf": 1.0,
        "NotoLoopedThai-Bold.ttf": 0.7,
    },
    # line-1 consonants in modern loopless OFL faces not packaged by Debian (Kanit, Prompt, IBM Plex Sans
    # Thai) and looped Sarabun: more letter shapes for the reader, whose real errors are mostly series
    # letters (ก/ภ, ฎ/ฏ, ม/ป, ฮ/ซ); used on TextStyle.ofl_letters of the plates
    "letters_ofl": {
        "kanit-thai-700-normal.woff": 1.0,
        "prompt-thai-700-normal.woff": 1.0,
        "ibm-plex-sans-thai-thai-700-normal.woff": 1.0,
        "sarabun-thai-700-normal.woff": 0.5,
    },
    # line-1 digits: tall, condensed, DIN-like
    "digits": {
        "DejaVuSansCondensed-Bold.ttf": 3.0,
        "Garuda-Bold.ttf": 1.5,
        "Umpush-Bold.ttf": 1.5,
        "Loma-Bold.ttf": 0.7,
        "Waree-Bold.ttf": 0.7,
    },
    # Land Transport Act number lines as real ones look: light, tall, condensed DIN-like digits
    # (the bold "digits" faces made the real yellow NN-NNNN plates read as Thai letters)
    "lta_digits": {
        "DejaVuSansCondensed.ttf": 2.0,
        "Garuda.ttf": 1.0,
        "Umpush.ttf": 1.0,
        "Loma.ttf": 1.0,
        "Umpush-Light.ttf": 0.5,
    },
    # province line: a smaller, lighter sans, usually with small loops
    "province": {
        "Loma.ttf": 2.0,
        "Garuda.ttf": 1.5,
        "Umpush.ttf": 1.5,
        "NotoLoopedThai-Regular.ttf": 1.5,
        "Loma-Bold.ttf": 1.0,
        "NotoSansThai-Regular.ttf": 1.0,
        "Waree.ttf": 0.5,
    },
    # Latin "THAILAND 01" on Land Transport Act plates and dealer-frame clutter
    "latin": {"DejaVuSansCondensed-Bold.ttf": 1.0, "DejaVuSans-Bold.ttf": 1.0},
    # scene clutter (signs, stickers): faces with both Thai and Latin glyphs, so no tofu boxes
    "clutter": {"Garuda-Bold.ttf": 1.0, "Loma.ttf": 1.0, "Umpush-Bold.ttf": 1.0, "Waree.ttf": 1.0},
}


class FontsMissingError(RuntimeError):
    pass


@dataclass(frozen=True)
class FontSet:
    """Resolved font files per role, with pick weights."""

    paths: dict[str, tuple[tuple[str, float], ...]]

    def choices(self, role: str) -> tuple[tuple[str, float], ...]:
        return self.paths[role]


def _search_dirs() -> list[Path]:
    extra = os.environ.get("THAIPLATE_FONT_DIR")
    return ([Path(extra)] if extra else []) + FONT_DIRS


@cache
def _index() -> dict[str, str]:
    found: dict[str, str] = {}
    for d in _search_dirs():
        if d.is_dir():
            for p in (*d.rglob("*.ttf"), *d.rglob("*.woff")):
                found.setdefault(p.name, str(p))
    return found


@cache
def find_fonts() -> FontSet:
    """Resolve every role to installed files; raise with install instructions if a role has none."""
    index = _index()
    paths: dict[str, tuple[tuple[str, float], ...]] = {}
    missing: list[str] = []
    for role, faces in FACES.items():
        got = tuple((index[name], w) for name, w in faces.items() if name in index)
        if not got:
            missing.append(f"{role} ({', '.join(faces)})")
        paths[role] = got
    if missing:
        raise FontsMissingError(INSTALL_HINT + "\nNo font found for: " + "; ".join(missing))
    return FontSet(paths)


@cache
def load(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size=max(4, size), layout_engine=ImageFont.Layout.RAQM)


@cache
def ink_ratio(path: str, ref: str) -> float:
    """Ink height of ``ref`` per point of font size: lets us size glyphs by their body height."""
    font = load(path, 100)
    x0, y0, x1, y1 = font.getbbox(ref, anchor="ls")
    return max(1, y1 - y0) / 100.0
