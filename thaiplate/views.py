"""Test-time views of the plate tensor: the reader reads each view and pools the readings.

The CRNN reads its two feature rows (top half, bottom half of the 64-px input) as one sequence, so where
the text lines fall against those rows, and how much border surrounds them, changes what it reads on a
hard crop. Reading the crop a few times, slightly zoomed and shifted, and keeping the plate text that is
most probable on average (``thaiplate.ctc.decode_views``) recovers readings one view gets wrong
(runs/rule-reader-views.md). Views are made from the shared ``(N, 3, H, W)`` float tensor in numpy, so
the library, the all-in-one handler and the DAG's recogniser node (which gets crops already at size and
never loads OpenCV) read exactly the same pixels.
"""

from __future__ import annotations

import numpy as np

# name -> (y zoom, x zoom, y shift, x shift) in units of the margin: zoom +1 cuts one margin off each side
# (zoom in), -1 adds one of replicated edge (zoom out); shift +1 moves the content up / left by one margin.
VIEWS: dict[str, tuple[int, int, int, int]] = {
    "orig": (0, 0, 0, 0),
    "in": (1, 1, 0, 0),
    "out": (-1, -1, 0, 0),
    "up": (0, 0, 1, 0),
    "down": (0, 0, -1, 0),
    "left": (0, 0, 0, 1),
    "right": (0, 0, 0, -1),
}
MARGIN_Y = 0.06  # of the height (~4 px of 64)
MARGIN_X = 0.04  # of the width (~8 px of 192)


def check_views(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated view names; the first one is the reading whose raw greedy text is reported."""
    names = tuple(names)
    unknown = [n for n in names if n not in VIEWS]
    if unknown or not names:
        raise ValueError(f"unknown reader views {unknown or names!r}; choose from {', '.join(VIEWS)}")
    return names


def _axis_map(size: int, zoom: int, shift: int, margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output pixel -> (lower source index, upper source index, weight of the upper) for one axis.

    Source coordinate of output pixel centre ``i``: the kept span ``[lo, size - lo)`` (``lo = zoom *
    margin * size``) stretched over the output, moved by ``shift`` margins; clipping to the image is
    edge replication.
    """
    m = margin * size
    lo = zoom * m
    src = lo + (np.arange(size) + 0.5) * (size - 2 * lo) / size - 0.5 + shift * m
    src = np.clip(src, 0, size - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, (src - i0).astype(np.float32)


def view(x: np.ndarray, name: str) -> np.ndarray:
    """One view of a ``(N, C, H, W)`` float tensor (bilinear; ``orig`` is returned as is)."""
    zy, zx, sy, sx = VIEWS[name]
    if not any(VIEWS[name]):
        return x
    h, w = x.shape[-2:]
    y0, y1, wy = _axis_map(h, zy, sy, MARGIN_Y)
    x0, x1, wx = _axis_map(w, zx, sx, MARGIN_X)
    rows = x[..., y0, :] * (1 - wy)[:, None] + x[..., y1, :] * wy[:, None]
    return np.ascontiguousarray(rows[..., x0] * (1 - wx) + rows[..., x1] * wx, dtype=np.float32)


def stack_views(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(V * N, C, H, W)``, view-major (all crops' first view, then the second...)."""
    return np.concatenate([view(x, n) for n in names]) if len(names) > 1 else view(x, names[0])
