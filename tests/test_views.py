"""Test-time views of the plate tensor (thaiplate.views) and the reader reading through them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thaiplate import views
from thaiplate.recognize import OnnxRecognizer
from thaiplate.testing.toymodels import write_toy_models


def bar_image(row: int, col: int, h: int = 64, w: int = 192) -> np.ndarray:
    """A (1, 3, h, w) tensor: -1 background, a one-pixel bright row and column crossing at (row, col)."""
    x = np.full((1, 3, h, w), -1.0, np.float32)
    x[..., row, :] = 1.0
    x[..., :, col] = 1.0
    return x


def centre_of_mass(profile: np.ndarray) -> float:
    p = profile - profile.min()
    return float((p * np.arange(len(p))).sum() / p.sum())


def line_position(x: np.ndarray, axis: int) -> float:
    """Where the bright row (axis=0) or column (axis=1) is, from the image's mean profile."""
    img = x[0, 0]
    return centre_of_mass(img[:, 5] if axis == 0 else img[5, :])


def test_orig_is_the_same_array_and_a_flat_image_stays_flat():
    x = bar_image(32, 96)
    assert views.view(x, "orig") is x
    flat = np.full((2, 3, 64, 192), 0.25, np.float32)
    for name in views.VIEWS:
        out = views.view(flat, name)
        assert out.shape == flat.shape and out.dtype == np.float32
        np.testing.assert_allclose(out, 0.25, atol=1e-6)  # edges are replicated, not padded with black


def test_shifts_move_the_content_by_one_margin():
    x = bar_image(32, 96)
    dy, dx = views.MARGIN_Y * 64, views.MARGIN_X * 192
    assert line_position(views.view(x, "up"), 0) == pytest.approx(32 - dy, abs=0.05)
    assert line_position(views.view(x, "down"), 0) == pytest.approx(32 + dy, abs=0.05)
    assert line_position(views.view(x, "left"), 1) == pytest.approx(96 - dx, abs=0.05)
    assert line_position(views.view(x, "right"), 1) == pytest.approx(96 + dx, abs=0.05)
    assert line_position(views.view(x, "up"), 1) == pytest.approx(96, abs=0.05)  # the other axis stays


def test_zoom_in_and_out_scale_about_the_centre():
    x = bar_image(16, 48)  # a quarter of the way in on both axes
    zin, zout = views.view(x, "in"), views.view(x, "out")
    lo = views.MARGIN_Y * 64  # zoom in: the span [lo, 64 - lo) is stretched over the 64 rows
    assert line_position(zin, 0) == pytest.approx((16.5 - lo) * 64 / (64 - 2 * lo) - 0.5, abs=0.1)
    assert line_position(zout, 0) > 16 and line_position(zin, 0) < 16
    assert line_position(zout, 1) > 48 and line_position(zin, 1) < 48


def test_stack_views_is_view_major():
    x = np.stack([bar_image(20, 50)[0], bar_image(40, 150)[0]])
    stacked = views.stack_views(x, ("orig", "up"))
    assert stacked.shape == (4, 3, 64, 192)
    np.testing.assert_array_equal(stacked[:2], x)
    np.testing.assert_allclose(stacked[3], views.view(x, "up")[1])


def test_unknown_view_names_are_refused():
    with pytest.raises(ValueError, match="unknown reader views"):
        views.check_views(["orig", "sideways"])
    with pytest.raises(ValueError):
        views.check_views([])


def test_reader_views_come_from_argument_env_then_yaml(tmp_path, monkeypatch):
    d = write_toy_models(tmp_path, plate_text="1กข 1234")
    monkeypatch.delenv("THAIPLATE_READER_VIEWS", raising=False)
    assert OnnxRecognizer.from_dir(d).views == ("orig",)
    text = (d / "recognizer.yaml").read_text(encoding="utf-8")
    (d / "recognizer.yaml").write_text(text + "decoding:\n  views: [orig, up, down]\n", encoding="utf-8")
    rec = OnnxRecognizer.from_dir(d)
    assert rec.views == ("orig", "up", "down")
    crops = [np.zeros((40, 120, 3), np.uint8)] * 2
    assert rec.view_log_probs(crops).shape[:2] == (3, 2)
    assert [r.text for r in rec.read(crops)] == ["1กข 1234"] * 2
    monkeypatch.setenv("THAIPLATE_READER_VIEWS", "orig")
    assert OnnxRecognizer.from_dir(d).views == ("orig",)
    assert OnnxRecognizer.from_dir(d, views=["orig", "in"]).views == ("orig", "in")
    monkeypatch.setenv("THAIPLATE_READER_VIEWS", "orig,nope")
    with pytest.raises(ValueError, match="nope"):
        OnnxRecognizer.from_dir(d)


