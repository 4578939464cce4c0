"""Pieces every CTC task shares (PR, ASR, SF): the heads, SpecAugment, the loss, best-path decoding and
target building."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError
from superb.train.config import ModelConfig, SpecAugConfig
from superb.train.masks import valid_frames
from superb.train.tasks.lstm import run_lstm


class CtcHead(nn.Module):
    """s3prl's linear CTC head (PR): ``Linear(D → projector_dim) → Linear(→ vocab)``, no nonlinearity."""

    def __init__(self, dim: int, model: ModelConfig, specaug: SpecAugConfig, vocab: int):
        super().__init__()
        self.specaug = specaug
        self.projector = nn.Linear(dim, model.projector_dim)
        self.output = nn.Linear(model.projector_dim, vocab)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)`` → logits ``(B, T, vocab)``."""
        if self.training and self.specaug.enabled:
            x = spec_augment(x, lengths, self.specaug)
        return self.output(self.projector(x))


class RnnCtcHead(nn.Module):
    """s3prl's ``RNNs`` CTC head (ASR, SF): ``Linear(D → projector_dim)`` → bidirectional LSTMs (dropout
    after each) → ``Linear(2 × rnn_dim → vocab)``."""

    def __init__(self, dim: int, model: ModelConfig, specaug: SpecAugConfig, vocab: int):
        super().__init__()
        self.specaug = specaug
        self.projector = nn.Linear(dim, model.projector_dim)
        sizes = [model.projector_dim] + [2 * model.rnn_dim] * model.rnn_layers
        self.rnns = nn.ModuleList(nn.LSTM(sizes[i], model.rnn_dim, batch_first=True, bidirectional=True)
                                  for i in range(model.rnn_layers))
        self.dropout = nn.Dropout(model.rnn_dropout)
        self.output = nn.Linear(sizes[-1], vocab)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)`` → logits ``(B, T, vocab)``; padding never reaches the LSTMs (packed)."""
        if self.training and self.specaug.enabled:
            x = spec_augment(x, lengths, self.specaug)
        x = self.projector(x)
        for rnn in self.rnns:
            x = self.dropout(run_lstm(rnn, x, lengths))
        return self.output(x)


CTC_HEADS: dict[str, type[nn.Module]] = {"linear": CtcHead, "rnn": RnnCtcHead}


def build_ctc_head(dim: int, model: ModelConfig, specaug: SpecAugConfig, vocab: int) -> nn.Module:
    """The head ``model.head`` names (the config validator has checked the name)."""
    return CTC_HEADS[model.head](dim, model, specaug, vocab)


def time_warp(x: torch.Tensor, window: int) -> torch.Tensor:
    """s3prl's time warp of one utterance ``x (T, D)``: the frames left of a random centre are stretched
    (bicubic) onto ``[0, warped)`` and the rest onto ``[warped, T)``, ``warped`` within ``window`` of it."""
    frames = x.shape[0]
    if frames - window <= window:
        return x
    center = int(torch.randint(window, frames - window, ()))
    warped = int(torch.randint(center - window, center + window, ())) + 1
    image = x[None, None]
    left = F.interpolate(image[:, :, :center], (warped, x.shape[1]), mode="bicubic", align_corners=False)
    right = F.interpolate(image[:, :, center:], (frames - warped, x.shape[1]), mode="bicubic",
                          align_corners=False)
    return torch.cat([left, right], dim=2)[0, 0]


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugConfig) -> torch.Tensor:
    """s3prl's ``SpecAug`` on ``x (B, T, D)``, drawing from torch's RNG in its order: a time warp of each
    utterance within its own frames, then ``num_freq_mask`` bands of every utterance, then its time spans.

    As s3prl's ``MaskAlongAxis``, masks are drawn for the batch padded to its longest utterance (``Tmax``):
    widths from ``[0, width)`` (``torch.randint``'s open end: s3prl's ``*_mask_width_range: [0, width]``),
    starts from ``[0, max(1, axis - widest drawn))``; adaptive time masks take their number
    ``min(int(ratio × Tmax), max_n_time_masks)`` and width bound ``min(width, int(ratio × Tmax))`` from
    ``Tmax`` too. A span that falls on another utterance's padding masks nothing there; padding stays as it was.
    """
    frames = int(lengths.max()) if len(lengths) else 0
    if frames == 0:
        return x
    x = x.clone()
    if cfg.time_warp:
        for b, n in enumerate(lengths.tolist()):
            if n > 0:
                x[b, :n] = time_warp(x[b, :n], cfg.time_warp_window)
    valid = valid_frames(lengths, x.shape[1], x.device)  # (B, T)
    bands = _masks(len(x), x.shape[2], cfg.num_freq_mask, cfg.freq_mask_width, x.device)  # (B, D)
    count, widest = cfg.num_time_mask, cfg.time_mask_width
    if cfg.adaptive:
        count = min(int(cfg.adaptive_number_ratio * frames), cfg.max_n_time_masks)
        widest = min(widest, int(cfg.adaptive_size_ratio * frames))
    spans = F.pad(_masks(len(x), frames, count, widest, x.device), (0, x.shape[1] - frames))  # (B, T)
    x = x.masked_fill(bands[:, None, :] & valid[:, :, None], 0)
    return x.masked_fill((spans & valid)[:, :, None], 0)


