"""Phone classification: one of s3prl's 41 CPC phone classes per 10 ms frame, frame accuracy.

The store is the LibriSpeech one ASR and PR read; the labels come at fit time (``--labels DIR``,
``superb.train.tasks.phone.labels``). As s3prl's ``phone_linear`` expert, features meet labels per batch
(``match_length``): both padded to the batch's longest, the features tiled ``round(label frames / feature
frames)`` times when that is over 1 (a 20 ms upstream: each frame twice), then cut to the labels' length or
extended with the batch's last frame. Labels never change; frames past an utterance's labels are ignored
by the loss and the metric. An upstream whose rate does not divide 100 Hz is misaligned by this rule
(40 Hz: factor round(2.5) = 2), and one faster than 100 Hz is cut, not decimated: s3prl's behaviour,
kept so numbers compare, and flagged in ``results.json`` (``notes.label_alignment``) and on stderr.

Heads (s3prl's ``model.py`` of each variant), applied at the label rate:
- ``phone_linear``: ``Linear(D → 41)``;
- ``phone_linear_concat``: the frames ``t+4 … t … t−4`` (future first) concatenated, edges repeating the
  first frame and the padded batch's last, then ``Linear(9·D → 41)``;
- ``phone_1hidden``: ``Linear(D → 768)`` → dropout (0) → ReLU → ``Linear(768 → 41)``.
Accuracy is micro-averaged over all labelled frames of a role (s3prl's ``acc``); ``acc_utterance_mean``
is its per-utterance mean (s3prl's unlogged ``sample_wise_metric``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError, StoreError
from superb.stores.base import FeatureStore
from superb.train.config import Config, ModelConfig
from superb.train.data import Item
from superb.train.masks import valid_frames
from superb.train.tasks.phone.labels import CLASSES, LABEL_RATE, holds_phone_labels, read_phone_labels
from superb.train.tasks.utterance import Prepared, check_corpus


def match_length(x: torch.Tensor, label_frames: int) -> torch.Tensor:
    """s3prl's ``_match_length`` on a padded batch ``x (B, T, D)``: tile by ``round(label_frames / T)`` when
    over 1, then cut to ``label_frames`` or extend with the last frame."""
    factor = int(round(label_frames / x.shape[1]))
    if factor > 1:
        x = x.repeat_interleave(factor, dim=1)
    if x.shape[1] > label_frames:
        return x[:, :label_frames]
    if x.shape[1] < label_frames:
        return torch.cat([x, x[:, -1:].expand(-1, label_frames - x.shape[1], -1)], dim=1)
    return x


def concat_frames(x: torch.Tensor, n: int) -> torch.Tensor:
    """s3prl's ``concat_frames``: ``(B, T, D)`` → ``(B, T, n·D)`` holding ``x[t+m], …, x[t], …, x[t−m]``
    (``m = n // 2``), the first frame repeated before the start and the last (padding included) after the end."""
    m = n // 2
    padded = torch.cat([x[:, :1].expand(-1, m, -1), x, x[:, -1:].expand(-1, m, -1)], dim=1)
    frames = x.shape[1]
    return torch.cat([padded[:, 2 * m - s : 2 * m - s + frames] for s in range(n)], dim=2)


class PhoneFrameHead(nn.Module):
    """Features matched to the batch's label frames, then the variant's network; gives ``(logits at the label
    rate, label lengths)``. ``reads_batch`` tells ``DownstreamModel`` to pass the batch (its label lengths)."""

    reads_batch = True

    def __init__(self, network: nn.Module, concat: int | None = None):
        super().__init__()
        self.network = network
        self.concat = concat

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, batch: dict):
        label_lengths = batch["target_lengths"].to(x.device)
        x = x[:, : max(int(lengths.max()), 1)]  # padded to the batch's longest, as s3prl's pad_sequence
        x = match_length(x, max(int(label_lengths.max()), 1))
        if self.concat:
            x = concat_frames(x, self.concat)
        return self.network(x), label_lengths


