"""`thaiplate synth scene-crops`: recogniser crops cut from labelled scenes by the serving crop code."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from thaiplate.eval.e2e import load_labels
from thaiplate.synth.scene_crops import cut_scene_crops, jitter_box

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "thaiplate.cli", "synth", *args],
                          check=True, capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenes") / "set_a"
    _cli("detect", "--n", "12", "--seed", "3", "--workers", "1", "--val-fraction", "0.25", "--out", str(out))
    return out


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_jitter_moves_each_side_within_its_share_of_the_box():
    box = (100.0, 50.0, 200.0, 90.0)
    assert jitter_box(box, np.random.default_rng(0), 0.0) == box
    for seed in range(200):
        x1, y1, x2, y2 = jitter_box(box, np.random.default_rng(seed), 0.05)
        assert abs(x1 - 100) <= 5 and abs(x2 - 200) <= 5 and abs(y1 - 50) <= 2 and abs(y2 - 90) <= 2


def test_every_wide_labelled_train_plate_is_cut_copies_times_and_nothing_else(scenes, tmp_path):
    n = cut_scene_crops(scenes, tmp_path / "crops", copies=2, min_width=40, seed=1)
    rows = _rows(tmp_path / "crops")
    want = [(s.path.relative_to(scenes).as_posix(), p.text)
            for s in load_labels(scenes) if s.path.relative_to(scenes).as_posix().startswith("images/train/")
            for p in s.plates if p.text and p.box[2] - p.box[0] >= 40]
    assert want, "the fixture scenes should hold at least one wide labelled plate"
    assert n == len(rows) == 2 * len(want)
    assert sorted((r["source"], r["text"]) for r in rows) == sorted(want * 2)
    for r in rows:
        crop = cv2.imread(str(tmp_path / "crops" / r["file"]))
        assert crop is not None and crop.shape[1] >= 0.5 * float(r["detail_px"])  # the plate, not a sliver


def test_crops_are_deterministic_per_seed(scenes, tmp_path):
    cut_scene_crops(scenes, tmp_path / "a", seed=5)
    cut_scene_crops(scenes, tmp_path / "b", seed=5)
    cut_scene_crops(scenes, tmp_path / "c", seed=6)
    files = [r["file"] for r in _rows(tmp_path / "a")]
    same = [(tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files]
    other = [(tmp_path / "a" / f).read_bytes() == (tmp_path / "c" / f).read_bytes() for f in files]
    assert all(same) and not all(other)


def test_cli_merges_several_sets_into_one_trainable_labels_file(scenes, tmp_path):
    second = tmp_path / "set_b"
    shutil.copytree(scenes, second)
    out = tmp_path / "mix"
    log = _cli("scene-crops", "--data", str(scenes), str(second), "--out", str(out), "--copies", "1")
    rows = _rows(out)
    assert "train with: thaiplate train recognizer" in log.stdout
    assert {r["file"].split("/")[0] for r in rows} == {"set_a", "set_b"}
    assert len(rows) == len(_rows(out / "set_a")) + len(_rows(out / "set_b"))
    assert all((out / r["file"]).is_file() for r in rows)


def test_a_split_with_no_rows_is_a_clear_error(scenes, tmp_path):
    with pytest.raises(ValueError, match="no rows under 'images/test/'"):
        cut_scene_crops(scenes, tmp_path / "x", subset="images/test/")
