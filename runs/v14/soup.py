"""Detector v14 candidate (runs/rule-detector-v14.md): the plain 0.5/0.5 average of two ultralytics checkpoints
that share an init, every floating-point tensor of the model state (BatchNorm statistics included), in fp32 then
stored as the checkpoints store it.   .venv-yolo/bin/python runs/v14/soup.py A.pt B.pt OUT.pt"""
import copy
import sys

import torch

a_path, b_path, out = sys.argv[1:4]
a = torch.load(a_path, map_location="cpu", weights_only=False)
b = torch.load(b_path, map_location="cpu", weights_only=False)
sa, sb = a["model"].state_dict(), b["model"].state_dict()
assert sa.keys() == sb.keys(), "different architectures"
avg = {k: ((sa[k].float() + sb[k].float()) / 2).to(sa[k].dtype) if sa[k].is_floating_point() else sb[k] for k in sa}
model = copy.deepcopy(b["model"])
model.load_state_dict(avg)
changed = sum(int(not torch.equal(avg[k], sb[k])) for k in avg)
ckpt = {**b, "model": model, "ema": None, "optimizer": None, "best_fitness": None,
        "train_args": {**b["train_args"], "soup": f"0.5 x {a_path} + 0.5 x {b_path}"}}
torch.save(ckpt, out)
print(f"{out}: {len(avg)} tensors, {changed} differ from {b_path}")
