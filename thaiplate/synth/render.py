"""Render a clean, fronto-parallel Thai plate (RGB + alpha) from a :class:`PlateSpec`.

Layouts, colours and proportions follow shared/thai/formats.md: car-type 2-line plates (15 × 34 cm),
motorcycle 3-line plates (17.2 × 22 cm) and Land Transport Act 3-line plates (22 × 44 cm). Degradation
(perspective, light, blur, JPEG ...) is applied later by :mod:`thaiplate.synth.augment`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from thaiplate.labels import PlateType
from thaiplate.synth import fonts
from thaiplate.synth.chance import chance
from thaiplate.synth.grammar import PlateSpec

RGB = tuple[int, int, int]

WHITE: RGB = (246, 246, 242)
BLACK: RGB = (20, 20, 22)
BLUE: RGB = (0, 47, 135)
GREEN: RGB = (0, 140, 64)
RED: RGB = (208, 2, 27)
YELLOW: RGB = (255, 212, 0)
LIGHT_BLUE: RGB = (79, 168, 220)

# plate type -> (background, text colour)
COLOURS: dict[PlateType, tuple[RGB, RGB]] = {
    PlateType.PRIVATE_CAR: (WHITE, BLACK),
    PlateType.VAN: (WHITE, BLUE),
    PlateType.PICKUP: (WHITE, GREEN),
    PlateType.TAXI: (YELLOW, BLACK),
    PlateType.RENTAL: (GREEN, WHITE),
    PlateType.TEMPORARY: (RED, BLACK),
    PlateType.AUCTION: (WHITE, BLACK),  # background replaced by a picture
    PlateType.MOTORCYCLE: (WHITE, BLACK),
    PlateType.COMMERCIAL: (YELLOW, BLACK),
}

# physical size in mm (width, height)
SIZES_MM: dict[str, tuple[float, float]] = {"car": (340, 150), "moto": (220, 172), "lta": (440, 220)}


@dataclass(frozen=True)
class TextStyle:
    """How registration lines deviate from the font files (probabilities 0 draw no random number,
    so the data of older seeds stays byte for byte the same)."""

    stroke_one: float = 0.0  # share of plates whose 1s are plain bars with a short flag
    p_weight: float = 0.0  # share of plates whose strokes are made heavier or lighter than the face
    weight: tuple[float, float] = (-0.03, 0.07)  # stroke change per side, fraction of the digit height
    lta_light: float = 0.0  # share of Land Transport Act plates drawn as real ones look (:func:`lta_number_mask`)
    ofl_letters: float = 0.0  # share of plates whose series letters use the packaged OFL faces ("letters_ofl")
    ofl_faces: tuple[str, ...] = ()  # only these "letters_ofl" files (empty: all): hold a face out of training
    elastic_letters: float = 0.0  # share of plates whose series letters are bent by a smooth random warp
    elastic_amount: tuple[float, float] = (0.04, 0.09)  # largest displacement, fraction of the letter height


@dataclass
class RenderedPlate:
    rgb: np.ndarray  # H×W×3 uint8
    alpha: np.ndarray  # H×W uint8, 255 inside the plate outline
    spec: PlateSpec
    text_boxes: list[tuple[int, int, int, int]]  # per printed line, x1 y1 x2 y2 (for occlusion rules)


def _pick(rng: np.random.Generator, role: str, only: tuple[str, ...] = ()) -> str:
    """A font file of ``role`` by its weight; ``only`` keeps just those file names."""
    choices = fonts.find_fonts().choices(role)
    if only:
        choices = tuple(c for c in choices if os.path.basename(c[0]) in only)
        if not choices:
            raise ValueError(f"none of {list(only)} is a {role!r} face")
    w = np.array([c[1] for c in choices])
    return choices[int(rng.choice(len(choices), p=w / w.sum()))][0]


def _segment_mask(text: str, font_path: str, body_px: float, ref: str, condense: float) -> tuple[np.ndarray, int]:
    """Render ``text`` so that the ink height of ``ref`` is ``body_px``; returns (mask, baseline_y)."""
    size = int(round(body_px / fonts.ink_ratio(font_path, ref)))
    font = fonts.load(font_path, size)
    x0, y0, x1, y1 = font.getbbox(text, anchor="ls")
    pad = 2
    w, h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    img = Image.new("L", (max(1, w), max(1, h)), 0)
    ImageDraw.Draw(img).text((pad - x0, pad - y0), text, font=font, fill=255, anchor="ls")
    mask = np.asarray(img)
    baseline = pad - y0
    if abs(condense - 1.0) > 1e-3:
        mask = cv2.resize(mask, (max(1, int(mask.shape[1] * condense)), mask.shape[0]), interpolation=cv2.INTER_AREA)
    return mask, baseline


def _hstack_baseline(parts: list[tuple[np.ndarray, int]], gaps: list[int]) -> tuple[np.ndarray, int]:
    """Join masks left to right on a common baseline."""
    above = max(b for _, b in parts)
    below = max(m.shape[0] - b for m, b in parts)
    width = sum(m.shape[1] for m, _ in parts) + sum(gaps)
    out = np.zeros((above + below, width), np.uint8)
    x = 0
    for i, (m, b) in enumerate(parts):
        y = above - b
        out[y : y + m.shape[0], x : x + m.shape[1]] = np.maximum(out[y : y + m.shape[0], x : x + m.shape[1]], m)
        x += m.shape[1] + (gaps[i] if i < len(gaps) else 0)
    return out, above


def _split_registration(text: str) -> list[tuple[str, str]]:
    """Split '1กข 1234' into runs of (role, chars): digits vs letters vs space."""
    runs: list[tuple[str, str]] = []
    for ch in text:
        role = "space" if ch == " " else ("digits" if ch.isdigit() or ch == "-" else "letters")
        if runs and runs[-1][0] == role:
            runs[-1] = (role, runs[-1][1] + ch)
        else:
            runs.append((role, ch))
    return runs


BAR_PAD = 2  # empty border around drawn bars, as around rendered glyphs


def _bar(w: int, h: int, top: int, height: int) -> tuple[np.ndarray, int]:
    """A filled ``w``×``h`` bar whose top is ``top`` px below the cap line of ``height`` px digits."""
    mask = np.zeros((height + 2 * BAR_PAD, w + 2 * BAR_PAD), np.uint8)
    mask[BAR_PAD + top : BAR_PAD + top + h, BAR_PAD : BAR_PAD + w] = 255
    return mask, BAR_PAD + height


def _stroke_one(height: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A "1" drawn as a plain bar with a short flag, as on many real plates (the free digit faces all
    have a long flag, and real plain ones were read as nothing or as ว); returns (mask, baseline)."""
    h = int(round(height))
    w = max(2, int(round(height * rng.uniform(0.11, 0.17))))
    flag = int(round(w * rng.uniform(0.0, 0.9)))
    stem, baseline = _bar(w, h, 0, h)
    mask = np.pad(stem, ((0, 0), (flag, 0)))
    if flag:
        x0, pad = BAR_PAD + flag, BAR_PAD
        drop = int(round(height * rng.uniform(0.1, 0.2)))
        pts = np.array([[x0, pad], [x0 + 1, pad], [pad, pad + drop + w // 2], [pad, pad + drop]], np.int32)
        cv2.fillConvexPoly(mask, pts, 255)
    return mask, baseline


def _digit_run(chars: str, font: str, height: float, condense: float, stroke_one: float,
               rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A run of digits; with probability ``stroke_one`` (0: no random draw) its 1s are plain bars."""
    if not ("1" in chars and chance(rng, stroke_one)):
        return _segment_mask(chars, font, height, "0", condense)
    pieces = [p for p in re.split("(1)", chars) if p]  # "3119" -> 3, 1, 1, 9
    parts = [_stroke_one(height, rng) if p == "1" else _segment_mask(p, font, height, "0", condense) for p in pieces]
    return _hstack_baseline(parts, [int(height * 0.08)] * (len(parts) - 1))


def _reweight(mask: np.ndarray, height: float, style: TextStyle, rng: np.random.Generator) -> np.ndarray:
    """Thicken or thin the strokes: real plate lettering is heavier than most free faces, and worn or
    overexposed plates look lighter (font weight is a nuisance the recogniser must ignore)."""
    if not chance(rng, style.p_weight):
        return mask
    r = int(round(height * rng.uniform(*style.weight)))
    if r == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(r) + 1, 2 * abs(r) + 1))
    if r > 0:
        return cv2.dilate(cv2.copyMakeBorder(mask, r, r, r, r, cv2.BORDER_CONSTANT, value=0), kernel)
    return cv2.erode(mask, kernel)


def _elastic(part: tuple[np.ndarray, int], height: float, style: TextStyle,
             rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Bend the strokes of a (mask, baseline) part with a smooth random displacement field (Simard et al.
    2003): loop sizes, head positions and tail lengths shift the way they differ between faces, so the
    recogniser must learn each letter's topology rather than the few faces we can draw with. The field is
    smooth at a fifth of the letter height, so a glyph bends as a whole and small distinguishing parts (the
    notch of ฏ, the tail of ซ) survive."""
    if not chance(rng, style.elastic_letters):
        return part
    mask, baseline = part
    pad = int(np.ceil(height * style.elastic_amount[1])) + 1
    mask = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    amount = height * rng.uniform(*style.elastic_amount)
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]].astype(np.float32)
    for grid in (xs, ys):
        f = cv2.GaussianBlur(rng.uniform(-1, 1, mask.shape).astype(np.float32), (0, 0), max(1.0, height / 5))
        grid += f * (amount / max(1e-6, float(np.abs(f).max())))
    return cv2.remap(mask, xs, ys, cv2.INTER_LINEAR, borderValue=0), baseline + pad


def registration_mask(text: str, height: float, rng: np.random.Generator, style: TextStyle = TextStyle()) -> np.ndarray:
    """Line-1 style text: condensed bold digits + bold Thai consonants, digit height = ``height``."""
    digit_font, letter_font = _pick(rng, "digits"), _pick(rng, "letters")
    if chance(rng, style.ofl_letters):
        letter_font = _pick(rng, "letters_ofl", style.ofl_faces)
    letter_body = height * rng.uniform(0.72, 0.9)
    d_condense, l_condense = rng.uniform(0.72, 0.95), rng.uniform(0.8, 1.0)
    parts: list[tuple[np.ndarray, int]] = []
    gaps: list[int] = []
    runs = _split_registration(text)
    for i, (role, chars) in enumerate(runs):
        if role == "space":
            continue
        if role == "digits":
            m = _digit_run(chars, digit_font, height, d_condense, style.stroke_one, rng)
        else:
            m = _segment_mask(chars, letter_font, letter_body, "ก", l_condense)
            m = _elastic(m, letter_body, style, rng)
        parts.append(m)
        if i + 1 < len(runs):
            space = runs[i + 1][0] == "space"
            gaps.append(int(height * (rng.uniform(0.25, 0.45) if space else rng.uniform(0.04, 0.12))))
    mask, _ = _hstack_baseline(parts, gaps)
    return _reweight(mask, height, style, rng)


def lta_number_mask(text: str, height: float, rng: np.random.Generator) -> np.ndarray:
    """``NN-NNNN`` as on real Land Transport Act plates: light, condensed digits set wide apart, 1s as plain
    bars and a short thick hyphen at mid-height (real yellow plates drawn in the bold faces read as Thai
    letters: "31-9042" -> "3ฐ 9042")."""
    font, h = _pick(rng, "lta_digits"), int(round(height))
    condense, stem = rng.uniform(0.6, 0.85), max(2, int(round(height * rng.uniform(0.09, 0.13))))
    parts: list[tuple[np.ndarray, int]] = []
    gaps: list[int] = []
    for i, ch in enumerate(text):
        if ch == "1":
            parts.append(_bar(stem, h, 0, h))
        elif ch == "-":
            thick = max(2, int(round(height * rng.uniform(0.09, 0.14))))
            parts.append(_bar(int(round(height * rng.uniform(0.2, 0.32))), thick, (h - thick) // 2, h))
        else:
            parts.append(_segment_mask(ch, font, height, "0", condense))
        if i + 1 < len(text):
            hyphen = "-" in (ch, text[i + 1])
            gaps.append(int(height * (rng.uniform(0.08, 0.22) if hyphen else rng.uniform(0.04, 0.12))))
    return _hstack_baseline(parts, gaps)[0]


def plain_mask(text: str, height: float, rng: np.random.Generator, role: str, ref: str) -> np.ndarray:
    return _segment_mask(text, _pick(rng, role), height, ref, rng.uniform(0.85, 1.05))[0]


def _place(canvas: np.ndarray, mask: np.ndarray, cx: float, cy: float, max_w: float) -> tuple[int, int, int, int]:
    """Max-composite ``mask`` centred at (cx, cy), squeezed to ``max_w`` if wider."""
    if mask.shape[1] > max_w:
        mask = cv2.resize(mask, (int(max_w), mask.shape[0]), interpolation=cv2.INTER_AREA)
    h, w = mask.shape
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    H, W = canvas.shape
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if xb > xa and yb > ya:
        canvas[ya:yb, xa:xb] = np.maximum(canvas[ya:yb, xa:xb], mask[ya - y0 : yb - y0, xa - x0 : xb - x0])
    return xa, ya, xb, yb


def _picture_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Auction plates print a provincial picture: approximate with a soft landscape of colour bands and blobs."""
    top, bottom = rng.integers(120, 256, 3), rng.integers(60, 256, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    img = (top * (1 - t) + bottom * t).repeat(w, axis=1).astype(np.float32)
    for _ in range(int(rng.integers(3, 9))):
        colour = rng.integers(40, 256, 3).tolist()
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(w // 10, w // 2)), int(rng.integers(h // 10, h // 2)))
        layer = img.copy()
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        img = cv2.addWeighted(layer, 0.45, img, 0.55, 0)
    img = cv2.GaussianBlur(img, (0, 0), max(1.0, w / 80))
    # pictures are pale behind the text so it stays legible
    return np.clip(img * 0.45 + 255 * 0.5, 0, 255).astype(np.uint8)


def _emboss(rgb: np.ndarray, mask: np.ndarray, colour: RGB, rng: np.random.Generator, s: float) -> np.ndarray:
    """Paint embossed strokes: the ink plus a faint light/dark offset rim (float32 + saturating cv2 ops: hot path)."""
    d = max(1, int(round(s * rng.uniform(0.3, 0.9))))
    shadow = cv2.subtract(np.roll(mask, (d, d), axis=(0, 1)), mask).astype(np.float32) * (0.25 / 255)
    highlight = cv2.subtract(np.roll(mask, (-d, -d), axis=(0, 1)), mask).astype(np.float32) * (40 / 255)
    out = rgb.astype(np.float32) * (1 - shadow)[..., None] + highlight[..., None]
    a = mask.astype(np.float32)[..., None] * (1 / 255)
    out += (np.array(colour, np.float32) - out) * a
    return np.clip(out, 0, 255).astype(np.uint8)


def render_plate(spec: PlateSpec, rng: np.random.Generator, px_per_mm: float = 1.6, style: TextStyle = TextStyle(),
                 ) -> RenderedPlate:
    """Draw the plate: background, embossed border, screws, roundel and the printed lines."""
    layout = "moto" if spec.plate_type is PlateType.MOTORCYCLE else "lta" if spec.plate_type is PlateType.COMMERCIAL else "car"
    wmm, hmm = SIZES_MM[layout]
    if layout == "car" and rng.random() < 0.15:
        wmm = 300  # pre-2011 15 × 30 cm plates are still on the road
    s = px_per_mm
    W, H = int(wmm * s), int(hmm * s)
    bg, fg = COLOURS[spec.plate_type]
    if spec.plate_type is PlateType.COMMERCIAL and rng.random() < 0.3:
        bg = WHITE  # private LTA trucks: white
    jitter = rng.integers(-18, 10, 3)
    bg_j = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(bg, jitter, strict=True))
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = bg_j
    if spec.plate_type is PlateType.AUCTION:
        rgb = _picture_background(H, W, rng)

    ink = np.zeros((H, W), np.uint8)
    r = int(8 * s)
    inset, thick = int(rng.uniform(2.5, 5) * s), max(1, int(rng.uniform(1.2, 2.5) * s))
    # rounded-rectangle border
    cv2.rectangle(ink, (inset + r, inset), (W - inset - r, inset + thick), 255, -1)
    cv2.rectangle(ink, (inset + r, H - inset - thick), (W - inset - r, H - inset), 255, -1)
    cv2.rectangle(ink, (inset, inset + r), (inset + thick, H - inset - r), 255, -1)
    cv2.rectangle(ink, (W - inset - thick, inset + r), (W - inset, H - inset - r), 255, -1)
    for cx, cy, a in ((inset + r, inset + r, 180), (W - inset - r, inset + r, 270), (W - inset - r, H - inset - r, 0), (inset + r, H - inset - r, 90)):
        cv2.ellipse(ink, (cx, cy), (r, r), a, 0, 90, 255, thick)

    boxes: list[tuple[int, int, int, int]] = []
    margin = inset + thick + 4 * s
    usable = W - 2 * margin
    if layout == "car":
        h1 = hmm * s * rng.uniform(0.36, 0.42)
        cy1 = H * rng.uniform(0.34, 0.40)
        boxes.append(_place(ink, registration_mask(spec.lines[0], h1, rng, style), W / 2 + rng.normal(0, 2 * s), cy1, usable))
        h2 = hmm * s * rng.uniform(0.12, 0.16)
        boxes.append(_place(ink, plain_mask(spec.lines[1], h2, rng, "province", "ก"), W / 2, H * rng.uniform(0.76, 0.80), usable * 0.9))
    elif layout == "moto":
        h1 = hmm * s * rng.uniform(0.22, 0.26)
        boxes.append(_place(ink, registration_mask(spec.lines[0], h1, rng, style), W / 2, H * 0.22, usable))
        h2 = hmm * s * rng.uniform(0.09, 0.12)
        boxes.append(_place(ink, plain_mask(spec.lines[1], h2, rng, "province", "ก"), W / 2, H * 0.49, usable))
        boxes.append(_place(ink, registration_mask(spec.lines[2], h1, rng, style), W / 2, H * 0.77, usable))
    elif chance(rng, style.lta_light):
        # real LTA plates: a small THAILAND line, a tall light number line, the DLT emblem left of the province
        h1 = hmm * s * rng.uniform(0.06, 0.09)
        boxes.append(_place(ink, plain_mask(spec.lines[0], h1, rng, "latin", "H"), W / 2, H * 0.13, usable * 0.6))
        h2 = hmm * s * rng.uniform(0.42, 0.52)
        boxes.append(_place(ink, lta_number_mask(spec.lines[1], h2, rng), W / 2, H * 0.5, usable))
        h3 = hmm * s * rng.uniform(0.07, 0.1)
        boxes.append(_place(ink, plain_mask(spec.lines[2], h3, rng, "province", "ก"), W / 2, H * 0.87, usable * 0.7))
        cv2.circle(ink, (int(margin + h3), int(H * 0.87)), max(2, int(h3 * 0.7)), 255, max(1, int(h3 * 0.2)))
    else:
        h1 = hmm * s * rng.uniform(0.09, 0.11)
        boxes.append(_place(ink, plain_mask(spec.lines[0], h1, rng, "latin", "H"), W / 2, H * 0.15, usable))
        h2 = hmm * s * rng.uniform(0.36, 0.42)
        boxes.append(_place(ink, registration_mask(spec.lines[1], h2, rng, style), W / 2, H * 0.50, usable))
        h3 = hmm * s * rng.uniform(0.08, 0.11)
        boxes.append(_place(ink, plain_mask(spec.lines[2], h3, rng, "province", "ก"), W / 2, H * 0.85, usable * 0.9))

    # DLT "ขส" roundel: embossed clutter that is not part of the registration
    if rng.random() < 0.7:
        rr = int(rng.uniform(5, 8) * s)
        cx, cy = (W - margin - rr, H - margin - rr) if layout != "moto" else (W - margin - rr, margin + rr)
        cv2.circle(ink, (int(cx), int(cy)), rr, 160, max(1, int(s * 0.8)))
    rgb = _emboss(rgb, ink, fg, rng, s)

    # mounting screws / holes
    if rng.random() < 0.8:
        yy = int(H * rng.choice([0.08, 0.5, 0.62]))
        for xx in (int(W * 0.12), int(W * 0.88)):
            rad = max(2, int(rng.uniform(3, 5) * s))
            col = (int(rng.integers(90, 200)),) * 3
            cv2.circle(rgb, (xx, yy), rad, col, -1, lineType=cv2.LINE_AA)
            cv2.line(rgb, (xx - rad + 1, yy), (xx + rad - 1, yy), (60, 60, 60), max(1, rad // 3))

    alpha = np.zeros((H, W), np.uint8)
    cv2.rectangle(alpha, (r, 0), (W - r, H), 255, -1)
    cv2.rectangle(alpha, (0, r), (W, H - r), 255, -1)
    for cx, cy in ((r, r), (W - r, r), (r, H - r), (W - r, H - r)):
        cv2.circle(alpha, (cx, cy), r, 255, -1, lineType=cv2.LINE_AA)
    return RenderedPlate(rgb, alpha, spec, boxes)
