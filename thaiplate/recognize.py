"""Plate text reader: the CRNN ONNX export + numpy CTC decoding (``thaiplate.ctc``). No torch."""

from __future__ import annotations

import numpy as np

from thaiplate import ctc
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
    ) -> None:
        super().__init__(path, cfg, max_batch)
        decoding = self.spec.extra.get("decoding", {})
        self.beam_width = beam_width or int(decoding.get("beam_width", 10))
        self.top_k = top_k
        self.constrain = constrain
        # the reading gate is this reader's calibration, chosen per version (``thaiplate eval e2e --sweep``)
        gate = decoding.get("min_text_confidence")
        self.min_text_confidence: float | None = None if gate is None else float(gate)

    def log_probs(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(N, T, 54)`` log-probabilities."""
        return self.run(crops)

    def read(self, crops: list[np.ndarray] | np.ndarray) -> list[TextReading]:
        """RGB uint8 crops (or the shared float32 ``(N, 3, H, W)`` tensor) -> one reading each."""
        return ctc.decode_batch(self.log_probs(crops), self.beam_width, self.top_k, self.constrain)
