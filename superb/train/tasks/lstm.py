"""LSTMs over padded batches, with the results of packed sequences (s3prl packs them) at CPU speed.

s3prl's heads pack their batches (``pack_padded_sequence``) so that padding never reaches an LSTM. cuDNN runs
packed batches natively, but PyTorch's CPU backward through a packed LSTM is slow and grows faster than the
length: 4× a plain run at 200 frames, 8× at 800 (``benchmarks/lstm.py``). On CPU, ``run_lstm`` gives the same
outputs and gradients (to float rounding) from plain runs instead:

- a forward direction is causal, so padding after an utterance never changes its valid frames;
- a backward direction must start at each utterance's own last frame: it reads a right-aligned copy of the
  batch (padding first), whose reversed pass meets the valid frames before any padding.

Outputs at padded positions are zeros, as ``pad_packed_sequence`` leaves them (and so are all of an empty
utterance's, where packing would have run one frame).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from superb.train.masks import valid_frames


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lstm`` (``batch_first``) over ``x (B, T, D)`` with ``lengths (B,)`` → ``(B, T, directions × H)``,
    as the packed batch would give it."""
    if x.is_cuda or (lstm.bidirectional and lstm.num_layers > 1):
        return run_packed(lstm, x, lengths)
    frames = x.shape[1]
    steps = torch.arange(frames, device=x.device)[None, :]
    lengths = lengths.to(x.device)
    valid = valid_frames(lengths, frames).unsqueeze(2)
    if not lstm.bidirectional:
        return lstm(x)[0] * valid
    shift = (frames - lengths)[:, None]  # right-aligned: position t holds frame t - shift
    right = _take_frames(x, (steps - shift) % frames)
    both = lstm(torch.cat([x, right]))[0]
    batch, hidden = len(x), lstm.hidden_size
    forward = both[:batch, :, :hidden]
    backward = _take_frames(both[batch:, :, hidden:], (steps + shift) % frames)
    return torch.cat([forward, backward], dim=2) * valid


def _take_frames(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, t]]`` for every ``b, t``."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


def run_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """s3prl's way: the batch packed (an empty utterance runs one frame), the output padded with zeros."""
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]
