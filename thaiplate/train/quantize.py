"""Static INT8 quantization of the ONNX models for serving (runs/rule-int8*.md, runs/rule-*-int8*.md).

All three models spend most of their ONNX time in Conv (reader 76 %, classifier 99 %, one thread). Per-channel
int8 weights with uint8 activations (QDQ: Conv, and in the reader and classifier the Relu / MaxPool after it; the
GRU, the heads and YOLO's stem, box branch and box decoding stay fp32; ``RECIPES``) run them at ~x0.7 (reader),
~x0.6 (classifier) and ~x0.76 (detector) of the fp32 time on this AVX2 host.

Weights are **7-bit** (``reduce_range``): on x86 without VNNI, ONNX Runtime's u8 x s8 kernels add pairs of products
in int16 (``vpmaddubsw``), which saturates with full 8-bit weights. With 8-bit weights the classifier lost 12-14 pt
of province top-1 (runs/rule-int8.md); with 7-bit it keeps its fp32 reading on all but ~1 % of crops at the same
speed. Activation ranges are calibrated on fresh synthetic crops / scenes (fixed seed), never on a set models are
judged on. The fp32 ONNX stays in ``models/`` as the reference; ``KIND.yaml``'s ``file`` points serving at the
INT8 one. A build step: needs ``onnx`` (dev venv), never run by serving.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("recognizer", "classifier", "detector")
CALIBRATION_SEED = 4242
INT8_SUFFIX = "-int8"  # appended (with the recipe's ``tag``) to the version of a served INT8 model


@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    fp32_mb: float
    int8_mb: float
    # share of fp32 outputs INT8 keeps on the calibration inputs: reader argmax per frame, classifier argmax per
    # crop, detector boxes matched at IoU >= 0.7 after NMS at the serving thresholds
    agreement: float


def calibration_tensor(n: int = 256, seed: int = CALIBRATION_SEED, height: int = 64, width: int = 192) -> np.ndarray:
    """``n`` fresh renderer crops (the default synth config) as the shared float32 tensor."""
    from thaiplate.preprocess import batch_tensor
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.crops import ocr_sample

    cfg = augment_config(load_config(None))
    crops = [ocr_sample(np.random.default_rng([seed, i]), cfg).image for i in range(n)]
    return batch_tensor(crops, height, width)


def calibration_scenes(n: int = 64, seed: int = CALIBRATION_SEED) -> list[np.ndarray]:
    """``n`` fresh scenes of the default scene engine (RGB uint8), as ``thaiplate synth detect`` draws them."""
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.scene import make_scene

    raw = load_config(None)
    cfg = augment_config(raw)
    return [make_scene(np.random.default_rng([seed, i]), cfg, raw["scene"]).image for i in range(n)]


@dataclass(frozen=True)
class Recipe:
    """How one kind of model is quantized: ``ops`` are the op types quantized; Conv nodes whose name contains
    one of ``exclude`` stay fp32; ``percentile``: activation ranges cover that percentile of the calibration
    values (None: min/max); ``reduce_range``: 7-bit weights (module docstring; False only to show the 8-bit
    saturation).

    Relu in ``ops`` lets ONNX Runtime fold it into the QLinearConv before it: the Conv output is rounded once,
    over the Relu's non-negative range, instead of Conv -> DequantizeLinear -> Relu -> QuantizeLinear (two
    roundings, two extra kernels); MaxPool then runs on uint8 (runs/rule-int8-fused.md)."""

    ops: tuple[str, ...] = ("Conv",)
    tag: str = ""  # version suffix after ``-int8`` (``18-int8.2``): a new recipe answers differently, so it is named
    exclude: tuple[str, ...] = ()
    percentile: float | None = None
    reduce_range: bool = True

    def describe(self) -> str:
        kept = f"; fp32 Conv: {', '.join(self.exclude)}".replace("{head}", "<Detect>") if self.exclude else ""
        ranges = f"percentile {self.percentile:g}" if self.percentile else "min/max"
        bits = "7-bit int8 weights (reduce_range)" if self.reduce_range else "8-bit int8 weights"
        ops = "Conv only" if self.ops == ("Conv",) else " + ".join(self.ops)
        return f"static QDQ INT8, per-channel {bits}, uint8 activations ({ranges}), {ops}{kept}"


# Detector: its 3-channel stem costs more quantized than fp32, and min/max ranges set by rare outliers cost AP50
# (chosen on training scenes). With only those two it kept AP50 but read 0.75 pt fewer plates end to end: its boxes
# differ a little and the reader is sensitive to the crop on small plates (runs/rule-detector-int8.md). Keeping
# the head's box branch (``/model.22/cv2`` in YOLOv8n: ``{head}`` below) fp32 as well, it reads -0.19 pt (bar -0.3) at x0.76 and is served
# (runs/rule-int8-fused.md). The reader and classifier recipes are the served ones: recipe 2 (``.2``), Relu and
# MaxPool quantized with their Conv, read +0.38 / +0.10 pt over 3,970 fresh crops vs Conv only (runs/rule-int8-fused.md;
# Conv only was judged in runs/rule-int8-rr.md and runs/rule-reader-int8-pooled.md).
FUSED = ("Conv", "Relu", "MaxPool")
RECIPES = {
    "recognizer": Recipe(ops=FUSED, tag=".2"),
    "classifier": Recipe(ops=FUSED, tag=".2"),
    "detector": Recipe(exclude=("/model.0/", "/model.{head}/cv2"), percentile=99.999),
}


def fp32_version(version: object) -> str:
    """``18-int8.2`` (or ``18``) -> ``18``: the version of the fp32 model an INT8 one was made from."""
    return str(version).split(INT8_SUFFIX)[0]


def int8_version(version: object, recipe: Recipe) -> str:
    """``18`` or ``18-int8`` (a re-quantized INT8 model) -> ``18-int8`` + the recipe's tag."""
    return fp32_version(version) + INT8_SUFFIX + recipe.tag


