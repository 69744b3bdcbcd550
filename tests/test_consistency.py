"""Consistency training of the reader: a crop and its row-shifted copy should read alike (RecognizerTask)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from tests.test_distill import tiny_set  # noqa: E402
from thaiplate.train.loop import TrainConfig  # noqa: E402
from thaiplate.train.recognizer import RecognizerTask, consistency_kl, shift_rows  # noqa: E402
from thaiplate.views import view  # noqa: E402


def test_shift_rows_moves_content_and_repeats_the_edge_row():
    x = torch.arange(2 * 1 * 5 * 3, dtype=torch.float32).reshape(2, 1, 5, 3)
    y = shift_rows(x, torch.tensor([1, -2]))
    assert torch.equal(y[0, 0, 1:], x[0, 0, :-1]) and torch.equal(y[0, 0, 0], x[0, 0, 0])  # down by one
    assert torch.equal(y[1, 0, :3], x[1, 0, 2:]) and torch.equal(y[1, 0, 3:], x[1, 0, 4:].expand(2, 3))  # up by two
    assert torch.equal(shift_rows(x, torch.tensor([0, 0])), x)


def test_a_whole_margin_shift_is_the_serving_up_view():
    """The training shift and the serving "up" view (one margin = 0.06 of the height) cut the same pixels when
    the margin is a whole number of rows: what is trained is what the views read."""
    x = torch.rand(2, 3, 50, 8)  # 0.06 * 50 = 3 rows
    assert np.allclose(shift_rows(x, torch.tensor([-3, -3])).numpy(), view(x.numpy(), "up"), atol=1e-6)


def test_consistency_kl_is_zero_for_equal_readings_and_symmetric():
    torch.manual_seed(0)
    a, b = torch.randn(2, 6, 9).log_softmax(-1), torch.randn(2, 6, 9).log_softmax(-1)
    assert float(consistency_kl(a, a)) == pytest.approx(0.0, abs=1e-7)
    assert float(consistency_kl(a, b)) == pytest.approx(float(consistency_kl(b, a)), rel=1e-6)
    assert float(consistency_kl(a, b)) > 0


def test_task_reads_the_shifted_copy_and_adds_the_term(tmp_path):
    """With ``consistency`` the loss is the mean CTC of both readings plus the weighted KL between them;
    the shifted copy is drawn by the task itself (1..shift_px rows, either way)."""
    cfg = TrainConfig(task="recognizer", data="-", val_data="-", out=str(tmp_path), model={"stem": "full"},
                      consistency={"weight": 0.5, "shift_px": 3})
    task = RecognizerTask()
    model = task.build_model(cfg).eval()
    assert (task.consistency_weight, task.shift_px) == (0.5, 3)
    data, x = tiny_set(), torch.rand(4, 3, 64, 192) * 2 - 1
    rows = np.arange(len(data))
    torch.manual_seed(1)
    with torch.no_grad():
        loss = float(task.loss(model, x, rows, data))
        torch.manual_seed(1)
        shifts = torch.randint(1, 4, (4,)) * (2 * torch.randint(0, 2, (4,)) - 1)
        a, b = model(x), model(shift_rows(x, shifts))
        want = (task._ctc(a, data, rows) + task._ctc(b, data, rows)) / 2 + 0.5 * consistency_kl(a, b)
    assert loss == pytest.approx(float(want), rel=1e-5)
    assert float(consistency_kl(a, b)) > 0


@pytest.mark.parametrize("name", ["train_recognizer", "train_recognizer_slim", "train_recognizer_consistency"])
def test_shipped_recognizer_configs_load_and_build(name):
    """Every recogniser config in the package parses (no unknown keys) and builds a model that reads a crop;
    the consistency config turns the term on, the others leave it off."""
    from importlib import resources

    path = resources.files("thaiplate.configs").joinpath(f"{name}.yaml")
    cfg = TrainConfig.from_yaml(str(path))
    task = RecognizerTask()
    model = task.build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, cfg.height, cfg.width))
    assert out.ndim == 3 and out.shape[0] == 1
    assert (task.consistency_weight > 0) == (name == "train_recognizer_consistency")


def test_a_config_with_base_takes_the_keys_it_leaves_out(tmp_path):
    """``base:`` is resolved relative to the file, chains, and the variant's own keys and CLI overrides win."""
    (tmp_path / "a.yaml").write_text("task: recognizer\ndata: d\nval_data: v\nout: o\nlr: 0.1\nseed: 3\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nlr: 0.2\nconsistency: {weight: 2.0}\n")
    (tmp_path / "c.yaml").write_text("base: sub/b.yaml\nseed: 4\n")
    cfg = TrainConfig.from_yaml(tmp_path / "c.yaml", epochs=5)
    assert (cfg.data, cfg.lr, cfg.seed, cfg.epochs, cfg.consistency) == ("d", 0.2, 4, 5, {"weight": 2.0})
