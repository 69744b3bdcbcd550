"""Weight averaging ("model soup"): the mean is exact, counters are kept, mismatches are refused, and a soup
checkpoint goes through `thaiplate train soup` and `train export` like a trained run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
ort = pytest.importorskip("onnxruntime")

from thaiplate.nets import ProvinceNet  # noqa: E402
from thaiplate.train.soup import SoupError, average_states, write_soup  # noqa: E402

SMALL = {"widths": [8, 8, 16, 16], "blocks": [1, 1, 1, 1], "dropout": 0.0}


def _net(seed: int) -> ProvinceNet:
    torch.manual_seed(seed)
    net = ProvinceNet(**SMALL)
    for mod in net.modules():  # distinct BatchNorm statistics per member, so averaging them is checked too
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2.0)
            mod.num_batches_tracked.fill_(seed + 1)
    return net.eval()


def test_average_is_the_elementwise_mean_and_keeps_counters():
    a, b, c = (_net(s).state_dict() for s in (1, 2, 3))
    soup = average_states([a, b, c])
    for k, v in soup.items():
        if v.is_floating_point():
            assert torch.allclose(v, (a[k] + b[k] + c[k]) / 3, atol=1e-6), k
        else:
            assert torch.equal(v, a[k]), k  # num_batches_tracked: the first member's counter
    assert any("running_var" in k for k in soup)


def test_soup_of_one_model_is_that_model():
    a = _net(4).state_dict()
    soup = average_states([a, a])
    assert all(torch.equal(soup[k], a[k]) for k in a)


def test_mismatched_members_are_refused():
    with pytest.raises(SoupError, match="member 2"):
        average_states([_net(1).state_dict(), ProvinceNet(widths=[8, 8, 16, 24], blocks=[1, 1, 1, 1]).state_dict()])
    with pytest.raises(SoupError, match="no members"):
        average_states([])
    with pytest.raises(SoupError, match="two or more"):
        write_soup([Path("models/recognizer.pt")], Path("runs/x"), Path("runs/y"))


def test_soup_cli_writes_a_checkpoint_that_exports(tmp_path):
    members = []
    for seed in (1, 2):
        torch.save(_net(seed).state_dict(), tmp_path / f"m{seed}.pt")
        members.append(str(tmp_path / f"m{seed}.pt"))
    run = tmp_path / "template"
    run.mkdir()
    config = {"height": 64, "width": 192, "model": SMALL, "data": "d", "val_data": "v", "epochs": 1, "seed": 0,
              "batch_size": 8, "lr": 1e-3}
    torch.save({"config": config, "model": _net(9).state_dict(), "metrics": {}}, run / "best.pt")
    cli = [sys.executable, "-m", "thaiplate.cli", "train"]
    out = subprocess.run([*cli, "soup", "classifier", "--members", *members, "--template", str(run),
                          "--out", str(tmp_path / "soup")], capture_output=True, text=True, check=True)
    assert "averaged 2 members" in out.stdout
    models = tmp_path / "models"
    models.mkdir()
    (models / "classifier.int8.onnx").write_bytes(b"INT8 copy of the model this export replaces")
    subprocess.run([*cli, "export", "classifier", "--run", str(tmp_path / "soup"), "--models", str(models)],
                   capture_output=True, text=True, check=True)
    assert not (models / "classifier.int8.onnx").exists()  # stale once the model it was made from is replaced
    assert "file: classifier.onnx" in (models / "classifier.yaml").read_text(encoding="utf-8")
    expected = ProvinceNet(**SMALL)
    expected.load_state_dict(average_states([_net(1).state_dict(), _net(2).state_dict()]))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 192)).astype(np.float32)
    with torch.no_grad():
        ref = expected.eval()(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(models / "classifier.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"image": x})[0] - ref).max() < 1e-4


def _tiny_reader_run(tmp_path: Path, checkpoints: tuple[str, ...] = ("best.pt",)) -> Path:
    """A run folder holding a 16-unit CRNN checkpoint under each name (val_data ``v``), ready for ``train export``."""
    from thaiplate.nets import CRNN

    run = tmp_path / "run"
    run.mkdir()
    config = {"height": 64, "width": 192, "model": {"hidden": 16}, "data": "d", "val_data": "v", "epochs": 1,
              "seed": 0, "batch_size": 8, "lr": 1e-3}
    torch.manual_seed(0)
    for name in checkpoints:
        torch.save({"config": config, "model": CRNN(hidden=16).state_dict(), "metrics": {}}, run / name)
    return run


def test_recognizer_export_says_it_has_no_reading_gate(tmp_path):
    """A fresh reader export carries no ``min_text_confidence`` (each version's own calibration), and says so."""
    run = _tiny_reader_run(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    out = subprocess.run([sys.executable, "-m", "thaiplate.cli", "train", "export", "recognizer", "--run", str(run),
                          "--models", str(models)], capture_output=True, text=True, check=True)
    assert "no reading gate yet" in out.stdout and "--sweep --record" in out.stdout
    assert "min_text_confidence" not in (models / "recognizer.yaml").read_text(encoding="utf-8")


def test_card_says_whether_the_held_out_set_chose_the_checkpoint_and_where_the_gate_came_from(tmp_path):
    """best.pt was chosen on val_data, last.pt was not; the gate line quotes its recorded provenance verbatim."""
    from thaiplate.modelcard import record_gate

    run = _tiny_reader_run(tmp_path, ("best.pt", "last.pt"))
    cards = {}
    for name in ("best.pt", "last.pt"):
        models = tmp_path / name
        models.mkdir()
        subprocess.run([sys.executable, "-m", "thaiplate.cli", "train", "export", "recognizer", "--run", str(run),
                        "--checkpoint", name, "--models", str(models)], capture_output=True, text=True, check=True)
        assert f"checkpoint: {name}" in (models / "recognizer.yaml").read_text(encoding="utf-8")
        cards[name] = (models / "recognizer.md").read_text(encoding="utf-8")
    assert "`v` used for model selection" in cards["best.pt"]
    assert "`v` for the curves only (the run's `last.pt` was exported" in cards["last.pt"]
    assert "model selection" not in cards["last.pt"]

    record_gate(tmp_path / "last.pt", 0.15, "the gate its adoption rule judged it at")
    card = (tmp_path / "last.pt" / "recognizer.md").read_text(encoding="utf-8")
    assert "at least **0.15** (`decoding.min_text_confidence`: the gate its adoption rule judged it at)." in card
    assert "--sweep --record" not in card.split("Reading gate:")[1].splitlines()[0]


def test_detector_soup_averages_the_network_and_keeps_the_template(tmp_path):
    """The detector's members are ultralytics checkpoints (a dict whose `model` is the network); plain modules
    stand in here, as ultralytics lives in the training venv only (the real soup is checked in runs/v14)."""
    from thaiplate.train.soup import write_detector_soup

    members = []
    for seed in (1, 2):
        path = tmp_path / f"m{seed}.pt"
        torch.save({"model": _net(seed), "ema": _net(9), "optimizer": {"lr": 1}, "train_args": {"seed": seed}}, path)
        members.append(path)
    out = write_detector_soup(members, tmp_path / "soup")
    assert out == tmp_path / "soup" / "weights" / "last.pt"
    ckpt = torch.load(out, map_location="cpu", weights_only=False)
    a, b = (_net(s).state_dict() for s in (1, 2))
    for k, v in ckpt["model"].state_dict().items():
        want = (a[k] + b[k]) / 2 if v.is_floating_point() else a[k]
        assert torch.allclose(v, want, atol=1e-6), k
    assert ckpt["ema"] is None and ckpt["optimizer"] is None
    assert ckpt["train_args"] == {"seed": 2, "soup": [str(m) for m in members]}  # the last member is the template
    assert yaml.safe_load((tmp_path / "soup" / "args.yaml").read_text())["seed"] == 2  # read by --export-only
    with pytest.raises(SoupError, match="not a detector checkpoint"):
        torch.save({"model": a}, tmp_path / "state.pt")  # a bare state dict is not a network
        write_detector_soup([members[0], tmp_path / "state.pt"], tmp_path / "bad")


def test_soup_cli_says_what_is_wrong(tmp_path):
    cli = [sys.executable, "-m", "thaiplate.cli", "train", "soup"]
    torch.save(_net(1).state_dict(), tmp_path / "m1.pt")
    missing = subprocess.run([*cli, "detector", "--members", str(tmp_path / "m1.pt"), str(tmp_path / "nope.pt"),
                              "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such weight file" in missing.stderr and "nope.pt" in missing.stderr
    no_template = subprocess.run([*cli, "classifier", "--members", str(tmp_path / "m1.pt"), str(tmp_path / "m1.pt"),
                                  "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert no_template.returncode == 2 and "--template RUN is required" in no_template.stderr
    not_a_network = subprocess.run([*cli, "detector", "--members", str(tmp_path / "m1.pt"), str(tmp_path / "m1.pt"),
                                    "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert not_a_network.returncode == 2 and "not a detector checkpoint" in not_a_network.stderr
    assert "Traceback" not in missing.stderr + no_template.stderr + not_a_network.stderr
