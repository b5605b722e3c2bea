"""DeepLOB: CNN + inception + LSTM (Zhang, Zohren & Roberts 2019), PyTorch layout of the official notebook.

Input ``x``: ``(B, T, 40)`` -- 10 levels x (ask price, ask size, bid price, bid size); T = 100 in the
paper. Output ``(B, 3)`` **logits**.

* Three conv blocks collapse the feature axis 40 -> 20 -> 10 -> 1 (kernels (1,2)/stride 2, (1,2)/stride
  2, (1,10)); each is followed by two (4,1) temporal convs without padding, so T shrinks by 18.
  Every conv is followed by LeakyReLU(0.01) (Tanh in the second block) then BatchNorm, as in the notebook.
* Inception module: [1x1 -> 3x1], [1x1 -> 5x1], [3x1 max-pool -> 1x1], 64 channels each -> 192.
* LSTM(192 -> 64), last step, ``Linear(64 -> 3)``.

143,907 parameters, equal to the official PyTorch notebook / TLOB repository class.

Deviation: the reference ends in ``Softmax`` and then trains with ``CrossEntropyLoss`` (a double
softmax that flattens gradients). This module returns logits; apply ``softmax`` for probabilities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class DeepLOBConfig:
    """DeepLOB hyper-parameters. ``num_features`` must be 40 (the conv stack collapses 40 -> 1)."""

    num_features: int = 40
    seq_size: int = 100
    conv_channels: int = 32
    inception_channels: int = 64
    lstm_hidden: int = 64
    num_classes: int = 3

    def __post_init__(self) -> None:
        if self.num_features != 40:
            raise ValueError(f"DeepLOB needs 40 LOB features (10 levels x 4), got num_features={self.num_features}")
        if self.seq_size < 19:
            raise ValueError(f"DeepLOB needs seq_size >= 19 (six unpadded (4,1) convs), got {self.seq_size}")


def _act(kind: str) -> nn.Module:
    return nn.Tanh() if kind == "tanh" else nn.LeakyReLU(negative_slope=0.01)


def _conv_block(c_in: int, c: int, kernel: tuple[int, int], stride: tuple[int, int], act: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c, kernel_size=kernel, stride=stride), _act(act), nn.BatchNorm2d(c),
        nn.Conv2d(c, c, kernel_size=(4, 1)), _act(act), nn.BatchNorm2d(c),
        nn.Conv2d(c, c, kernel_size=(4, 1)), _act(act), nn.BatchNorm2d(c),
    )


class DeepLOB(nn.Module):
    """``forward(x: (B, T, 40)) -> (B, num_classes)`` logits."""

    config_class = DeepLOBConfig

    def __init__(self, config: DeepLOBConfig | None = None) -> None:
        super().__init__()
        c = config or DeepLOBConfig()
        self.config = c
        k, m = c.conv_channels, c.inception_channels
        self.conv1 = _conv_block(1, k, (1, 2), (1, 2), "leaky")
        self.conv2 = _conv_block(k, k, (1, 2), (1, 2), "tanh")
        self.conv3 = _conv_block(k, k, (1, 10), (1, 1), "leaky")
        lrelu = lambda: nn.LeakyReLU(negative_slope=0.01)  # noqa: E731
        self.inp1 = nn.Sequential(
            nn.Conv2d(k, m, (1, 1), padding="same"), lrelu(), nn.BatchNorm2d(m),
            nn.Conv2d(m, m, (3, 1), padding="same"), lrelu(), nn.BatchNorm2d(m),
        )
        self.inp2 = nn.Sequential(
            nn.Conv2d(k, m, (1, 1), padding="same"), lrelu(), nn.BatchNorm2d(m),
            nn.Conv2d(m, m, (5, 1), padding="same"), lrelu(), nn.BatchNorm2d(m),
        )
        self.inp3 = nn.Sequential(
            nn.MaxPool2d((3, 1), stride=(1, 1), padding=(1, 0)),
            nn.Conv2d(k, m, (1, 1), padding="same"), lrelu(), nn.BatchNorm2d(m),
        )
        self.lstm = nn.LSTM(input_size=3 * m, hidden_size=c.lstm_hidden, num_layers=1, batch_first=True)
        self.fc1 = nn.Linear(c.lstm_hidden, c.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass (shapes in the class docstring)."""
        x = x.unsqueeze(1)  # (B, 1, T, 40)
        x = self.conv3(self.conv2(self.conv1(x)))  # (B, 32, T-18, 1)
        x = torch.cat([self.inp1(x), self.inp2(x), self.inp3(x)], dim=1)  # (B, 192, T-18, 1)
        x = x.squeeze(3).transpose(1, 2)  # (B, T-18, 192)
        out, _ = self.lstm(x)
        result: torch.Tensor = self.fc1(out[:, -1, :])
        return result

    def config_dict(self) -> dict[str, Any]:
        """The model config as a plain dict (what checkpoints store)."""
        return asdict(self.config)
