"""Plate detection: letterbox, YOLOv8 output decoding, NMS, and the detector backends.

The maths mirrors ultralytics (``LetterBox`` + ``non_max_suppression`` + ``scale_boxes``) so an ONNX
export gives the same boxes here as ``yolo predict`` does, without importing torch or ultralytics.
Backends implement the one-method :class:`Detector` protocol:

- :class:`OnnxDetector`: the committed ``models/detector.onnx`` through ONNX Runtime (serving path).
- :class:`RoboflowDetector`: a model hosted on Roboflow (or a self-hosted ``inference`` server) via
  ``inference-sdk`` (optional extra ``roboflow``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import yaml

from thaiplate.results import Detection

PAD_VALUE = 114  # ultralytics letterbox grey


@runtime_checkable
class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]:
        """RGB uint8 ``(H, W, 3)`` -> plate boxes in original pixels, highest confidence first."""
        ...


# --------------------------------------------------------------------------------------- geometry


def input_hw(imgsz: int | str | Sequence[int]) -> tuple[int, int]:
    """Model input ``(h, w)`` from a yaml/CLI size: ``416``, ``[320, 544]`` or ``"320x544"``.

    A landscape input (e.g. 320x544) spends the same pixels as 416x416 on a 16:9 photo at 1.3x the scale.
    """
    if isinstance(imgsz, str):
        parts = [int(v) for v in re.split(r"[x,]", imgsz.lower())]
        return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if isinstance(imgsz, int):
        return imgsz, imgsz
    h, w = (int(v) for v in imgsz)
    return h, w


IMGSZ_ENV = "THAIPLATE_DETECTOR_IMGSZ"  # e.g. 480x832: more recall on small plates for 2.1x the detector time
ZOOM_BELOW_PX = 24.0  # zoom passes add boxes narrower than this at the base input (tuned on synthetic val)


def input_sizes(value: int | str | Sequence[Any]) -> list[tuple[int, int]]:
    """Base input plus optional zoom passes: ``"320x544+640x1120"`` -> ``[(320, 544), (640, 1120)]``.

    A yaml list of sizes (``[[320, 544], [640, 1120]]``) means the same; a plain size is one pass.
    """
    if isinstance(value, str):
        return [input_hw(part) for part in value.split("+")]
    if isinstance(value, Sequence) and value and not isinstance(value[0], int):
        return [input_hw(v) for v in value]
    return [input_hw(value)]


def check_input_size(onnx_shape: Sequence[Any], hw: tuple[int, int], path: Path | str = "detector.onnx") -> None:
    """Fail at load, not at the first request: a fixed-size ONNX runs only at its size, and YOLOv8's
    stride-32 grid needs both sides divisible by 32 (``onnx_shape`` dims are ints or symbolic names)."""
    h, w = hw
    if h % 32 or w % 32 or h <= 0 or w <= 0:
        raise ValueError(f"detector input {h}x{w}: both sides must be positive multiples of 32 (${IMGSZ_ENV}?)")
    fixed = [d for d in onnx_shape[2:4] if isinstance(d, int)]
    if len(fixed) == 2 and tuple(fixed) != hw:
        raise ValueError(
            f"{path} has a fixed {fixed[0]}x{fixed[1]} input and cannot run at {h}x{w}: unset ${IMGSZ_ENV} "
            "or re-export with a dynamic input (thaiplate train detector --export-only)"
        )


def letterbox(img: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping aspect ratio, pad to ``size`` (int or ``(h, w)``) with 114, image centred.

    Returns ``(padded, scale, (pad_x, pad_y))``; original = (letterboxed - pad) / scale. Rounding matches
    ultralytics ``LetterBox(auto=False, center=True)`` exactly (the ``±0.1`` split of odd padding).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    h, w = img.shape[:2]
    scale = min(out_h / h, out_w / w)
    new_w, new_h = int(round(w * scale)), int(round(h * scale))
    if (new_w, new_h) != (w, h):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (out_w - new_w) / 2, (out_h - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    padded = cv2.copyMakeBorder(
        img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE, PAD_VALUE, PAD_VALUE)
    )
    return padded, scale, (left, top)


def decode_yolov8(output: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray]:
    """YOLOv8 head ``(1, 4+C, A)`` or ``(4+C, A)`` -> ``(boxes xyxy (N, 4), scores (N,))`` above ``conf``.

    With several classes the score is the best class score (plates are class-agnostic here).
    """
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValueError(f"expected batch size 1, got output shape {out.shape}")
        out = out[0]
    if out.ndim != 2 or out.shape[0] < 5:
        raise ValueError(f"expected YOLOv8 output (1, 4+C, A), got {np.shape(output)}")
    scores = out[4:].max(axis=0)
    keep = scores > conf
    cx, cy, w, h = out[:4, keep]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes.reshape(-1, 4), scores[keep]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box against ``(N, 4)`` boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int = 300) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, highest score first."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def unletterbox(boxes: np.ndarray, scale: float, pad: tuple[float, float]) -> np.ndarray:
    """Letterboxed xyxy -> original-image pixels (not clipped)."""
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4) - [pad[0], pad[1], pad[0], pad[1]]) / scale


def clip_boxes(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Clip xyxy boxes to ``shape`` ``(h, w, ...)``."""
    h, w = shape[:2]
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def rescale_boxes(
    boxes: np.ndarray, scale: float, pad: tuple[float, float], shape: tuple[int, ...]
) -> np.ndarray:
    """Letterboxed xyxy -> original-image pixels, clipped to ``shape`` ``(h, w, ...)``."""
    return clip_boxes(unletterbox(boxes, scale, pad), shape)


