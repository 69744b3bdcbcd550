"""Realism: put a rendered plate into the world and degrade it the way cameras do.

Every knob lives in ``thaiplate/configs/synth.yaml`` (documented there); :class:`AugmentConfig` is its
typed view. Geometry (perspective, rotation, crop jitter) is done with one homography per sample so
text never gets resampled twice.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from thaiplate.synth.chance import chance
from thaiplate.synth.render import TextStyle


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float
    rotation_sd: float
    perspective: float
    crop_margin: tuple[float, float]
    crop_jitter: float
    plate_width_px: tuple[int, int]
    p_motion_blur: float
    p_defocus: float
    max_blur_px: float
    p_noise: float
    noise_sd: tuple[float, float]
    jpeg_quality: tuple[int, int]
    p_jpeg: float
    p_low_res: float
    low_res_factor: tuple[float, float]
    p_uneven_light: float
    p_shadow: float
    p_glare: float
    p_dirt: float
    p_occlusion: float
    p_night_ir: float
    p_colour_cast: float
    colour_cast: float
    brightness: tuple[float, float]
    contrast: tuple[float, float]
    p_dealer_frame: float
    p_stroke_one: float
    p_double_letter: float
    p_confusable_letter: float
    confusable_groups: dict[str, float]
    p_weight: float
    weight: tuple[float, float]
    p_rectified: float
    rectified_inset: tuple[float, float]
    p_soft_optics: float = 0.0
    soft_blur_px: tuple[float, float] = (0.4, 1.8)
    soft_fade: tuple[float, float] = (0.0, 0.45)
    p_lta_light: float = 0.0
    p_ofl_letters: float = 0.0
    ofl_faces: tuple[str, ...] = ()
    p_elastic_letters: float = 0.0
    elastic_amount: tuple[float, float] = (0.04, 0.09)

    @property
    def text_style(self) -> TextStyle:
        return TextStyle(stroke_one=self.p_stroke_one, p_weight=self.p_weight, weight=self.weight,
                         lta_light=self.p_lta_light, ofl_letters=self.p_ofl_letters, ofl_faces=self.ofl_faces,
                         elastic_letters=self.p_elastic_letters, elastic_amount=self.elastic_amount)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        known = {f.name for f in fields(cls)}
        if unknown := set(d) - known:
            raise ValueError(f"unknown augment settings: {sorted(unknown)}")
        if missing := {f.name for f in fields(cls) if f.default is MISSING} - set(d):
            raise ValueError(f"missing augment settings: {sorted(missing)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """The package's synth.yaml (the documented defaults), with ``path`` merged over it section by section."""
    cfg = yaml.safe_load(resources.files("thaiplate.configs").joinpath("synth.yaml").read_text())
    if path:
        for section, values in (yaml.safe_load(Path(path).read_text()) or {}).items():
            if section not in cfg:
                raise ValueError(f"{path}: unknown section {section!r} (expected one of {sorted(cfg)})")
            cfg[section] = {**cfg[section], **values}
    return cfg


def augment_config(cfg: dict[str, Any]) -> AugmentConfig:
    return AugmentConfig.from_dict(cfg.get("augment", {}))


# ---------------------------------------------------------------- geometry

def plate_homography(w: int, h: int, cfg: AugmentConfig, rng: np.random.Generator, out_w: float) -> np.ndarray:
    """Homography taking the flat plate (w×h px) to a rotated, tilted quad about ``out_w`` px wide at the origin."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    s = out_w / w
    angle = np.deg2rad(np.clip(rng.normal(0, cfg.rotation_sd), -cfg.rotation_deg, cfg.rotation_deg))
    ca, sa = np.cos(angle), np.sin(angle)
    pts = (src - [w / 2, h / 2]) * s
    p = cfg.perspective
    # perspective: shrink one side (yaw) and the top/bottom (pitch)
    yaw, pitch = rng.uniform(-p, p), rng.uniform(-p / 2, p / 2)
    pts[:, 1] *= 1 + yaw * np.sign(pts[:, 0])
    pts[:, 0] *= 1 + pitch * np.sign(pts[:, 1])
    shear = rng.normal(0, 0.04)
    pts[:, 0] += shear * pts[:, 1]
    rot = np.array([[ca, -sa], [sa, ca]])
    dst = (pts @ rot.T).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst)


def quad_of(H: np.ndarray, w: int, h: int) -> np.ndarray:
    src = np.float32([[[0, 0], [w, 0], [w, h], [0, h]]])
    return cv2.perspectiveTransform(src, H)[0]


def translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def composite(bg: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Warp the plate with ``H`` into ``bg`` (in place semantics, returns the result)."""
    size = (bg.shape[1], bg.shape[0])
    warped = cv2.warpPerspective(rgb, H, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpPerspective(alpha, H, size, flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    return (warped * a + bg * (1 - a)).astype(np.uint8)


# ---------------------------------------------------------------- photometric

def _uneven_light(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    gx, gy = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
    a, b = rng.uniform(-0.45, 0.45, 2)
    field = 1 + a * gx + b * gy
    return img * np.clip(field, 0.3, 1.6)[..., None]


def _shadow(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    pts = np.stack([rng.uniform(-0.2, 1.2, 4) * w, rng.uniform(-0.2, 1.2, 4) * h], axis=1).astype(np.int32)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, w / 40))
    return img * (1 - rng.uniform(0.25, 0.6) * mask)[..., None]


def _glare(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
    cv2.ellipse(mask, c, (int(w * rng.uniform(0.05, 0.3)), int(h * rng.uniform(0.1, 0.4))), rng.uniform(0, 180), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, w / 25))
    return img + rng.uniform(60, 160) * mask[..., None]


def _dirt(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 25))):
        cv2.circle(mask, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.uniform(1, max(2, w / 30))), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.2) * rng.uniform(0.2, 0.6)
    colour = np.array([rng.uniform(60, 110), rng.uniform(50, 90), rng.uniform(30, 70)], np.float32)
    return img * (1 - mask[..., None]) + colour * mask[..., None]


