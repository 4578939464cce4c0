"""Pieces every CTC task shares (PR, ASR, SF): the loss, best-path decoding and target building."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError


class CtcHead(nn.Module):
    """s3prl's linear CTC head (PR, SF): ``Linear(D → projector_dim) → Linear(→ vocab)``, no nonlinearity."""

    def __init__(self, dim: int, projector_dim: int, vocab: int):
        super().__init__()
        self.projector = nn.Linear(dim, projector_dim)
        self.output = nn.Linear(projector_dim, vocab)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)`` → logits ``(B, T, vocab)``."""
        return self.output(self.projector(x))


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

