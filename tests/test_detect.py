"""Letterbox, YOLOv8 decoding, NMS, rescaling, and the detector backends on hand-built cases.

``OnnxDetector`` runs for real through ONNX Runtime on a tiny generated graph whose output is a fixed
YOLOv8-shaped tensor, so the whole pre/post-processing path is checked without trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thaiplate.detect import (
    Detector,
    OnnxDetector,
    RoboflowDetector,
    box_iou,
    decode_yolov8,
    detections_from_roboflow,
    input_hw,
    letterbox,
    nms,
    rescale_boxes,
)

ROBOFLOW_DATA = Path(__file__).parent / "data" / "roboflow"


@pytest.mark.parametrize(
    ("h", "w", "size", "scale", "pad"),
    [
        (720, 1280, 640, 0.5, (0, 140)),
        (1280, 720, 640, 0.5, (140, 0)),
        (640, 640, 640, 1.0, (0, 0)),
        (100, 50, 640, 6.4, (160, 0)),  # upscaled like ultralytics (scaleup=True)
        (517, 301, 640, 640 / 517, (133, 0)),  # odd padding split: 133 left, 134 right
        (480, 640, (384, 640), 0.8, (64, 0)),
        (720, 1280, (320, 544), 0.425, (0, 7)),  # landscape input: 16:9 photo at 1.3x the 416 scale
    ],
)
def test_letterbox_geometry(h: int, w: int, size, scale: float, pad: tuple[int, int]) -> None:
    img = np.full((h, w, 3), 200, np.uint8)
    out, s, p = letterbox(img, size)
    oh, ow = (size, size) if isinstance(size, int) else size
    assert out.shape == (oh, ow, 3) and out.dtype == np.uint8
    assert s == pytest.approx(scale)
    assert p == pad
    if p[0]:
        assert (out[:, : p[0]] == 114).all() and (out[:, p[0] : p[0] + 2] == 200).all()
    if p[1]:
        assert (out[: p[1]] == 114).all() and (out[p[1] : p[1] + 2] == 200).all()


@pytest.mark.parametrize(
    ("given", "hw"), [(416, (416, 416)), ([320, 544], (320, 544)), ("320x544", (320, 544)), ("416", (416, 416))]
)
def test_input_hw_reads_yaml_and_cli_sizes(given, hw) -> None:
    assert input_hw(given) == hw


def test_letterbox_rescale_round_trip() -> None:
    img = np.zeros((517, 301, 3), np.uint8)
    _, scale, pad = letterbox(img, 640)
    original = np.array([[10.0, 20.0, 110.0, 70.0], [250.0, 400.0, 301.0, 517.0]])
    lb = original * scale + [pad[0], pad[1], pad[0], pad[1]]
    np.testing.assert_allclose(rescale_boxes(lb, scale, pad, img.shape), original, atol=1e-3)


def test_rescale_clips_to_image() -> None:
    out = rescale_boxes(np.array([[-20.0, -5.0, 700.0, 50.0]]), 1.0, (0, 0), (100, 640, 3))
    assert out.tolist() == [[0.0, 0.0, 640.0, 50.0]]


def _yolo_output(rows: list[tuple[float, float, float, float, float]], anchors: int = 16) -> np.ndarray:
    out = np.zeros((1, 5, anchors), np.float32)
    for i, r in enumerate(rows):
        out[0, :, i] = r
    return out


def test_decode_yolov8_shapes_and_threshold() -> None:
    out = _yolo_output([(100, 50, 40, 20, 0.9), (10, 10, 4, 4, 0.2), (300, 300, 10, 10, 0.26)])
    for arr in (out, out[0]):
        boxes, scores = decode_yolov8(arr, conf=0.25)
        assert boxes.tolist() == [[80, 40, 120, 60], [295, 295, 305, 305]]
        assert scores.tolist() == pytest.approx([0.9, 0.26])
    boxes, scores = decode_yolov8(out, conf=0.95)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_decode_yolov8_multiclass_takes_best_class() -> None:
    out = np.zeros((1, 6, 3), np.float32)
    out[0, :, 0] = (50, 50, 10, 10, 0.1, 0.8)
    _, scores = decode_yolov8(out, conf=0.5)
    assert scores.tolist() == pytest.approx([0.8])
    with pytest.raises(ValueError):
        decode_yolov8(np.zeros((2, 5, 3)), 0.5)


def test_nms_suppresses_overlaps_keeps_order() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.3])
    assert nms(boxes, scores, iou=0.45).tolist() == [1, 2]
    assert nms(boxes, scores, iou=0.99).tolist() == [1, 0, 2, 3]
    assert nms(boxes, scores, iou=0.45, max_det=1).tolist() == [1]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    assert box_iou(boxes[0], boxes[2:3]).tolist() == [0.0]


# ----------------------------------------------------------------------------------- OnnxDetector


def _constant_detector(path: Path, size: int, rows: list[tuple[float, ...]]) -> None:
    """An ONNX graph ``images (1,3,S,S) -> output0 (1,5,A)`` returning fixed letterboxed detections."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    const = _yolo_output(rows, anchors=8)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["det", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "const_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 8])],
        initializer=[numpy_helper.from_array(const, "det"), numpy_helper.from_array(np.float32(0), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    # 1280x720 frame in a 320 letterbox: scale 0.25, pad_y 70
    rows = [
        (160.0, 160.0, 20.0, 10.0, 0.80),  # -> (600, 340, 680, 380) in the frame
        (161.0, 160.0, 20.0, 10.0, 0.70),  # duplicate, suppressed by NMS
        (20.0, 100.0, 8.0, 4.0, 0.95),  # -> (64, 112, 96, 128)
        (300.0, 300.0, 10.0, 10.0, 0.10),  # below conf
        (318.0, 200.0, 20.0, 10.0, 0.50),  # crosses the right edge: clipped to x=1280
    ]
    _constant_detector(tmp_path / "det-v1.onnx", 320, rows)
    (tmp_path / "detector.yaml").write_text(
        "file: det-v1.onnx\nimgsz: 320\nconf: 0.3\niou: 0.5\nversion: det-2024.1\n", encoding="utf-8"
    )
    return tmp_path


def test_onnx_detector_end_to_end(models_dir: Path) -> None:
    det = OnnxDetector.from_dir(models_dir)
    assert isinstance(det, Detector)
    assert (det.imgsz, det.conf, det.iou, det.version) == ((320, 320), 0.3, 0.5, "det-2024.1")
    out = det.detect(np.zeros((720, 1280, 3), np.uint8))
    assert [round(d.confidence, 2) for d in out] == [0.95, 0.8, 0.5]
    assert out[0].box == pytest.approx((64, 112, 96, 128))
    assert out[1].box == pytest.approx((600, 340, 680, 380))
    assert out[2].box == pytest.approx((1232, 500, 1280, 540))


def test_onnx_detector_overrides_and_session_options(models_dir: Path) -> None:
    det = OnnxDetector.from_dir(models_dir, conf=0.9, mem_arena=False, max_det=5)
    assert len(det.detect(np.zeros((720, 1280, 3), np.uint8))) == 1
    opts = det.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.enable_cpu_mem_arena is False


def test_boxes_taller_than_max_box_height_are_dropped(tmp_path: Path) -> None:
    """A frame-tall box (the model's failure on some real frames) is not a plate; a plate-sized one stays."""
    rows = [(160.0, 160.0, 300.0, 170.0, 0.99), (160.0, 160.0, 20.0, 10.0, 0.8)]  # 680 px and 40 px of 720
    _constant_detector(tmp_path / "det.onnx", 320, rows)
    (tmp_path / "detector.yaml").write_text("file: det.onnx\nimgsz: 320\nmax_box_height: 0.5\n", encoding="utf-8")
    frame = np.zeros((720, 1280, 3), np.uint8)
    assert [round(d.confidence, 2) for d in OnnxDetector.from_dir(tmp_path).detect(frame)] == [0.8]
    everything = OnnxDetector.from_dir(tmp_path, max_box_height=1.0).detect(frame)
    assert [round(d.confidence, 2) for d in everything] == [0.99, 0.8]


def test_from_dir_without_yaml(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="detector.yaml"):
        OnnxDetector.from_dir(tmp_path)


# --------------------------------------------------------------------------------------- Roboflow


def _load(name: str):
    return json.loads((ROBOFLOW_DATA / name).read_text(encoding="utf-8"))


def test_roboflow_mapping_centre_boxes_clip_and_filter() -> None:
    dets = detections_from_roboflow(_load("two_plates.json"), conf=0.25, classes=["license-plate"])
    assert [d.confidence for d in dets] == pytest.approx([0.874, 0.612])
    assert dets[0].box == pytest.approx((1250.0, 695.0, 1280.0, 720.0))  # clipped to the image
    assert dets[1].box == pytest.approx((500.0, 355.0, 527.0, 369.0))
    everything = detections_from_roboflow(_load("two_plates.json"))
    assert len(everything) == 4 and everything[0].confidence == pytest.approx(0.95)


def test_roboflow_mapping_empty_and_batch() -> None:
    assert detections_from_roboflow(_load("empty.json")) == []
    (d,) = detections_from_roboflow(_load("batch_of_one.json"))
    assert d.box == pytest.approx((340.0, 280.0, 460.0, 320.0))


def test_roboflow_detector_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBOFLOW_MODEL_ID", "thai-plates/3")
    monkeypatch.setenv("ROBOFLOW_API_KEY", "k")
    monkeypatch.delenv("ROBOFLOW_API_URL", raising=False)
    det = RoboflowDetector()
    assert (det.model_id, det.api_url, det.version) == (
        "thai-plates/3",
        "https://serverless.roboflow.com",
        "roboflow:thai-plates/3",
    )
    monkeypatch.delenv("ROBOFLOW_MODEL_ID")
    with pytest.raises(ValueError, match="ROBOFLOW_MODEL_ID"):
        RoboflowDetector()


def test_roboflow_client_builds_when_sdk_installed() -> None:
    pytest.importorskip("inference_sdk", reason="inference-sdk not installed (optional extra 'roboflow')")
    det = RoboflowDetector(model_id="thai-plates/3", api_url="http://localhost:9001", api_key="k")
    assert det.client() is det.client()
