"""Torch-free parts of the detector tooling: data.yaml resolution, matching/metrics, the model card.

Why: `thaiplate train detector` must accept any ultralytics/Roboflow export; the path quirks are where
user fine-tuning breaks, and they can be checked without ultralytics. The evaluator's matching decides
the recall we publish, so its edge cases are pinned here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from thaiplate.eval.detector import average_precision, iou, label_path, load_yolo_folder, match
from thaiplate.results import Detection
from thaiplate.train import detector_card
from thaiplate.train.detector import prepare_data_yaml, read_results_csv


def _touch_split(root: Path, split: str) -> None:
    (root / split / "images").mkdir(parents=True)
    (root / split / "labels").mkdir(parents=True)


def test_roboflow_export_is_resolved_single_class(tmp_path: Path) -> None:
    export = tmp_path / "export"
    for split in ("train", "valid"):
        _touch_split(export, split)
    (export / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['license-plate', 'x']\n"
        "roboflow:\n  workspace: w\n"
    )
    resolved, single_cls = prepare_data_yaml(export / "data.yaml", tmp_path / "run")
    spec = yaml.safe_load(resolved.read_text())
    assert single_cls
    assert spec["nc"] == 1 and spec["names"] == {0: "plate"}
    assert spec["train"] == str((export / "train" / "images").resolve())
    assert spec["val"] == str((export / "valid" / "images").resolve())


def test_valid_key_and_path_relative_to_yaml(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    _touch_split(ds, "tr")
    _touch_split(ds, "va")
    (tmp_path / "data.yaml").write_text("path: ds\ntrain: tr/images\nvalid: va/images\nnames: {0: plate}\n")
    resolved, single_cls = prepare_data_yaml(tmp_path / "data.yaml", tmp_path / "run")
    spec = yaml.safe_load(resolved.read_text())
    assert not single_cls
    assert spec["val"] == str((ds / "va" / "images").resolve())


def test_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("train: nowhere/images\nval: nowhere/images\n")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_data_yaml(tmp_path / "data.yaml", tmp_path / "run")


def test_yolo_labels_beside_or_in_labels_folder(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (200, 100)).save(tmp_path / "images" / "a.jpg")
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert label_path(tmp_path / "images" / "a.jpg") == tmp_path / "labels" / "a.txt"
    (sample,) = load_yolo_folder(tmp_path / "images")
    assert sample.boxes == [pytest.approx((80.0, 40.0, 120.0, 60.0))]


def _det(box: tuple[float, float, float, float], conf: float) -> Detection:
    return Detection(box=box, confidence=conf)


def test_match_is_one_to_one_best_score_first() -> None:
    gts = [(0.0, 0.0, 10.0, 10.0)]
    dets = [_det((1, 0, 11, 10), 0.6), _det((0, 0, 10, 10), 0.9)]
    tp, found = match(dets, gts)
    assert tp == [False, True] and found == [True]
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_average_precision_perfect_and_half() -> None:
    assert average_precision([(0.9, True), (0.8, True)], 2) == pytest.approx(1.0)
    assert average_precision([(0.9, True)], 2) == pytest.approx(0.5)
    assert average_precision([], 3) == 0.0


def test_card_renders_numbers_and_early_banner() -> None:
    meta = {
        "imgsz": 320,
        "conf": 0.25,
        "iou": 0.45,
        "status": "early",
        "output": {"shape": [1, 5, 2100]},
        "metrics": {"synthetic_val": {"mAP50": 0.8123}, "latency": {"per_photo_p50_ms": 18.7}},
    }
    card = detector_card.render(meta)
    assert "EARLY EXPORT" in card
    assert "0.812" in card and "18.7" in card
    assert "(1, 5, 2100)" in card


def test_card_renders_the_input_size_sweep_as_a_table() -> None:
    row = {"recall": 0.6, "precision_filtered": 0.55, "latency_ratio": 3.7, "cpu_ms_per_photo": 71.0,
           "recall_by_width": {"w<30px": "7/20"}}
    sweep = {"images": "frames", "timed_rounds": 5, "sizes": {"320x544": {**row, "recall": 0.15}, "640x1120": row}}
    card = detector_card.render({"imgsz": [320, 544], "metrics": {"input_size_sweep": sweep}})
    assert "| 640x1120 | 0.600 | 0.550 | 3.70 | 71.0 | w<30px: 7/20 |" in card
    assert "| 320x544 | 0.150 |" in card


def test_card_says_whether_a_zoom_pass_is_on() -> None:
    off = detector_card.render({"imgsz": [320, 544]})
    assert "| zoom pass | off (`$THAIPLATE_DETECTOR_IMGSZ=320x544+480x832` turns one on) |" in off
    on = detector_card.render({"imgsz": [320, 544], "zoom": [[640, 1120]], "zoom_below": 20})
    assert "| zoom pass | 640x1120: " in on and "narrower than 20 px at the base input" in on


def test_results_csv_columns_are_stripped(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("  epoch,  metrics/mAP50(B)\n1, 0.5\n2, 0.7\n")
    rows = read_results_csv(tmp_path)
    assert rows[-1] == {"epoch": 2.0, "metrics/mAP50(B)": 0.7}


@pytest.mark.parametrize(
    ("meta", "version"),
    [({}, "1"), ({"version": "2", "status": "final"}, "3"), ({"version": "2", "status": "early"}, "2"),
     ({"version": "det-2024.1"}, "1"), ({"version": "7-int8", "status": "final"}, "8")],
)
def test_export_bumps_the_version(meta, version):
    from thaiplate.train.detector import next_version

    assert next_version(meta) == version
