"""`train detector --arch yolov8n-p2.yaml --init models/detector.pt` starts the new architecture from the
committed detector's matching layers, not from scratch.

Why: the candidate's whole point is to reuse the trained backbone; if the copy silently stopped
(ultralytics changes how ``pretrained`` meets a yaml-built model), a stride-4 head would start from
random weights and need many more CPU epochs. The run uses a learning rate of ~0, so the trained
backbone must still equal the committed one.

Training suite: `pytest -m slow tests/test_detector_arch.py` (skipped without `.venv-yolo`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
YOLO_VENV = REPO / ".venv-yolo" / "bin"
MODELS = REPO / "models"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (YOLO_VENV / "python").exists(), reason="no .venv-yolo (scripts/setup-train-yolo)"),
    pytest.mark.skipif(not (MODELS / "detector.pt").exists(), reason="no models/detector.pt"),
]

COMPARE = r"""
import json, sys, torch
from ultralytics import YOLO
trained_model, init_model = (YOLO(p).model.float() for p in sys.argv[1:3])
trained, init = trained_model.state_dict(), init_model.state_dict()
conv = [k for k in init if k.endswith("conv.weight") and k in trained and trained[k].shape == init[k].shape]
same = [k for k in conv if torch.allclose(trained[k], init[k], atol=2e-3)]
print(json.dumps({"strides": trained_model.model[-1].stride.tolist(), "matching_convs": len(conv),
                  "unchanged": len(same), "stem_same": "model.0.conv.weight" in same}))
"""


def _train(scenes: Path, init: Path, out: Path, env: dict[str, str], *arch: str) -> Path:
    """One epoch at a learning rate of ~0: whatever comes out is what the run started from."""
    subprocess.run(
        [str(YOLO_VENV / "thaiplate"), "train", "detector", "--data", str(scenes / "data.yaml"), *arch,
         "--init", str(init), "--imgsz", "64", "--epochs", "1", "--batch", "2", "--threads", "1",
         "--lr0", "1e-12", "--warmup-epochs", "0", "--out", str(out), "--no-export"],
        check=True, cwd=REPO, env=env, capture_output=True, timeout=600,
    )
    return out / "weights" / "last.pt"


def _compare(trained: Path, init: Path, env: dict[str, str], tmp: Path) -> dict:
    out = subprocess.run(
        [str(YOLO_VENV / "python"), "-c", COMPARE, str(trained), str(init)],
        check=True, cwd=REPO, env={**env, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp)},
        capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_p2_arch_starts_from_the_committed_detector_and_keeps_its_own_arch_later(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    subprocess.run(
        [sys.executable, "-m", "thaiplate.cli", "synth", "detect", "--n", "6", "--seed", "5", "--val-fraction", "0.5",
         "--workers", "1", "--out", str(scenes)],
        check=True, cwd=REPO, capture_output=True,
    )
    env = {"PATH": f"{YOLO_VENV}:/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    p2 = _train(scenes, MODELS / "detector.pt", tmp_path / "p2", env, "--arch", "yolov8n-p2.yaml")
    got = _compare(p2, MODELS / "detector.pt", env, tmp_path)
    assert got["strides"] == [4.0, 8.0, 16.0, 32.0]  # the P2 head, not the checkpoint's architecture
    assert got["stem_same"] and got["matching_convs"] >= 30  # YOLOv8n layers 0-15
    assert got["unchanged"] == got["matching_convs"]  # copied, then (lr ~0) kept
    # fine-tuning that checkpoint without --arch continues the P2 model, not a fresh YOLOv8n
    again = _compare(_train(scenes, p2, tmp_path / "again", env), p2, env, tmp_path)
    assert again["strides"] == [4.0, 8.0, 16.0, 32.0]
    assert again["unchanged"] == again["matching_convs"] >= 60
