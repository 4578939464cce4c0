"""Which frames of a padded batch are real: the one mask every head and loss needs."""

from __future__ import annotations

import torch


def valid_frames(lengths: torch.Tensor, frames: int, device: torch.device | None = None) -> torch.Tensor:
    """``(B, frames)`` bool: ``True`` where frame ``t < lengths[b]`` (on ``device``, else ``lengths``'s)."""
    device = lengths.device if device is None else device
    return torch.arange(frames, device=device)[None, :] < lengths.to(device)[:, None]
