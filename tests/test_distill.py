"""Distillation of a narrow reader from a wide one: the KL term and how the recogniser task adds it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from thaiplate.nets import CRNN  # noqa: E402
from thaiplate.train.data import PlateSet  # noqa: E402
from thaiplate.train.loop import TrainConfig  # noqa: E402
from thaiplate.train.recognizer import RecognizerTask, distill_kl  # noqa: E402


def test_distill_kl_matches_the_definition():
    torch.manual_seed(0)
    student = torch.randn(2, 5, 7).log_softmax(-1)
    teacher = torch.randn(2, 5, 7).log_softmax(-1)
    assert float(distill_kl(teacher, teacher, 2.0)) == pytest.approx(0.0, abs=1e-6)
    t = 2.0
    p = (teacher / t).softmax(-1)
    q = (student / t).softmax(-1)
    by_hand = (p * (p.log() - q.log())).sum(-1).mean() * t * t
    assert float(distill_kl(student, teacher, t)) == pytest.approx(float(by_hand), rel=1e-5)
    assert float(distill_kl(student, teacher, t)) > 0


def tiny_set(n: int = 4) -> PlateSet:
    rng = np.random.default_rng(0)
    return PlateSet(
        images=rng.integers(0, 255, (n, 64, 192, 3), dtype=np.uint8),
        texts=["1กข 1234", "ฆฎ 89", "9รถ 2019", "ทฬ 8414"][:n],
        provinces=np.zeros(n, np.int64),
        plate_types=[""] * n,
        files=[f"{i}.png" for i in range(n)],
        notes=[""] * n,
    )


def test_task_adds_the_teacher_term(tmp_path):
    """Same weights as the teacher: the loss is plain CTC; a different student pays a KL on top."""
    torch.manual_seed(0)
    wide = CRNN(stem="full").eval()
    torch.save(wide.state_dict(), tmp_path / "teacher.pt")
    cfg = TrainConfig(
        task="recognizer", data="-", val_data="-", out=str(tmp_path), model={"stem": "full"},
        teacher=str(tmp_path / "teacher.pt"), teacher_model={"stem": "full"}, distill={"weight": 0.5, "temperature": 2.0},
    )
    task = RecognizerTask()
    student = task.build_model(cfg).eval()
    student.load_state_dict(wide.state_dict())
    data = tiny_set()
    rows = np.arange(len(data))
    x = torch.rand(len(data), 3, 64, 192) * 2 - 1
    with torch.no_grad():
        ctc_only = task._ctc(student(x), data, rows)
        assert float(task.loss(student, x, rows, data)) == pytest.approx(float(ctc_only), rel=1e-5)
        other = CRNN(stem="full").eval()
        kl = distill_kl(other(x), wide(x), 2.0)
        assert float(task.loss(other, x, rows, data)) == pytest.approx(
            float(task._ctc(other(x), data, rows) + 0.5 * kl), rel=1e-5
        )
