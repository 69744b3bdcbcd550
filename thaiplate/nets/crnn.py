"""CRNN recogniser: a small conv stack + BiGRU + CTC head.

The conv stack halves the width twice (192 -> 48 columns, ~4 px per frame, >= 5 frames per glyph on a
car plate) and the height five times (64 -> 2 rows). The two rows are read as one sequence, top row then
bottom row (T = 96), so 2-line car plates (registration on top, province below: the model learns to
emit blanks there), 3-line motorcycle plates and LTA plates come out of one pass with no line
splitting. Channels stay narrow at high resolution to keep one crop under ~5 ms on one CPU thread.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 54  # blank + 53 charset chars (thaiplate.labels)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CRNN(nn.Module):
    """``(N, 3, 64, 192)`` float image -> ``(N, 96, 54)`` log-probabilities."""

    def __init__(self, num_classes: int = NUM_CLASSES, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(3, 32, stride=2),  # 32 x 96: a strided stem, full-res pooling costs too much
            conv_bn_relu(32, 48),
            nn.MaxPool2d(2),  # 16 x 48
            conv_bn_relu(48, 96),
            conv_bn_relu(96, 96),
            nn.MaxPool2d((2, 1)),  # 8 x 48
            conv_bn_relu(96, 160),
            nn.MaxPool2d((2, 1)),  # 4 x 48
            conv_bn_relu(160, 192),
            nn.MaxPool2d((2, 1)),  # 2 x 48
        )
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(192, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (N, C, 2, 48)
        # (N, C, H, W) -> (N, H, W, C) -> (N, H*W, C): the top row's 48 frames, then the bottom row's
        seq = f.permute(0, 2, 3, 1).flatten(1, 2)
        seq, _ = self.rnn(self.dropout(seq))
        return self.head(self.dropout(seq)).log_softmax(-1)
