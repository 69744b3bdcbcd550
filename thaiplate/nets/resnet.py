"""ProvinceNet: a small ResNet reading the province name from the same tensor as the recogniser.

The province line is small (bottom ~25 % of a car plate, ~8-10 px on real crops), so the stem is a
stride-2 conv with no max-pool: the first stage still sees 32 x 96. The name is then classified as a
whole word image (78 classes), never spelled out.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_PROVINCES = 78


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ProvinceNet(nn.Module):
    """``(N, 3, 64, 192)`` float image -> ``(N, 78)`` logits in ``labels.provinces()`` order."""

    def __init__(
        self,
        num_classes: int = NUM_PROVINCES,
        widths: tuple[int, ...] = (24, 48, 128, 192),
        blocks: tuple[int, ...] = (1, 2, 2, 2),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        )  # 32 x 96, no max-pool
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            stages.append(BasicBlock(cin, w, stride=1 if i == 0 else 2))
            stages += [BasicBlock(w, w) for _ in range(n - 1)]
            cin = w
        self.stages = nn.Sequential(*stages)  # 32x96 -> 16x48 -> 8x24 -> 4x12
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.pool(self.stages(self.stem(x))).flatten(1)))