class OneHidden(nn.Module):
    """s3prl's phone_1hidden: dropout before the activation."""

    def __init__(self, dim: int, model: ModelConfig):
        super().__init__()
        self.in_linear = nn.Linear(dim, model.hidden_size)
        self.drop = nn.Dropout(model.hidden_dropout)
        self.out_linear = nn.Linear(model.hidden_size, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_linear(F.relu(self.drop(self.in_linear(x))))


def _linear(dim: int, model: ModelConfig) -> PhoneFrameHead:
    return PhoneFrameHead(nn.Linear(dim, CLASSES))


def _linear_concat(dim: int, model: ModelConfig) -> PhoneFrameHead:
    if model.concat_n_frames % 2 == 0:
        raise ConfigError(f"config model.concat_n_frames must be odd (s3prl's rule), got {model.concat_n_frames}")
    return PhoneFrameHead(nn.Linear(dim * model.concat_n_frames, CLASSES), concat=model.concat_n_frames)


def _one_hidden(dim: int, model: ModelConfig) -> PhoneFrameHead:
    return PhoneFrameHead(OneHidden(dim, model))


def label_alignment(frame_rate: float) -> str:
    """How s3prl's rule lines features up with 100 Hz labels at this upstream rate (``results.json``)."""
    ratio = LABEL_RATE / frame_rate
    factor = int(round(ratio))
    if math.isclose(ratio, factor, rel_tol=1e-6) and factor >= 1:
        return "aligned" if factor == 1 else f"aligned (each frame tiled {factor}x)"
    if factor == 0:
        return f"misaligned: {frame_rate:g} Hz is faster than the labels' 100 Hz; s3prl's rule cuts, not decimates"
    return f"misaligned: 100 Hz / {frame_rate:g} Hz = {ratio:g}, tiled {factor}x (s3prl's rule)"


@dataclass(frozen=True)
class PhoneClassification:
    name: str
    build: Any  # (dim, ModelConfig) → PhoneFrameHead
    description: str
    corpus: str = "librispeech"
    heads: tuple[str, ...] = ("phone",)
    metric: str = "acc"
    higher_is_better: bool = True
    s3prl_selects_on_test: bool = True  # s3prl also keeps best-states-test.ckpt: only under protocol s3prl
    s3prl_checkpoint_on_test: bool = True
    # what a run needs besides its corpus: fit's argument → how to know that folder (superb bench finds it)
    needs: tuple[tuple[str, Any], ...] = (("labels", holds_phone_labels),)

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        if config.data.labels is None:
            raise ConfigError(f"task {self.name!r} needs --labels DIR: the CPC phone label folder "
                              "(converted_aligned_phones.txt, train_split.txt, test_split.txt)")
        labels = read_phone_labels(config.data.labels, config.data.dev_ratio, config.data.split_seed)
        split = config.data.train
        view = store.split(split)  # raises naming the missing split
        position = {str(uid): i for i, uid in enumerate(view.ids)}
        items: dict[str, list[Item]] = {}
        ids: dict[str, list[str]] = {}
        for role, listed in labels.roles.items():
            items[role], ids[role] = [], []
            for uid, where in listed:
                if uid not in position:
                    raise StoreError(f"{where}: utterance {uid!r} is not in the {split} split of {store.path} "
                                     "(labels for another corpus, or a store without it)")
                items[role].append(Item(split, position[uid], labels.frames[uid]))
                ids[role].append(uid)
        rate = float(store.attrs["frame_rate"])
        alignment = label_alignment(rate)
        if alignment.startswith("misaligned"):
            warnings.warn(f"task {self.name!r}: features at {rate:g} Hz, labels at 100 Hz: {alignment}")
        notes = {"labels": labels.identity, "frame_rate": rate, "label_rate": LABEL_RATE,
                 "label_alignment": alignment, **{f"utterances_{r}": len(v) for r, v in items.items()}}
        return Prepared(items=items, classes=[[str(k) for k in range(CLASSES)]], heads=self.heads, notes=notes,
                        ids=ids)

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> PhoneFrameHead:
        return self.build(dim, model)

    def loss(self, logits: torch.Tensor, lengths: torch.Tensor, batch: dict) -> torch.Tensor:
        """Cross-entropy over every labelled frame of the batch (s3prl's mean over labels not −100)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), _frame_targets(batch, lengths).reshape(-1),
                               ignore_index=-100)

    def predict(self, logits: torch.Tensor, lengths: torch.Tensor, prepared: Prepared) -> list[np.ndarray]:
        best = logits.argmax(-1).cpu().numpy().astype(np.int8)
        return [best[b, : int(n)] for b, n in enumerate(lengths.tolist())]

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        if not targets:
            return {"acc": float("nan")}
        right = [np.asarray(p) == np.asarray(t) for p, t in zip(predictions, targets, strict=True)]
        frames = sum(len(r) for r in right)
        return {"acc": float(sum(int(r.sum()) for r in right) / max(frames, 1)),
                "acc_utterance_mean": float(np.mean([r.mean() for r in right if len(r)])), "frames": frames}


def _frame_targets(batch: dict, lengths: torch.Tensor) -> torch.Tensor:
    """``(B, S)`` labels, −100 past each utterance's own (s3prl pads them with −100)."""
    targets = batch["targets"].to(lengths.device)
    return targets.masked_fill(~valid_frames(lengths, targets.shape[1]), -100)


PHONE_LINEAR = PhoneClassification("phone_linear", _linear, "phone classification, CPC LibriSpeech labels, linear")
PHONE_LINEAR_CONCAT = PhoneClassification("phone_linear_concat", _linear_concat,
                                          "phone classification, CPC LibriSpeech labels, linear on 9 frames")
PHONE_1HIDDEN = PhoneClassification("phone_1hidden", _one_hidden,
                                    "phone classification, CPC LibriSpeech labels, one hidden layer of 768")
