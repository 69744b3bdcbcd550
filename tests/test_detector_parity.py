"""Our torch-free detector path gives the same boxes as ultralytics' own predictor.

Why: serving reimplements letterbox + YOLOv8 decode + NMS in numpy (`thaiplate.detect.OnnxDetector`).
A silent mismatch (padding rounding, xywh order, scale) would shift every box and cost recall without
any error. The reference is ultralytics predicting with the *same* committed ONNX, so only the pre/post
processing differs. The main venv has no ultralytics, so the reference runs in `.venv-yolo` as a
subprocess and hands back JSON. Images are re-saved as PNG first so both sides decode identical pixels
(cv2 and PIL JPEG decoders may differ by a grey level).

Training suite: `pytest -m slow tests/test_detector_parity.py` (skipped without `.venv-yolo`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
YOLO_PY = REPO / ".venv-yolo" / "bin" / "python"
MODELS = Path(os.environ.get("THAIPLATE_MODELS") or REPO / "models")
SHARED = REPO.parent / "shared" / "datasets"
IMAGE_SOURCES = (
    REPO / "data" / "detect" / "val" / "images",
    SHARED / "thai-street-frames" / "images",
    SHARED / "dashcam-plates-mit" / "valid",
)
BORDERLINE = 2e-3  # boxes this close to the conf threshold may fall either side of it on float noise

REFERENCE = r"""
import json, os, sys
cfg = os.path.join(sys.argv[1], ".ultralytics")
os.makedirs(cfg, exist_ok=True)
os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false", YOLO_CONFIG_DIR=cfg)
from ultralytics import YOLO
onnx, imgsz, conf, iou, *images = sys.argv[2:]
model = YOLO(onnx, task="detect")
out = []
for r in model.predict(images, imgsz=[int(v) for v in imgsz.split(",")], conf=float(conf), iou=float(iou), device="cpu",
                       max_det=50, verbose=False, stream=True):
    out.append({"boxes": r.boxes.xyxy.tolist(), "scores": r.boxes.conf.tolist()})
print(json.dumps(out))
"""


def _ultralytics_available() -> bool:
    if not YOLO_PY.exists():
        return False
    return subprocess.run([str(YOLO_PY), "-c", "import ultralytics"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _ultralytics_available(), reason="needs .venv-yolo (scripts/setup-train-yolo)"),
    pytest.mark.skipif(not (MODELS / "detector.onnx").exists(), reason="no models/detector.onnx"),
]


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def png_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Up to 8 photos (synthetic val scenes and real frames) plus one odd-sized image, as PNG."""
    import cv2

    from thaiplate.image import decode_image

    out = tmp_path_factory.mktemp("parity")
    files: list[Path] = []
    for src in IMAGE_SOURCES:
        if src.is_dir():
            files += sorted(src.glob("*.jpg"))[:3] + sorted(src.glob("*.png"))[:3]
    pngs = []
    for i, f in enumerate(files[:8]):
        rgb = decode_image(f.read_bytes())
        pngs.append(out / f"{i:02d}_{f.stem}.png")
        cv2.imwrite(str(pngs[-1]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    # odd size and portrait: exercises the ±0.1 padding split and the other letterbox axis
    rng = np.random.default_rng(0)
    odd = cv2.GaussianBlur(rng.integers(0, 255, (517, 301, 3), dtype=np.uint8), (5, 5), 0)
    pngs.append(out / "odd_517x301.png")
    cv2.imwrite(str(pngs[-1]), odd)
    return pngs


@pytest.mark.parametrize("conf", ["yaml", 0.05])
def test_onnx_path_matches_ultralytics(png_images: list[Path], conf: float | str, tmp_path: Path) -> None:
    import yaml

    from thaiplate.detect import OnnxDetector, input_hw
    from thaiplate.image import decode_image

    cfg = yaml.safe_load((MODELS / "detector.yaml").read_text())
    c = float(cfg["conf"]) if conf == "yaml" else float(conf)
    # our letterbox / decoding / NMS against ultralytics' on the same fp32 weights (an INT8 served copy would differ)
    fp32 = cfg.get("fp32_file") or cfg["file"]
    ours_det = OnnxDetector.from_dir(MODELS, file=fp32, conf=c, max_det=50, max_box_height=1.0)  # ultralytics has no such filter
    ref = subprocess.run(
        [
            str(YOLO_PY),
            "-c",
            REFERENCE,
            str(tmp_path),
            str(MODELS / fp32),
            ",".join(map(str, input_hw(cfg["imgsz"]))),
            str(c),
            str(cfg["iou"]),
            *map(str, png_images),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    theirs_all = json.loads(ref.stdout.strip().splitlines()[-1])
    assert len(theirs_all) == len(png_images)

    compared = 0
    for img, theirs in zip(png_images, theirs_all, strict=True):
        ours = ours_det.detect(decode_image(img.read_bytes()))
        a = [(list(d.box), d.confidence) for d in ours if d.confidence > c + BORDERLINE]
        b = [(bx, s) for bx, s in zip(theirs["boxes"], theirs["scores"], strict=True) if s > c + BORDERLINE]
        assert len(a) == len(b), f"{img.name}: ours {len(a)} boxes, ultralytics {len(b)}"
        unmatched = list(range(len(b)))
        for box, score in a:
            j = max(unmatched, key=lambda k: _iou(box, b[k][0]))
            assert _iou(box, b[j][0]) >= 0.99, f"{img.name}: {box} vs {b[j][0]}"
            assert abs(score - b[j][1]) < 1e-3
            unmatched.remove(j)
            compared += 1
    if conf != "yaml":
        assert compared > 0, "no boxes compared at a low threshold: the model finds nothing at all"
