"""example (s3prl: example): mean-pool + linear on seeded random labels, over any corpus store.

It checks the plumbing (store → featurizer → head → checkpoints → report), not a model: accuracy should
sit at chance. Train/dev/test are the store splits named in the config when they exist; otherwise 80/10/10
of the first split, drawn with a fixed seed (0) so every run splits alike.
"""

import hashlib

import numpy as np

from superb.stores.base import FeatureStore
from superb.train.config import Config, DataConfig
from superb.train.tasks.utterance import Roles, UtteranceTask


def any_splits(store: FeatureStore, data: DataConfig) -> Roles:
    named = [getattr(data, role) for role in ("train", "dev", "test")]
    if all(split in store.splits for split in named):
        return {role: [(s, i) for i in range(len(store.split(s)))]
                for role, s in zip(("train", "dev", "test"), named, strict=True)}
    split = store.splits[0]
    order = np.random.default_rng(0).permutation(len(store.split(split)))
    n = len(order)
    cut = [int(n * 0.8), int(n * 0.9)]
    parts = np.split(order, cut)
    return {role: [(split, int(i)) for i in sorted(part)] for role, part in zip(("train", "dev", "test"), parts,
                                                                                   strict=True)}


def random_labels(store: FeatureStore, roles: Roles, config: Config, seed: int) -> dict:
    """A label per utterance from a hash of (seed, utterance id): reproducible, meaningless."""
    out = {}
    for pairs in roles.values():
        for split, i in pairs:
            uid = str(store.split(split).ids[i])
            digest = hashlib.sha256(f"{seed}:{uid}".encode()).digest()
            out[(split, i)] = (str(int.from_bytes(digest[:4], "little") % config.data.num_classes),)
    return out


TASK = UtteranceTask(
    name="example",
    corpus=None,
    heads=("label",),
    assign=any_splits,
    classes=lambda train, config: [[str(k) for k in range(config.data.num_classes)]],
    labels=random_labels,
    description="plumbing check: random labels on any corpus store",
)
