"""s3prl's intent head of ``audio_snips`` and ``atis``: a small transformer, then self-attention pooling.

``Linear(D → 512)`` (s3prl's ``connector``) → 2 post-LN transformer layers (Mockingjay's ``TransformerEncoder``:
512 units, 8 heads, feed-forward 2048 with exact GELU, dropout 0.1 after attention and feed-forward and on the
attention probabilities, LayerNorm eps 1e-12, no positional encoding; the second layer starts as a copy of
the first, as s3prl's ``copy.deepcopy`` builds them) → SAP (tanh, ``Linear(512 → 1)`` scores, softmax over the
valid frames, weighted sum) → ``Linear(512 → classes)``.

s3prl's padding mask never reaches the attention (its shape broadcasts over queries or heads, or crashes),
which is why it trains with batch 1 × 48 accumulation; here padded frames are masked as keys, so a batch of
any size gives each utterance what it gets alone (``tests/test_sap.py``). With s3prl's batch of 1 nothing is
padded and the two agree.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from superb.train.config import ModelConfig
from superb.train.masks import valid_frames

MASKED = -100000.0  # s3prl's additive mask value for padded frames in SAP


class PostLNLayer(nn.Module):
    """A Mockingjay/BERT layer: attention → dropout → add & norm → GELU feed-forward → dropout → add & norm."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float, eps: float = 1e-12):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(dim, eps=eps)
        self.intermediate = nn.Linear(dim, ffn)
        self.output = nn.Linear(ffn, dim)
        self.output_norm = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padded: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x, x, x, key_padding_mask=padded, need_weights=False)[0]
        x = self.attention_norm(x + self.dropout(attended))
        return self.output_norm(x + self.dropout(self.output(F.gelu(self.intermediate(x)))))


class TransformerSapHead(nn.Module):
    def __init__(self, dim: int, model: ModelConfig, num_classes: list[int]):
        super().__init__()
        width = model.encoder_dim
        self.connector = nn.Linear(dim, width)
        layer = PostLNLayer(width, model.encoder_heads, model.encoder_ffn, model.encoder_dropout)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(model.encoder_layers))
        self.score = nn.Linear(width, 1)
        self.classifier = nn.Linear(width, sum(num_classes))
        self.sizes = list(num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """``x (B, T, D)`` → one ``(B, classes)`` logit tensor per head."""
        valid = valid_frames(lengths, x.shape[1], x.device)
        x = self.connector(x)
        for layer in self.layers:
            x = layer(x, ~valid)
        x = torch.tanh(x)
        scores = self.score(x).squeeze(-1).masked_fill(~valid, MASKED)
        pooled = (x * torch.softmax(scores, dim=-1).unsqueeze(-1)).sum(1)
        return list(torch.split(self.classifier(pooled), self.sizes, dim=-1))


def transformer_sap_head(dim: int, model: ModelConfig, num_classes: list[int]) -> TransformerSapHead:
    return TransformerSapHead(dim, model, num_classes)
