"""``thaiplate eval e2e`` and ``thaiplate predict`` end to end on tiny constant ONNX models.

The toy models (``thaiplate.testing.toymodels``) have the real input/output contracts, so loading,
ONNX Runtime, letterboxing, cropping, CTC decoding, matching and the CLI plumbing all run for real;
only the numbers the networks output are fixed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from thaiplate.cli import main as cli_main
from thaiplate.eval.e2e import LabelledPlate, Sample, evaluate, format_table, load_labels, match, sweep_gate
from thaiplate.pipeline import MIN_TEXT_CONFIDENCE, Pipeline
from thaiplate.results import PipelineResult, PlateResult

pytest.importorskip("onnx")
from thaiplate.testing.toymodels import write_toy_models  # noqa: E402

TOY_BOX = (260.0, 220.0, 380.0, 260.0)  # where the toy detector's box lands in a 640x480 image


@pytest.fixture(scope="module")
def toy_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_models(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (640, 480), (90, 90, 90)).save(tmp_path / name)
    (tmp_path / "d.jpg").write_bytes(b"\xff\xd8\xff broken")
    x1, y1, x2, y2 = TOY_BOX
    (tmp_path / "labels.csv").write_text(
        "file,plate_text,province_code,x1,y1,x2,y2\n"
        f"a.jpg,กข 1234,TH-10,{x1},{y1},{x2},{y2}\n"
        "b.jpg,ขค 99,TH-11,10,10,60,30\n"
        "c.jpg,,,,,,\n"
        "d.jpg,กข 1,TH-10,1,1,20,20\n",
        encoding="utf-8",
    )
    return tmp_path


def test_pipeline_from_dir_on_toy_models(toy_models: Path) -> None:
    result = Pipeline.from_dir(toy_models).run_array(np.full((480, 640, 3), 90, np.uint8))
    (plate,) = result.plates
    assert plate.box == TOY_BOX
    assert plate.text == "กข 1234" and plate.plate_type == "car"
    assert plate.province.code == "TH-10" and len(plate.province_candidates) == 3
    assert result.models == {"detector": "toy-det", "recognizer": "toy-rec", "classifier": "toy-cla"}


def test_e2e_metrics(toy_models: Path, dataset: Path) -> None:
    samples = load_labels(dataset)
    assert [len(s.plates) for s in samples] == [1, 1, 0, 1]
    m = evaluate(Pipeline.from_dir(toy_models), samples, progress=False)
    assert (m["n_images"], m["n_failed_images"], m["n_plates"], m["n_detections"]) == (4, 1, 3, 3)
    assert m["detection_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["detection_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["plate_exact"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["province_top1"] == pytest.approx(1 / 3, abs=1e-4)
    assert set(m["timings_ms"]) == {"decode", "detect", "recognize", "classify", "total"}
    assert m["by_width"] == {  # a: 120 px, found and read; d (undecodable): 19 px; b: 50 px, not found
        "<30": {"n": 1, "detection_recall": 0.0, "plate_exact": 0.0, "read_given_found": None},
        "50-80": {"n": 1, "detection_recall": 0.0, "plate_exact": 0.0, "read_given_found": None},
        "80-130": {"n": 1, "detection_recall": 1.0, "plate_exact": 1.0, "read_given_found": 1.0},
    }
    assert "by_optics" not in m  # these labels do not record the plates' optics
    assert "detection_recall" in format_table(m) and "plate width 80-130 px" in format_table(m)


def test_e2e_splits_scene_plates_by_their_recorded_optics(toy_models: Path, dataset: Path) -> None:
    x1, y1, x2, y2 = TOY_BOX
    (dataset / "labels.csv").write_text(  # the columns `thaiplate synth detect` writes
        "file,plate_text,province_code,x1,y1,x2,y2,plate_blur_px,plate_fade\n"
        f"a.jpg,กข 9999,TH-10,{x1},{y1},{x2},{y2},0.00,0.00\n"  # found, misread
        "b.jpg,ขค 99,TH-11,10,10,60,30,1.20,0.30\n"  # missed
        "c.jpg,,,300,300,340,320,0.00,0.00\n",  # a real plate kept box-only in a scene
        encoding="utf-8",
    )
    samples = load_labels(dataset)
    assert [p.optics for s in samples for p in s.plates] == ["crisp", "soft", "native"]
    m = evaluate(Pipeline.from_dir(toy_models), samples, progress=False)
    assert m["by_optics"] == {
        "crisp": {"n": 1, "detection_recall": 1.0, "plate_exact": 0.0, "read_given_found": 0.0},
        "native": {"n": 1, "detection_recall": 0.0, "plate_exact": None, "read_given_found": None},
        "soft": {"n": 1, "detection_recall": 0.0, "plate_exact": 0.0, "read_given_found": None},
    }
    lines = {line.split("  ")[0]: line.split()[-7:] for line in format_table(m).splitlines()}
    assert lines["crisp plates: n / recall / exact / read|found"] == ["1", "/", "1.0", "/", "0.0", "/", "0.0"]


def test_e2e_boxes_only_format_and_cli(toy_models: Path, dataset: Path, capsys) -> None:
    x1, y1, x2, y2 = TOY_BOX
    (dataset / "labels.csv").write_text(
        f"file,x1,y1,x2,y2\na.jpg,{x1},{y1},{x2},{y2}\nc.jpg,,,,\n", encoding="utf-8"
    )
    out = dataset / "metrics.json"
    rc = cli_main(["eval", "e2e", "--data", str(dataset), "--models", str(toy_models), "--out", str(out)])
    assert rc == 0
    m = json.loads(out.read_text(encoding="utf-8"))
    assert (m["n_images"], m["n_plates"], m["detection_recall"], m["detection_precision"]) == (2, 1, 1.0, 0.5)
    assert m["plate_exact"] is None and m["province_top1"] is None
    assert m["min_text_confidence_from"] == "fallback"  # the toy reader's YAML names no gate, and the run says so
    captured = capsys.readouterr()
    assert "detection_precision" in captured.out and "names no reading gate" in captured.err


def test_match_is_one_to_one_best_first() -> None:
    gts = [(0.0, 0.0, 10.0, 10.0)]
    assert match([(0.0, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 10.0)], gts) == {0: 0}
    assert match([(20.0, 20.0, 30.0, 30.0)], gts) == {}


def test_predict_cli_json_draw_and_bad_file(toy_models: Path, dataset: Path, tmp_path: Path, capsys) -> None:
    draw = tmp_path / "drawn"
    rc = cli_main(
        [
            "predict",
            str(dataset / "a.jpg"),
            str(dataset / "d.jpg"),
            str(dataset / "nope.png"),
            "--json",
            "--models",
            str(toy_models),
            "--draw",
            str(draw),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 1  # two of three failed
    lines = out.strip().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["file"].endswith("a.jpg") and rec["plates"][0]["text"] == "กข 1234"
    assert "d.jpg" in err and "nope.png" in err
    assert (draw / "a.plates.jpg").is_file()
    drawn = np.asarray(Image.open(draw / "a.plates.jpg"))
    assert drawn.shape == (480, 640, 3) and drawn[240, 261, 1] > 150  # green box, left edge


def test_predict_single_image_draw_to_file(toy_models: Path, dataset: Path, tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "out.png"
    rc = cli_main(["predict", str(dataset / "a.jpg"), "--models", str(toy_models), "--draw", str(out_file)])
    assert rc == 0 and out_file.is_file()
    assert json.loads(capsys.readouterr().out)["image"] == {"width": 640, "height": 480}


def test_predict_with_a_bad_crop_setting_fails_clearly(toy_models: Path, dataset: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("THAIPLATE_CROP", "warp")
    rc = cli_main(["predict", str(dataset / "a.jpg"), "--models", str(toy_models)])
    out, err = capsys.readouterr()
    assert rc == 2 and not out
    assert "cannot start: unknown crop 'warp' (THAIPLATE_CROP): choose one of rectify, margin" in err
    rc = cli_main(["eval", "e2e", "--data", str(dataset), "--models", str(toy_models)])
    assert rc == 2 and "thaiplate eval e2e: cannot start: unknown crop 'warp'" in capsys.readouterr().err


def test_partial_pipelines_like_the_dag_nodes(toy_models: Path) -> None:
    from thaiplate.classify import OnnxClassifier
    from thaiplate.recognize import OnnxRecognizer

    crops = [np.full((40, 120, 3), 200, np.uint8), np.full((10, 30, 3), 50, np.uint8)]
    rec_only = Pipeline(None, OnnxRecognizer.from_dir(toy_models))
    x = rec_only.plate_input(crops)
    assert isinstance(x, np.ndarray) and x.shape == (2, 3, 64, 192)  # computed once, shared
    assert [r.text for r in rec_only.read_crops(x)] == ["กข 1234"] * 2
    cls_only = Pipeline(None, None, OnnxClassifier.from_dir(toy_models))
    assert [g[0].code for g in cls_only.classify_crops(cls_only.plate_input(crops))] == ["TH-10"] * 2
    assert cls_only.models == {"classifier": "toy-cla"}
    assert rec_only.classify_crops(x) == [[], []]


def _plate(box: tuple[float, float, float, float], text: str, conf: float) -> PlateResult:
    return PlateResult(box, 0.9, text, conf, [], [], text, None, [], "car")


def test_gate_sweep_picks_the_highest_gate_that_keeps_the_right_readings() -> None:
    gt = (0.0, 0.0, 10.0, 10.0)
    right = Sample(Path("a.jpg"), [LabelledPlate(gt, "1กข 1234")])
    wrong = Sample(Path("b.jpg"), [LabelledPlate(gt, "2กข 1234")])
    outcomes = [
        (right, PipelineResult([_plate(gt, "1กข 1234", 0.5), _plate((50.0, 50.0, 60.0, 60.0), "ฐ 3", 0.02)], {})),
        (wrong, PipelineResult([_plate(gt, "2กข 1235", 0.03)], {})),
        (Sample(Path("c.jpg"), [LabelledPlate(gt, "3กข 1234")]), None),  # undecodable: its plate is missed
    ]
    s = sweep_gate(outcomes, [0.6, 0.0, 0.025, 0.04])
    rows = {r["min_text_confidence"]: r for r in s["sweep"]}
    assert [r["min_text_confidence"] for r in s["sweep"]] == [0.0, 0.025, 0.04, 0.6]
    assert [rows[g]["n_detections"] for g in (0.0, 0.025, 0.04, 0.6)] == [3, 2, 1, 0]
    assert rows[0.025]["detection_precision"] == 1.0 and rows[0.04]["detection_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert rows[0.04]["plate_exact"] == rows[0.0]["plate_exact"] == pytest.approx(1 / 3, abs=1e-4)
    assert rows[0.6]["plate_exact"] == 0.0
    # best F1 would be 0.025 (false box gone, true ones kept); the rule keeps every right reading instead
    assert max(s["sweep"], key=lambda r: r["f1"])["min_text_confidence"] == 0.025
    assert s["best_min_text_confidence"] == 0.04
    assert sweep_gate(outcomes, [0.0, 0.6], max_read_loss=1.0)["best_min_text_confidence"] == 0.6


def test_sweep_records_the_gate_and_the_pipeline_uses_it(toy_models: Path, dataset: Path, tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    shutil.copytree(toy_models, models)
    assert Pipeline.from_dir(models).min_text_confidence == MIN_TEXT_CONFIDENCE  # no gate in the YAML yet
    out = tmp_path / "sweep.json"
    rc = cli_main(["eval", "e2e", "--data", str(dataset), "--models", str(models), "--subset", "a",
                   "--sweep", "0,0.001,0.99", "--record", "--out", str(out)])
    assert rc == 0
    m = json.loads(out.read_text(encoding="utf-8"))
    assert m["n_images"] == 1 and m["subset"] == "a"
    assert m["sweep"][0]["plate_exact"] == 1.0 and m["sweep"][-1]["n_detections"] == 0  # toy reads below 0.99
    assert m["best_min_text_confidence"] == 0.001
    spec = yaml.safe_load((models / "recognizer.yaml").read_text(encoding="utf-8"))
    assert spec["decoding"]["min_text_confidence"] == 0.001 and "a" in spec["decoding"]["min_text_confidence_chosen_on"]
    assert Pipeline.from_dir(models).min_text_confidence == 0.001
    assert "highest gate" in capsys.readouterr().out
    assert cli_main(["eval", "e2e", "--data", str(dataset), "--models", str(models), "--out", str(out)]) == 0
    m = json.loads(out.read_text(encoding="utf-8"))
    assert (m["min_text_confidence"], m["min_text_confidence_from"]) == (0.001, "recognizer.yaml")
    assert "names no reading gate" not in capsys.readouterr().err
    assert cli_main(["eval", "e2e", "--data", str(dataset), "--models", str(models), "--record"]) == 2


def test_e2e_against_pairs_the_plates_read_by_each_pipeline(toy_models: Path, dataset: Path, tmp_path: Path,
                                                             capsys) -> None:
    """Same images through two pipelines: a plate read right by one only is a discordant pair, in its width bucket."""
    other = write_toy_models(tmp_path / "other", plate_text="ขค 99")  # reads the one found plate wrong
    out = dataset / "m.json"
    args = ["eval", "e2e", "--data", str(dataset), "--models", str(toy_models), "--out", str(out)]
    assert cli_main([*args, "--against", str(other)]) == 0
    a = json.loads(out.read_text(encoding="utf-8"))["against"]
    assert a["plate_exact"] == 0.0 and a["detection_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert a["paired"]["all"] == {"n": 3, "both": 0, "only_a": 1, "only_b": 0, "neither": 2, "diff": 0.3333,
                                  "p_value": 1.0}
    assert a["paired"]["80-130"]["only_a"] == 1 and a["paired"]["<30"]["neither"] == 1
    assert "read right by --models only 1" in capsys.readouterr().out
    assert cli_main([*args, "--against", str(toy_models)]) == 0  # itself: no discordant plate
    assert json.loads(out.read_text(encoding="utf-8"))["against"]["paired"]["all"]["only_a"] == 0
    assert cli_main([*args, "--against", str(tmp_path / "missing")]) == 2
    assert "--against" in capsys.readouterr().err
