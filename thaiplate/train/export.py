"""ONNX export of the recogniser / classifier, with a torch-vs-ORT parity check.

Dynamic batch axis, opset 17, input name ``image``; output ``log_probs`` (recogniser) or ``logits``
(classifier), as fixed in ``docs/ARCHITECTURE.md``. Export fails loudly if ONNX Runtime disagrees
with torch by more than ``tol``: a silently wrong export is the costliest bug in serving.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff: float
    size_mb: float


def parity(model: nn.Module, onnx_path: Path, x: np.ndarray) -> float:
    """Max |torch - ORT| over ``x`` (float32 NCHW)."""
    import onnxruntime as ort

    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float(np.abs(ref - out).max())


def export_onnx(
    model: nn.Module,
    path: str | Path,
    output_name: str,
    height: int = 64,
    width: int = 192,
    tol: float = 1e-4,
    seed: int = 0,
) -> ExportReport:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    dummy = torch.zeros(1, 3, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GRU batch-size tracer warnings are expected
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=["image"],
            output_names=[output_name],
            dynamic_axes={"image": {0: "batch"}, output_name: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    x = np.random.default_rng(seed).uniform(-1, 1, (3, 3, height, width)).astype(np.float32)
    diff = parity(model, path, x)
    if diff > tol:
        raise RuntimeError(f"ONNX parity failed for {path}: max abs diff {diff:.2e} > {tol:.0e}")
    return ExportReport(path, diff, path.stat().st_size / 1e6)


OUTPUTS = {"recognizer": "log_probs", "classifier": "logits"}


def build_model(kind: str, model_kwargs: dict) -> nn.Module:
    from thaiplate.nets import CRNN, ProvinceNet

    return CRNN(**model_kwargs) if kind == "recognizer" else ProvinceNet(**model_kwargs)


def model_yaml(
    kind: str, cfg: dict, metrics: dict, version: str, note: str, report: ExportReport, checkpoint: str = "best.pt"
) -> dict:
    """The contract YAML served next to the weights (``docs/ARCHITECTURE.md``); ``checkpoint`` tells the card
    whether ``val_data`` chose the weights (best.pt) or only drew the curves."""
    import datetime
    import hashlib

    from thaiplate import labels

    spec: dict = {
        "name": kind,
        "file": report.path.name,
        "weights": f"{kind}.pt",
        "version": version,
        "status": note or "trained",
        "input": {
            "name": "image",
            "height": cfg["height"],
            "width": cfg["width"],
            "layout": "NCHW float32 RGB",
            "normalize": "(x/255 - 0.5) / 0.5",
            "resize": "stretch to HxW; cv2 INTER_AREA when shrinking, INTER_LINEAR when growing",
            "preprocess": "thaiplate.preprocess.plate_tensor",
        },
    }
    if kind == "recognizer":
        spec["output"] = {
            "name": "log_probs",
            "shape": ["N", 96, 1 + len(labels.charset())],
            "kind": "log_softmax over CTC blank (0) + thaiplate/data/charset.txt (ids 1..53)",
            "sequence": "top feature row (48 frames) then bottom row (48 frames)",
        }
        spec["decoding"] = {"beam_width": 10, "top_k": 5, "grammar": "thaiplate.labels.PATTERNS"}
    else:
        spec["output"] = {
            "name": "logits",
            "shape": ["N", len(labels.provinces())],
            "kind": "logits in thaiplate/data/provinces.csv row order; softmax for confidences",
        }
    spec["training"] = {
        "data": cfg["data"],
        "val_data": cfg["val_data"],
        "epochs_completed": metrics.get("epoch"),
        "epochs_planned": cfg["epochs"],
        "seed": cfg["seed"],
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"],
        "model": cfg.get("model", {}),
        "checkpoint": checkpoint,
    }
    spec["metrics"] = {
        "synthetic_heldout": {k: round(float(v), 4) for k, v in metrics.items() if k not in {"epoch", "step"}}
    }
    spec["sha256"] = hashlib.sha256(report.path.read_bytes()).hexdigest()
    spec["exported"] = datetime.date.today().isoformat()
    return spec


def export_run(
    kind: str, run: Path, models_dir: Path, version: str = "1", note: str = "", checkpoint: str = "best.pt"
) -> ExportReport:
    """``RUN/best.pt`` -> ``models/KIND.onnx`` (+ parity check), ``KIND.yaml``, ``KIND.pt`` (state dict).

    The new YAML serves the fp32 ONNX; an INT8 copy of the previous model (``KIND.int8.onnx``) is stale and is
    removed (``thaiplate train quantize KIND --record`` makes a new one once it has been judged)."""
    import yaml

    ckpt = torch.load(run / checkpoint, map_location="cpu", weights_only=False)
    cfg = ckpt["config"]
    model = build_model(kind, cfg.get("model", {}))
    model.load_state_dict(ckpt["model"])
    report = export_onnx(model, models_dir / f"{kind}.onnx", OUTPUTS[kind], cfg["height"], cfg["width"])
    metrics = ckpt.get("metrics") or dict(ckpt.get("state", {}).get("best_metrics", {}))
    torch.save(model.state_dict(), models_dir / f"{kind}.pt")
    spec = model_yaml(kind, cfg, metrics, version, note, report, checkpoint)
    yaml_path = models_dir / f"{kind}.yaml"
    yaml_path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (models_dir / f"{kind}.int8.onnx").unlink(missing_ok=True)
    from thaiplate.modelcard import write_card

    write_card(models_dir, kind)
    return report
