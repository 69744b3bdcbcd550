"""Recogniser task: CRNN + CTC loss; held-out metrics are greedy exact-match and CER.

With a ``teacher`` the loss adds frame-level distillation: KL(teacher || student) of the per-frame
distributions softened by a temperature. CTC alone tells the student which string, not where; the
teacher's frames also say where each glyph sits and which look-alikes it is near: a denser signal for
a narrow student recovering from pruning (v22: ``runs/rule-v22-slim.md``; not compared with CTC alone).

With ``consistency`` the loss reads each crop twice, as is and shifted up or down by a few rows, and adds a
per-frame symmetric KL between the two readings: the reader's answer changes under small box moves on ~9 % of
plates (``thaiplate eval crop-stability``), and five shifted views read +7 pt on real crops; this asks one
reading to be as steady (a vertical shift keeps the frames aligned; the CRNN reads two feature rows).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from thaiplate import ctc, labels
from thaiplate.eval.textmetrics import cer, exact
from thaiplate.nets import CRNN
from thaiplate.nets.crnn import is_strided_state, widen_stem_state
from thaiplate.nets.slim import is_narrower, slim_state
from thaiplate.train.data import PlateSet
from thaiplate.train.loop import Task, TrainConfig, eval_batches, init_state


def distill_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean per-frame KL(teacher || student) of log-probabilities softened by ``temperature``, times T^2
    (so its gradient scale does not shrink as T grows)."""
    s = F.log_softmax(student / temperature, dim=-1)
    t = F.log_softmax(teacher / temperature, dim=-1)
    kl = F.kl_div(s, t, log_target=True, reduction="none").sum(-1)
    return kl.mean() * temperature**2


def shift_rows(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each ``(C, H, W)`` image of ``x`` moved down by ``shifts[i]`` rows (up if negative), edge rows repeated:
    the "up"/"down" views of ``thaiplate.views`` at whole-pixel steps."""
    h = x.shape[-2]
    idx = (torch.arange(h)[None, :] - shifts[:, None]).clamp(0, h - 1)  # (N, H) source row per output row
    return torch.gather(x, 2, idx[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[3]))


def consistency_kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean per-frame symmetric KL between two readings' log-probabilities of the same plates (the
    distillation KL both ways, at temperature 1)."""
    return 0.5 * (distill_kl(a, b, 1.0) + distill_kl(b, a, 1.0))


class RecognizerTask(Task):
    name = "recognizer"
    select_metric = "exact"

    def __init__(self) -> None:
        self._targets: dict[int, list[int]] = {}
        self.teacher: nn.Module | None = None
        self.distill_weight = 1.0
        self.temperature = 2.0
        self.consistency_weight = 0.0
        self.shift_px = 4

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        if cfg.teacher:
            self.teacher = CRNN(**cfg.teacher_model)
            self.teacher.load_state_dict(init_state(cfg.teacher))
            self.teacher.eval().requires_grad_(False)
            self.distill_weight = float(cfg.distill.get("weight", self.distill_weight))
            self.temperature = float(cfg.distill.get("temperature", self.temperature))
            print(
                f"[recognizer] distilling from {cfg.teacher} (weight {self.distill_weight}, T {self.temperature})",
                flush=True,
            )
        if cfg.consistency:
            self.consistency_weight = float(cfg.consistency.get("weight", 1.0))
            self.shift_px = int(cfg.consistency.get("shift_px", self.shift_px))
            print(
                f"[recognizer] consistency between each crop and a copy shifted by up to {self.shift_px} rows "
                f"(weight {self.consistency_weight})",
                flush=True,
            )
        return CRNN(**cfg.model)

    def adapt_init(self, model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        wants_full = not is_strided_state(model.state_dict())
        if wants_full and is_strided_state(state):
            print("[recognizer] widening the strided stem of the init weights to the full-resolution stem")
            state = widen_stem_state(state)
        if is_narrower(state, model.state_dict()):
            print("[recognizer] pruning the init weights to the model's narrower widths (thaiplate.nets.slim)")
            state = slim_state(state, model.state_dict())
        return state

    def _encode(self, data: PlateSet, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        # cache per PlateSet object: encoding 60k strings every epoch is wasted work
        key = id(data)
        cache = self._targets.get(key)
        if cache is None:
            cache = self._targets[key] = [labels.encode(t) for t in data.texts]
        seqs = [cache[int(r)] for r in rows]
        return (
            torch.tensor([c for s in seqs for c in s], dtype=torch.long),
            torch.tensor([len(s) for s in seqs], dtype=torch.long),
        )

    def _ctc(self, log_probs: torch.Tensor, data: PlateSet, rows: np.ndarray) -> torch.Tensor:
        targets, target_lengths = self._encode(data, rows)
        n, t, _ = log_probs.shape
        input_lengths = torch.full((n,), t, dtype=torch.long)
        return F.ctc_loss(
            log_probs.transpose(0, 1),
            targets,
            input_lengths,
            target_lengths,
            blank=labels.BLANK,
            zero_infinity=True,
        )

    def loss(self, model: nn.Module, x: torch.Tensor, rows: np.ndarray, data: PlateSet) -> torch.Tensor:
        log_probs = model(x)
        loss = self._ctc(log_probs, data, rows)
        if self.consistency_weight:
            shifts = torch.randint(1, self.shift_px + 1, (len(x),)) * (2 * torch.randint(0, 2, (len(x),)) - 1)
            shifted = model(shift_rows(x, shifts))
            loss = (loss + self._ctc(shifted, data, rows)) / 2 + self.consistency_weight * consistency_kl(log_probs, shifted)
        if self.teacher is not None:
            with torch.no_grad():
                teacher = self.teacher(x)
            loss = loss + self.distill_weight * distill_kl(log_probs, teacher, self.temperature)
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: PlateSet, batch_size: int) -> dict[str, float]:
        model.eval()
        losses, pairs = [], []
        for x, rows in eval_batches(data, np.arange(len(data)), batch_size):
            lp = model(x)
            losses.append(float(self._ctc(lp, data, rows)) * len(rows))
            for r, seq in zip(rows, lp.numpy(), strict=True):
                ids, _ = ctc.greedy_decode(seq)
                pairs.append((data.texts[int(r)], labels.decode_ids(ids)))
        return {"val_loss": sum(losses) / max(1, len(data)), "exact": exact(pairs), "cer": cer(pairs)}
