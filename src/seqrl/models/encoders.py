"""State encoders: how one observation becomes one embedding, chosen from the observation space.

- Vector observations (normalised floats): a linear map, as every family had before images.
- Image observations (uint8 (C, H, W) frame stacks or (H, W) frames, `spec.image`): the Nature
  DQN encoder the Decision Transformer paper uses on Atari (Mnih et al. 2015; the DT authors'
  `mingpt/model_atari.py`): conv 32 8x8 stride 4, ReLU, conv 64 4x4 stride 2, ReLU, conv 64 3x3
  stride 1, ReLU, flatten, linear to the width, tanh. Frames are scaled by 1/255 here, inside the
  model, so batches and datasets stay uint8 and only the encoder's input is ever float.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class NatureEncoder(nn.Module):
    """(..., C, H, W) or (..., H, W) uint8 images -> (..., dim) embeddings in [-1, 1]."""

    def __init__(self, shape: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        channels = shape[0] if len(shape) == 3 else 1
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        height, width = shape[-2:]
        side = lambda n: ((n - 8) // 4 + 1 - 4) // 2 + 1 - 2  # noqa: E731: the three convs' output side
        self.flat = 64 * side(height) * side(width)  # 3136 for 84x84
        self.project = nn.Sequential(nn.Linear(self.flat, dim), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lead = images.shape[: images.dim() - len(self.shape)]  # (B, T) or (B,)
        x = images.reshape(math.prod(lead), -1, *self.shape[-2:])  # (B*T, C, H, W)
        x = x.to(self.project[0].weight.dtype) / 255.0  # uint8 -> [0, 1], only the batch in float
        return self.project(self.conv(x)).reshape(*lead, -1)  # (B, T, dim)


def state_encoder(spec: object, dim: int) -> nn.Module:
    """The encoder of `spec`'s observations to `dim`: the Nature-DQN convolutions for images,
    a linear map for vectors."""
    if getattr(spec, "image", False):
        return NatureEncoder(spec.obs_shape, dim)
    return nn.Linear(spec.obs_dim, dim)