def to_detections(boxes: np.ndarray, scores: np.ndarray, min_size: float = 1.0) -> list[Detection]:
    """Arrays -> sorted :class:`Detection` list, dropping boxes clipped to nothing."""
    dets = [
        Detection(box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), confidence=float(s))
        for b, s in zip(boxes, scores, strict=True)
        if b[2] - b[0] >= min_size and b[3] - b[1] >= min_size
    ]
    return sorted(dets, key=lambda d: -d.confidence)


# ---------------------------------------------------------------------------------------- ONNX


def read_model_yaml(models_dir: str | Path, name: str) -> dict[str, Any]:
    path = Path(models_dir) / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (every model needs its YAML next to the weights)")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


class OnnxDetector:
    """YOLOv8 plate detector exported to ONNX (input ``(1, 3, H, W)`` RGB 0..1, output ``(1, 5, A)``).

    **Zoom passes** (``zoom``: larger input sizes, e.g. ``640x1120``) run the same model again on a larger
    letterbox and keep only the boxes that are small at the base size (narrower than ``zoom_below`` base-input
    pixels), then one NMS merges everything. Why: a larger input finds small plates the base size misses
    (a 38 px plate is 16 px wide at 320x544), but alone it misreads close-ups the base size gets right,
    because the model never saw plates that large. Off by default: each pass costs its own inference.
    """

    def __init__(
        self,
        path: str | Path,
        imgsz: int | str | Sequence[int] = 640,
        conf: float = 0.25,
        iou: float = 0.45,
        threads: int | None = None,
        *,
        mem_arena: bool | None = None,
        max_det: int = 50,
        max_box_height: float = 1.0,
        zoom: Sequence[int | str | Sequence[int]] = (),
        zoom_below: float = ZOOM_BELOW_PX,
        version: str = "unknown",
    ) -> None:
        """``max_box_height`` drops boxes taller than that fraction of the image: the model is trained on
        plates up to ~0.2 of the frame, and anything much taller is not a plate (close-up plate crops go
        through the pipeline's crop fallback instead)."""
        from thaiplate.runtime import OrtOptions, ort_session

        self.path = Path(path)
        self.imgsz = input_hw(imgsz)
        self.zoom = [input_hw(z) for z in zoom]
        self.conf, self.iou, self.max_det, self.version = conf, iou, max_det, version
        self.max_box_height, self.zoom_below = max_box_height, zoom_below
        self.session = ort_session(self.path, OrtOptions.from_env().but(threads=threads, mem_arena=mem_arena))
        self.input_name = self.session.get_inputs()[0].name
        for hw in (self.imgsz, *self.zoom):
            check_input_size(self.session.get_inputs()[0].shape, hw, self.path)

    @classmethod
    def from_dir(cls, models_dir: str | Path, file: str | None = None, **overrides: Any) -> OnnxDetector:
        """Build from ``models_dir/detector.yaml`` (``imgsz``, ``zoom``, ``zoom_below``, ``conf``, ``iou``,
        ``version``, ``file``; ``file`` given here runs another ONNX of that folder with the same settings);
        ``$THAIPLATE_DETECTOR_IMGSZ`` (``HxW`` or ``HxW+HxW...``) overrides ``imgsz`` and ``zoom`` together."""
        cfg = read_model_yaml(models_dir, "detector")
        env = os.environ.get(IMGSZ_ENV)
        sizes = input_sizes(env) if env else [input_hw(cfg.get("imgsz", 640)), *map(input_hw, cfg.get("zoom") or [])]
        kwargs: dict[str, Any] = {
            "imgsz": sizes[0],
            "zoom": sizes[1:],
            "zoom_below": float(cfg.get("zoom_below", ZOOM_BELOW_PX)),
            "conf": float(cfg.get("conf", 0.25)),
            "iou": float(cfg.get("iou", 0.45)),
            "max_box_height": float(cfg.get("max_box_height", 1.0)),
            "version": str(cfg.get("version", "unknown")),
        }
        kwargs.update(overrides)
        return cls(Path(models_dir) / (file or cfg.get("file", "detector.onnx")), **kwargs)

    def preprocess(
        self, image: np.ndarray, hw: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, float, tuple[int, int]]:
        padded, scale, pad = letterbox(image, hw or self.imgsz)
        x = padded.transpose(2, 0, 1)[None].astype(np.float32) * (1.0 / 255.0)
        return np.ascontiguousarray(x), scale, pad

    def boxes_at(self, image: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float, tuple[int, int]]:
        """One inference at input ``hw``: plausible letterboxed boxes and scores, with the letterbox's
        scale and pad."""
        x, scale, pad = self.preprocess(image, hw)
        output = self.session.run(None, {self.input_name: x})[0]
        boxes, scores = decode_yolov8(output, self.conf)
        content_h = image.shape[0] * scale  # the box height as it will be after clipping to the image
        heights = np.minimum(boxes[:, 3], pad[1] + content_h) - np.maximum(boxes[:, 1], pad[1])
        plausible = heights <= self.max_box_height * content_h
        return boxes[plausible], scores[plausible], scale, pad

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxes, scores, scale, pad = self.boxes_at(image, self.imgsz)
        if not self.zoom:
            keep = nms(boxes, scores, self.iou, self.max_det)
            return to_detections(rescale_boxes(boxes[keep], scale, pad, image.shape), scores[keep])
        all_boxes, all_scores = [unletterbox(boxes, scale, pad)], [scores]
        for hw in self.zoom:
            zb, zs, zscale, zpad = self.boxes_at(image, hw)
            zb = unletterbox(zb, zscale, zpad)
            small = (zb[:, 2] - zb[:, 0]) * scale < self.zoom_below  # width as the base input sees it
            all_boxes.append(zb[small])
            all_scores.append(zs[small])
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        keep = nms(boxes, scores, self.iou, self.max_det)
        return to_detections(clip_boxes(boxes[keep], image.shape), scores[keep])


