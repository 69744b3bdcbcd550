"""CRNN recogniser: a small conv stack + BiGRU + CTC head.

The conv stack halves the width twice (192 -> 48 columns, ~4 px per frame, >= 5 frames per glyph on a
car plate) and the height five times (64 -> 2 rows). The two rows are read as one sequence, top row then
bottom row (T = 96), so 2-line car plates (registration on top, province below: the model learns to
emit blanks there), 3-line motorcycle plates and LTA plates come out of one pass with no line
splitting. Channels stay narrow at high resolution for speed (v18: ~9 ms a crop on one thread of an
AMD EPYC without AVX-512; ``widths`` trades accuracy for less).

A taller input (96 px: 1.5x the vertical detail, for tails like ฎ/ฏ that are 2-3 px at 64 px) gives 3
feature rows; a stride-1 max-pool over adjacent rows merges them back to the 2 rows the BiGRU reads, so
the output contract (T = 96) and every weight stay the same and a 64-px model warm-starts a 96-px one.

``stem="full"`` adds one narrow 3x3 conv at full resolution before the strided one. The pairs the
strided stem confuses (ฏ/ฎ, ซ/ช, พ/ฬ, ณ/ฌ) differ only in a 2-5 px tail or notch, which a stride-2
first layer sees through a single 3x3 window. It costs ~6 % more compute. :func:`widen_stem_state`
turns a strided-stem state dict into an equivalent full-stem one, so a fine-tune starts where the
old model stood instead of at random.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

NUM_CLASSES = 54  # blank + 53 charset chars (thaiplate.labels)
FULL_STEM_WIDTH = 16
# output channels of the strided stem conv and the five convs after it (v1-v18 used these)
WIDTHS = (32, 48, 96, 96, 160, 192)

Stem = Literal["strided", "full"]


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def stem_layers(stem: Stem, width: int = WIDTHS[0]) -> list[nn.Module]:
    if stem == "strided":
        return [conv_bn_relu(3, width, stride=2)]  # 32 x 96
    if stem == "full":
        return [conv_bn_relu(3, FULL_STEM_WIDTH), conv_bn_relu(FULL_STEM_WIDTH, width, stride=2)]
    raise ValueError(f"stem must be 'strided' or 'full', got {stem!r}")


class CRNN(nn.Module):
    """``(N, 3, 64 or 96, 192)`` float image -> ``(N, 96, 54)`` log-probabilities.

    ``widths`` are the channel counts of the strided stem conv and the five convs after it; a narrower
    set (``thaiplate.nets.slim``) trades accuracy for speed without changing the layer layout.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        hidden: int = 128,
        dropout: float = 0.1,
        stem: Stem = "strided",
        widths: tuple[int, ...] | list[int] = WIDTHS,
    ) -> None:
        super().__init__()
        if len(widths) != len(WIDTHS):
            raise ValueError(f"widths needs {len(WIDTHS)} channel counts, got {list(widths)}")
        w0, w1, w2, w3, w4, w5 = widths
        self.features = nn.Sequential(
            *stem_layers(stem, w0),  # 32 x 96
            conv_bn_relu(w0, w1),
            nn.MaxPool2d(2),  # 16 x 48
            conv_bn_relu(w1, w2),
            conv_bn_relu(w2, w3),
            nn.MaxPool2d((2, 1)),  # 8 x 48
            conv_bn_relu(w3, w4),
            nn.MaxPool2d((2, 1)),  # 4 x 48
            conv_bn_relu(w4, w5),
            nn.MaxPool2d((2, 1)),  # 2 x 48
        )
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(w5, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (N, C, H / 32, 48)
        rows = int(f.shape[2])  # a constant in the ONNX graph: the input height is fixed per model
        if rows > 2:  # taller input: merge adjacent rows back to 2 (module docstring)
            f = F.max_pool2d(f, (rows - 1, 1), stride=1)
        # (N, C, H, W) -> (N, H, W, C) -> (N, H*W, C): the top row's 48 frames, then the bottom row's
        seq = f.permute(0, 2, 3, 1).flatten(1, 2)
        seq, _ = self.rnn(self.dropout(seq))
        return self.head(self.dropout(seq)).log_softmax(-1)


def is_strided_state(state: dict[str, torch.Tensor]) -> bool:
    return tuple(state["features.0.0.weight"].shape) == (32, 3, 3, 3)


def widen_stem_state(state: dict[str, torch.Tensor], seed: int = 0, noise: float = 1e-3) -> dict[str, torch.Tensor]:
    """A strided-stem state dict -> a ``stem="full"`` one computing the same function in eval mode.

    The new full-resolution layer passes the image through as ``relu(x)`` and ``relu(-x)`` (channels
    0-2 and 3-5, identity BN); the strided layer applies the old kernel ``W`` to the first and ``-W``
    to the second, so it sees ``W*relu(x) - W*relu(-x) = W*x``. The other 10 channels start as small
    noise so gradients reach them.
    """
    if not is_strided_state(state):
        raise ValueError("not a strided-stem CRNN state dict (features.0 must be the 3->32 stride-2 conv)")
    g = torch.Generator().manual_seed(seed)
    old_w = state["features.0.0.weight"]  # (32, 3, 3, 3)
    w0 = torch.randn((FULL_STEM_WIDTH, 3, 3, 3), generator=g) * noise
    for c in range(3):
        w0[c] = 0
        w0[3 + c] = 0
        w0[c, c, 1, 1] = 1.0
        w0[3 + c, c, 1, 1] = -1.0
    w1 = torch.randn((old_w.shape[0], FULL_STEM_WIDTH, 3, 3), generator=g) * noise
    w1[:, 0:3] = old_w
    w1[:, 3:6] = -old_w
    new: dict[str, torch.Tensor] = {
        "features.0.0.weight": w0,
        "features.0.1.weight": torch.ones(FULL_STEM_WIDTH),
        "features.0.1.bias": torch.zeros(FULL_STEM_WIDTH),
        "features.0.1.running_mean": torch.zeros(FULL_STEM_WIDTH),
        "features.0.1.running_var": torch.ones(FULL_STEM_WIDTH),
        "features.0.1.num_batches_tracked": torch.zeros((), dtype=torch.long),
        "features.1.0.weight": w1,
    }
    for key, value in state.items():
        if key == "features.0.0.weight":
            continue
        if key.startswith("features."):
            _, idx, rest = key.split(".", 2)
            key = f"features.{int(idx) + 1}.{rest}"
        new[key] = value
    return new
