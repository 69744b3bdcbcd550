"""Plate cropping: rectification on drawn plates seen at an angle, and robustness on degenerate boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from thaiplate.crop import MIN_SIDE, crop_plate, crop_window, order_corners, rectify_plate
from thaiplate.results import Detection

PLATE_W, PLATE_H = 240, 80


def drawn_plate() -> np.ndarray:
    """White plate, dark frame, six dark 'characters' (tall bars)."""
    p = np.full((PLATE_H, PLATE_W, 3), 245, np.uint8)
    cv2.rectangle(p, (2, 2), (PLATE_W - 3, PLATE_H - 3), (20, 20, 20), 2)
    for i in range(6):
        cv2.rectangle(p, (20 + i * 35, 15), (40 + i * 35, 60), (10, 10, 10), -1)
    return p


def scene(quad: list[list[float]], size: tuple[int, int] = (480, 640)) -> tuple[np.ndarray, Detection]:
    """The plate warped onto ``quad`` (tl, tr, br, bl) over a dark background + its axis-aligned box."""
    img = np.full((*size, 3), (70, 60, 50), np.uint8)
    src = np.array([[0, 0], [PLATE_W - 1, 0], [PLATE_W - 1, PLATE_H - 1], [0, PLATE_H - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, np.asarray(quad, np.float32))
    warped = cv2.warpPerspective(drawn_plate(), m, (size[1], size[0]))
    mask = cv2.warpPerspective(np.full((PLATE_H, PLATE_W), 255, np.uint8), m, (size[1], size[0])) > 0
    img[mask] = warped[mask]
    q = np.asarray(quad, np.float32)
    box = (float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max()))
    return img, Detection(box=box, confidence=0.9)


QUADS = {
    "frontal": [[200, 200], [440, 200], [440, 280], [200, 280]],
    "perspective": [[200, 200], [440, 215], [430, 290], [205, 275]],
    "rotated_12deg": [[200, 230], [430, 180], [445, 255], [215, 305]],
}


@pytest.mark.parametrize("name", sorted(QUADS))
def test_rectifies_to_upright_plate(name: str) -> None:
    quad = QUADS[name]
    img, det = scene(quad)
    pc = rectify_plate(img, det)
    assert pc.method in ("perspective", "rotate")
    h, w = pc.pixels.shape[:2]
    assert 2.6 < w / h < 3.8  # the drawn plate is 3:1
    assert pc.corners is not None
    # corners land near the true plate corners (within the frame width + 3 % growth)
    err = np.abs(np.asarray(pc.corners) - np.asarray(quad, np.float32)).max()
    assert err < 12, (pc.corners, quad)
    # upright: the characters are vertical bars, so column means alternate while rows are uniform-ish
    gray = cv2.cvtColor(pc.pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mid = gray[int(h * 0.3) : int(h * 0.7)]
    assert mid.mean(axis=0).std() > 3 * mid.mean(axis=1).std()


def test_plain_crop_when_no_plate_outline() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    det = Detection(box=(50.0, 50.0, 150.0, 90.0), confidence=0.5)
    pc = rectify_plate(img, det, margin=0.1)
    assert pc.method == "plain" and pc.corners is None
    assert pc.pixels.shape == (48, 120, 3)  # box + 10 % per side
    np.testing.assert_array_equal(pc.pixels, img[46:94, 40:160])
    np.testing.assert_array_equal(crop_plate(img, det, margin=0.1), pc.pixels)


@pytest.mark.parametrize(
    "box",
    [
        (5.0, 5.0, 5.0, 5.0),  # zero-size
        (-50.0, -20.0, 2.0, 1.0),  # mostly outside, top-left
        (600.0, 470.0, 900.0, 900.0),  # mostly outside, bottom-right
        (300.0, 300.0, 100.0, 100.0),  # inverted corners
        (float("nan"), 10.0, float("inf"), 20.0),  # garbage from a broken model
        (1000.0, 1000.0, 1100.0, 1100.0),  # entirely outside
    ],
)
def test_never_empty_never_raises(box: tuple[float, float, float, float]) -> None:
    img = np.full((480, 640, 3), 128, np.uint8)
    out = crop_plate(img, Detection(box=box, confidence=0.1))
    assert out.ndim == 3 and out.shape[2] == 3
    assert out.shape[0] >= MIN_SIDE and out.shape[1] >= MIN_SIDE


def test_tiny_image() -> None:
    img = np.zeros((2, 3, 3), np.uint8)
    assert crop_plate(img, Detection(box=(0.0, 0.0, 1.0, 1.0), confidence=0.1)).shape == (2, 3, 3)


def test_crop_window_margin_and_clamp() -> None:
    assert crop_window((100, 100, 200, 150), (480, 640), 0.1) == (90, 95, 210, 155)
    assert crop_window((0, 0, 640, 480), (480, 640), 0.5) == (0, 0, 640, 480)


def test_order_corners() -> None:
    pts = np.array([[10, 12], [0, 0], [0, 10], [10, 1]], np.float32)
    assert order_corners(pts).tolist() == [[0, 0], [10, 1], [10, 12], [0, 10]]
    diamond = np.array([[5, 0], [10, 5], [5, 10], [0, 5]], np.float32)
    assert len({tuple(p) for p in order_corners(diamond).tolist()}) == 4
