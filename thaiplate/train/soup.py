"""Weight-space averaging ("model soup") of fine-tunes that share one starting point.

Fine-tunes of one model stay in one loss basin, so their average is itself a good model; it keeps what the runs
agree on and drops what each learnt by accident of its data, which helps most off the training distribution,
and it costs nothing at serving time (one network, same size).
"""

from __future__ import annotations

from pathlib import Path

import torch

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
