"""The featurizer: a softmax-weighted sum over hidden states (weights start equal), or one layer (``-l``).

This is s3prl's ``Featurizer``: SUPERB's protocol learns one scalar per hidden state, jointly with the
head, so results reflect the whole upstream rather than a hand-picked layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError


class Featurizer(nn.Module):
    """``(batch, frames, layers, dim)`` → ``(batch, frames, dim)`` float32.

    Args:
        layers: the hidden-state indices present on the layer axis (a store's ``layers`` attr).
        layer: one hidden-state index to use alone, or None for the weighted sum of all.
        normalize: layer-norm each hidden state (over dim) before weighting.
    """

    def __init__(self, layers: list[int], layer: int | None = None, normalize: bool = False):
        super().__init__()
        self.layers = list(layers)
        self.normalize = normalize
        if layer is not None and layer not in self.layers:
            raise ConfigError(f"layer {layer} is not in the store (it holds layers {self.layers})")
        self.position = None if layer is None else self.layers.index(layer)
        self.layer = layer
        self.weights = nn.Parameter(torch.zeros(len(self.layers))) if layer is None else None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.position is not None:
            x = hidden[:, :, self.position].float()
            return F.layer_norm(x, x.shape[-1:]) if self.normalize else x
        x = hidden.float()
        if self.normalize:
            x = F.layer_norm(x, x.shape[-1:])
        weights = torch.softmax(self.weights, dim=0)
        return torch.einsum("btld,l->btd", x, weights)

    def layer_weights(self) -> dict[str, list] | None:
        """``{"layers": [...], "weights": [...]}`` (softmax-normalised), or None for a single layer."""
        if self.weights is None:
            return None
        return {"layers": self.layers, "weights": torch.softmax(self.weights.detach(), 0).tolist()}
