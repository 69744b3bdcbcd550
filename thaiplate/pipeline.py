"""One image from bytes to :class:`~thaiplate.results.PipelineResult`: the whole product in one place.

    decode_image -> Detector.detect -> rectify_plate -> plate tensor -> recogniser + classifier -> assemble

Every stage is also a public method taking batches (``detect_crops``, ``read_crops``,
``classify_crops``, ``assemble``) so the TorchServe handlers, the all-in-one one and the DAG ones,
call exactly this code and cannot drift from the CLI. No torch import anywhere on this path.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from thaiplate.image import decode_image
from thaiplate.results import Detection, PipelineResult, PlateResult, ProvinceGuess, TextReading

if TYPE_CHECKING:  # detect/crop import OpenCV: the DAG's recogniser and classifier workers never need it
    from thaiplate.detect import Detector

Crops = Sequence[np.ndarray] | np.ndarray  # RGB uint8 crops, or the shared float32 (N, 3, H, W) tensor


class Recognizer(Protocol):
    def read(self, crops: Crops, widths: Sequence[int] | None = None) -> list[TextReading]: ...


class Classifier(Protocol):
    def classify(self, crops: Crops) -> list[list[ProvinceGuess]]: ...


def default_models_dir() -> Path:
    """``$THAIPLATE_MODELS``, else ``models/`` at the repo root."""
    from thaiplate.runtime import default_models_dir as runtime_default

    return runtime_default()


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


class Pipeline:
    """Detector + recogniser (+ optional province classifier).

    A stage may be ``None`` when a process only runs some stages (the TorchServe DAG nodes); calling a
    missing stage fails with ``AttributeError``.

    ``timings_ms`` keys: ``decode``, ``detect`` (includes cropping/rectification), ``recognize``
    (includes building the shared plate tensor), ``classify``, ``total``.
    """

    def __init__(
        self,
        detector: Detector | None,
        recognizer: Recognizer | None,
        classifier: Classifier | None = None,
        *,
        margin: float = 0.08,
        max_plates: int = 20,
        min_text_confidence: float | None = None,
        crop: str | None = None,
    ) -> None:
        self.detector, self.recognizer, self.classifier = detector, recognizer, classifier
        self.margin, self.max_plates = margin, max_plates
        # "rectify" (default: warp/deskew when the outline is clear) or "margin" (box + margin only; opt-in,
        # $THAIPLATE_CROP; docs/MODEL-HISTORY.md, crop stability). Checked here so a typo fails at start-up, not per request.
        self.crop = crop or os.environ.get("THAIPLATE_CROP") or "rectify"
        self._cut = None
        if detector is not None:  # only cropping processes import OpenCV (thaiplate.crop)
            from thaiplate.crop import cropper

            self._cut = cropper(self.crop)
        self.min_text_confidence = reading_gate(recognizer) if min_text_confidence is None else min_text_confidence

    @classmethod
    def from_dir(
        cls, models_dir: str | Path | None = None, *, threads: int | None = None, **kwargs
    ) -> Pipeline:
        """Load ``detector``, ``recognizer`` and ``classifier`` ONNX models + YAMLs from one folder."""
        from thaiplate.classify import OnnxClassifier
        from thaiplate.detect import OnnxDetector
        from thaiplate.recognize import OnnxRecognizer

        d = Path(models_dir) if models_dir else default_models_dir()
        missing = [n for n in ("detector", "recognizer", "classifier") if not (d / f"{n}.yaml").is_file()]
        if missing:
            raise FileNotFoundError(f"{d}: missing {', '.join(f'{n}.yaml' for n in missing)}")
        return cls(
            OnnxDetector.from_dir(d, threads=threads),
            OnnxRecognizer.from_dir(d),
            OnnxClassifier.from_dir(d),
            **kwargs,
        )

    @property
    def models(self) -> dict[str, str]:
        """Model versions, from each model's YAML (``"unknown"`` for a backend without one)."""
        parts = {"detector": self.detector, "recognizer": self.recognizer, "classifier": self.classifier}
        return {k: str(getattr(m, "version", "unknown")) for k, m in parts.items() if m is not None}

    # ------------------------------------------------------------------------------- stages

    def detect_crops(self, image: np.ndarray) -> list[tuple[Detection, np.ndarray]]:
        """Detections (best first, at most ``max_plates``) with their rectified crops.

        The returned detections carry ``corners`` when rectification found the plate outline.
        """
        dets = sorted(self.detector.detect(image), key=lambda d: -d.confidence)[: self.max_plates]
        out = []
        for det in dets:
            pc = self._cut(image, det, margin=self.margin)
            out.append((dataclasses.replace(det, corners=pc.corners) if pc.corners else det, pc.pixels))
        if looks_like_plate_crop(image) and not any(plate_sized(d.box, image.shape) for d in dets):
            # users often send a crop of the plate itself, which a scene detector does not box as a whole
            # (nothing, or a sliver: detector v7 put a 5 x 2 px box on a real crop): read the whole image
            # too; ``assemble`` keeps it only if it is a confident valid plate and no detection survived
            h, w = image.shape[:2]
            out.append((Detection((0.0, 0.0, float(w), float(h)), CROP_FALLBACK_CONFIDENCE), image))
        return out

    def plate_input(self, crops: Crops) -> Crops:
        """Crops -> one float32 tensor both models accept, when their input sizes agree (computed once)."""
        if isinstance(crops, np.ndarray) or not crops:
            return crops
        models = [m for m in (self.recognizer, self.classifier) if m is not None]
        sizes = {(m.spec.height, m.spec.width) for m in models if hasattr(m, "spec")}
        if len(sizes) != 1 or len(models) != sum(hasattr(m, "spec") for m in models):
            return crops  # a backend without a spec, or different input sizes: each model preprocesses
        from thaiplate.preprocess import batch_tensor

        height, width = sizes.pop()
        return batch_tensor(list(crops), height, width)

    def read_crops(self, crops: Crops, widths: Sequence[int] | None = None) -> list[TextReading]:
        """``widths``: the crops' widths before ``plate_input`` resized them (the reader's views_min_width)."""
        return self.recognizer.read(crops, widths) if len(crops) else []

    def classify_crops(self, crops: Crops) -> list[list[ProvinceGuess]]:
        if self.classifier is None or not len(crops):
            return [[] for _ in range(len(crops))]
        return self.classifier.classify(crops)

    def assemble(
        self,
        detections: Sequence[Detection],
        readings: Sequence[TextReading],
        provinces: Sequence[Sequence[ProvinceGuess]] | None,
        image_size: tuple[int, int],
        timings_ms: dict[str, float] | None = None,
    ) -> PipelineResult:
        return assemble(
            detections, readings, provinces, image_size, timings_ms, self.models, self.min_text_confidence
        )

    # ---------------------------------------------------------------------------------- run

    def run(self, data: bytes) -> PipelineResult:
        """Encoded image bytes -> result. Bad input raises :class:`thaiplate.image.ImageError`."""
        t0 = time.perf_counter()
        image = decode_image(data)
        decode_ms = _ms(t0)
        result = self.run_array(image)
        result.timings_ms = {**result.timings_ms, "decode": decode_ms, "total": _ms(t0)}
        return result

    def run_array(self, image: np.ndarray) -> PipelineResult:
        """RGB uint8 ``(H, W, 3)`` -> result (``decode`` timing is 0)."""
        return self.run_many([image])[0]

    def run_many(self, images: Sequence[np.ndarray]) -> list[PipelineResult]:
        """Several images; the crops of all of them go through the recogniser/classifier as one batch."""
        t0 = time.perf_counter()
        per_image = [self.detect_crops(img) for img in images]
        t_det = _ms(t0)
        flat = [c for pairs in per_image for _, c in pairs]
        t1 = time.perf_counter()
        x = self.plate_input(flat)
        readings = self.read_crops(x, [c.shape[1] for c in flat])
        t_rec = _ms(t1)
        t2 = time.perf_counter()
        provinces = self.classify_crops(x)
        t_cls = _ms(t2)
        timings = {"decode": 0.0, "detect": t_det, "recognize": t_rec, "classify": t_cls, "total": _ms(t0)}
        out, i = [], 0
        for img, pairs in zip(images, per_image, strict=True):
            n = len(pairs)
            h, w = img.shape[:2]
            out.append(
                self.assemble(
                    [d for d, _ in pairs], readings[i : i + n], provinces[i : i + n], (w, h), dict(timings)
                )
            )
            i += n
        return out