def excluded_convs(nodes: Iterable[Any], exclude: tuple[str, ...]) -> list[str]:
    """Names of the Conv nodes that stay fp32: those containing a pattern of ``exclude``, where ``{head}`` stands
    for the last ``/model.N/`` layer, YOLO's Detect (22 in YOLOv8n, 28 with the stride-4 P2 head), so one
    recipe fits both architectures instead of silently keeping a neck layer fp32."""
    nodes = list(nodes)
    head = max((int(m.group(1)) for n in nodes if (m := re.search(r"/model\.(\d+)/", n.name))), default=-1)
    patterns = [e.replace("{head}", str(head)) for e in exclude]
    return [n.name for n in nodes if n.op_type == "Conv" and any(p in n.name for p in patterns)]


def quantize_model(fp32: Path, out: Path, calib: np.ndarray, batch: int = 16, recipe: Recipe = Recipe()) -> None:
    """Write the QDQ INT8 model of ``fp32`` to ``out``, activation ranges from ``calib`` (``(N, ...)`` inputs)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    graph = onnx.load(str(fp32)).graph
    input_name = graph.input[0].name
    kept = excluded_convs(graph.node, recipe.exclude)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(calib):
                return None
            self.i += batch
            return {input_name: calib[self.i - batch : self.i]}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # shape inference + fusions the quantizer expects; symbolic inference cannot finish on the detector's
        # dynamic H and W (and is not needed: only convolutions and their activations are quantized)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=recipe.reduce_range,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=list(recipe.ops), nodes_to_exclude=kept,
            calibrate_method=CalibrationMethod.Percentile if recipe.percentile else CalibrationMethod.MinMax,
            extra_options={"CalibPercentile": recipe.percentile} if recipe.percentile else {},
        )


def argmax_agreement(fp32: Path, int8: Path, x: np.ndarray) -> float:
    """Share of output argmaxes INT8 keeps on ``x`` (a cheap first alarm: raw output differences say little
    about log-probs of unlikely classes)."""
    from thaiplate.runtime import ort_session

    a, b = (ort_session(p) for p in (fp32, int8))
    name = a.get_inputs()[0].name
    return float(np.mean(a.run(None, {name: x})[0].argmax(-1) == b.run(None, {name: x})[0].argmax(-1)))


def box_agreement(models_dir: Path, fp32: str, int8: str, images: list[np.ndarray], iou: float = 0.7) -> float:
    """Share of the fp32 detector's boxes that INT8 also finds at IoU >= ``iou``; both as ``models_dir`` serves
    them (detector.yaml's input size and thresholds), files ``fp32`` and ``int8`` in it."""
    from thaiplate.detect import OnnxDetector, box_iou

    a, b = OnnxDetector.from_dir(models_dir, file=fp32), OnnxDetector.from_dir(models_dir, file=int8)
    found = total = 0
    for img in images:
        theirs = np.array([d.box for d in b.detect(img)], dtype=np.float32).reshape(-1, 4)
        for d in a.detect(img):
            total += 1
            found += bool(len(theirs)) and float(box_iou(np.array(d.box, dtype=np.float32), theirs).max()) >= iou
    return found / max(total, 1)


def _detector_calibration(models_dir: Path, fp32: str, n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` fresh scenes as the served detector's own preprocessing feeds them to ONNX, and the scenes."""
    from thaiplate.detect import OnnxDetector

    detector = OnnxDetector.from_dir(models_dir, file=fp32)
    scenes = calibration_scenes(n)
    return np.concatenate([detector.preprocess(s)[0] for s in scenes]), scenes


def quantize(kind: str, models_dir: Path, n: int | None = None, record: bool = False) -> QuantizeReport:
    """``models/KIND.onnx`` -> ``models/KIND.int8.onnx``; with ``record``, serve it (``file`` in KIND.yaml).

    ``n`` calibration inputs: default 256 crops (reader, classifier) or 64 scenes (detector)."""
    import yaml

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    yaml_path = models_dir / f"{kind}.yaml"
    spec = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    fp32 = models_dir / str(spec.get("fp32_file") or spec.get("file") or f"{kind}.onnx")
    out = models_dir / f"{kind}.int8.onnx"
    if kind == "detector":
        n = n or 64
        calib, scenes = _detector_calibration(models_dir, fp32.name, n)
        quantize_model(fp32, out, calib, batch=1, recipe=RECIPES[kind])  # the detector's ONNX input has batch 1
        agreement = box_agreement(models_dir, fp32.name, out.name, scenes)
        source = f"{n} scenes of the default scene engine at the serving input, seed {CALIBRATION_SEED}"
    else:
        n = n or 256
        calib = calibration_tensor(n, height=spec["input"]["height"], width=spec["input"]["width"])
        quantize_model(fp32, out, calib, recipe=RECIPES[kind])
        agreement = argmax_agreement(fp32, out, calib)
        source = f"{n} renderer crops, seed {CALIBRATION_SEED}"
    if record:
        from thaiplate.modelcard import write_card

        spec["fp32_file"], spec["fp32_sha256"] = fp32.name, spec.get("fp32_sha256") or spec.get("sha256")
        # a new version string, so responses and the management API tell the INT8 model from its fp32 source
        spec["version"] = int8_version(spec["version"], RECIPES[kind])
        spec["file"] = out.name
        spec["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
        spec["quantization"] = {
            "kind": RECIPES[kind].describe(),
            "calibration": f"{source} (thaiplate.train.quantize)",
            "command": f"thaiplate train quantize {kind} --n {n} --record",
            "agreement_on_calibration": round(agreement, 4),
        }
        yaml_path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
        if kind == "detector":
            from thaiplate.train import detector_card

            (models_dir / "detector.md").write_text(detector_card.render(spec))
        else:
            write_card(models_dir, kind)
    return QuantizeReport(out, fp32.stat().st_size / 2**20, out.stat().st_size / 2**20, agreement)
