"""The one coin flip that new synthesis options use, so adding an option never changes old data."""

from __future__ import annotations

import numpy as np


def chance(rng: np.random.Generator, p: float) -> bool:
    """True with probability ``p``; ``p == 0`` draws no random number, so the seeds of data made before
    an option existed (option at 0) still give the same samples byte for byte."""
    return bool(p) and rng.random() < p