CROP_FALLBACK_CONFIDENCE = 0.0  # detection_confidence of a whole image read as a plate crop
CROP_FALLBACK_MIN_TEXT_CONFIDENCE = 0.1  # sequence probability: 7 chars at 0.8 each = 0.2
# A detected plate is reported only if its reading reaches this sequence probability. The value belongs to
# the reader's calibration, so each recogniser version carries its own (``decoding.min_text_confidence`` in
# recognizer.yaml, chosen on synthetic scenes by ``thaiplate eval e2e --sweep``); this is the fallback for a
# reader without one. On 250 synthetic val scenes 0.05 dropped 63 of 71 false detections (trees, signs read
# as "ฐ 3") and 61 true ones, of which only 1 was read right (recogniser v4).
MIN_TEXT_CONFIDENCE = 0.05


def own_reading_gate(recognizer: object) -> float | None:
    """The ``min_text_confidence`` the recogniser's YAML names, or None (a fresh export names none)."""
    gate = getattr(recognizer, "min_text_confidence", None)
    return None if gate is None else float(gate)


def reading_gate(recognizer: object) -> float:
    """The recogniser's own gate if its YAML names one, else the fallback."""
    gate = own_reading_gate(recognizer)
    return MIN_TEXT_CONFIDENCE if gate is None else gate


