"""MOSEI (s3prl: mosei): sentiment or emotion classes of CMU-MOSEI segments; accuracy and macro F1.

The class comes from the label file's columns as s3prl's expert takes it (``data.num_class``):

| num_class | column | class |
|---|---|---|
| 2 | label2a | 0 negative, 1 non-negative (a score of 0 is non-negative) |
| 3 | label2b | label2b + 1: negative, neutral, positive |
| 6 | label6 | the strongest emotion: happy, sad, anger, surprise, disgust, fear |
| 7 | label7 | label7 + 3: the score as sign(a)·ceil(abs(a)), from −3 to 3 |

Head: s3prl's ``Linear(D → 256)`` → mean over time → ``Linear(256 → classes)``. s3prl's mean runs over the
padded batch (each padded frame adds the connector's bias, so a prediction depends on the batch); the default
averages the valid frames, ``model.pooling: s3prl_padded_mean`` is s3prl's. s3prl tracks its best checkpoint
by accuracy on dev (and keeps one chosen on test); superb selects on dev accuracy and reports macro F1 beside it.
"""

from __future__ import annotations

from superb.errors import ConfigError
from superb.stores.base import FeatureStore
from superb.train.config import Config
from superb.train.tasks.utterance import Roles, UtteranceTask, splits_by_role

#: num_class → (label column, offset s3prl adds, class names in index order)
SCHEMES = {
    2: ("label2a", 0, ["negative", "non-negative"]),
    3: ("label2b", 1, ["negative", "neutral", "positive"]),
    6: ("label6", 0, ["happy", "sad", "anger", "surprise", "disgust", "fear"]),
    7: ("label7", 3, ["-3", "-2", "-1", "0", "1", "2", "3"]),
}


def scheme(config: Config) -> tuple[str, int, list[str]]:
    if config.data.num_class not in SCHEMES:
        raise ConfigError(f"config data.num_class {config.data.num_class} is not one of 2, 3, 6, 7 (s3prl's MOSEI "
                          "class schemes)")
    return SCHEMES[config.data.num_class]


def mosei_labels(store: FeatureStore, roles: Roles, config: Config, seed: int) -> dict[tuple[str, int], tuple[str]]:
    """Each utterance's class name under ``data.num_class``; a value outside the scheme names the utterance."""
    column, offset, names = scheme(config)
    labels = {}
    for pairs in roles.values():
        for split, i in pairs:
            record = store.split(split).records[i]
            index = int(record["meta"][column]) + offset
            if not 0 <= index < len(names):
                raise ConfigError(f"{store.path}: {split}/{record['id']} has {column} {record['meta'][column]}, "
                                  f"outside the {len(names)}-class scheme")
            labels[(split, i)] = (names[index],)
    return labels


def describe(config: Config) -> dict[str, str | int]:
    pooling = config.model.pooling
    return {"num_class": config.data.num_class,
            "pooling": pooling if pooling != "mean" else "mean over valid frames (s3prl: over the padded batch)"}


TASK = UtteranceTask(
    name="mosei",
    corpus="mosei",
    heads=("sentiment",),
    assign=splits_by_role,
    classes=lambda train_labels, config: [scheme(config)[2]],
    description="sentiment / emotion, CMU-MOSEI, mean-pool + linear, accuracy and macro F1",
    labels=mosei_labels,
    macro_f1=True,
    describe=describe,
)
