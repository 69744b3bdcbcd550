"""Static INT8 quantization of the recogniser / classifier ONNX for serving (runs/rule-int8.md).

Both CNNs spend most of their ONNX time in Conv (reader 76 %, classifier 99 %, one thread). Per-channel int8
weights with uint8 activations (QDQ, Conv only: the GRU and the head stay fp32) run them at x0.75 (reader) and
x0.5-0.6 (classifier) of the fp32 time on this AVX2 host, but post-training quantization cost the reader 0.9 pt on
held-out-face crops and the classifier 12-14 pt of province top-1, so neither is served (runs/rule-int8.md);
quantization-aware training would be the next step. Activation ranges are calibrated on fresh synthetic crops
from the renderer (fixed seed), never on a set models are judged on. The fp32 ONNX stays in ``models/`` as the reference; ``KIND.yaml``'s
``file`` points serving at the INT8 one. A build step: needs ``onnx`` (dev venv), never run by serving.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("recognizer", "classifier")
CALIBRATION_SEED = 4242


@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    fp32_mb: float
    int8_mb: float
    agreement: float  # share of argmaxes (reader: per frame; classifier: per crop) INT8 keeps on the calibration crops


def calibration_tensor(n: int = 256, seed: int = CALIBRATION_SEED, height: int = 64, width: int = 192) -> np.ndarray:
    """``n`` fresh renderer crops (the default synth config) as the shared float32 tensor."""
    from thaiplate.preprocess import batch_tensor
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.crops import ocr_sample

    cfg = augment_config(load_config(None))
    crops = [ocr_sample(np.random.default_rng([seed, i]), cfg).image for i in range(n)]
    return batch_tensor(crops, height, width)


def quantize_model(fp32: Path, out: Path, calib: np.ndarray, batch: int = 16) -> float:
    """Write the QDQ INT8 model of ``fp32`` to ``out``; returns the share of output argmaxes it keeps on
    ``calib`` (a cheap first alarm: raw output differences say little about log-probs of unlikely classes)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from thaiplate.runtime import ort_session

    reference = ort_session(fp32)
    input_name = reference.get_inputs()[0].name

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
        quant_pre_process(str(fp32), str(pre))  # shape inference + fusions the quantizer expects
        quantize_static(
            str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
        )
    a = reference.run(None, {input_name: calib})[0]
    b = ort_session(out).run(None, {input_name: calib})[0]
    return float(np.mean(a.argmax(-1) == b.argmax(-1)))


def quantize(kind: str, models_dir: Path, n: int = 256, record: bool = False) -> QuantizeReport:
    """``models/KIND.onnx`` -> ``models/KIND.int8.onnx``; with ``record``, serve it (``file`` in KIND.yaml)."""
    import yaml

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    yaml_path = models_dir / f"{kind}.yaml"
    spec = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    fp32 = models_dir / str(spec.get("fp32_file") or spec.get("file") or f"{kind}.onnx")
    out = models_dir / f"{kind}.int8.onnx"
    calib = calibration_tensor(n, height=spec["input"]["height"], width=spec["input"]["width"])
    agreement = quantize_model(fp32, out, calib)
    if record:
        from thaiplate.modelcard import write_card

        spec["fp32_file"], spec["fp32_sha256"] = fp32.name, spec.get("fp32_sha256") or spec.get("sha256")
        spec["file"] = out.name
        spec["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
        spec["quantization"] = {
            "kind": "static QDQ INT8, per-channel int8 weights, uint8 activations, Conv only",
            "calibration": f"{n} renderer crops, seed {CALIBRATION_SEED} (thaiplate.train.quantize)",
            "command": f"thaiplate train quantize {kind} --n {n} --record",
            "argmax_agreement_on_calibration": round(agreement, 4),
        }
        yaml_path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
        write_card(models_dir, kind)
    return QuantizeReport(out, fp32.stat().st_size / 2**20, out.stat().st_size / 2**20, agreement)
