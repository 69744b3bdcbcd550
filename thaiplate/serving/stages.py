"""The four TorchServe handlers' logic; ``handlers/NAME.py`` each subclass one of these and add nothing.

All of them call :class:`thaiplate.pipeline.Pipeline` methods, so the DAG and the all-in-one worker
run the same code. DAG nodes build a ``Pipeline`` holding only their own model (the other stages are
``None``; each node only calls the methods that use its stage).

Parity with ``Pipeline.run``: each image's crops go through the recogniser/classifier as one batch,
exactly as ``run`` does, so DAG and pipeline answers are identical apart from ``timings_ms`` (in the
DAG these are per-stage worker times; ``total`` is their sum, without the hops between nodes).

Telemetry: the pipeline worker and the DAG's classifier node report each request
(:mod:`thaiplate.serving.observe`); the detector node puts the request id it resolved into the payload
(``request_id``) so the classifier logs the client's id, not its own node job's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from thaiplate.image import ImageError, decode_image
from thaiplate.pipeline import MIN_TEXT_CONFIDENCE, Pipeline, assemble
from thaiplate.preprocess import resize_crop
from thaiplate.serving import payload
from thaiplate.serving.handler_base import (
    Reply,
    StageHandler,
    Work,
    error_from_dict,
    error_item,
    shape_reply,
)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


class PipelineStage(StageHandler):
    """All stages in one worker: each image -> ``Pipeline.run`` -> ``PipelineResult.to_dict()``."""

    report_as = "pipeline"

    def load(self, model_dir: Path) -> None:
        self.pipeline = Pipeline.from_dir(model_dir)

    def inference(self, works: list[Work]) -> list[Work]:
        for w in works:
            w.items = [self._run(data) for data in w.items]
        return works

    def _run(self, data: bytes) -> dict[str, Any] | ImageError:
        try:
            return self.pipeline.run(data).to_dict()
        except ImageError as e:
            return e


# ------------------------------------------------------------------------------ DAG nodes


class PayloadStage(StageHandler):
    """A DAG node after the first: its input is the previous node's payload, not an HTTP request."""

    def preprocess(self, data: list[dict[str, Any]]) -> list[Work]:
        works = []
        for req in data:
            raw = req.get("body", req.get("data")) if isinstance(req, dict) else None
            doc, arrays = payload.unpack(raw if isinstance(raw, bytes | bytearray) else b"")
            works.append(Work(single=doc["single"], items=[doc, arrays], request_id=doc.get("request_id", "")))
        return works

    def node_reply(self, doc: dict[str, Any], arrays: list[np.ndarray]) -> Reply:
        return Reply(payload.pack(doc, arrays), content_type="application/octet-stream")

    def postprocess(self, works: list[Work]) -> list[Reply]:
        return [self.node_reply(*w.items) for w in works]


def shared_input_size(model_dir: Path) -> tuple[int, int] | None:
    """The size crops are shrunk to before they leave the detector node: the recogniser's and classifier's
    plate input ``(height, width)`` when their YAMLs agree, else the larger of each side.

    Why: a rectified crop of a close-up photo can be megabytes, and node replies are capped by
    TorchServe's ``max_response_size`` (6.5 MB). Both later nodes start with ``resize_crop`` to their
    own input, which is the identity on a crop already that size, so with one shared size resizing once
    here gives byte-identical tensors and a ~36 KB crop. With different sizes (a taller recogniser
    input) the crop keeps every pixel the larger model reads; the other model resizes it once more.
    The two YAMLs are packed into detector.mar for this only.
    """
    from thaiplate.runtime import ModelSpec

    paths = [model_dir / f"{name}.yaml" for name in ("recognizer", "classifier")]
    if not all(p.is_file() for p in paths):
        return None
    sizes = [(s.height, s.width) for s in (ModelSpec.load(p) for p in paths)]
    return max(h for h, _ in sizes), max(w for _, w in sizes)


