"""Static INT8 of the committed models (thaiplate.train.quantize): files, records, and that the reading holds."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from thaiplate.runtime import default_models_dir  # noqa: E402


def _copy_models(kind: str, dst) -> None:
    src = default_models_dir()
    if not (src / f"{kind}.onnx").exists():
        pytest.skip(f"no committed {kind}")
    for f in (f"{kind}.onnx", f"{kind}.yaml", f"{kind}.md"):
        shutil.copy(src / f, dst / f)


def test_quantize_writes_a_smaller_int8_reader_that_serving_loads(tmp_path):
    """`thaiplate train quantize recognizer --record` on a copy of the committed models: the INT8 file is
    written and served (yaml `file`), the fp32 one stays as the reference, and it still reads fresh plates."""
    from thaiplate.cli import main
    from thaiplate.eval.textmetrics import compact
    from thaiplate.recognize import OnnxRecognizer
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.crops import ocr_sample

    _copy_models("recognizer", tmp_path)
    fp32_version = str(yaml.safe_load((tmp_path / "recognizer.yaml").read_text(encoding="utf-8"))["version"])
    assert main(["train", "quantize", "recognizer", "--models", str(tmp_path), "--n", "32", "--record"]) == 0
    spec = yaml.safe_load((tmp_path / "recognizer.yaml").read_text(encoding="utf-8"))
    assert spec["file"] == "recognizer.int8.onnx" and spec["fp32_file"] == "recognizer.onnx"
    # responses and the management API can tell them apart; re-quantizing a served INT8 model keeps one suffix
    assert spec["version"] == fp32_version.split("-int8")[0] + "-int8.2"  # the served recipe's tag
    assert (tmp_path / "recognizer.int8.onnx").stat().st_size < 0.6 * (tmp_path / "recognizer.onnx").stat().st_size
    assert spec["quantization"]["agreement_on_calibration"] > 0.95
    assert "recognizer.int8.onnx" in str(OnnxRecognizer.from_dir(tmp_path).path)
    cfg = augment_config(load_config(None))
    samples = [ocr_sample(np.random.default_rng([777, i]), cfg) for i in range(16)]
    readings = OnnxRecognizer.from_dir(tmp_path).read([s.image for s in samples])
    assert sum(compact(r.text) == compact(s.spec.text) for r, s in zip(readings, samples, strict=True)) >= 12


def test_seven_bit_weights_keep_the_classifier_reading(tmp_path):
    """The classifier's INT8 names the same province as fp32 on >= 93 % of fresh crops it was not calibrated on.
    With full 8-bit weights this AVX2 host (no VNNI) saturates ORT's int16 pair sums and kept 84 %
    (runs/rule-int8-rr.md), so this fails if ``reduce_range`` is dropped there."""
    from thaiplate.train.quantize import argmax_agreement, calibration_tensor, quantize_model

    _copy_models("classifier", tmp_path)
    out = tmp_path / "classifier.int8.onnx"
    quantize_model(tmp_path / "classifier.onnx", out, calibration_tensor(64))
    assert argmax_agreement(tmp_path / "classifier.onnx", out, calibration_tensor(128, seed=777)) >= 0.93


def test_quantize_detector_records_an_int8_detector_that_finds_the_same_plates(tmp_path):
    """`thaiplate train quantize detector --record`: the INT8 detector is served (yaml `file`, card row), keeps the
    dynamic input, and finds the fp32 detector's plates on fresh scenes it was not calibrated on."""
    from thaiplate.cli import main
    from thaiplate.detect import OnnxDetector
    from thaiplate.train.quantize import box_agreement, calibration_scenes

    _copy_models("detector", tmp_path)
    assert main(["train", "quantize", "detector", "--models", str(tmp_path), "--n", "8", "--record"]) == 0
    spec = yaml.safe_load((tmp_path / "detector.yaml").read_text(encoding="utf-8"))
    assert spec["file"] == "detector.int8.onnx" and spec["fp32_file"] == "detector.onnx"
    assert "7-bit" in spec["quantization"]["kind"]
    # the recipe keeps the 3-channel stem in fp32 (quantized it is slower): no DequantizeLinear feeds it
    import onnx

    graph = onnx.load(str(tmp_path / "detector.int8.onnx")).graph
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    assert not dq_outputs & set(convs["/model.0/conv/Conv"].input)
    assert dq_outputs & set(convs["/model.1/conv/Conv"].input)
    # and the head's box branch (runs/rule-int8-fused.md: quantized, its slightly moved boxes cost readings)
    # keeps fp32 weights (its input may be dequantized: the tensor is shared with the quantized class branch)
    box_branch = [c for name, c in convs.items() if name.startswith("/model.22/cv2")]
    assert len(box_branch) == 9 and not any(c.input[1] in dq_outputs for c in box_branch)
    assert convs["/model.22/cv3.0/cv3.0.0/conv/Conv"].input[1] in dq_outputs
    assert "| quantization | Served as INT8" in (tmp_path / "detector.md").read_text(encoding="utf-8")
    det = OnnxDetector.from_dir(tmp_path, imgsz=(416, 704))  # not the calibration size: the input stays dynamic
    assert det.path.name == "detector.int8.onnx"
    scenes = calibration_scenes(12, seed=999)
    assert sum(len(det.detect(s)) for s in scenes) > 0
    assert box_agreement(tmp_path, "detector.onnx", "detector.int8.onnx", scenes) >= 0.8


