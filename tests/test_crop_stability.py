"""`thaiplate eval crop-stability`: the reader's answer under small box moves, on labelled scenes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thaiplate.eval.crop_stability import StabilityTally, measure

ROOT = Path(__file__).resolve().parents[1]


def test_tally_counts_right_wrong_and_mixed_plates():
    t = StabilityTally()
    t.add([True, True, True], [True, True, True])  # stable, right
    t.add([False, False, False], [True, True, True])  # stable, wrong
    t.add([True, False, True], [True, True, True])  # unstable
    t.add([True, True, True], [True, False, True])  # right every time, but the gate drops one cut
    d = t.as_dict()
    assert (t.n, t.all_right, t.none_right, t.unstable, t.gated_unstable) == (4, 2, 1, 1, 1)
    assert d["exact_true_box"] == 0.75 and d["exact_per_cut"] == 8 / 12
    assert d["unstable_rate"] == 0.25 and d["gated_unstable_rate"] == 0.25


def test_tally_splits_instability_by_whether_the_crop_method_changed():
    t = StabilityTally()
    t.add([True, False], [True, True], ["perspective", "plain"])  # method changed, reading changed
    t.add([True, True], [True, True], ["perspective", "plain"])  # method changed, reading did not
    t.add([True, False], [True, True], ["plain", "plain"])  # same method, reading changed
    t.add([True, True], [True, True], ["plain", "plain"])
    t.add([False, False], [True, True])  # methods unknown: counted as not mixed
    d = t.as_dict()
    assert (t.method_mixed, t.unstable_method_mixed) == (2, 1)
    assert d["method_mixed_rate"] == 0.4
    assert d["unstable_rate_method_mixed"] == 0.5 and d["unstable_rate_method_same"] == 1 / 3


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenes") / "set"
    subprocess.run([sys.executable, "-m", "thaiplate.cli", "synth", "detect", "--n", "8", "--seed", "5", "--workers", "1",
                    "--val-fraction", "1.0", "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    return out


def test_without_jitter_every_plate_reads_the_same_on_every_cut(scenes):
    """Jitter 0 cuts the same box each time: the committed reader is deterministic, so nothing is unstable and
    the per-cut exact equals the true-box exact; plates are binned by width."""
    from thaiplate.eval.e2e import load_labels
    from thaiplate.recognize import OnnxRecognizer

    samples = load_labels(scenes, "images/val/")
    report = measure(OnnxRecognizer.from_dir(), samples, jitter=0.0, trials=2, min_width=30, progress=False)
    wide = sum(1 for s in samples for p in s.plates if p.text and p.box[2] - p.box[0] >= 30)
    assert report.total.n == wide > 0
    assert report.total.unstable == report.total.gated_unstable == 0
    assert report.total.right_cuts == 3 * report.total.right_true_box
    assert sum(t.n for t in report.by_width.values()) == wide


def test_cli_prints_the_table_and_writes_json(scenes, tmp_path):
    out = tmp_path / "cs.json"
    run = subprocess.run([sys.executable, "-m", "thaiplate.cli", "eval", "crop-stability", "--data", str(scenes),
                          "--trials", "2", "--out", str(out)], check=True, capture_output=True, text=True, cwd=ROOT)
    assert "unstable" in run.stdout and "all" in run.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["trials"] == 2 and report["jitter"] == 0.05 and report["n"] > 0
    assert 0.0 <= report["unstable_rate"] <= 1.0 and report["by_width"]


def test_margin_crops_are_never_rectified_so_never_method_mixed(scenes, tmp_path):
    out = tmp_path / "cs.json"
    run = subprocess.run([sys.executable, "-m", "thaiplate.cli", "eval", "crop-stability", "--data", str(scenes),
                          "--trials", "2", "--crop", "margin", "--out", str(out)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    assert "crop margin" in run.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["crop"] == "margin" and report["n"] > 0 and report["method_mixed"] == 0


def test_margin_crop_is_the_box_plus_its_margin():
    import numpy as np

    from thaiplate.crop import margin_crop
    from thaiplate.results import Detection

    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    crop = margin_crop(image, Detection((50.0, 40.0, 150.0, 60.0), 1.0), margin=0.1)
    assert crop.method == "plain" and crop.corners is None
    assert np.array_equal(crop.pixels, image[38:62, 40:160])


def test_an_empty_subset_is_a_clear_error(scenes):
    run = subprocess.run([sys.executable, "-m", "thaiplate.cli", "eval", "crop-stability", "--data", str(scenes),
                          "--subset", "images/train/"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0 and "no rows under 'images/train/'" in run.stderr
