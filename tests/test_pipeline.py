"""The pipeline's data flow and result assembly, plus a real-model run once ``models/*.onnx`` exist.

The flow tests use small hand-written stage classes (the real detector/recogniser need trained
weights): a detector returning fixed boxes and a recogniser that "reads" the crop's mean colour, so
we can check which crop reached which stage and in what order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thaiplate.image import ImageError
from thaiplate.pipeline import Pipeline, assemble
from thaiplate.results import Candidate, Detection, PipelineResult, ProvinceGuess, TextReading
from thaiplate.testing.badinputs import EMPTY_RESULT, encode, make_bad_inputs

MODELS = Path(__file__).resolve().parents[1] / "models"
HAVE_MODELS = all((MODELS / f"{n}.onnx").exists() for n in ("detector", "recognizer", "classifier"))


class FixedDetector:
    version = "fixed-1"

    def __init__(self, dets: list[Detection]) -> None:
        self.dets = dets

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self.dets)


class ColourReader:
    """Reads the crop's mean red value as the plate 'text'; records the batch it was given."""

    version = "colour-1"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def read(self, crops, widths=None) -> list[TextReading]:
        self.batches.append(len(crops))
        return [
            TextReading(
                text=str(int(c[..., 0].mean())),
                confidence=0.9,
                char_confidences=[0.9],
                candidates=[Candidate(str(int(c[..., 0].mean())), 0.9)],
                raw_text="raw",
                valid=False,
                plate_type="car",
            )
            for c in crops
        ]


class FirstProvince:
    version = "prov-1"

    def classify(self, crops) -> list[list[ProvinceGuess]]:
        return [
            [
                ProvinceGuess("BKK", "กรุงเทพมหานคร", "Bangkok", 0.7),
                ProvinceGuess("NBI", "นนทบุรี", "Nonthaburi", 0.2),
            ]
            for _ in crops
        ]


def _image() -> np.ndarray:
    img = np.zeros((120, 200, 3), np.uint8)
    img[10:30, 10:60, 0] = 100  # plate A: red 100
    img[60:90, 100:190, 0] = 200  # plate B: red 200
    return img


def _pipeline(dets: list[Detection] | None = None, classifier=None) -> tuple[Pipeline, ColourReader]:
    dets = dets or [
        Detection(box=(10.0, 10.0, 60.0, 30.0), confidence=0.4),
        Detection(box=(100.0, 60.0, 190.0, 90.0), confidence=0.9),
    ]
    reader = ColourReader()
    return Pipeline(FixedDetector(dets), reader, classifier or FirstProvince(), margin=0.0), reader


def test_run_bytes_end_to_end_order_and_schema() -> None:
    pipe, reader = _pipeline()
    result = pipe.run(encode(Image.fromarray(_image()), "PNG"))
    assert isinstance(result, PipelineResult)
    assert result.image == {"width": 200, "height": 120}
    assert [p.detection_confidence for p in result.plates] == [0.9, 0.4]  # by detection confidence
    assert [p.text for p in result.plates] == ["200", "100"]  # each crop reached its own plate
    assert result.plates[0].box == (100.0, 60.0, 190.0, 90.0)
    assert result.plates[0].plate_type == "car"
    assert result.plates[0].province.code == "BKK" and len(result.plates[0].province_candidates) == 2
    assert reader.batches == [2]  # one batched call for all plates
    assert set(result.timings_ms) == {"decode", "detect", "recognize", "classify", "total"}
    assert result.timings_ms["total"] >= result.timings_ms["detect"] >= 0
    assert result.timings_ms["decode"] > 0  # run() times decoding itself (run_array reports 0)
    assert result.models == {"detector": "fixed-1", "recognizer": "colour-1", "classifier": "prov-1"}
    json.dumps(result.to_dict(), ensure_ascii=False)  # the JSON contract serialises


def test_no_plates_gives_empty_list_and_skips_models() -> None:
    pipe, reader = _pipeline(dets=[])
    pipe.detector.dets = []
    result = pipe.run_array(np.zeros((480, 640, 3), np.uint8))  # a scene, not plate-shaped
    assert result.plates == [] and reader.batches == []


