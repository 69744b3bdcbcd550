"""The training loop shared by the recogniser and the province classifier.

A ``Task`` says what differs (model, loss, metrics); everything else lives here once: seeding, data
loading + jitter, AdamW with warmup + cosine decay, periodic eval on a held-out synthetic set,
``last.pt`` / ``best.pt`` checkpoints every epoch, ``--resume``, and a run folder with ``config.yaml``,
``metrics.csv`` and ``curves.png`` (the ultralytics "one run, one folder" habit).
"""

from __future__ import annotations

import csv
import math
import random
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm import tqdm

from thaiplate.preprocess import normalize
from thaiplate.train.data import Jitter, PlateSet, load_plate_set


@dataclass
class TrainConfig:
    """Every key of ``thaiplate/configs/train_*.yaml``; the YAML files document each default."""

    task: str
    data: str
    val_data: str
    out: str
    epochs: int = 6
    epoch_size: int | None = None  # samples per epoch (a fresh random subset each epoch); None = all rows
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    grad_clip: float = 5.0
    seed: int = 1
    threads: int = 2
    eval_every: int = 0  # steps between evals; 0 = once per epoch
    limit: int | None = None  # use only the first N training rows (smoke runs)
    init: str | None = None  # warm start: a state dict (e.g. models/recognizer.pt) loaded before step 0
    val_limit: int | None = None
    height: int = 64
    width: int = 192
    jitter: dict = field(default_factory=dict)  # Jitter fields
    model: dict = field(default_factory=dict)  # model constructor kwargs
    teacher: str | None = None  # recogniser only: distil from these CRNN weights; None = no teacher
    teacher_model: dict = field(default_factory=dict)  # the teacher's constructor kwargs
    distill: dict = field(default_factory=dict)  # weight, temperature of the distillation term
    consistency: dict = field(default_factory=dict)  # recogniser only: weight, shift_px (RecognizerTask)

    @staticmethod
    def read_yaml(path: str | Path) -> dict:
        """A config file's keys; ``base: OTHER.yaml`` (relative to this file) supplies every key it leaves out,
        so a variant states only what it changes."""
        path = Path(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        base = raw.pop("base", None)
        return {**TrainConfig.read_yaml(path.parent / base), **raw} if base else raw

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: object) -> TrainConfig:
        raw = cls.read_yaml(path)
        raw.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown config keys in {path}: {sorted(unknown)}")
        return cls(**raw)


