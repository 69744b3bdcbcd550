"""Province classifier task: ProvinceNet + label-smoothed cross-entropy; metrics top-1 / top-3."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from thaiplate.nets import ProvinceNet
from thaiplate.train.data import PlateSet
from thaiplate.train.loop import Task, TrainConfig, eval_batches

LABEL_SMOOTHING = 0.05


class ClassifierTask(Task):
    name = "classifier"
    select_metric = "top1"

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        return ProvinceNet(**cfg.model)

    def usable(self, data: PlateSet) -> np.ndarray:
        return np.flatnonzero(data.provinces >= 0)

    def loss(self, model: nn.Module, x: torch.Tensor, rows: np.ndarray, data: PlateSet) -> torch.Tensor:
        y = torch.from_numpy(data.provinces[rows])
        return F.cross_entropy(model(x), y, label_smoothing=LABEL_SMOOTHING)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: PlateSet, batch_size: int) -> dict[str, float]:
        model.eval()
        rows = self.usable(data)
        loss = top1 = top3 = 0.0
        for x, chunk in eval_batches(data, rows, batch_size):
            logits = model(x)
            y = torch.from_numpy(data.provinces[chunk])
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            top = logits.topk(3, dim=1).indices
            top1 += float((top[:, 0] == y).sum())
            top3 += float((top == y[:, None]).any(dim=1).sum())
        n = max(1, len(rows))
        return {"val_loss": loss / n, "top1": top1 / n, "top3": top3 / n}