def test_plate_shaped_image_without_detection_is_read_whole_and_kept_only_if_valid() -> None:
    pipe, reader = _pipeline(dets=[])
    pipe.detector.dets = []
    crop = np.zeros((60, 135, 3), np.uint8)
    pairs = pipe.detect_crops(crop)
    assert len(pairs) == 1 and pairs[0][0].box == (0.0, 0.0, 135.0, 60.0) and pairs[0][0].confidence == 0.0
    reading = TextReading("1กข 1234", 0.6, [0.9] * 7, [], "1กข1234", True, "car")
    junk = TextReading("ก", 0.9, [0.9], [], "ก", False, None)
    kept = assemble([pairs[0][0]] * 2, [reading, junk], None, (135, 60))
    assert [p.text for p in kept.plates] == ["1กข 1234"]  # the invalid whole-image reading is dropped


def test_plate_crop_with_only_a_sliver_detected_is_still_read_whole() -> None:
    """A detector firing on a few pixels of a plate crop must not block the whole-image reading; a kept
    real detection wins over the whole-image one (no duplicate plate)."""
    sliver = Detection((120.0, 55.0, 126.0, 60.0), 0.38)
    pipe, _ = _pipeline(dets=[sliver])
    crop = np.zeros((60, 135, 3), np.uint8)
    pairs = pipe.detect_crops(crop)
    assert [d.confidence for d, _ in pairs] == [0.38, 0.0] and pairs[1][0].box == (0.0, 0.0, 135.0, 60.0)
    unsure = TextReading("ก 4", 0.001, [0.1, 0.1], [], "ก4", True, "car")
    whole = TextReading("5กข 2662", 0.9, [0.9] * 7, [], "5กข2662", True, "car")
    kept = assemble([d for d, _ in pairs], [unsure, whole], None, (135, 60))
    assert [(p.text, p.detection_confidence) for p in kept.plates] == [("5กข 2662", 0.0)]
    sure = TextReading("5กข 2662", 0.8, [0.9] * 7, [], "5กข2662", True, "car")
    kept = assemble([d for d, _ in pairs], [sure, whole], None, (135, 60))
    assert [(p.text, p.detection_confidence) for p in kept.plates] == [("5กข 2662", 0.38)]
    whole_box = Detection((2.0, 1.0, 130.0, 58.0), 0.9)  # the detector boxed the plate: no second read
    pipe.detector.dets = [whole_box]
    assert [d.confidence for d, _ in pipe.detect_crops(crop)] == [0.9]


def test_detections_with_a_hopeless_reading_are_left_out() -> None:
    det = Detection((0.0, 0.0, 50.0, 20.0), 0.9)
    sure = TextReading("1กข 1234", 0.6, [0.9] * 7, [], "1กข1234", True, "car")
    tree = TextReading("ฐ 3", 0.01, [0.2, 0.1], [], "ฐ3", True, "car")  # a tree read as a short plate
    assert [p.text for p in assemble([det, det], [sure, tree], None, (50, 20)).plates] == ["1กข 1234"]
    kept = assemble([det, det], [sure, tree], None, (50, 20), min_text_confidence=0.0)
    assert len(kept.plates) == 2  # the threshold is a parameter, 0 keeps every detection


def test_without_classifier() -> None:
    pipe = Pipeline(FixedDetector([Detection((10.0, 10.0, 60.0, 30.0), 0.5)]), ColourReader(), None)
    (plate,) = pipe.run_array(_image()).plates
    assert plate.province is None and plate.province_candidates == []
    assert "classifier" not in pipe.models


def test_max_plates_caps_detections() -> None:
    dets = [Detection((float(i), 0.0, float(i + 20), 10.0), 0.5 + i / 100) for i in range(10)]
    pipe = Pipeline(FixedDetector(dets), ColourReader(), None, max_plates=3)
    scene = np.zeros((480, 640, 3), np.uint8)  # not plate-shaped: no whole-image reading is added
    assert [round(d.confidence, 2) for d, _ in pipe.detect_crops(scene)] == [0.59, 0.58, 0.57]


def test_run_many_batches_all_crops_once() -> None:
    pipe, reader = _pipeline()
    results = pipe.run_many([_image(), _image(), _image()])
    assert reader.batches == [6]
    assert all([p.text for p in r.plates] == ["200", "100"] for r in results)


def test_bad_bytes_raise_image_error() -> None:
    pipe, _ = _pipeline()
    with pytest.raises(ImageError) as err:
        pipe.run(b"not an image")
    assert err.value.code == "not_an_image"


def test_assemble_validates_lengths() -> None:
    det = Detection((0.0, 0.0, 1.0, 1.0), 0.5)
    with pytest.raises(ValueError, match="readings"):
        assemble([det], [], None, (10, 10))
    assert assemble([], [], None, (10, 20)).image == {"width": 10, "height": 20}


