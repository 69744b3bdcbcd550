"""The four TorchServe handlers' logic; ``handlers/NAME.py`` each subclass one of these and add nothing.

All of them call :class:`thaiplate.pipeline.Pipeline` methods, so the DAG and the all-in-one worker
run the same code. DAG nodes build a ``Pipeline`` holding only their own model (the other stages are
``None``; each node only calls the methods that use its stage).

Parity with ``Pipeline.run``: each image's crops go through the recogniser/classifier as one batch,
exactly as ``run`` does, so DAG and pipeline answers are identical apart from ``timings_ms`` (in the
DAG these are per-stage worker times; ``total`` is their sum, without the hops between nodes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from thaiplate.image import ImageError, decode_image
from thaiplate.pipeline import Pipeline, assemble
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
            works.append(Work(single=doc["single"], items=[doc, arrays]))
        return works

    def node_reply(self, doc: dict[str, Any], arrays: list[np.ndarray]) -> Reply:
        return Reply(payload.pack(doc, arrays), content_type="application/octet-stream")

    def postprocess(self, works: list[Work]) -> list[Reply]:
        return [self.node_reply(*w.items) for w in works]


class DetectorStage(StageHandler):
    """First DAG node: request -> decoded images -> detections + rectified crops (a payload)."""

    def load(self, model_dir: Path) -> None:
        from thaiplate.detect import OnnxDetector

        self.pipeline = Pipeline(OnnxDetector.from_dir(model_dir), None)  # type: ignore[arg-type]

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
            "crops": [c for _, c in pairs],
            "timings_ms": {"decode": decode_ms, "detect": _ms(t1)},
            "models": self.pipeline.models,
        }

    def postprocess(self, works: list[Work]) -> list[Reply]:
        replies = []
        for w in works:
            doc: dict[str, Any] = {"single": w.single, "error": None, "status": 200, "items": []}
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
                item["readings"] = payload.to_json(self.pipeline.read_crops(x))
                item["timings_ms"]["recognize"] = _ms(t0)
                item["models"].update(self.pipeline.models)
        return works


class ClassifierStage(PayloadStage):
    """Last DAG node: crops -> provinces, then ``assemble`` -> the final JSON (pipeline schema)."""

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
        )
        return result.to_dict()

    def postprocess(self, works: list[Work]) -> list[Reply]:
        # final JSON, like PipelineStage; TorchServe workflows always answer 200 (see handler_base)
        return [shape_reply(w, w.items) for w in works]