def test_relu_in_the_op_list_folds_it_into_the_quantized_conv(tmp_path):
    """With Relu and MaxPool quantized (runs/rule-int8-fused.md) no Relu is left after a Conv: the Conv output is
    rounded once, over the Relu's range, instead of Conv -> DequantizeLinear -> Relu -> QuantizeLinear; MaxPool
    reads quantized values. Conv-only keeps the fp32 Relu between a DQ/Q pair. The reading holds either way."""
    import onnx

    from thaiplate.train.quantize import Recipe, argmax_agreement, calibration_tensor, quantize_model

    _copy_models("recognizer", tmp_path)
    calib = calibration_tensor(32)
    ops = {}
    for name, recipe in {"conv": Recipe(), "fused": Recipe(ops=("Conv", "Relu", "MaxPool"))}.items():
        out = tmp_path / f"{name}.onnx"
        quantize_model(tmp_path / "recognizer.onnx", out, calib, recipe=recipe)
        graph = onnx.load(str(out)).graph
        producer = {o: n.op_type for n in graph.node for o in n.output}
        ops[name] = [n.op_type for n in graph.node]
        pool_inputs = {producer.get(n.input[0]) for n in graph.node if n.op_type == "MaxPool"}
        if name == "fused":
            assert pool_inputs == {"DequantizeLinear"}
        assert argmax_agreement(tmp_path / "recognizer.onnx", out, calibration_tensor(32, seed=777)) > 0.98
    assert ops["conv"].count("Relu") == 7 and "Relu" not in ops["fused"]
    assert ops["fused"].count("QuantizeLinear") < ops["conv"].count("QuantizeLinear")
    assert "Relu + MaxPool" in Recipe(ops=("Conv", "Relu", "MaxPool")).describe()


def test_int8_versions_name_the_recipe():
    """A served INT8 model answers differently from its fp32 source and from another recipe's INT8: the version
    says which (responses and the management API show it); re-quantizing keeps one suffix."""
    from thaiplate.train.quantize import Recipe, int8_version

    assert int8_version(18, Recipe()) == "18-int8"
    assert int8_version("18-int8", Recipe(tag=".2")) == "18-int8.2"
    assert int8_version("18-int8.2", Recipe()) == "18-int8"


def test_detector_recipe_keeps_the_detect_heads_box_branch_fp32_in_any_yolo_depth():
    """The served recipe keeps YOLOv8n's ``/model.22/cv2`` fp32; the P2 variant's Detect is layer 28, and its
    layer 22 is an ordinary neck Conv that must not be kept instead."""
    from types import SimpleNamespace as Node

    import onnx

    from thaiplate.train.quantize import RECIPES, excluded_convs

    exclude = RECIPES["detector"].exclude
    graph = onnx.load(str(default_models_dir() / "detector.onnx")).graph
    kept = excluded_convs(graph.node, exclude)
    assert kept == [n.name for n in graph.node if n.op_type == "Conv" and ("/model.0/" in n.name or "/model.22/cv2" in n.name)]
    assert any("/model.22/cv2" in k for k in kept) and len(kept) > 3
    p2 = [Node(name=f"/model.{i}/{part}/conv/Conv", op_type="Conv") for i in (0, 22, 28) for part in ("cv2", "cv3")]
    assert excluded_convs(p2, exclude) == [
        "/model.0/cv2/conv/Conv", "/model.0/cv3/conv/Conv", "/model.28/cv2/conv/Conv"
    ]
    assert "<Detect>" in RECIPES["detector"].describe()
