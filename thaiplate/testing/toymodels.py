"""Tiny constant ONNX models with the real contracts, for end-to-end tests without trained weights.

``write_toy_models(dir)`` writes ``detector``, ``recognizer`` and ``classifier`` ``.onnx`` + ``.yaml``
in the layout ``Pipeline.from_dir`` loads. Each graph really consumes its input (times zero) and
returns a fixed output of the contracted shape, so ONNX Runtime, the YAML plumbing, letterboxing, NMS,
cropping, the shared plate tensor, CTC decoding and top-k provinces all run for real:

- detector: ``images (1, 3, S, S) -> (1, 5, 8)``: the given boxes (letterboxed pixels, cx cy w h score);
- recognizer: ``image (N, 3, 64, 192) -> log_probs (N, 96, 54)``: always reads ``plate_text``;
- classifier: ``image (N, 3, 64, 192) -> logits (N, 78)``: always ``province_index`` first.

Needs the ``onnx`` package (train/dev venv), imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from thaiplate import labels

T_STEPS = 96
N_CLASSES = 54


def _save(
    path: Path, const: np.ndarray, in_name: str, in_shape: list, out_name: str, out_shape: list
) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rank = len(in_shape)
    # (N, ...) -> mean over all but batch -> shape (N, 1, ..., 1) matching the output rank, times 0
    nodes = [
        helper.make_node("ReduceMean", [in_name], ["m"], axes=list(range(1, rank)), keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["m2"]),
        helper.make_node("Mul", ["m2", "zero"], ["z"]),
        helper.make_node("Add", ["const", "z"], [out_name]),
    ]
    shape = np.array([-1] + [1] * (const.ndim - 1), np.int64)
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        initializer=[
            numpy_helper.from_array(const.astype(np.float32), "const"),
            numpy_helper.from_array(np.float32(0), "zero"),
            numpy_helper.from_array(shape, "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def ctc_log_probs(text: str, steps: int = T_STEPS, sharp: float = 8.0) -> np.ndarray:
    """``(steps, 54)`` log-softmax whose best path spells ``text`` (blank between characters)."""
    ids = labels.encode(text)
    if 2 * len(ids) > steps:
        raise ValueError(f"{text!r} is too long for {steps} CTC steps")
    path = np.zeros(steps, np.int64)
    path[1 : 2 * len(ids) : 2] = ids
    logits = np.zeros((steps, N_CLASSES), np.float32)
    logits[np.arange(steps), path] = sharp
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def write_toy_models(
    models_dir: str | Path,
    *,
    boxes: Sequence[tuple[float, float, float, float, float]] = ((160.0, 160.0, 60.0, 20.0, 0.9),),
    imgsz: int = 320,
    plate_text: str = "กข 1234",
    province_index: int = 0,
    version: str = "toy",
) -> Path:
    d = Path(models_dir)
    d.mkdir(parents=True, exist_ok=True)
    det = np.zeros((1, 5, 8), np.float32)
    for i, row in enumerate(boxes):
        det[0, :, i] = row
    _save(d / "detector.onnx", det, "images", [1, 3, imgsz, imgsz], "output0", [1, 5, 8])
    (d / "detector.yaml").write_text(
        f"file: detector.onnx\nversion: {version}-det\nimgsz: {imgsz}\nconf: 0.25\niou: 0.45\n",
        encoding="utf-8",
    )
    rec = ctc_log_probs(plate_text)[None]
    _save(d / "recognizer.onnx", rec, "image", ["N", 3, 64, 192], "log_probs", ["N", T_STEPS, N_CLASSES])
    cls = np.zeros((1, len(labels.provinces())), np.float32)
    cls[0, province_index] = 5.0
    cls[0, (province_index + 1) % cls.shape[1]] = 2.0
    _save(d / "classifier.onnx", cls, "image", ["N", 3, 64, 192], "logits", ["N", cls.shape[1]])
    for name in ("recognizer", "classifier"):
        (d / f"{name}.yaml").write_text(
            f"file: {name}.onnx\nversion: {version}-{name[:3]}\ninput:\n  height: 64\n  width: 192\n",
            encoding="utf-8",
        )
    return d