def looks_like_plate_crop(image: np.ndarray) -> bool:
    """Small and plate-shaped (car 2.3:1, motorcycle 1.3:1): worth reading whole when nothing is detected."""
    h, w = image.shape[:2]
    return 40 <= w <= 400 and 1.1 <= w / max(h, 1) <= 4.5


def plate_sized(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> bool:
    """In a small plate-shaped image, a box at least a quarter of its width can be a plate; a sliver
    (a few pixels of a plate crop's edge) cannot, so it must not stop the whole image being read."""
    return (box[2] - box[0]) >= 0.25 * shape[1]


def _keep(det: Detection, reading: TextReading, min_text_confidence: float) -> bool:
    if det.confidence > CROP_FALLBACK_CONFIDENCE:
        return reading.confidence >= min_text_confidence
    return reading.valid and reading.confidence >= max(min_text_confidence, CROP_FALLBACK_MIN_TEXT_CONFIDENCE)


def assemble(
    detections: Sequence[Detection],
    readings: Sequence[TextReading],
    provinces: Sequence[Sequence[ProvinceGuess]] | None,
    image_size: tuple[int, int],
    timings_ms: dict[str, float] | None = None,
    models: dict[str, str] | None = None,
    min_text_confidence: float = MIN_TEXT_CONFIDENCE,
) -> PipelineResult:
    """Per-plate stage outputs (same order) -> :class:`PipelineResult`, plates by detection confidence.

    ``image_size`` is ``(width, height)``. ``provinces`` may be ``None`` (no classifier). Detections whose
    reading is below ``min_text_confidence`` are left out: almost all are not plates, or unreadable ones.
    """
    if len(readings) != len(detections):
        raise ValueError(f"{len(detections)} detections but {len(readings)} readings")
    guesses = list(provinces) if provinces is not None else [[] for _ in detections]
    if len(guesses) != len(detections):
        raise ValueError(f"{len(detections)} detections but {len(guesses)} province lists")
    plates = [
        PlateResult(
            box=tuple(round(float(v), 2) for v in det.box),  # type: ignore[arg-type]
            detection_confidence=float(det.confidence),
            text=r.text,
            text_confidence=float(r.confidence),
            char_confidences=list(r.char_confidences),
            candidates=list(r.candidates),
            raw_text=r.raw_text,
            province=g[0] if g else None,
            province_candidates=list(g),
            plate_type=r.plate_type,
        )
        for det, r, g in zip(detections, readings, guesses, strict=True)
        if _keep(det, r, min_text_confidence)
    ]
    if any(p.detection_confidence > CROP_FALLBACK_CONFIDENCE for p in plates):
        # a detection survived: the whole-image reading of a plate-shaped image would repeat it
        plates = [p for p in plates if p.detection_confidence > CROP_FALLBACK_CONFIDENCE]
    plates.sort(key=lambda p: -p.detection_confidence)
    w, h = image_size
    return PipelineResult(
        plates=plates,
        image={"width": int(w), "height": int(h)},
        timings_ms=dict(timings_ms or {}),
        models=dict(models or {}),
    )