class Task(ABC):
    """What the loop needs to know about one model family."""

    name: str
    select_metric: str  # higher is better; picks best.pt

    @abstractmethod
    def build_model(self, cfg: TrainConfig) -> nn.Module: ...

    def adapt_init(self, model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map a warm-start state dict onto ``model`` (e.g. an older architecture); identity by default."""
        return state

    def usable(self, data: PlateSet) -> np.ndarray:
        """Indices of rows this task can learn from (e.g. rows with a province label)."""
        return np.arange(len(data))

    @abstractmethod
    def loss(self, model: nn.Module, x: torch.Tensor, rows: np.ndarray, data: PlateSet) -> torch.Tensor: ...

    @abstractmethod
    def evaluate(self, model: nn.Module, data: PlateSet, batch_size: int) -> dict[str, float]:
        """Held-out metrics; must include ``val_loss`` and ``select_metric``."""


class CropDataset(Dataset):
    """uint8 crops -> normalised float tensors, jittered when training."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, jitter: Jitter | None, seed: int = 0) -> None:
        self.images, self.rows, self.jitter = images, rows, jitter
        self.rng = np.random.default_rng(seed)

    def set_epoch(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = int(self.rows[i])
        img = self.images[row]
        if self.jitter is not None:
            img = self.jitter(img, self.rng)
        return torch.from_numpy(normalize(img)), row


def eval_batches(
    data: PlateSet, rows: np.ndarray, batch_size: int
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Un-jittered batches for evaluation."""
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        yield torch.from_numpy(normalize(data.images[chunk])), chunk


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup_cosine(total_steps: int, warmup_frac: float) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_frac))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def plot_curves(csv_path: Path, png_path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    x = [float(r["epoch_float"]) for r in rows]
    metric_keys = [
        k
        for k in rows[0]
        if k not in {"epoch", "epoch_float", "step", "lr", "seconds", "train_loss", "val_loss"}
    ]
    fig, axes = plt.subplots(1, 1 + len(metric_keys), figsize=(4.2 * (1 + len(metric_keys)), 3.4))
    axes[0].plot(x, [float(r["train_loss"]) for r in rows], label="train")
    axes[0].plot(x, [float(r["val_loss"]) for r in rows], label="held-out")
    axes[0].set_title("loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    for ax, k in zip(axes[1:], metric_keys, strict=True):
        ax.plot(x, [float(r[k]) for r in rows], marker="o", ms=3)
        ax.set_title(k)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


@dataclass
class RunState:
    epoch: int = 0  # completed epochs
    step: int = 0
    best: list[float] = field(default_factory=lambda: [-math.inf, -math.inf])  # (select_metric, -val_loss)
    best_metrics: dict = field(default_factory=dict)


def init_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in ``path``: an exported state dict (``models/recognizer.pt``) or a run's checkpoint
    (``runs/X/best.pt``, whose weights sit under ``model``), so a run can warm-start from another run."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state.get("model"), dict):
        return state["model"]
    return state


def train(task: Task, cfg: TrainConfig, resume: bool = False, progress: bool | None = None) -> RunState:
    """Train ``task`` per ``cfg``; returns the final state (best metric and its metrics)."""
    torch.set_num_threads(cfg.threads)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    seed_everything(cfg.seed)
    progress = sys.stderr.isatty() if progress is None else progress
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False, allow_unicode=True))

    train_set = load_plate_set(cfg.data, cfg.height, cfg.width, cfg.limit)
    val_set = load_plate_set(cfg.val_data, cfg.height, cfg.width, cfg.val_limit)
    rows = task.usable(train_set)
    print(
        f"[{task.name}] train {len(rows)} / {len(train_set)} rows from {cfg.data}; held-out {len(val_set)}",
        flush=True,
    )

    model = task.build_model(cfg)
    if cfg.init and not (resume and (out / "last.pt").exists()):
        # fine-tune the committed weights on new data instead of paying for the slow CTC start again
        model.load_state_dict(task.adapt_init(model, init_state(cfg.init)))
        print(f"[{task.name}] initialised from {cfg.init}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dataset = CropDataset(train_set.images, rows, Jitter(**cfg.jitter), cfg.seed)
    loader_gen = torch.Generator().manual_seed(cfg.seed)
    n_epoch = min(cfg.epoch_size or len(rows), len(rows))
    sampler = RandomSampler(dataset, num_samples=n_epoch, generator=loader_gen)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, drop_last=True)
    steps_per_epoch = len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(cfg.epochs * steps_per_epoch, cfg.warmup_frac)
    )

    state = RunState()
    csv_path = out / "metrics.csv"
    if resume and (out / "last.pt").exists():
        ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        state = RunState(**ckpt["state"])
        loader_gen.set_state(ckpt["loader_rng"])
        print(f"[{task.name}] resumed from {out / 'last.pt'} after epoch {state.epoch}", flush=True)
    elif csv_path.exists():
        csv_path.unlink()

    eval_every = cfg.eval_every or steps_per_epoch
    running, seen = 0.0, 0
    t0 = time.time()

    def log_eval(epoch_float: float) -> None:
        nonlocal running, seen
        metrics = task.evaluate(model, val_set, cfg.batch_size * 2)
        model.train()
        row = {
            "epoch": state.epoch,
            "epoch_float": round(epoch_float, 3),
            "step": state.step,
            "lr": f"{sched.get_last_lr()[0]:.3g}",
            "seconds": round(time.time() - t0, 1),
            "train_loss": round(running / max(1, seen), 5),
            **{k: round(v, 5) for k, v in metrics.items()},
        }
        new_file = not csv_path.exists()
        with open(csv_path, "a", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new_file:
                w.writeheader()
            w.writerow(row)
        plot_curves(csv_path, out / "curves.png", f"{task.name}: {out.name}")
        score = [metrics[task.select_metric], -metrics["val_loss"]]  # ties (e.g. exact=0 early) -> lower loss
        if score > state.best:  # best.pt at every eval, so a long run can be exported early
            state.best, state.best_metrics = (
                score,
                dict(metrics, epoch=round(epoch_float, 3), step=state.step),
            )
            torch.save(
                {"model": model.state_dict(), "metrics": state.best_metrics, "config": asdict(cfg)},
                out / "best.pt",
            )
        print(f"[{task.name}] " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        running, seen = 0.0, 0

    for epoch in range(state.epoch, cfg.epochs):
        model.train()
        dataset.set_epoch(cfg.seed * 1000 + epoch)
        bar = tqdm(loader, desc=f"{task.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for i, (x, batch_rows) in enumerate(bar):
            loss = task.loss(model, x, batch_rows.numpy(), train_set)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            state.step += 1
            running += loss.item()
            seen += 1
            bar.set_postfix(loss=f"{running / seen:.4f}", refresh=False)
            if not progress and state.step % 200 == 0:
                print(
                    f"[{task.name}] epoch {epoch + 1} step {i + 1}/{steps_per_epoch} loss {running / seen:.4f} "
                    f"{time.time() - t0:.0f}s",
                    flush=True,
                )
            if (i + 1) % eval_every == 0 or i + 1 == steps_per_epoch:
                log_eval(epoch + (i + 1) / steps_per_epoch)
        state.epoch = epoch + 1
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "state": asdict(state),
                "loader_rng": loader_gen.get_state(),
                "config": asdict(cfg),
            },
            out / "last.pt",
        )
    print(
        f"[{task.name}] done: best {task.select_metric}={state.best[0]:.4f} {state.best_metrics}", flush=True
    )
    return state
