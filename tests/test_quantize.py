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
    assert spec["version"] == fp32_version.removesuffix("-int8") + "-int8"
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
    assert "| quantization | Served as INT8" in (tmp_path / "detector.md").read_text(encoding="utf-8")
    det = OnnxDetector.from_dir(tmp_path, imgsz=(416, 704))  # not the calibration size: the input stays dynamic
    assert det.path.name == "detector.int8.onnx"
    scenes = calibration_scenes(12, seed=999)
    assert sum(len(det.detect(s)) for s in scenes) > 0
    assert box_agreement(tmp_path, "detector.onnx", "detector.int8.onnx", scenes) >= 0.8
