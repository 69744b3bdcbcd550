"""Prune a CRNN state dict to narrower layers, as the starting point of a distilled, faster reader.

A narrow model trained from random weights pays for the slow CTC start again; starting from the wide
model's most used channels keeps most of what it reads (network slimming: |BN gamma| ranks a conv's
output channels, since BN scales each channel before the ReLU) and distillation recovers the rest.
GRU hidden units are ranked by the norm of the head weights that read them.
"""

from __future__ import annotations

import re

import torch

CONV_KEY = re.compile(r"features\.(\d+)\.0\.weight")
GRU_DIRECTIONS = ("", "_reverse")


def conv_indices(state: dict[str, torch.Tensor]) -> list[int]:
    """The ``features.N`` indices of the conv blocks, in order."""
    return sorted(int(m.group(1)) for k in state if (m := CONV_KEY.fullmatch(k)))


def top_channels(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` highest-scoring indices, in their original order (so the layout stays readable)."""
    if keep > scores.numel():
        raise ValueError(f"cannot keep {keep} of {scores.numel()} channels")
    return torch.sort(torch.topk(scores.abs(), keep).indices).values


def slim_state(wide: dict[str, torch.Tensor], narrow: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``wide`` (a CRNN state dict) cut to the shapes of ``narrow`` (a narrower CRNN's state dict).

    The two models must have the same layer layout (same stem); only channel counts and the GRU size differ.
    """
    if conv_indices(wide) != conv_indices(narrow):
        raise ValueError("the two CRNNs have different layer layouts (stem); only widths may differ")
    out: dict[str, torch.Tensor] = {}
    keep_in = torch.arange(3)  # RGB
    for i in conv_indices(wide):
        p = f"features.{i}"
        n_out = narrow[f"{p}.0.weight"].shape[0]
        keep_out = top_channels(wide[f"{p}.1.weight"], n_out)
        out[f"{p}.0.weight"] = wide[f"{p}.0.weight"][keep_out][:, keep_in].clone()
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{p}.1.{name}"] = wide[f"{p}.1.{name}"][keep_out].clone()
        out[f"{p}.1.num_batches_tracked"] = wide[f"{p}.1.num_batches_tracked"].clone()
        keep_in = keep_out

    hidden_wide = wide["rnn.weight_hh_l0"].shape[1]
    hidden = narrow["rnn.weight_hh_l0"].shape[1]
    head = wide["head.weight"]  # (classes, 2 * hidden_wide): forward units, then backward units
    head_cols = []
    for d, suffix in enumerate(GRU_DIRECTIONS):
        units = top_channels(head[:, d * hidden_wide : (d + 1) * hidden_wide].norm(dim=0), hidden)
        gate_rows = torch.cat([g * hidden_wide + units for g in range(3)])  # r, z, n blocks
        out[f"rnn.weight_ih_l0{suffix}"] = wide[f"rnn.weight_ih_l0{suffix}"][gate_rows][:, keep_in].clone()
        out[f"rnn.weight_hh_l0{suffix}"] = wide[f"rnn.weight_hh_l0{suffix}"][gate_rows][:, units].clone()
        out[f"rnn.bias_ih_l0{suffix}"] = wide[f"rnn.bias_ih_l0{suffix}"][gate_rows].clone()
        out[f"rnn.bias_hh_l0{suffix}"] = wide[f"rnn.bias_hh_l0{suffix}"][gate_rows].clone()
        head_cols.append(d * hidden_wide + units)
    out["head.weight"] = head[:, torch.cat(head_cols)].clone()
    out["head.bias"] = wide["head.bias"].clone()

    for key, value in narrow.items():
        if out.get(key) is None or out[key].shape != value.shape:
            raise ValueError(f"slimmed {key} has shape {None if key not in out else tuple(out[key].shape)}, "
                             f"the narrow model wants {tuple(value.shape)}")
    return out


def is_narrower(state: dict[str, torch.Tensor], model_state: dict[str, torch.Tensor]) -> bool:
    """True when ``model_state`` has the layout of ``state`` with fewer channels somewhere."""
    same_keys = set(state) == set(model_state)
    return same_keys and any(
        state[k].shape != model_state[k].shape and state[k].numel() > model_state[k].numel() for k in state
    )
