"""Plate text reader: the CRNN ONNX export + numpy CTC decoding (``thaiplate.ctc``). No torch."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from thaiplate import ctc
from thaiplate import views as _views_module
from thaiplate.results import TextReading
from thaiplate.runtime import ModelSpec, OnnxImageModel


class OnnxRecognizer(OnnxImageModel):
    """``models/recognizer.onnx`` + ``recognizer.yaml``: crops -> ``TextReading`` per crop.

    >>> rec = OnnxRecognizer.from_dir("models")
    >>> rec.read([crop_rgb])[0].text
    '1กข 1234'
    """

    NAME = "recognizer"

    def __init__(
        self,
        path,
        cfg: dict | ModelSpec | None = None,
        max_batch: int = 32,
        beam_width: int | None = None,
        top_k: int = 5,
        constrain: bool = True,
        views: list[str] | tuple[str, ...] | None = None,
        views_below: float | None = None,
        views_min_width: int | None = None,
    ) -> None:
        super().__init__(path, cfg, max_batch)
        decoding = self.spec.extra.get("decoding", {})
        self.beam_width = beam_width or int(decoding.get("beam_width", 10))
        self.top_k = top_k
        self.constrain = constrain
        # views to read each crop as (thaiplate.views): argument, else $THAIPLATE_READER_VIEWS, else the yaml
        env = os.environ.get("THAIPLATE_READER_VIEWS", "").replace(",", " ").split()
        self.views = _views_module.check_views(views or env or decoding.get("views") or ["orig"])
        # with several views, the others are read only for crops whose first reading is less confident than
        # views_below (None: every crop) and, when set, at least views_min_width px wide before resizing (None:
        # any width); each: argument, else $THAIPLATE_READER_VIEWS_BELOW / _MIN_WIDTH, else the yaml
        self.views_below: float | None = _setting(views_below, "views_below", decoding, float)
        self.views_min_width: int | None = _setting(views_min_width, "views_min_width", decoding, int)
        # the reading gate is this reader's calibration, chosen per version (``thaiplate eval e2e --sweep``)
        gate = decoding.get("min_text_confidence")
        self.min_text_confidence: float | None = None if gate is None else float(gate)

    def view_log_probs(self, crops: list[np.ndarray] | np.ndarray, names: tuple[str, ...] | None = None) -> np.ndarray:
        """``(V, N, T, 54)``: every crop read through each view of ``names`` (default ``self.views``)."""
        names = names or self.views
        x = self.tensor(crops)
        lp = self.run(_views_module.stack_views(x, names))
        return lp.reshape(len(names), len(x), *lp.shape[1:])

    def decode(self, view_log_probs: np.ndarray) -> list[TextReading]:
        """``view_log_probs`` output -> one reading per crop (pooled over views when there are several)."""
        if len(view_log_probs) == 1:
            return ctc.decode_batch(view_log_probs[0], self.beam_width, self.top_k, self.constrain)
        return [
            ctc.decode_views(view_log_probs[:, i], self.beam_width, self.top_k, self.constrain)
            for i in range(view_log_probs.shape[1])
        ]

    def read(self, crops: list[np.ndarray] | np.ndarray, widths: Sequence[int] | None = None) -> list[TextReading]:
        """RGB uint8 crops (or the shared float32 ``(N, 3, H, W)`` tensor) -> one reading each.

        ``widths``: each crop's width in pixels before resizing, for ``views_min_width``; taken from the
        crops themselves when they are uint8 arrays. A tensor without widths gets no width filter.
        """
        return self.read_timed(crops, widths)[0]

    def read_timed(
        self, crops: list[np.ndarray] | np.ndarray, widths: Sequence[int] | None = None
    ) -> tuple[list[TextReading], float, float]:
        """Readings, and the seconds spent in ONNX and in CTC decoding (``thaiplate eval ocr`` reports both)."""
        if widths is None and not isinstance(crops, np.ndarray):
            widths = [c.shape[1] for c in crops]
        x = self.tensor(crops)
        adaptive = self.views_below is not None and len(self.views) > 1
        t0 = time.perf_counter()
        lp = self.view_log_probs(x, self.views[:1] if adaptive else self.views)
        t1 = time.perf_counter()
        readings = self.decode(lp)
        t_onnx, t_decode = t1 - t0, time.perf_counter() - t1
        low = self._rereads(readings, widths) if adaptive else []
        if low:
            t0 = time.perf_counter()
            low_lp = np.concatenate([lp[:, low], self.view_log_probs(x[low], self.views[1:])])
            t1 = time.perf_counter()
            for i, reading in zip(low, self.decode(low_lp), strict=True):
                readings[i] = reading
            t_onnx, t_decode = t_onnx + t1 - t0, t_decode + time.perf_counter() - t1
        return readings, t_onnx, t_decode

    def _rereads(self, readings: list[TextReading], widths: Sequence[int] | None) -> list[int]:
        """Indices of the crops that get the other views: first reading below ``views_below`` and, with
        ``views_min_width`` and known widths, at least that wide (a small crop's views cost as much and
        gain less; runs/rule-views-width-v24.md)."""
        low = [i for i, r in enumerate(readings) if r.confidence < self.views_below]
        if self.views_min_width is None or widths is None:
            return low
        return [i for i in low if widths[i] >= self.views_min_width]


def _setting(value: float | None, key: str, decoding: dict, kind: type[float] | type[int]) -> float | int | None:
    """An optional reader setting: ``value``, else ``$THAIPLATE_READER_<KEY>``, else ``decoding[key]``."""
    env = f"THAIPLATE_READER_{key.upper()}"
    raw = value if value is not None else os.environ.get(env)
    raw = raw if raw not in (None, "") else decoding.get(key)
    try:
        return None if raw is None else kind(raw)
    except ValueError:
        what = "a confidence in [0, 1]" if kind is float else "a width in pixels"
        raise ValueError(f"{key} / {env} must be {what}, got {raw!r}") from None
