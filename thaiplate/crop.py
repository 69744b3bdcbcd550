"""Detected box -> plate crop, deskewed and perspective-corrected when the plate outline is clear.

The recogniser reads two text rows from a fronto-parallel plate; a plate seen from the kerb is a
trapezoid and a tilted camera rotates it, which costs accuracy. Thai plates are a bright rectangle
(white, yellow, green, red background) with a thin dark frame, so the plate body is usually the largest
bright blob in the crop:

1. crop the box plus a margin (so the plate corners are inside), clamped to the image;
2. Otsu-threshold a small grey copy, take the largest bright contour, and require it to be solid
   (area >= 85 % of its convex hull);
3. if it approximates to a convex quadrilateral covering >= 40 % of the *detected box* (not of the
   margin crop: a plate seen at an angle fills only about half of its own axis-aligned box) with a
   plate-like aspect ratio and does not simply run along the crop edges (then it is the crop, not the
   plate), warp it to a rectangle (perspective correction);
4. else, if its ``minAreaRect`` is clearly rotated (2-30 degrees) and large, rotate that rectangle
   upright;
5. else return the plain margin crop.

Never raises and never returns an empty array: degenerate boxes are grown to a minimum size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from thaiplate.results import Detection

MIN_SIDE = 4  # px; a crop is never smaller than this
WORK_WIDTH = 160  # analysis is done on a copy at most this wide (keeps big close-ups < 1 ms)
MIN_COVER = 0.4  # plate quad area / detected box area
SOLIDITY = 0.85  # blob area / convex hull area: a plate body is solid, clutter is ragged
EXPAND = 0.03  # grow a found outline about its centre so the frame and edge characters stay inside
ASPECT_RANGE = (1.0, 6.0)  # plate width / height: motorcycle ~1.5, car ~2.9, allow perspective


@dataclass(frozen=True)
class PlateCrop:
    pixels: np.ndarray  # RGB uint8 (h, w, 3)
    corners: tuple[tuple[float, float], ...] | None  # tl, tr, br, bl in original-image pixels
    method: str  # "perspective", "rotate" or "plain"


def crop_plate(image: np.ndarray, detection: Detection, *, margin: float = 0.08) -> np.ndarray:
    """RGB image + detection -> rectified RGB plate crop (see module docstring)."""
    return rectify_plate(image, detection, margin=margin).pixels


def margin_crop(image: np.ndarray, detection: Detection, *, margin: float = 0.08) -> PlateCrop:
    """Step 1 alone: the box plus a margin, never rectified (the reference arm when judging rectification)."""
    x0, y0, x1, y1 = crop_window(detection.box, image.shape, margin)
    return PlateCrop(np.ascontiguousarray(image[y0:y1, x0:x1]), None, "plain")


def rectify_plate(image: np.ndarray, detection: Detection, *, margin: float = 0.08) -> PlateCrop:
    """Like :func:`crop_plate` but also returns the plate corners found and the method used."""
    x0, y0, x1, y1 = crop_window(detection.box, image.shape, margin)
    crop = image[y0:y1, x0:x1]
    bw, bh = detection.box[2] - detection.box[0], detection.box[3] - detection.box[1]
    try:
        quad = find_plate_quad(crop, min_area=MIN_COVER * bw * bh)
    except cv2.error:
        quad = None
    if quad is not None:
        kind, pts = quad
        warped = warp_quad(crop, pts)
        corners = tuple((float(x + x0), float(y + y0)) for x, y in pts)
        return PlateCrop(warped, corners, kind)
    return margin_crop(image, detection, margin=margin)


def crop_window(
    box: tuple[float, float, float, float], shape: tuple[int, ...], margin: float
) -> tuple[int, int, int, int]:
    """Integer crop window: box grown by ``margin`` per side, at least ``MIN_SIDE`` px, inside the image."""
    h, w = shape[:2]
    bx0, by0, bx1, by1 = (float(v) if np.isfinite(v) else 0.0 for v in box)
    bx0, bx1 = sorted((bx0, bx1))
    by0, by1 = sorted((by0, by1))
    mx, my = (bx1 - bx0) * margin, (by1 - by0) * margin
    x0, x1 = _span(bx0 - mx, bx1 + mx, w)
    y0, y1 = _span(by0 - my, by1 + my, h)
    return x0, y0, x1, y1


def _span(lo: float, hi: float, limit: int) -> tuple[int, int]:
    """Clamp ``[lo, hi)`` to ``[0, limit)`` and grow it around its centre to at least ``MIN_SIDE``."""
    side = min(MIN_SIDE, limit)
    a, b = int(np.floor(max(lo, 0.0))), int(np.ceil(min(hi, float(limit))))
    a, b = min(max(a, 0), limit), min(max(b, 0), limit)
    if b - a < side:
        centre = (min(max(lo, 0.0), limit) + min(max(hi, 0.0), limit)) / 2
        a = int(round(centre - side / 2))
        a = min(max(a, 0), limit - side)
        b = a + side
    return a, b


def find_plate_quad(crop: np.ndarray, min_area: float | None = None) -> tuple[str, np.ndarray] | None:
    """``("perspective"|"rotate", corners (4, 2) tl,tr,br,bl in crop px)`` or ``None`` if unsure.

    ``min_area`` (crop pixels) is the smallest plate outline accepted; default half the crop.
    """
    h, w = crop.shape[:2]
    min_area = 0.5 * h * w if min_area is None or not np.isfinite(min_area) else float(min_area)
    if h < 12 or w < 24:
        return None
    f = min(1.0, WORK_WIDTH / w)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    if f < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    gray = cv2.GaussianBlur(gray, (3, 3), 0)
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    blob = max(contours, key=cv2.contourArea)
    area = min_area * f * f  # in work pixels
    blob_area = cv2.contourArea(blob)
    if blob_area < area or blob_area < SOLIDITY * cv2.contourArea(cv2.convexHull(blob)):
        return None
    quad = _approx_quad(blob)
    if quad is not None and _plausible(quad, area) and not _hugs_border(quad, mask.shape):
        return "perspective", _expand(order_corners(quad / f), w, h)
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(blob)
    tilt = angle if abs(angle) <= 45 else angle - 90 * np.sign(angle)
    box = cv2.boxPoints(((cx, cy), (rw, rh), angle))
    if 2.0 <= abs(tilt) <= 30.0 and rw * rh >= area and not _hugs_border(box, mask.shape):
        return "rotate", _expand(order_corners(box / f), w, h)
    return None


def _hugs_border(pts: np.ndarray, shape: tuple[int, ...], tol: float = 1.5) -> bool:
    """True when the outline runs along two or more crop edges: then it is the crop, not a plate edge."""
    h, w = shape[:2]
    x, y = pts[:, 0], pts[:, 1]
    sides = [(x <= tol).sum(), (x >= w - 1 - tol).sum(), (y <= tol).sum(), (y >= h - 1 - tol).sum()]
    return sum(n >= 2 for n in sides) >= 2


def _expand(pts: np.ndarray, w: int, h: int) -> np.ndarray:
    c = pts.mean(axis=0)
    out = c + (pts - c) * (1.0 + EXPAND)
    out[:, 0] = out[:, 0].clip(0, w - 1)
    out[:, 1] = out[:, 1].clip(0, h - 1)
    return out.astype(np.float32)


def _approx_quad(contour: np.ndarray) -> np.ndarray | None:
    hull = cv2.convexHull(contour)
    peri = cv2.arcLength(hull, True)
    for eps in (0.02, 0.04, 0.06):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            return approx.reshape(4, 2).astype(np.float32)
    return None


def _plausible(quad: np.ndarray, min_area: float) -> bool:
    pts = order_corners(quad)
    if cv2.contourArea(pts) < min_area:
        return False
    width, height = _rect_size(pts)
    return height > 0 and ASPECT_RANGE[0] <= width / height <= ASPECT_RANGE[1]


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Any 4 points -> ``tl, tr, br, bl`` (float32). Sum/diff rule, robust for tilts under 45 degrees."""
    pts = np.asarray(pts, dtype=np.float32).reshape(4, 2)
    s, d = pts.sum(axis=1), pts[:, 1] - pts[:, 0]
    ordered = np.array([pts[s.argmin()], pts[d.argmin()], pts[s.argmax()], pts[d.argmax()]], np.float32)
    if len({tuple(p) for p in ordered.tolist()}) < 4:  # degenerate (e.g. exactly 45 degrees): by angle
        c = pts.mean(axis=0)
        ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
        ordered = pts[np.argsort(ang)]
        start = int(ordered.sum(axis=1).argmin())
        ordered = np.roll(ordered, -start, axis=0)
    return ordered


def _rect_size(pts: np.ndarray) -> tuple[float, float]:
    tl, tr, br, bl = pts
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    return float(width), float(height)


def warp_quad(crop: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Perspective-warp the ``tl, tr, br, bl`` quad of ``crop`` onto an upright rectangle."""
    width, height = _rect_size(corners)
    out_w, out_h = max(MIN_SIDE, int(round(width))), max(MIN_SIDE, int(round(height)))
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    return cv2.warpPerspective(
        crop, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


CROPPERS = {"rectify": rectify_plate, "margin": margin_crop}  # THAIPLATE_CROP / Pipeline(crop=...)


def cropper(name: str):
    """The crop function called ``name``; a clear error for anything else."""
    try:
        return CROPPERS[name]
    except KeyError:
        raise ValueError(f"unknown crop {name!r} (THAIPLATE_CROP): choose one of {', '.join(CROPPERS)}") from None
