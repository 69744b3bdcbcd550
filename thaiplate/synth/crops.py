"""OCR training samples: a plate on a car body, cropped as a detector would crop it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from thaiplate.labels import PlateType
from thaiplate.synth import fonts
from thaiplate.synth.augment import (
    AugmentConfig,
    Degradation,
    composite,
    degrade,
    occlude,
    plate_homography,
    quad_of,
    translate,
)
from thaiplate.synth.chance import chance
from thaiplate.synth.grammar import PlateSpec, confusable_letter, double_letter, sample_plate
from thaiplate.synth.render import RenderedPlate, render_plate

CAR_COLOURS = [
    (235, 235, 235),
    (20, 20, 25),
    (150, 150, 155),
    (190, 190, 195),
    (120, 20, 25),
    (25, 45, 110),
    (200, 200, 190),
    (90, 90, 95),
    (160, 120, 60),
    (40, 80, 50),
]


def car_body(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A bumper-like patch: car colour, vertical gradient, a grille/bumper edge, noise."""
    base = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32) + rng.normal(0, 12, 3)
    t = np.linspace(0.7, 1.2, h, dtype=np.float32)
    t = t if rng.random() < 0.5 else t[::-1]
    img = np.clip(np.broadcast_to((base.astype(np.float32) * t[:, None])[:, None, :], (h, w, 3)), 0, 255)
    for _ in range(int(rng.integers(0, 4))):  # bumper lines, grille slats
        y = int(rng.uniform(0, h))
        cv2.line(
            img,
            (0, y),
            (w, y + int(rng.normal(0, h / 20))),
            (base * rng.uniform(0.3, 0.8)).tolist(),
            int(rng.integers(1, 4)),
        )
    return np.clip(img + 4 * rng.standard_normal(img.shape, dtype=np.float32), 0, 255).astype(np.uint8)


def dealer_frame(plate: RenderedPlate, rng: np.random.Generator) -> tuple[RenderedPlate, tuple[int, int]]:
    """Wrap the plate in a plastic dealer frame with a text band below (Latin/Thai clutter); also returns
    where the plate's top-left corner sits in the framed image."""
    h, w = plate.rgb.shape[:2]
    side, top, bottom = int(w * 0.03), int(h * 0.05), int(h * rng.uniform(0.12, 0.22))
    colour = (
        (int(rng.integers(0, 60)),) * 3
        if rng.random() < 0.7
        else tuple(int(c) for c in rng.integers(100, 230, 3))
    )
    rgb = np.empty((h + top + bottom, w + 2 * side, 3), np.uint8)
    rgb[:] = colour
    rgb[top : top + h, side : side + w] = plate.rgb
    words = [
        "TOYOTA",
        "HONDA",
        "ISUZU",
        "MITSUBISHI",
        "NISSAN",
        "MAZDA",
        "โตโยต้า",
        "ฮอนด้า",
        "ขอบคุณที่ใช้บริการ",
        "www.dealer.co.th",
    ]
    text = " ".join(rng.choice(words, size=int(rng.integers(1, 3))))
    from PIL import Image, ImageDraw

    band = Image.fromarray(rgb)
    font = fonts.load(fonts.find_fonts().choices("province")[0][0], max(6, int(bottom * 0.6)))
    tc = (255, 255, 255) if sum(colour) < 300 else (20, 20, 20)
    ImageDraw.Draw(band).text((rgb.shape[1] / 2, top + h + bottom / 2), text, font=font, fill=tc, anchor="mm")
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    boxes = [(x1 + side, y1 + top, x2 + side, y2 + top) for x1, y1, x2, y2 in plate.text_boxes]
    return RenderedPlate(np.asarray(band), alpha, plate.spec, boxes), (side, top)


def rectified_box(
    plate: RenderedPlate, off: tuple[float, float], inner_w: int, inner_h: int, insets: list[float]
) -> tuple[float, float, float, float]:
    """Crop box (plate pixels) of a contour-warped crop: each edge moved inside the plate outline by
    ``insets`` (left, top, right, bottom; fractions of the plate, negative = outside), then pulled back
    so every registration line stays whole. Only the province and "THAILAND" lines may be cut: labels stay true.
    """
    ox, oy = off
    x1, y1 = ox + insets[0] * inner_w, oy + insets[1] * inner_h
    x2, y2 = ox + inner_w * (1 - insets[2]), oy + inner_h * (1 - insets[3])
    for line, (bx1, by1, bx2, by2) in zip(plate.spec.lines, plate.text_boxes, strict=False):
        if line == plate.spec.province_th or line.startswith("THAILAND"):
            continue
        x1, y1 = min(x1, bx1 - 1), min(y1, by1 - 1)
        x2, y2 = max(x2, bx2 + 1), max(y2, by2 + 1)
    return x1, y1, x2, y2