def test_detect_crops_fills_corners_when_found() -> None:
    import cv2

    img = np.full((200, 300, 3), 40, np.uint8)
    cv2.rectangle(img, (60, 80), (240, 140), (240, 240, 240), -1)
    pipe = Pipeline(FixedDetector([Detection((60.0, 80.0, 240.0, 140.0), 0.8)]), ColourReader(), None)
    ((det, crop),) = pipe.detect_crops(img)
    assert det.corners is not None and len(det.corners) == 4
    assert crop.shape[1] / crop.shape[0] == pytest.approx(3.0, rel=0.15)


def test_margin_crop_option_skips_rectification(monkeypatch: pytest.MonkeyPatch) -> None:
    """THAIPLATE_CROP=margin (or crop="margin") cuts the box plus margin and never warps; a typo fails at once."""
    import cv2

    img = np.full((200, 300, 3), 40, np.uint8)
    cv2.rectangle(img, (60, 80), (240, 140), (240, 240, 240), -1)
    det = Detection((60.0, 80.0, 240.0, 140.0), 0.8)
    monkeypatch.setenv("THAIPLATE_CROP", "margin")
    pipe = Pipeline(FixedDetector([det]), ColourReader(), None, margin=0.1)
    ((got, crop),) = pipe.detect_crops(img)
    assert pipe.crop == "margin" and got.corners is None
    assert np.array_equal(crop, img[74:146, 42:258])
    with pytest.raises(ValueError, match="unknown crop 'warp'.*rectify, margin"):
        Pipeline(FixedDetector([det]), ColourReader(), None, crop="warp")


def test_default_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from thaiplate.pipeline import default_models_dir

    monkeypatch.delenv("THAIPLATE_MODELS", raising=False)
    assert default_models_dir() == MODELS
    monkeypatch.setenv("THAIPLATE_MODELS", str(tmp_path))
    assert default_models_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="detector.yaml"):
        Pipeline.from_dir()


# ------------------------------------------------------------------------------------ real models

needs_models = pytest.mark.skipif(
    not HAVE_MODELS, reason="models/detector.onnx, recognizer.onnx and classifier.onnx not committed yet"
)


@pytest.fixture(scope="module")
def real_pipeline() -> Pipeline:
    return Pipeline.from_dir(MODELS)


@needs_models
def test_real_models_bad_input_corpus(real_pipeline: Pipeline) -> None:
    from thaiplate.image import load_request_images

    for name, (body, ctype, expected) in make_bad_inputs().items():
        if expected == EMPTY_RESULT:
            for f in load_request_images(body, ctype):
                assert real_pipeline.run(f).plates == [], name
        else:
            with pytest.raises(ImageError):
                for f in load_request_images(body, ctype):
                    real_pipeline.run(f)


@needs_models
def test_real_models_schema(real_pipeline: Pipeline) -> None:
    result = real_pipeline.run_array(_image())
    assert set(result.models) == {"detector", "recognizer", "classifier"}
    assert all(v and v != "unknown" for v in result.models.values())
    for p in result.plates:
        assert p.province is not None and len(p.province_candidates) == 3


def test_serving_modules_do_not_import_torch() -> None:
    """TorchServe workers must stay torch-free (memory, start-up time): check in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import sys, thaiplate.image, thaiplate.detect, thaiplate.crop, thaiplate.pipeline, "
        "thaiplate.predict, thaiplate.eval.e2e, thaiplate.testing.badinputs; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs_models
def test_real_plate_crop_sent_alone_is_read(real_pipeline: Pipeline) -> None:
    """A tight plate crop (what many users send) gets a reading although the scene detector sees no plate."""
    from thaiplate.labels import PlateType
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.crops import ocr_sample
    from thaiplate.synth.grammar import sample_plate

    cfg = augment_config(load_config())
    clean = cfg.__class__(**{**cfg.__dict__, **{k: 0.0 for k in cfg.__dict__ if k.startswith("p_")}})
    read = 0
    for i in range(8):
        rng = np.random.default_rng([31, i])
        sample = ocr_sample(rng, clean, sample_plate(rng, PlateType.PRIVATE_CAR))
        spec = sample.spec
        result = real_pipeline.run(encode(Image.fromarray(sample.image), "PNG"))
        read += any(p.text.replace(" ", "") == spec.text.replace(" ", "") for p in result.plates)
    assert read >= 4, read
