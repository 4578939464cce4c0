"""ASV as s3prl's ``sv_voxceleb1``: an x-vector head trained with AM-softmax, cosine scoring of trial lists.

Head (SPEC §4): ``Linear(D → 512)`` → five TDNN layers (512, 512, 512, 512, 1500 units; kernels 5, 3, 3, 1, 1;
dilations 1, 2, 3, 1, 1; ReLU; no padding, so 14 frames fewer) → statistics pooling (mean and standard
deviation over the valid frames) → ``Linear(3000 → 512)`` + ReLU, the embedding → ``Linear(512 → 512)``
+ ReLU → AM-softmax (s 30, m 0.4) over the training speakers. Scoring uses the L2-normalised embedding
and the cosine of each trial pair.

Protocols. ``runner.protocol: dev`` (default) holds ``data.dev_speakers`` training speakers out (the same
ones for every seed) and builds a balanced dev trial list from their utterances; the checkpoint with the
best dev EER is scored on test. ``protocol: s3prl`` trains on every speaker and reports the saved
checkpoint with the best *test* EER, which is what s3prl's ``test_expdir.sh`` does; results.json says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError, StoreError
from superb.extract.corpora.voxceleb1 import read_trials
from superb.stores.base import FeatureStore
from superb.train.config import Config, ModelConfig
from superb.train.data import Item
from superb.train.masks import valid_frames
from superb.train.tasks.asv.metrics import eer, min_dcf, write_scores
from superb.train.tasks.utterance import Prepared, check_corpus

TDNN = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))  # (kernel, dilation) per layer, s3prl's XVector
CONTEXT = sum((k - 1) * d for k, d in TDNN)  # frames the valid convolutions consume (14)
DEV_SEED = 0  # the held-out dev speakers and their trials do not change with the training seed


class AsvOutput(NamedTuple):
    """What the head gives the task: AM-softmax cosines while training, embeddings otherwise."""

    kind: str  # "cosine" (B, speakers) or "embedding" (B, 512), L2-normalised
    values: torch.Tensor
    scale: float
    margin: float


class XVectorHead(nn.Module):
    """x-vector head; training mode returns AM-softmax cosines, eval mode normalised embeddings."""

    def __init__(self, dim: int, model: ModelConfig, speakers: int):
        super().__init__()
        width = model.projector_dim
        self.connector = nn.Linear(dim, width)
        sizes = [width] * (len(TDNN) - 1) + [model.agg_dim]
        self.tdnn = nn.ModuleList(
            nn.Conv1d(width if i == 0 else sizes[i - 1], sizes[i], kernel, dilation=dilation)
            for i, (kernel, dilation) in enumerate(TDNN))
        self.embedding = nn.Linear(2 * model.agg_dim, width)
        self.hidden = nn.Linear(width, width)
        self.speakers = nn.Parameter(torch.empty(width, max(speakers, 1)))  # AM-softmax class weights
        nn.init.xavier_normal_(self.speakers, gain=1)
        self.scale, self.margin = model.am_scale, model.am_margin

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> AsvOutput:
        x = self.connector(x)
        if x.shape[1] < CONTEXT + 1:  # too short for the TDNN context: zero frames after the valid ones
            x = F.pad(x, (0, 0, 0, CONTEXT + 1 - x.shape[1]))
        x = x.transpose(1, 2)
        for layer in self.tdnn:
            x = torch.relu(layer(x))
        valid = (lengths - CONTEXT).clamp(min=1).to(x.device)
        mask = valid_frames(valid, x.shape[2]).to(x.dtype)[:, None, :]
        mean = (x * mask).sum(2) / valid[:, None]
        var = ((x - mean[..., None]) ** 2 * mask).sum(2) / (valid[:, None] - 1).clamp(min=1)  # unbiased, as torch.std
        embedding = torch.relu(self.embedding(torch.cat([mean, var.clamp(min=0).sqrt()], dim=1)))
        if not self.training:
            return AsvOutput("embedding", F.normalize(embedding, dim=-1), self.scale, self.margin)
        hidden = torch.relu(self.hidden(embedding))
        cosine = F.normalize(hidden, dim=-1) @ F.normalize(self.speakers, dim=0)
        return AsvOutput("cosine", cosine, self.scale, self.margin)


@dataclass(frozen=True)
class SpeakerVerification:
    name: str = "asv"
    corpus: str = "voxceleb1"
    store_name: str = "voxceleb1_sv"
    corpus_options: tuple[tuple[str, Any], ...] = (("verification", True),)  # on the fly: the same reader
    extract_hint: str = "voxceleb1 -c verification=true"
    heads: tuple[str, ...] = ("speaker",)
    metric: str = "eer"
    higher_is_better: bool = False
    s3prl_selects_on_test: bool = True
    s3prl_checkpoint_on_test: bool = True
    description: str = "speaker verification, VoxCeleb1 trials, x-vector + AM-softmax, EER / minDCF"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        if not store.attrs["corpus"].get("options", {}).get("verification"):
            raise StoreError(f"{store.path}: a VoxCeleb1 identification store; task 'asv' needs the verification "
                             "store (superb extract --corpus voxceleb1 -c verification=true)")
        data = config.data
        train = store.split(data.train)
        speakers = [str(r["meta"]["speaker"]) for r in train.records]
        held_out = set() if config.runner.protocol == "s3prl" else _held_out(sorted(set(speakers)), data.dev_speakers)
        classes = sorted(set(speakers) - held_out)
        index = {s: k for k, s in enumerate(classes)}
        items = {"train": [Item(data.train, i, (index[s],)) for i, s in enumerate(speakers) if s in index]}
        ids = {"train": [str(train.ids[i]) for i in range(len(speakers)) if speakers[i] in index]}
        trials: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        names: dict[str, list[tuple[str, str]]] = {}
        if held_out:
            dev = [i for i, s in enumerate(speakers) if s in held_out]
            items["dev"] = [Item(data.train, i, (0,)) for i in dev]
            ids["dev"] = [str(train.ids[i]) for i in dev]
            pairs = _dev_trials([speakers[i] for i in dev], data.dev_trials)
            trials["dev"] = tuple(np.array(c) for c in zip(*pairs, strict=True)) if pairs else _no_trials()
            names["dev"] = [(ids["dev"][a], ids["dev"][b]) for _, a, b in pairs]
        if data.test in store.splits:
            listing = _trial_list(store, data.trials)
            rows = read_trials(listing)
            test = store.split(data.test)
            position = {str(u): i for i, u in enumerate(test.ids)}
            missing = sorted({u for _, a, b in rows for u in (a, b) if u not in position})
            if missing:
                raise StoreError(f"{listing}: {len(missing)} trial utterances are not in the store's "
                                 f"{data.test!r} split (first: {missing[0]})")
            used = sorted({position[u] for _, a, b in rows for u in (a, b)})
            local = {i: k for k, i in enumerate(used)}
            items["test"] = [Item(data.test, i, (0,)) for i in used]
            ids["test"] = [str(test.ids[i]) for i in used]
            trials["test"] = (np.array([label for label, _, _ in rows]),
                              np.array([local[position[a]] for _, a, _ in rows]),
                              np.array([local[position[b]] for _, _, b in rows]))
            names["test"] = [(a, b) for _, a, b in rows]
        notes = {"train_speakers": len(classes), "dev_speakers": len(held_out),
                 "dev_trials": len(names.get("dev", [])), "test_trials": len(names.get("test", [])),
                 "test_trial_list": str(data.trials)}
        return Prepared(items=items, classes=[classes], heads=self.heads, notes=notes, ids=ids,
                        extras={"trials": trials, "trial_names": names})

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> XVectorHead:
        return XVectorHead(dim, model, len(prepared.classes[0]))

    def loss(self, logits: AsvOutput, lengths: torch.Tensor, batch: dict) -> torch.Tensor | None:
        """AM-softmax: cross-entropy over ``s · (cos θ − m·[target])``; no loss for eval embeddings."""
        if logits.kind != "cosine":
            return None
        target = batch["targets"][:, 0]
        margin = F.one_hot(target, logits.values.shape[1]).to(torch.float32) * logits.margin
        return F.cross_entropy(logits.scale * (logits.values.float() - margin), target)

    def predict(self, logits: AsvOutput, lengths: torch.Tensor, prepared: Prepared) -> list:
        if logits.kind != "embedding":
            return [None] * len(logits.values)
        return list(logits.values.float().cpu().numpy())

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        trials = prepared.extras["trials"].get(role)
        if trials is None or not len(trials[0]) or any(p is None for p in predictions):
            return {"eer": float("nan")}
        labels, scores = trials[0], _scores(predictions, trials)
        if labels.min() == labels.max():
            raise ConfigError(f"the {role} trial list has only {'target' if labels[0] else 'non-target'} trials")
        return {"eer": eer(labels, scores), "min_dcf": min_dcf(labels, scores)}

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """s3prl's ``ROLE_predict.txt``: ``UTT1_UTT2 SCORE`` per trial, in the list's order."""
        trials = prepared.extras["trials"].get(role)
        if trials is not None and len(trials[0]) and predictions and predictions[0] is not None:
            write_scores(expdir / f"{role}_predict.txt", prepared.extras["trial_names"][role],
                         _scores(predictions, trials))


def _scores(predictions: list, trials: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    embeddings = np.stack(predictions).astype(np.float64)
    return (embeddings[trials[1]] * embeddings[trials[2]]).sum(axis=1)


def _no_trials() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0, dtype=int)


def _held_out(speakers: list[str], count: int) -> set[str]:
    if count < 0 or count > len(speakers) - 2:
        raise ConfigError(f"config data.dev_speakers: {count} of {len(speakers)} training speakers cannot be held "
                          "out (need at least 2 to train on)")
    if count == 1:
        raise ConfigError("config data.dev_speakers: a dev trial list needs at least 2 speakers (or 0 for none)")
    order = np.random.default_rng(DEV_SEED).permutation(len(speakers))
    return {speakers[k] for k in order[:count]}


def _dev_trials(speakers: list[str], per_utterance: int) -> list[tuple[int, int, int]]:
    """Balanced trials over the held-out utterances: for each, up to ``per_utterance / 2`` target partners
    (same speaker) and as many non-target ones, drawn with a fixed seed; each unordered pair once."""
    rng = np.random.default_rng(DEV_SEED)
    by_speaker: dict[str, list[int]] = {}
    for k, s in enumerate(speakers):
        by_speaker.setdefault(s, []).append(k)
    half = max(1, per_utterance // 2)
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int, int]] = []
    for k, s in enumerate(speakers):
        same = [j for j in by_speaker[s] if j != k]
        other = [j for j in range(len(speakers)) if speakers[j] != s]
        for label, pool in ((1, same), (0, other)):
            for j in rng.permutation(pool)[:half].tolist() if pool else []:
                pair = (min(k, j), max(k, j))
                if pair not in seen:
                    seen.add(pair)
                    out.append((label, *pair))
    return out


def _trial_list(store: FeatureStore, name: str) -> Path:
    """``data.trials`` as given if it is a file, else that list in the corpus root the store was made from."""
    if Path(name).expanduser().is_file():
        return Path(name).expanduser()
    root = store.attrs["corpus"].get("root")
    from superb.errors import CorpusError
    from superb.extract.corpora.voxceleb1 import VoxCeleb1

    try:
        return VoxCeleb1(root).meta_file(name) if root else Path(name)
    except CorpusError as exc:
        raise ConfigError(f"trial list {name!r} not found ({exc}); pass -o config.data.trials=PATH") from None


TASK = SpeakerVerification()
