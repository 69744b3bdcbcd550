"""Province classifier: the ProvinceNet ONNX export -> top-k ``ProvinceGuess``. No torch."""

from __future__ import annotations

import numpy as np

from thaiplate import labels
from thaiplate.results import ProvinceGuess
from thaiplate.runtime import ModelSpec, OnnxImageModel


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class OnnxClassifier(OnnxImageModel):
    """``models/classifier.onnx`` + ``classifier.yaml``: crops -> top-k provinces per crop."""

    NAME = "classifier"

    def __init__(
        self, path, cfg: dict | ModelSpec | None = None, max_batch: int = 32, top_k: int = 3
    ) -> None:
        super().__init__(path, cfg, max_batch)
        self.top_k = top_k

    def probabilities(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(N, 78)`` softmax over ``labels.provinces()``."""
        return softmax(self.run(crops).astype(np.float64))

    def classify(self, crops: list[np.ndarray] | np.ndarray) -> list[list[ProvinceGuess]]:
        """RGB uint8 crops (or the shared float32 tensor) -> best ``top_k`` guesses each, best first."""
        provinces = labels.provinces()
        out = []
        for p in self.probabilities(crops):
            top = np.argsort(-p)[: self.top_k]
            out.append(
                [
                    ProvinceGuess(provinces[i].code, provinces[i].name_th, provinces[i].name_en, float(p[i]))
                    for i in top
                ]
            )
        return out
