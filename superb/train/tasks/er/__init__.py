"""ER (s3prl: emotion): IEMOCAP neu/hap(+exc)/ang/sad, leave one session out, one fold per run.

Fold N tests on SessionN; the other sessions train, less a 20% dev share drawn with a fixed seed (0),
so every upstream and training seed is compared on the same dev utterances. `superb report` averages
the folds' test accuracies.
"""

import numpy as np

from superb.errors import ConfigError
from superb.stores.base import FeatureStore
from superb.train.config import DataConfig
from superb.train.tasks.utterance import Roles, UtteranceTask, fixed_classes

EMOTIONS = ["neu", "hap", "ang", "sad"]
DEV_SEED = 0


def leave_one_session_out(store: FeatureStore, data: DataConfig) -> Roles:
    fold = data.fold
    if fold is None or not 1 <= fold <= 5:
        raise ConfigError(f"task 'er': choose the test session with --fold 1..5 (got {fold})")
    test_split = f"Session{fold}"
    if test_split not in store.splits:
        raise ConfigError(f"{store.path}: fold {fold} needs split {test_split}, the store holds {store.splits}")
    pool = [(s, i) for s in store.splits if s != test_split for i in range(len(store.split(s)))]
    order = np.random.default_rng(DEV_SEED).permutation(len(pool))
    n_dev = int(round(len(pool) * data.dev_ratio))
    dev = sorted(order[:n_dev].tolist())
    train = sorted(order[n_dev:].tolist())
    return {"train": [pool[k] for k in train], "dev": [pool[k] for k in dev],
            "test": [(test_split, i) for i in range(len(store.split(test_split)))]}


TASK = UtteranceTask(
    name="er",
    corpus="iemocap",
    heads=("label",),
    assign=leave_one_session_out,
    classes=fixed_classes(EMOTIONS),
    description="emotion recognition, IEMOCAP 4 classes, leave-one-session-out, accuracy",
    folds=(1, 2, 3, 4, 5),
)
