"""Plate text reader: the CRNN ONNX export + numpy CTC decoding (``thaiplate.ctc``). No torch."""

from __future__ import annotations

import os

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
    ) -> None:
        super().__init__(path, cfg, max_batch)
        decoding = self.spec.extra.get("decoding", {})
        self.beam_width = beam_width or int(decoding.get("beam_width", 10))
        self.top_k = top_k
        self.constrain = constrain
        # views to read each crop as (thaiplate.views): argument, else $THAIPLATE_READER_VIEWS, else the yaml
        env = os.environ.get("THAIPLATE_READER_VIEWS", "").replace(",", " ").split()
        self.views = _views_module.check_views(views or env or decoding.get("views") or ["orig"])
        # the reading gate is this reader's calibration, chosen per version (``thaiplate eval e2e --sweep``)
        gate = decoding.get("min_text_confidence")
        self.min_text_confidence: float | None = None if gate is None else float(gate)

    def log_probs(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(N, T, 54)`` log-probabilities of the crops as they are."""
        return self.run(crops)

    def view_log_probs(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(V, N, T, 54)``: every crop read through each of ``self.views``."""
        x = self.tensor(crops)
        lp = self.run(_views_module.stack_views(x, self.views))
        return lp.reshape(len(self.views), len(x), *lp.shape[1:])

    def decode(self, view_log_probs: np.ndarray) -> list[TextReading]:
        """``view_log_probs`` output -> one reading per crop (pooled over views when there are several)."""
        if len(view_log_probs) == 1:
            return ctc.decode_batch(view_log_probs[0], self.beam_width, self.top_k, self.constrain)
        return [
            ctc.decode_views(view_log_probs[:, i], self.beam_width, self.top_k, self.constrain)
            for i in range(view_log_probs.shape[1])
        ]

    def read(self, crops: list[np.ndarray] | np.ndarray) -> list[TextReading]:
        """RGB uint8 crops (or the shared float32 ``(N, 3, H, W)`` tensor) -> one reading each."""
        return self.decode(self.view_log_probs(crops))