def _motion_blur(img: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """A ``k``-pixel line kernel at a random angle."""
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


@dataclass
class Degradation:
    """What :func:`degrade` did to one image: the difficulty columns of ``synth ocr``'s labels.csv, so
    accuracy can be read against plate resolution and blur. Recording it draws no random number."""

    blur_px: float = 0.0  # defocus sigma or motion-blur length / 2.5 (the larger), image pixels
    low_res: float = 1.0  # down-sampling factor before the up-sample back (1 = none)
    noise_sd: float = 0.0  # sensor noise sigma, 8-bit levels
    jpeg_q: int = 100  # JPEG quality of the re-encode (100 = none)


def fade_to_mean(img: np.ndarray, fade: float) -> np.ndarray:
    """Blend a float RGB image towards its mean colour by ``fade`` (0..1): the low contrast of a distant plate."""
    return img * (1 - fade) + img.reshape(-1, 3).mean(axis=0) * fade


def degrade(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, Degradation]:
    """Light, colour, blur, resolution, noise and JPEG, in the order a camera applies them.

    ``p_soft_optics`` adds the scene engine's look of a distant plate (``_optics`` in ``scene.py``):
    contrast faded towards the mean colour and a blur applied at the plate's detail resolution (inside the
    down-sample when there is one), so the reader learns the plates the pipeline cuts out of scenes.
    """
    d = Degradation()
    sigma, fade = (0.0, 0.0)
    if chance(rng, cfg.p_soft_optics):
        sigma, fade = float(rng.uniform(*cfg.soft_blur_px)), float(rng.uniform(*cfg.soft_fade))
    f = img.astype(np.float32)
    if rng.random() < cfg.p_uneven_light:
        f = _uneven_light(f, rng)
    if rng.random() < cfg.p_shadow:
        f = _shadow(f, rng)
    if rng.random() < cfg.p_dirt:
        f = _dirt(f, rng)
    if rng.random() < cfg.p_glare:
        f = _glare(f, rng)
    if rng.random() < cfg.p_colour_cast:
        f = f * (1 + rng.uniform(-cfg.colour_cast, cfg.colour_cast, 3))
    mean = f.mean()
    f = (f - mean) * rng.uniform(*cfg.contrast) + mean * rng.uniform(*cfg.brightness)
    if fade:
        f = fade_to_mean(f, fade)
    if rng.random() < cfg.p_night_ir:
        g = f.mean(axis=2, keepdims=True) * rng.uniform(0.8, 1.3)
        f = np.repeat(g, 3, axis=2)
    f = np.clip(f, 0, 255)
    if rng.random() < cfg.p_defocus:
        d.blur_px = rng.uniform(0.3, cfg.max_blur_px)
        f = cv2.GaussianBlur(f, (0, 0), d.blur_px)
    if rng.random() < cfg.p_motion_blur:
        k = int(rng.uniform(2, max(3, cfg.max_blur_px * 2.5)))
        d.blur_px = max(d.blur_px, k / 2.5)
        f = _motion_blur(f, rng, k)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_low_res:
        h, w = out.shape[:2]
        d.low_res = rng.uniform(*cfg.low_res_factor)
        small = cv2.resize(out, (max(8, int(w * d.low_res)), max(4, int(h * d.low_res))), interpolation=cv2.INTER_AREA)
        if sigma:
            small = cv2.GaussianBlur(small, (0, 0), sigma)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif sigma:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if sigma:
        d.blur_px = max(d.blur_px, sigma / d.low_res)
    if rng.random() < cfg.p_noise:
        d.noise_sd = rng.uniform(*cfg.noise_sd)
        noise = rng.normal(0, d.noise_sd, out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_jpeg:
        q = int(np.clip(rng.triangular(cfg.jpeg_quality[0], cfg.jpeg_quality[1], cfg.jpeg_quality[1]), 1, 100))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            d.jpeg_q = q
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out, d


def photometric(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """:func:`degrade` without its record (scenes)."""
    return degrade(img, cfg, rng)[0]


def occlude(img: np.ndarray, rng: np.random.Generator, region: tuple[int, int, int, int]) -> np.ndarray:
    """Cover a corner strip of the plate (tow hook, bumper, another car) without hiding line-1 characters."""
    x1, y1, x2, y2 = region
    w, h = x2 - x1, y2 - y1
    out = img.copy()
    colour = rng.integers(0, 255, 3).tolist()
    if rng.random() < 0.5:  # side strip up to 7 % of the plate width
        sw = int(w * rng.uniform(0.02, 0.07))
        xs = x1 if rng.random() < 0.5 else x2 - sw
        cv2.rectangle(out, (xs, y1), (xs + sw, y2), colour, -1)
    else:  # bottom band over part of the province line
        sh = int(h * rng.uniform(0.05, 0.15))
        xa = int(x1 + w * rng.uniform(0, 0.6))
        cv2.rectangle(out, (xa, y2 - sh), (xa + int(w * rng.uniform(0.2, 0.4)), y2), colour, -1)
    return out
