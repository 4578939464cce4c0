"""Utterance-level classification (KS, SID, IC, ER, example): s3prl's UtteranceLevel head and metric.

Head: ``Linear(D → projector_dim)`` → mean over valid frames → ``Linear(projector_dim → classes)``, no
nonlinearity (s3prl's default). IC predicts three slots from one pooled vector (one output slice per
slot, cross-entropy summed); an utterance counts as right only when every slot is right.

A task differs from the others only in how it assigns store items to train/dev/test and how it names
its classes; each task folder supplies those two functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError, StoreError
from superb.stores.base import FeatureStore
from superb.train.config import Config, DataConfig, ModelConfig
from superb.train.data import Item
from superb.train.masks import valid_frames

Roles = dict[str, list[tuple[str, int]]]  # role (train/dev/test) → (store split, index) pairs
UNSEEN = -1  # the target of a dev/test label outside the classes (tasks with unseen="wrong")
#: model.pooling: the mean over valid frames, or s3prl's MOSEI mean over the padded batch (padding included)
POOLINGS = ("mean", "s3prl_padded_mean")


@dataclass
class Prepared:
    """What a run needs from the store: items per role (with targets) and class names per head."""

    items: dict[str, list[Item]]
    classes: list[list[str]]
    heads: tuple[str, ...]
    notes: dict[str, Any] = field(default_factory=dict)  # facts a run reports (e.g. OOV counts)
    ids: dict[str, list[str]] = field(default_factory=dict)  # utterance ids per role, as items
    extras: dict[str, Any] = field(default_factory=dict)  # run-time helpers (a beam-search decoder …), not saved


class UtteranceHead(nn.Module):
    def __init__(self, dim: int, projector_dim: int, num_classes: list[int], pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"config model.pooling: {pooling!r} is not one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.projector = nn.Linear(dim, projector_dim)
        self.classifier = nn.Linear(projector_dim, sum(num_classes))
        self.sizes = list(num_classes)

    @property
    def pools_affine(self) -> bool:
        """True when the output depends on ``x`` only through its mean over valid frames, taken after an affine
        map (projector → mean): mean and map commute, so the per-utterance mean as one frame gives the same
        logits (a sweep feeds its heads those means, computed once per batch)."""
        return self.pooling == "mean"

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """``x (B, T, D)``, ``lengths (B,)`` → one ``(B, classes)`` logit tensor per head."""
        x = self.projector(x)
        if self.pooling == "s3prl_padded_mean":  # MOSEI's s3prl head: padded frames (the bias) counted too
            pooled = x.mean(1)
        else:
            mask = valid_frames(lengths, x.shape[1], x.device).to(x.dtype)
            pooled = (x * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None].to(x.dtype)
        return list(torch.split(self.classifier(pooled), self.sizes, dim=-1))


@dataclass(frozen=True)
class UtteranceTask:
    name: str
    corpus: str | None  # the corpus a store must hold (None: any)
    heads: tuple[str, ...]  # manifest meta fields to predict
    assign: Callable[[FeatureStore, DataConfig], Roles]
    classes: Callable[[list[list[str]], Config], list[list[str]]]  # per head, from the train labels
    description: str = ""
    metric: str = "acc"
    higher_is_better: bool = True
    labels: Callable[[FeatureStore, Roles, Config, int], dict[tuple[str, int], tuple[str, ...]]] | None = None
    s3prl_balanced_dev: bool = False  # s3prl scores dev on class-balanced draws (KS: data.dev_sampling)
    head: Callable[[int, ModelConfig, list[int]], nn.Module] | None = None  # None: s3prl's UtteranceLevel
    # the roles whose labels make the classes, in order (ATIS under s3prl's rule: train, dev, test)
    class_roles: Callable[[Config], tuple[str, ...]] = lambda config: ("train",)
    # a dev/test label outside the classes: "error", or "wrong" (scored as a miss, left out of the loss)
    unseen: str = "error"
    macro_f1: bool = False  # also report macro F1 over the classes (MOSEI, as s3prl's sklearn f1_score)
    # what results.json's notes say of a run's choices where they differ from s3prl's (MOSEI's pooling …)
    describe: Callable[[Config], dict[str, Any]] | None = None
    folds: tuple[int, ...] = ()  # a task run once per fold (ER's sessions, --fold); superb bench runs each

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        roles = self.assign(store, config.data)
        if self.labels is not None:
            labels = self.labels(store, roles, config, seed)
        else:
            labels = {}
            for split in {s for pairs in roles.values() for s, _ in pairs}:
                for i, record in enumerate(store.split(split).records):
                    labels[(split, i)] = tuple(str(record["meta"].get(h, "")) for h in self.heads)
        if not roles["train"]:
            raise ConfigError(f"task {self.name!r}: the train split has no utterances in {store.path}")
        seen = [labels[pair] for role in self.class_roles(config) for pair in roles.get(role, [])]
        classes = self.classes([[lab[h] for lab in seen] for h in range(len(self.heads))], config)
        index = [{c: k for k, c in enumerate(names)} for names in classes]
        items: dict[str, list[Item]] = {}
        unseen: dict[str, int] = {}
        for role, pairs in roles.items():
            out = []
            for split, i in pairs:
                target = []
                for h, value in enumerate(labels[(split, i)]):
                    if value not in index[h]:
                        if self.unseen != "wrong" or role == "train":
                            uid = store.split(split).ids[i]
                            raise ConfigError(f"{store.path}: {split}/{uid} has {self.heads[h]} {value!r}, which "
                                              f"the train split never has (classes: {', '.join(classes[h])})")
                        unseen[role] = unseen.get(role, 0) + 1
                    target.append(index[h].get(value, UNSEEN))
                out.append(Item(split, i, tuple(target)))
            items[role] = out
        ids = {role: [str(store.split(s).ids[i]) for s, i in pairs] for role, pairs in roles.items()}
        notes = dict(self.describe(config)) if self.describe is not None else {}
        if self.unseen == "wrong":  # the class rule matters (ATIS): say which one, and what it left unscored
            notes.update(classes_from=list(self.class_roles(config)), unseen_labels=unseen)
        return Prepared(items=items, classes=classes, heads=self.heads, ids=ids, notes=notes)

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> nn.Module:
        sizes = [len(c) for c in prepared.classes]
        if self.head is not None:
            return self.head(dim, model, sizes)
        return UtteranceHead(dim, model.projector_dim, sizes, model.pooling)

    def loss(self, logits: list[torch.Tensor], lengths: torch.Tensor, batch: dict) -> torch.Tensor:
        """Cross-entropy per head, summed (``batch['targets']`` is ``(B, heads)``); a label outside the classes
        (``UNSEEN``, scored as a miss) is left out."""
        total = logits[0].new_zeros(())
        for h, out in enumerate(logits):
            target = batch["targets"][:, h]
            known = target != UNSEEN
            if bool(known.all()):
                total = total + F.cross_entropy(out, target)
            elif bool(known.any()):
                total = total + F.cross_entropy(out[known], target[known])
        return total

    def predict(self, logits: list[torch.Tensor], lengths: torch.Tensor, prepared: Prepared) -> list[tuple[int, ...]]:
        return [tuple(row) for row in torch.stack([out.argmax(-1) for out in logits], dim=1).tolist()]

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        """``acc`` (every head right), per-head accuracy, and confusion matrices (rows = truth)."""
        if len(targets) == 0:
            return {"acc": float("nan")}
        predictions, targets = np.asarray(predictions), np.asarray(targets)
        right = predictions == targets
        out: dict[str, Any] = {"acc": float(right.all(axis=1).mean())}
        confusion = {}
        for h, head in enumerate(self.heads):
            if len(self.heads) > 1:
                out[f"acc_{head}"] = float(right[:, h].mean())
            size = len(prepared.classes[h])
            matrix = np.zeros((size, size), dtype=np.int64)
            known = targets[:, h] != UNSEEN  # a label outside the classes has no row
            np.add.at(matrix, (targets[known, h], predictions[known, h]), 1)
            confusion[head] = {"labels": prepared.classes[h], "matrix": matrix.tolist()}
        out["confusion"] = confusion
        if self.macro_f1:
            from sklearn.metrics import f1_score

            out["f1_macro"] = float(f1_score(targets[:, 0], predictions[:, 0], average="macro"))
        return out


# -- shared pieces the task folders combine --------------------------------------------------------


def check_corpus(store: FeatureStore, task: str, corpus: str | None) -> None:
    """A store of another corpus than the task's is refused in one line that says what to extract."""
    held = store.attrs["corpus"]["name"]
    if corpus is not None and held != corpus:
        raise StoreError(f"{store.path}: the store holds corpus {held!r}; task {task!r} needs {corpus!r} "
                         f"(extract it with --corpus {corpus})")


def splits_by_role(store: FeatureStore, data: DataConfig) -> Roles:
    """train/dev/test = the store splits named in ``data`` (each must exist)."""
    roles = {}
    for role in ("train", "dev", "test"):
        split = getattr(data, role)
        view = store.split(split)  # raises naming the missing split
        roles[role] = [(split, i) for i in range(len(view))]
    return roles


def fixed_classes(names: list[str]) -> Callable[[list[list[str]], Config], list[list[str]]]:
    return lambda train_labels, config: [list(names)]


def sorted_classes(train_labels: list[list[str]], config: Config) -> list[list[str]]:
    return [sorted(set(labels)) for labels in train_labels]


def first_seen_classes(train_labels: list[list[str]], config: Config) -> list[list[str]]:
    return [list(dict.fromkeys(labels)) for labels in train_labels]