def _rectified_crop(
    plate: RenderedPlate,
    off: tuple[float, float],
    inner_w: int,
    inner_h: int,
    target_w: float,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """The plate warped flat to a rectangle, the way a deskewing or contour+warp cropper hands it over."""
    x1, y1, x2, y2 = rectified_box(
        plate, off, inner_w, inner_h, [rng.uniform(*cfg.rectified_inset) for _ in range(4)]
    )
    cw = max(8, int(round(target_w * (x2 - x1) / inner_w)))
    # warpers rarely keep the true aspect: stretch the height a little either way
    ch = max(6, int(round(cw * (y2 - y1) / (x2 - x1) * rng.uniform(0.85, 1.2))))
    S = np.diag([cw / (x2 - x1), ch / (y2 - y1), 1.0]) @ translate(-x1, -y1)
    return composite(car_body(ch, cw, rng), plate.rgb, plate.alpha, S)


@dataclass
class OcrSample:
    """One degraded plate crop, its label, and how hard it was made."""

    image: np.ndarray  # RGB uint8
    spec: PlateSpec
    plate_px: float  # plate width in crop pixels, before degradation
    degradation: Degradation

    @property
    def detail_px(self) -> float:
        """Plate width in pixels of real detail: ``plate_px`` after any down-sampling."""
        return self.plate_px * self.degradation.low_res

    @classmethod
    def degraded(
        cls, img: np.ndarray, spec: PlateSpec, plate_px: float, cfg: AugmentConfig, rng: np.random.Generator
    ) -> OcrSample:
        out, d = degrade(img, cfg, rng)
        return cls(out, spec, plate_px, d)


def ocr_sample(
    rng: np.random.Generator, cfg: AugmentConfig, spec: PlateSpec | None = None, plate_type: PlateType | None = None
) -> OcrSample:
    """One degraded plate crop and its label; without ``spec``, a random plate (of ``plate_type`` if given)."""
    spec = spec or sample_plate(rng, plate_type)
    if chance(rng, cfg.p_double_letter):
        spec = double_letter(spec)
    if chance(rng, cfg.p_confusable_letter):
        spec = confusable_letter(spec, rng, cfg.confusable_groups)
    target_w = rng.uniform(*cfg.plate_width_px)
    # render at ~1.5x the final resolution (not more: pixels we later throw away cost most of the time)
    plate = render_plate(spec, rng, px_per_mm=float(np.clip(1.5 * target_w / 340, 0.5, 1.3)), style=cfg.text_style)
    inner_h, inner_w = plate.rgb.shape[:2]
    if rng.random() < cfg.p_dealer_frame:
        framed, _ = dealer_frame(plate, rng)
        off = ((framed.rgb.shape[1] - inner_w) / 2, (framed.rgb.shape[0] - inner_h) * 0.25)
        plate = framed
    else:
        off = (0.0, 0.0)
    if rng.random() < cfg.p_rectified:
        crop = _rectified_crop(plate, off, inner_w, inner_h, target_w, cfg, rng)
        return OcrSample.degraded(crop, spec, target_w, cfg, rng)
    h, w = plate.rgb.shape[:2]
    out_w = target_w * w / max(inner_w, 1)
    H = plate_homography(w, h, cfg, rng, out_w)
    # the crop box is around the plate itself (not the frame), as a detector trained on plates sees it
    inner = quad_of(H @ translate(*off), inner_w, inner_h)
    x1, y1 = inner.min(axis=0)
    x2, y2 = inner.max(axis=0)
    bw, bh = x2 - x1, y2 - y1
    m = [rng.uniform(*cfg.crop_margin) + rng.normal(0, cfg.crop_jitter) for _ in range(4)]
    cx1, cy1, cx2, cy2 = x1 - m[0] * bw, y1 - m[1] * bh, x2 + m[2] * bw, y2 + m[3] * bh
    cw, ch = max(8, int(round(cx2 - cx1))), max(6, int(round(cy2 - cy1)))
    Hc = translate(-cx1, -cy1) @ H
    bg = car_body(ch, cw, rng)
    img = composite(bg, plate.rgb, plate.alpha, Hc)
    if rng.random() < cfg.p_occlusion:
        q = quad_of(Hc, w, h)
        img = occlude(img, rng, (*q.min(axis=0).astype(int), *q.max(axis=0).astype(int)))
    return OcrSample.degraded(img, spec, target_w, cfg, rng)