# ------------------------------------------------------------------------------------- Roboflow


def detections_from_roboflow(
    response: dict[str, Any] | list[dict[str, Any]],
    *,
    conf: float = 0.0,
    classes: Sequence[str] | None = None,
) -> list[Detection]:
    """Roboflow object-detection response -> :class:`Detection` list (original pixels, best first).

    The format (hosted API v0, ``inference`` server v1 and ``InferenceHTTPClient.infer`` alike)::

        {"time": 0.05, "image": {"width": 1280, "height": 720},
         "predictions": [{"x": 510.2, "y": 362.1, "width": 26.5, "height": 13.7,
                          "confidence": 0.91, "class": "license-plate", "class_id": 0,
                          "detection_id": "..."}]}

    ``x``/``y`` are the box **centre**. The SDK already undoes its own client-side downscaling
    (``adjust_prediction_to_client_scaling_factor``), so coordinates are in the image we sent. A list
    response (batch of one) is unwrapped.
    """
    if isinstance(response, list):
        if len(response) != 1:
            raise ValueError(f"expected one Roboflow response, got {len(response)}")
        response = response[0]
    img = response.get("image") or {}
    w, h = float(img.get("width", np.inf)), float(img.get("height", np.inf))
    boxes, scores = [], []
    for p in response.get("predictions") or []:
        if classes is not None and p.get("class") not in classes:
            continue
        score = float(p.get("confidence", 0.0))
        if score < conf:
            continue
        cx, cy, bw, bh = (float(p[k]) for k in ("x", "y", "width", "height"))
        boxes.append([max(cx - bw / 2, 0.0), max(cy - bh / 2, 0.0), min(cx + bw / 2, w), min(cy + bh / 2, h)])
        scores.append(score)
    return to_detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32))


class RoboflowDetector:
    """Plate detector hosted on Roboflow, through ``inference_sdk.InferenceHTTPClient``.

    Configured by ``ROBOFLOW_API_URL`` (default ``https://serverless.roboflow.com``),
    ``ROBOFLOW_MODEL_ID`` (``project/version``) and ``ROBOFLOW_API_KEY``. The image is sent as a PIL
    image because the SDK treats numpy arrays as OpenCV **BGR**.

    Not tested live (no network, no key): the HTTP call itself. The response mapping
    (:func:`detections_from_roboflow`) is tested on hand-written responses in the documented format
    (``tests/data/roboflow/*.json``). ``inference-sdk`` 1.8 pins ``pillow<13``, ``opencv-python`` (the
    GUI build) and pulls ``supervision``/``aiohttp``, so it is not installed in the serving venv.
    """

    def __init__(
        self,
        model_id: str | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
        conf: float = 0.25,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.model_id = model_id or os.environ.get("ROBOFLOW_MODEL_ID", "")
        self.api_url = api_url or os.environ.get("ROBOFLOW_API_URL", "https://serverless.roboflow.com")
        self.api_key = api_key or os.environ.get("ROBOFLOW_API_KEY")
        if not self.model_id:
            raise ValueError("RoboflowDetector needs a model id (ROBOFLOW_MODEL_ID=project/version)")
        self.conf, self.classes = conf, classes
        self.version = f"roboflow:{self.model_id}"
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            try:
                from inference_sdk import InferenceHTTPClient
            except ImportError as e:
                raise ImportError(
                    "RoboflowDetector needs inference-sdk: pip install 'thaiplate[roboflow]'"
                ) from e
            self._client = InferenceHTTPClient(api_url=self.api_url, api_key=self.api_key)
        return self._client

    def detect(self, image: np.ndarray) -> list[Detection]:
        from PIL import Image

        response = self.client().infer(Image.fromarray(image), model_id=self.model_id)
        return detections_from_roboflow(response, conf=self.conf, classes=self.classes)
