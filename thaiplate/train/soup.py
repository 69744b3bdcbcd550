"""Weight-space averaging ("model soup") of fine-tunes that share one starting point.

Fine-tunes of one model stay in one loss basin, so their average is itself a good model; it keeps what the runs
agree on and drops what each learnt by accident of its data, which helps most off the training distribution,
and it costs nothing at serving time (one network, same size).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import yaml

from thaiplate.train.detector import setup_offline
from thaiplate.train.loop import init_state


class SoupError(ValueError):
    """The members cannot be averaged (different architectures)."""


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform mean of floating-point tensors (BatchNorm running stats included); integer tensors such as
    ``num_batches_tracked`` are counters, not weights, so the first member's value is kept."""
    if not states:
        raise SoupError("no members to average")
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=2):
        if set(state) != set(keys):
            diff = sorted(set(state) ^ set(keys))[:5]
            raise SoupError(f"member {i} has other tensors than member 1 (e.g. {diff})")
        for k in keys:
            if state[k].shape != states[0][k].shape:
                raise SoupError(f"member {i}: {k} is {tuple(state[k].shape)}, member 1 {tuple(states[0][k].shape)}")
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        first = states[0][k]
        if first.is_floating_point():
            out[k] = torch.stack([s[k].float() for s in states]).mean(0).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def write_soup(members: list[Path], template_run: Path, out: Path) -> Path:
    """Average ``members`` (exported ``*.pt`` or run checkpoints) into ``out/best.pt``, a checkpoint that
    ``thaiplate train export`` reads; its training config is the template run's (input size, model widths)."""
    if len(members) < 2:
        raise SoupError(f"a soup needs two or more members, got {len(members)}")
    template = torch.load(template_run / "best.pt", map_location="cpu", weights_only=False)
    state = average_states([init_state(m) for m in members])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "best.pt"
    torch.save({"config": template["config"], "model": state, "metrics": {}, "soup": [str(m) for m in members]}, path)
    return path


def write_detector_soup(members: list[Path], out: Path) -> Path:
    """Average ultralytics detector checkpoints (``models/detector.pt``, ``runs/X/weights/last.pt``: a dict whose
    ``model`` is the network) into ``out/weights/last.pt`` (and its arguments into ``out/args.yaml``), which ``thaiplate train detector --export-only
    --weights`` exports like a trained run. The last member is the template: its network object, arguments and
    metadata are kept; optimizer and EMA are dropped (a soup is not a run to resume). Loading the members unpickles
    ultralytics classes, so this runs where ultralytics is installed (the training venv)."""
    if len(members) < 2:
        raise SoupError(f"a soup needs two or more members, got {len(members)}")
    setup_offline(out)  # unpickling the members imports ultralytics, which must not reach for the network
    ckpts = [torch.load(m, map_location="cpu", weights_only=False) for m in members]
    for m, c in zip(members, ckpts, strict=True):
        if not isinstance(c, dict) or not isinstance(c.get("model"), torch.nn.Module):
            raise SoupError(f"{m} is not a detector checkpoint (a dict whose 'model' is the network)")
    template = ckpts[-1]
    net = copy.deepcopy(template["model"])
    net.load_state_dict(average_states([c["model"].state_dict() for c in ckpts]))
    soup = [str(m) for m in members]
    args = {**(template.get("train_args") or {}), "soup": soup}
    path = out / "weights" / "last.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**template, "model": net, "ema": None, "optimizer": None, "best_fitness": None, "train_args": args,
                "soup": soup}, path)
    # as a training run leaves it: `train detector --export-only --out OUT` reads the training size from here
    plain = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v) for k, v in args.items()}
    (out / "args.yaml").write_text(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
    return path
