"""Plate crop -> network tensor, shared by the recogniser and the province classifier.

Both models are trained on exactly this transform, so the pipeline computes it once per crop and
feeds the same array to both (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import numpy as np

HEIGHT = 64
WIDTH = 192


def resize_crop(crop_rgb: np.ndarray, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Stretch an RGB uint8 crop to ``(height, width, 3)``.

    INTER_AREA when shrinking (no aliasing on big crops), INTER_LINEAR when growing (AREA degrades to
    nearest-neighbour there). Aspect ratio is not kept: plates are already tight, rectified crops.
    OpenCV is imported only when needed: the DAG's recogniser and classifier get crops already at size
    and then never load it (~4 MB of private memory per worker, measured in docs/benchmarks/MEMORY.md).
    """
    if crop_rgb.ndim == 2:
        crop_rgb = np.repeat(crop_rgb[..., None], 3, axis=2)  # == cv2.COLOR_GRAY2RGB
    elif crop_rgb.shape[2] == 4:
        crop_rgb = crop_rgb[..., :3]
    h, w = crop_rgb.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"empty crop of shape {crop_rgb.shape}")
    if (h, w) == (height, width):
        return np.ascontiguousarray(crop_rgb, dtype=np.uint8)
    import cv2

    interp = cv2.INTER_AREA if h * w > height * width else cv2.INTER_LINEAR
    return cv2.resize(crop_rgb, (width, height), interpolation=interp)


def normalize(hwc_uint8: np.ndarray) -> np.ndarray:
    """HWC (or NHWC) uint8 -> CHW (NCHW) float32 in [-1, 1]: ``(x/255 - 0.5) / 0.5``."""
    x = hwc_uint8.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def plate_tensor(crop_rgb: np.ndarray, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """One RGB uint8 crop -> float32 ``(3, height, width)``."""
    return normalize(resize_crop(crop_rgb, height, width))


def batch_tensor(crops: list[np.ndarray], height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Many crops -> float32 ``(N, 3, height, width)`` (an empty list gives ``N = 0``)."""
    if not crops:
        return np.zeros((0, 3, height, width), np.float32)
    return normalize(np.stack([resize_crop(c, height, width) for c in crops]))
