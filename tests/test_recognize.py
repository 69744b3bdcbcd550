"""The committed recogniser/classifier ONNX models, run exactly as serving runs them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from thaiplate.runtime import default_models_dir

MODELS = default_models_dir()
HAVE = all((MODELS / f"{n}.yaml").exists() and (MODELS / f"{n}.onnx").exists() for n in ("recognizer", "classifier"))
pytestmark = pytest.mark.skipif(not HAVE, reason=f"no committed recognizer/classifier models in {MODELS}")


@pytest.fixture(scope="module")
def synthetic():
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.crops import ocr_sample

    cfg = augment_config(load_config(None))
    samples = [ocr_sample(np.random.default_rng([12345, i]), cfg) for i in range(24)]
    return [s.image for s in samples], [s.spec for s in samples]


@pytest.fixture(scope="module")
def models():
    from thaiplate.classify import OnnxClassifier
    from thaiplate.recognize import OnnxRecognizer

    return OnnxRecognizer.from_dir(MODELS), OnnxClassifier.from_dir(MODELS)


def test_yaml_contract():
    for name in ("recognizer", "classifier"):
        spec = yaml.safe_load((MODELS / f"{name}.yaml").read_text(encoding="utf-8"))
        assert spec["input"] == spec["input"] | {"height": 64, "width": 192}
        assert str(spec["version"])


def test_read_and_classify_types(models, synthetic):
    rec, cls = models
    crops, _ = synthetic
    readings = rec.read(crops)
    guesses = cls.classify(crops)
    assert len(readings) == len(guesses) == len(crops)
    for r, g in zip(readings, guesses, strict=True):
        assert 0.0 <= r.confidence <= 1.0
        assert len(r.candidates) <= 5
        assert len(r.char_confidences) == len(r.text.replace(" ", ""))
        assert len(g) == 3 and g[0].confidence >= g[1].confidence >= g[2].confidence
    assert rec.read([]) == [] and cls.classify([]) == []


def test_shared_tensor_gives_same_results(models, synthetic):
    from thaiplate.preprocess import batch_tensor

    rec, cls = models
    crops, _ = synthetic
    x = batch_tensor(crops[:4])
    assert [r.text for r in rec.read(x)] == [r.text for r in rec.read(crops[:4])]
    assert [g[0].code for g in cls.classify(x)] == [g[0].code for g in cls.classify(crops[:4])]


def test_trained_models_match_their_card(models, synthetic):
    """On fresh synthetic crops the recogniser does about as well as its YAML says (small-sample slack)."""
    from thaiplate.eval.textmetrics import cer

    rec, _ = models
    spec = yaml.safe_load((MODELS / "recognizer.yaml").read_text(encoding="utf-8"))
    recorded = spec.get("metrics", {}).get("synthetic_val", {}).get("cer")
    if not str(spec.get("status", "")).startswith("trained") or recorded is None:
        pytest.skip(f"recognizer is not a trained model with recorded metrics ({spec.get('status')})")
    crops, specs = synthetic
    pairs = [(s.text, r.text) for s, r in zip(specs, rec.read(crops), strict=True)]
    assert cer(pairs) <= recorded + 0.15


def test_views_read_fresh_plates_as_well_as_one_view(synthetic):
    """Reading through the five views keeps the committed reader's readings on clean fresh crops
    (they are nearly all right already) and pools: confidence is a mean over views, so within [0, 1]."""
    from thaiplate.eval.textmetrics import compact
    from thaiplate.recognize import OnnxRecognizer

    crops, specs = synthetic
    one = OnnxRecognizer.from_dir(MODELS, views=["orig"])
    many = OnnxRecognizer.from_dir(MODELS, views=["orig", "in", "out", "up", "down"])
    right_one = sum(compact(r.text) == compact(s.text) for s, r in zip(specs, one.read(crops), strict=True))
    readings = many.read(crops)
    right_many = sum(compact(r.text) == compact(s.text) for s, r in zip(specs, readings, strict=True))
    assert right_many >= right_one - 1
    assert right_many >= 0.8 * len(crops)
    for r in readings:
        assert 0.0 < r.confidence <= 1.0
        assert len(r.char_confidences) == len(r.text.replace(" ", ""))
        assert r.candidates[0].confidence >= r.candidates[-1].confidence


def test_views_below_rereads_only_the_unsure_crops(synthetic):
    """With ``views_below``, a crop whose first reading is at least that confident keeps it; the others get
    exactly the all-views reading."""
    import cv2

    from thaiplate.recognize import OnnxRecognizer

    crops, _ = synthetic
    hard = [cv2.resize(cv2.resize(c, (40, 14), interpolation=cv2.INTER_AREA), c.shape[1::-1]) for c in crops[:8]]
    crops = crops + hard  # blurred down to ~40 px: some first readings are unsure
    names = ["orig", "in", "out", "up", "down"]
    one = OnnxRecognizer.from_dir(MODELS, views=["orig"]).read(crops)
    full = OnnxRecognizer.from_dir(MODELS, views=names).read(crops)
    tau = float(np.median([r.confidence for r in one]))
    adaptive, onnx_s, decode_s = OnnxRecognizer.from_dir(MODELS, views=names, views_below=tau).read_timed(crops)
    assert onnx_s > 0 and decode_s > 0
    reread = [r1.confidence < tau for r1 in one]
    assert 0 < sum(reread) < len(crops)
    for r1, rf, ra, low in zip(one, full, adaptive, reread, strict=True):
        want = rf if low else r1  # same pixels; ONNX batch composition may move the last float bits
        assert (ra.text, ra.raw_text) == (want.text, want.raw_text)
        assert ra.confidence == pytest.approx(want.confidence, rel=1e-4, abs=1e-6)
    none = OnnxRecognizer.from_dir(MODELS, views=names, views_below=0.0).read(crops)
    assert [r.text for r in none] == [r.text for r in one]


def test_views_min_width_rereads_only_wide_unsure_crops(synthetic):
    """With ``views_min_width`` an unsure crop narrower than that keeps its first reading; widths come from
    the crops themselves, or from the caller for a tensor (the DAG node's crops arrive already resized)."""
    import cv2

    from thaiplate.recognize import OnnxRecognizer

    crops, _ = synthetic
    crops = [cv2.resize(cv2.resize(c, (40, 14), interpolation=cv2.INTER_AREA), c.shape[1::-1]) for c in crops[:8]]
    crops = [cv2.resize(c, (w, w * c.shape[0] // c.shape[1])) for c, w in zip(crops, [60, 200] * 4, strict=True)]
    # same blur at two widths, so unsure crops of both
    names = ["orig", "in", "out", "up", "down"]
    one = OnnxRecognizer.from_dir(MODELS, views=["orig"]).read(crops)
    all_unsure = OnnxRecognizer.from_dir(MODELS, views=names, views_below=1.0).read(crops)
    min_width = 200
    wide_only = OnnxRecognizer.from_dir(MODELS, views=names, views_below=1.0, views_min_width=min_width)
    for i, (r1, rall, rw) in enumerate(zip(one, all_unsure, wide_only.read(crops), strict=True)):
        want = rall if i % 2 else r1
        assert (rw.text, rw.raw_text) == (want.text, want.raw_text)
        assert rw.confidence == pytest.approx(want.confidence, rel=1e-4, abs=1e-6)
    assert [r.confidence for r in one] != [r.confidence for r in all_unsure]  # the views did change readings
    x = wide_only.tensor(crops)
    widths = [c.shape[1] for c in crops]
    assert [r.text for r in wide_only.read(x, widths)] == [r.text for r in wide_only.read(crops)]
    assert [r.text for r in wide_only.read(x)] == [r.text for r in all_unsure]  # widths unknown: no filter