class DetectorStage(StageHandler):
    """First DAG node: request -> decoded images -> detections + rectified crops (a payload)."""

    def load(self, model_dir: Path) -> None:
        from thaiplate.detect import OnnxDetector

        self.pipeline = Pipeline(OnnxDetector.from_dir(model_dir), None)  # type: ignore[arg-type]
        self.crop_size = shared_input_size(model_dir)

    def _shrink(self, crop: np.ndarray) -> np.ndarray:
        """Crop -> the recogniser/classifier input size, when known (see :func:`shared_input_size`)."""
        return resize_crop(crop, *self.crop_size) if self.crop_size else crop

    def inference(self, works: list[Work]) -> list[Work]:
        for w in works:
            if w.error is None:
                w.items = [self._detect(data) for data in w.items]
        return works

    def _detect(self, data: bytes) -> dict[str, Any] | ImageError:
        t0 = time.perf_counter()
        try:
            image = decode_image(data)
        except ImageError as e:
            return e
        decode_ms = _ms(t0)
        t1 = time.perf_counter()
        pairs = self.pipeline.detect_crops(image)
        h, w = image.shape[:2]
        return {
            "image": {"width": int(w), "height": int(h)},
            "detections": [payload.to_json(d) for d, _ in pairs],
            "crops": [self._shrink(c) for _, c in pairs],
            "crop_widths": [int(c.shape[1]) for _, c in pairs],  # before shrinking: the reader's views_min_width
            "timings_ms": {"decode": decode_ms, "detect": _ms(t1)},
            "models": self.pipeline.models,
        }

    def postprocess(self, works: list[Work]) -> list[Reply]:
        replies = []
        for w in works:
            doc: dict[str, Any] = {
                "single": w.single, "error": None, "status": 200, "items": [], "request_id": w.request_id
            }  # fmt: skip
            arrays: list[np.ndarray] = []
            if w.error is not None:
                doc.update(error=error_item(w.error), status=w.error.http_status)
            for item in w.items:
                if isinstance(item, ImageError):
                    doc["items"].append({**error_item(item), "status": item.http_status})
                    continue
                idx = list(range(len(arrays), len(arrays) + len(item["crops"])))
                arrays += item["crops"]
                doc["items"].append({**item, "crops": idx})
            replies.append(Reply(payload.pack(doc, arrays), content_type="application/octet-stream"))
        return replies



class RecognizerStage(PayloadStage):
    """Second DAG node: crops -> text readings, added to the payload (crops passed on unchanged)."""

    def load(self, model_dir: Path) -> None:
        from thaiplate.recognize import OnnxRecognizer

        self.pipeline = Pipeline(None, OnnxRecognizer.from_dir(model_dir))  # type: ignore[arg-type]

    def inference(self, works: list[Work]) -> list[Work]:
        for w in works:
            doc, arrays = w.items
            for item in doc["items"]:
                if "error" in item:
                    continue
                t0 = time.perf_counter()
                x = self.pipeline.plate_input([arrays[i] for i in item["crops"]])
                item["readings"] = payload.to_json(self.pipeline.read_crops(x, item.get("crop_widths")))
                item["min_text_confidence"] = self.pipeline.min_text_confidence  # the gate is the reader's
                item["timings_ms"]["recognize"] = _ms(t0)
                item["models"].update(self.pipeline.models)
        return works


class ClassifierStage(PayloadStage):
    """Last DAG node: crops -> provinces, then ``assemble`` -> the final JSON (pipeline schema)."""

    report_as = "dag"

    def load(self, model_dir: Path) -> None:
        from thaiplate.classify import OnnxClassifier

        self.pipeline = Pipeline(None, None, OnnxClassifier.from_dir(model_dir))  # type: ignore[arg-type]

    def inference(self, works: list[Work]) -> list[Work]:
        for w in works:
            doc, arrays = w.items
            if doc["error"] is not None:
                w.error = error_from_dict(doc["error"], doc["status"])
                w.items = []
                continue
            w.items = [self._finish(item, arrays) for item in doc["items"]]
        return works

    def _finish(self, item: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any] | ImageError:
        if "error" in item:
            return error_from_dict(item, item["status"])
        t0 = time.perf_counter()
        x = self.pipeline.plate_input([arrays[i] for i in item["crops"]])
        provinces = self.pipeline.classify_crops(x)
        timings = {**item["timings_ms"], "classify": _ms(t0)}
        timings["total"] = round(sum(timings.values()), 3)
        size = (item["image"]["width"], item["image"]["height"])
        result = assemble(
            [payload.detection(d) for d in item["detections"]],
            [payload.reading(r) for r in item["readings"]],
            provinces,
            size,
            timings,
            {**item["models"], **self.pipeline.models},
            item.get("min_text_confidence", MIN_TEXT_CONFIDENCE),
        )
        return result.to_dict()

    def postprocess(self, works: list[Work]) -> list[Reply]:
        # final JSON, like PipelineStage; TorchServe workflows always answer 200 (see handler_base)
        return [shape_reply(w, w.items) for w in works]
