"""Detector training scenes: 0–3 Thai plates composited into street-like images, YOLO labels.

Two background sources: procedural streets (road, car bodies, signs and text-like clutter) and the
MIT-licensed dashcam frames, where a Thai plate is pasted over each boxed foreign plate (matched in
size, perspective, blur and light). Evaluation-only sets are never read here.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from thaiplate.labels import CONSONANTS
from thaiplate.synth import fonts
from thaiplate.synth.augment import (
    AugmentConfig,
    composite,
    fade_to_mean,
    photometric,
    plate_homography,
    quad_of,
    translate,
)
from thaiplate.synth.chance import chance
from thaiplate.synth.crops import CAR_COLOURS, dealer_frame
from thaiplate.synth.grammar import PlateSpec, sample_plate
from thaiplate.synth.render import render_plate


@dataclass
class Scene:
    image: np.ndarray  # RGB uint8
    boxes: list[tuple[float, float, float, float]]  # x1 y1 x2 y2 px, one per visible plate
    specs: list[PlateSpec | None]  # None: a real foreign plate kept as it is (box only, no Thai text)
    # per plate: (blur sigma px, fade) of the pasted plate's optics, (0, 0) when crisp or native; eval
    # splits by it, because a soft, washed-out 60 px plate can be unreadable by design
    optics: list[tuple[float, float]]


@cache
def dashcam_index(root: str) -> tuple[tuple[str, tuple[tuple[float, float, float, float], ...]], ...]:
    """(image path, boxes) for the MIT dashcam set; empty if the folder is absent."""
    p = Path(root)
    if not (p / "labels.csv").is_file():
        return ()
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    with open(p / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["x1"]:
                boxes.setdefault(str(p / row["file"]), []).append(
                    (float(row["x1"]), float(row["y1"]), float(row["x2"]), float(row["y2"])))
    return tuple((k, tuple(v)) for k, v in sorted(boxes.items()))


def _text_clutter(img: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Signs, stickers and shop text: plate-like distractors the detector must learn to ignore."""
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    h, w = img.shape[:2]
    fs = fonts.find_fonts()
    for _ in range(n):
        x, y = int(rng.uniform(0, w * 0.9)), int(rng.uniform(0, h * 0.9))
        size = int(rng.uniform(10, 40))
        if rng.random() < 0.6:
            bw, bh = int(size * rng.uniform(2, 8)), int(size * rng.uniform(1.2, 3))
            draw.rectangle((x, y, x + bw, y + bh), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        k = int(rng.integers(2, 9))
        pool = CONSONANTS + "0123456789 ABCDEFGHKLMNPRSTXY-"
        text = "".join(pool[i] for i in rng.integers(0, len(pool), size=k))
        choices = fs.choices("clutter")
        path = choices[int(rng.integers(len(choices)))][0]
        draw.text((x + 3, y + 2), text, font=fonts.load(path, size), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return np.asarray(pil)


def procedural_background(w: int, h: int, rng: np.random.Generator, p_grille: float = 0.0,
                          ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Sky, buildings, road and car bodies; returns the image and bumper regions where plates may go.

    ``p_grille``: share of cars given grille bars and a chrome badge (0 draws no random number, so
    older seeds still give the same scenes)."""
    img = np.zeros((h, w, 3), np.float32)
    horizon = int(h * rng.uniform(0.25, 0.5))
    sky = rng.integers(90, 230, 3).astype(np.float32)
    img[:horizon] = sky * np.linspace(1.1, 0.8, horizon)[:, None, None]
    road = rng.integers(50, 130)
    img[horizon:] = road + rng.normal(0, 6, (h - horizon, w, 1))
    for _ in range(int(rng.integers(2, 8))):  # buildings
        bx, bw = int(rng.uniform(0, w)), int(rng.uniform(w * 0.05, w * 0.3))
        bh = int(rng.uniform(0.1, 1.0) * horizon)
        img[horizon - bh : horizon, bx : bx + bw] = rng.integers(40, 220, 3)
    for _ in range(int(rng.integers(1, 4))):  # lane markings
        y = int(rng.uniform(horizon + 10, h))
        cv2.line(img, (int(rng.uniform(0, w)), y), (int(rng.uniform(0, w)), y + int(rng.uniform(-40, 40))), (220, 220, 210), int(rng.integers(2, 8)))
    bumpers: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, 5))):  # cars: body, window, lamps
        cw = int(w * rng.uniform(0.12, 0.45))
        ch = int(cw * rng.uniform(0.5, 0.85))
        cx, cy = int(rng.uniform(0, w - cw)), int(rng.uniform(horizon - ch * 0.3, h - ch * 0.6))
        colour = np.array(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))], np.float32)
        cv2.rectangle(img, (cx, cy), (cx + cw, cy + ch), colour.tolist(), -1)
        cv2.rectangle(img, (cx + cw // 8, cy + ch // 10), (cx + cw * 7 // 8, cy + ch * 4 // 10), (40, 50, 60), -1)
        for lx in (cx + cw // 12, cx + cw * 9 // 12):
            cv2.rectangle(img, (lx, cy + ch // 2), (lx + cw // 6, cy + ch * 6 // 10), (230, 220, 180) if rng.random() < 0.5 else (180, 30, 30), -1)
        if chance(rng, p_grille):  # grille bars and a chrome badge between the lamps: plate-like clutter
            gx1, gx2 = cx + cw * 4 // 12, cx + cw * 8 // 12
            gy1, gy2 = cy + ch * 42 // 100, cy + ch * 58 // 100
            bar = (25, 25, 28) if rng.random() < 0.6 else (175, 175, 180)
            for gy in range(gy1, gy2, max(2, (gy2 - gy1) // int(rng.integers(3, 7)))):
                cv2.line(img, (gx1, gy), (gx2, gy), bar, max(1, (gy2 - gy1) // 10))
            cv2.ellipse(img, ((gx1 + gx2) // 2, (gy1 + gy2) // 2), (max(2, cw // 20), max(1, ch // 30)), 0, 0, 360,
                        (200, 200, 205), -1)
        bumpers.append((cx, cy + ch // 2, cx + cw, cy + ch))
    return np.clip(img, 0, 255).astype(np.uint8), bumpers


def _erase(img: np.ndarray, box: tuple[float, float, float, float], pad: int = 2) -> None:
    """Paint a foreign plate out with its surroundings (inpainting; a flat fill left a plate-shaped
    patch, a cue real frames do not have)."""
    x1, y1 = max(0, int(box[0]) - pad), max(0, int(box[1]) - pad)
    x2, y2 = min(img.shape[1], int(box[2]) + pad), min(img.shape[0], int(box[3]) + pad)
    m = 8  # context for the inpainting
    ox1, oy1, ox2, oy2 = max(0, x1 - m), max(0, y1 - m), min(img.shape[1], x2 + m), min(img.shape[0], y2 + m)
    roi = np.ascontiguousarray(img[oy1:oy2, ox1:ox2])
    mask = np.zeros(roi.shape[:2], np.uint8)
    mask[y1 - oy1 : y2 - oy1, x1 - ox1 : x2 - ox1] = 255
    img[oy1:oy2, ox1:ox2] = cv2.inpaint(roi, mask, 3, cv2.INPAINT_TELEA)


def balance_frame(img: np.ndarray, rng: np.random.Generator, warmth: float) -> np.ndarray:
    """Grey-world white balance plus a random colour temperature (``warmth``: largest red/blue gain change).

    The dashcam frames share one camera's purple-magenta cast, mostly at dusk and night; left as they are,
    every real-photo scene the detector sees has that cast, and a plate becomes 'a pale patch in a purple
    frame'. Balancing turns them into neutral-light photos of the same streets."""
    f = img.astype(np.float32)
    means = f.reshape(-1, 3).mean(axis=0) + 1e-3
    gains = means.mean() / means
    t = rng.uniform(-warmth, warmth)
    gains = gains * np.array([1 + t, 1.0, 1 - t], np.float32)
    return np.clip(f * gains, 0, 255).astype(np.uint8)


def oblique_view(scene_cfg: dict, rng: np.random.Generator) -> np.ndarray | None:
    """A plate seen from the side (3×3, about the plate centre), or None (the default ``p_oblique`` 0 draws
    no random number).

    A roadside or kerb camera sees an approaching car's plate turned by tens of degrees: the plate is
    foreshortened to cos(yaw) of its width, and its top and bottom edges slope (the camera is above or
    below it) while its vertical edges stay vertical. ``plate_homography``'s small yaw only tapers one side."""
    if not chance(rng, scene_cfg.get("p_oblique", 0.0)):
        return None
    yaw = np.deg2rad(rng.uniform(*scene_cfg["oblique_yaw_deg"]))
    slant = np.deg2rad(rng.uniform(*scene_cfg["oblique_slant_deg"])) * (1 if rng.random() < 0.5 else -1)
    return np.array([[np.cos(yaw), 0, 0], [np.tan(slant), 1, 0], [0, 0, 1]], np.float64)


def _optics(scene_cfg: dict, rng: np.random.Generator) -> tuple[float, float]:
    """(blur sigma in scene px, contrast fade 0..1) for one pasted plate: distant real plates are soft and
    washed out (focus, rain, compression), a freshly rendered one is crisp, an easy cue that real frames lack."""
    if rng.random() >= scene_cfg.get("p_plate_optics", 0.0):
        return 0.0, 0.0
    return float(rng.uniform(*scene_cfg["plate_blur_px"])), float(rng.uniform(*scene_cfg["plate_fade"]))


def _paste(img: np.ndarray, spec: PlateSpec, centre: tuple[float, float], width: float, cfg: AugmentConfig,
           rng: np.random.Generator, optics: tuple[float, float] = (0.0, 0.0), scene_cfg: dict | None = None,
           ) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """Warp a rendered plate of ``width`` px centred at ``centre``; returns the image and the clipped box.

    ``optics`` = (blur sigma, fade): the plate is blended towards its mean colour by ``fade``, and its
    neighbourhood blurred with ``sigma`` after pasting (so the plate edge blurs into the car too).
    ``scene_cfg`` may ask for a dealer frame around the plate (``p_plate_frame``)."""
    plate = render_plate(spec, rng, px_per_mm=float(np.clip(1.5 * width / 340, 0.4, 1.2)), style=cfg.text_style)
    ph, pw = plate.rgb.shape[:2]
    H = plate_homography(pw, ph, cfg, rng, width)
    side = oblique_view(scene_cfg, rng) if scene_cfg else None
    if side is not None:
        H = side @ H
    H = translate(*centre) @ H
    q = quad_of(H, pw, ph)
    x1, y1 = np.clip(q.min(axis=0), 0, [img.shape[1], img.shape[0]])
    x2, y2 = np.clip(q.max(axis=0), 0, [img.shape[1], img.shape[0]])
    full = (q.max(axis=0) - q.min(axis=0)).prod()
    if (x2 - x1) * (y2 - y1) < 0.6 * full or x2 - x1 < 4:
        return img, None  # mostly outside the frame: skip rather than emit a misleading label
    # match the local light: scale the plate to the brightness around it
    rx1, ry1, rx2, ry2 = int(x1), int(y1), max(int(x2), int(x1) + 1), max(int(y2), int(y1) + 1)
    local = img[ry1:ry2, rx1:rx2].mean() / 255.0 if img[ry1:ry2, rx1:rx2].size else 0.6
    gain = np.clip(0.5 + local * rng.uniform(0.6, 1.2), 0.35, 1.2)
    rgb = plate.rgb.astype(np.float32) * gain
    sigma, fade = optics
    if fade:
        rgb = fade_to_mean(rgb, fade)
    blur_q = q
    if chance(rng, scene_cfg.get("p_plate_frame", 0.0) if scene_cfg else 0.0):
        # the OCR crops' dealer frame, in the plate's light; the plate is pasted over its middle, and the
        # label box stays the plate's own (real cars rarely show a bare plate on a flat bumper)
        framed, (dx, dy) = dealer_frame(plate, rng)
        Hf = H @ translate(-dx, -dy)
        lit = np.clip(framed.rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        img = composite(img, lit, framed.alpha, Hf)
        blur_q = quad_of(Hf, framed.rgb.shape[1], framed.rgb.shape[0])
    out = composite(img, np.clip(rgb, 0, 255).astype(np.uint8), plate.alpha, H)
    if sigma > 0.2:
        m = int(3 * sigma) + 2
        bx1, by1 = np.maximum(blur_q.min(axis=0).astype(int), 0)
        bx2, by2 = blur_q.max(axis=0).astype(int)
        ys, xs = slice(max(0, by1 - m), by2 + m), slice(max(0, bx1 - m), bx2 + m)
        out[ys, xs] = cv2.GaussianBlur(out[ys, xs], (0, 0), sigma)
    return out, (float(x1), float(y1), float(x2), float(y2))


def _far_grid(rng: np.random.Generator, frame: Callable[[], np.ndarray], boxes: list, specs: list, optics: list,
              grid: tuple[int, int], min_width: float = 6.0) -> np.ndarray:
    """A g x g grid of whole dashcam frames, each composed at full size by ``frame()`` (which appends its
    plates to the lists) and then shrunk into its cell: plates 1/g of their size, still on real cars in real
    traffic. The dashcam plates are ~100 px wide, so without this every synthetic plate under 50 px sat on a
    procedural background while real roadside plates that small sit in car fronts (runs/rule-detector-v11.md)."""
    g = int(rng.integers(grid[0], grid[1] + 1))
    canvas: np.ndarray | None = None
    for r in range(g):
        for c in range(g):
            start = len(boxes)
            img = frame()
            h, w = img.shape[:2]
            if canvas is None:
                canvas = np.zeros_like(img)
            ch, cw = h // g, w // g
            canvas[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = cv2.resize(img, (cw, ch), interpolation=cv2.INTER_AREA)
            sx, sy = cw / w, ch / h
            for i in range(len(boxes) - 1, start - 1, -1):
                x1, y1, x2, y2 = boxes[i]
                b = (c * cw + x1 * sx, r * ch + y1 * sy, c * cw + x2 * sx, r * ch + y2 * sy)
                if b[2] - b[0] < min_width:  # too small to call a plate: keep the pixels, drop the label
                    del boxes[i], specs[i], optics[i]
                else:
                    boxes[i] = b
    assert canvas is not None
    return canvas


def make_scene(rng: np.random.Generator, cfg: AugmentConfig, scene_cfg: dict) -> Scene:
    """One scene with its plate boxes (empty list for hard-negative scenes)."""
    n_plates = 0 if rng.random() < scene_cfg["p_empty"] else int(rng.integers(max(1, scene_cfg["plates_per_image"][0]), scene_cfg["plates_per_image"][1] + 1))
    dash = dashcam_index(str(Path(scene_cfg["dashcam_dir"]).resolve()))
    boxes: list[tuple[float, float, float, float]] = []
    specs: list[PlateSpec | None] = []
    optics: list[tuple[float, float]] = []

    def add(box: tuple[float, float, float, float], spec: PlateSpec | None, look: tuple[float, float]) -> None:
        boxes.append(box)
        specs.append(spec)
        optics.append(look)

    def paste(img: np.ndarray, spec: PlateSpec, centre: tuple[float, float], width: float) -> np.ndarray:
        """Paste one Thai plate with optics of its own; label it if it stayed in the frame."""
        look = _optics(scene_cfg, rng)
        img, box = _paste(img, spec, centre, width, cfg, rng, look, scene_cfg)
        if box:
            add(box, spec, look)
        return img

    lo, hi = scene_cfg["plate_width_px"]

    def dashcam_frame() -> np.ndarray:
        """One dashcam frame with a Thai plate pasted over each of its own (or that plate kept)."""
        path, foreign = dash[int(rng.integers(len(dash)))]
        img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        if chance(rng, scene_cfg.get("p_balance_frames", 0.0)):
            img = balance_frame(img, rng, scene_cfg["balance_warmth"])
        for fx1, fy1, fx2, fy2 in foreign:
            if n_plates and rng.random() < scene_cfg.get("p_native_plate", 0.0):
                # keep the real plate: real optics, dirt and mounting on a real car (box only)
                add((fx1, fy1, fx2, fy2), None, (0.0, 0.0))
                continue
            # hide the foreign plate (it would be an unlabelled positive), then paste a Thai one over it
            _erase(img, (fx1, fy1, fx2, fy2))
            if n_plates == 0:
                continue
            spec = sample_plate(rng)
            # cover the whole foreign plate: any of it left over would be an unlabelled plate-like patch
            width = float(np.clip(max((fy2 - fy1) * rng.uniform(2.0, 2.6), (fx2 - fx1) * 1.05), lo, hi * 1.5))
            img = paste(img, spec, ((fx1 + fx2) / 2, (fy1 + fy2) / 2), width)
        return img

    if dash and rng.random() < scene_cfg["p_dashcam"]:
        if chance(rng, scene_cfg.get("p_far_dashcam", 0.0)):
            img = _far_grid(rng, dashcam_frame, boxes, specs, optics, scene_cfg["far_grid"])
        else:
            img = dashcam_frame()
    else:
        w, h = scene_cfg["size"][int(rng.integers(len(scene_cfg["size"])))]
        img, bumpers = procedural_background(w, h, rng, scene_cfg.get("p_grille", 0.0))
        img = _text_clutter(img, rng, int(rng.integers(*scene_cfg["distractors"])))
        for i in range(n_plates):
            bx1, by1, bx2, by2 = bumpers[i % len(bumpers)] if bumpers and rng.random() < 0.8 else (0, 0, w, h)
            width = float(np.exp(rng.uniform(np.log(lo), np.log(hi))) * w / 1280)
            centre = (rng.uniform(bx1, bx2), rng.uniform(by1, by2))
            if any(abs(centre[0] - (b[0] + b[2]) / 2) < width and abs(centre[1] - (b[1] + b[3]) / 2) < width / 2 for b in boxes):
                continue  # no overlapping plates
            spec = sample_plate(rng)
            img = paste(img, spec, centre, width)
    # scene-level degradation without resolution loss, then labels stay exact
    soft = replace(cfg, p_low_res=0.0, p_occlusion=0.0, max_blur_px=min(cfg.max_blur_px, 1.2))
    return Scene(photometric(img, soft, rng), boxes, specs, optics)


def yolo_lines(scene: Scene) -> list[str]:
    h, w = scene.image.shape[:2]
    out = []
    for x1, y1, x2, y2 in scene.boxes:
        out.append(f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return out