def _masks(batch: int, size: int, count: int, width: int, device: torch.device) -> torch.Tensor:
    """s3prl's ``mask_along_axis``: ``count`` spans per row over an axis of ``size``, as a ``(batch, size)``
    bool mask; nothing (and no draw) where there is no span to draw."""
    if count <= 0 or width <= 0:
        return torch.zeros(batch, size, dtype=torch.bool, device=device)
    widths = torch.randint(0, width, (batch, count), device=device).unsqueeze(2)
    starts = torch.randint(0, max(1, size - int(widths.max())), (batch, count), device=device).unsqueeze(2)
    axis = torch.arange(size, device=device)[None, None, :]
    return ((starts <= axis) & (axis < starts + widths)).any(dim=1)


class CtcTask:
    """What PR, ASR and SF share as tasks: the head ``model.head`` names over the vocabulary ``classes[0]``
    (blank first, SpecAugment from ``extras["specaug"]``), the CTC loss, and best-path decoding."""

    def build_head(self, dim: int, model: ModelConfig, prepared: Any) -> nn.Module:
        return build_ctc_head(dim, model, prepared.extras["specaug"], len(prepared.classes[0]))

    def loss(self, logits: torch.Tensor, lengths: torch.Tensor, batch: dict) -> torch.Tensor:
        return ctc_loss(logits, lengths, batch)

    def predict(self, logits: torch.Tensor, lengths: torch.Tensor, prepared: Any) -> list[tuple]:
        return greedy(logits, lengths)


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, batch: dict) -> torch.Tensor:
    """Mean CTC loss, blank = 0; ``zero_infinity``: an utterance too short for its labels adds 0, not inf."""
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, vocab)
    return F.ctc_loss(log_probs, batch["targets"], lengths, batch["target_lengths"], blank=0, zero_infinity=True)


def greedy(logits: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[tuple[int, ...]]:
    """Best path: argmax per frame, repeats collapsed, blanks dropped."""
    out = []
    for row, n in zip(logits.argmax(-1).tolist(), lengths.tolist(), strict=True):
        seq, previous = [], None
        for token in row[: int(n)]:
            if token != previous and token != blank:
                seq.append(token)
            previous = token
        out.append(tuple(seq))
    return out


def token_ids(tokens: Sequence[str], index: dict[str, int], where: str) -> tuple[int, ...]:
    """Token strings → vocabulary ids; an unknown token names the utterance."""
    missing = [t for t in tokens if t not in index]
    if missing:
        raise ConfigError(f"{where}: token {missing[0]!r} is not in the task's vocabulary")
    return tuple(index[t] for t in tokens)