@pytest.mark.parametrize(
    ("key", "in_yaml", "from_env", "argument", "bad", "message"),
    [("views_below", 0.8, 0.5, 0.9, "high", "must be a confidence"),
     ("views_min_width", 100, 60, 80, "wide", "must be a width in pixels")],
)  # fmt: skip
def test_view_settings_come_from_argument_env_then_yaml(tmp_path, monkeypatch, key, in_yaml, from_env, argument, bad, message):
    env = f"THAIPLATE_READER_{key.upper()}"
    d = write_toy_models(tmp_path, plate_text="1กข 1234")
    monkeypatch.delenv(env, raising=False)
    assert getattr(OnnxRecognizer.from_dir(d), key) is None
    text = (d / "recognizer.yaml").read_text(encoding="utf-8")
    (d / "recognizer.yaml").write_text(text + f"decoding:\n  views: [orig, up]\n  {key}: {in_yaml}\n", encoding="utf-8")
    assert getattr(OnnxRecognizer.from_dir(d), key) == in_yaml
    monkeypatch.setenv(env, str(from_env))
    assert getattr(OnnxRecognizer.from_dir(d), key) == from_env
    assert getattr(OnnxRecognizer.from_dir(d, **{key: argument}), key) == argument
    monkeypatch.setenv(env, bad)
    with pytest.raises(ValueError, match=message):
        OnnxRecognizer.from_dir(d)


def test_a_single_view_is_still_applied():
    """One view name (e.g. the adaptive reader's first view, or THAIPLATE_READER_VIEWS=up) is that view,
    not the tensor as it is."""
    x = bar_image(20, 50)
    np.testing.assert_array_equal(views.stack_views(x, ("up",)), views.view(x, "up"))
    assert views.stack_views(x, ("orig",)) is x


def test_dag_nodes_pass_crop_widths_so_views_min_width_acts_as_in_the_library(monkeypatch):
    """The recogniser node gets crops already resized to the reader's input, so the detector node sends their
    widths along (``crop_widths``): with ``views_min_width`` above every crop's width the DAG keeps the first
    readings exactly as ``Pipeline.run`` does; without the widths it would re-read every crop."""
    import io

    from PIL import Image

    from tests.test_serving_units import FakeContext
    from thaiplate.pipeline import Pipeline
    from thaiplate.runtime import default_models_dir
    from thaiplate.serving.stages import ClassifierStage, DetectorStage, RecognizerStage
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.scene import make_scene

    models = default_models_dir()
    raw = load_config(None)
    scenes = [make_scene(np.random.default_rng([2_468, i]), augment_config(raw), raw["scene"]) for i in range(6)]
    bodies = []
    for s in scenes:
        buf = io.BytesIO()
        Image.fromarray(s.image).save(buf, "PNG")
        bodies.append(buf.getvalue())
    monkeypatch.setenv("THAIPLATE_READER_VIEWS", "orig,in,out,up,down")
    monkeypatch.setenv("THAIPLATE_READER_VIEWS_BELOW", "1.0")  # every crop is unsure
    monkeypatch.setenv("THAIPLATE_READER_VIEWS_MIN_WIDTH", "100000")  # and too narrow: first readings only

    def dag(body: bytes) -> dict:
        out = body
        for stage in (DetectorStage(), RecognizerStage(), ClassifierStage()):
            stage.load(models)
            stage.initialized = True
            out = stage.handle([{"body": out}], FakeContext([{"body": {"content-type": "image/png"}}]))[0]
        return json.loads(out)

    def texts(doc: dict) -> list[tuple[str, float]]:
        return [(p["text"], round(p["text_confidence"], 4)) for p in doc["plates"]]

    library = [texts(Pipeline.from_dir(models).run(b).to_dict()) for b in bodies]
    assert sum(map(len, library)) >= 3
    assert [texts(dag(b)) for b in bodies] == library
    monkeypatch.setenv("THAIPLATE_READER_VIEWS_MIN_WIDTH", "")  # no width filter: the views change readings
    assert [texts(dag(b)) for b in bodies] != library
