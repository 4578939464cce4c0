"""The CPC phone labels s3prl's phone tasks read, given at fit time (``--labels DIR``).

``DIR`` holds ``converted_aligned_phones.txt`` (``UTTID ID ID …``: one class id in [0, 41) per 10 ms of
LibriSpeech train-clean-100 audio), ``train_split.txt`` and ``test_split.txt`` (one utterance id per line;
the real files have no newline after the last). As s3prl's ``PhoneDataset``: dev is carved from the train
list by Python's ``random.seed(1337)``, ``random.shuffle`` and a cut at ``int(0.9 × N)`` (train first).
On the real list that gives 20,547 train and 2,283 dev ids, starting ``3947-13262-0002`` and
``7367-86737-0057``, as s3prl's. Blank lines (a trailing newline, a CRLF copy) are not ids.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from superb.errors import ConfigError
from superb.files import lines_of

CLASSES = 41  # s3prl's class_num, hard-coded in phone_linear/dataset.py
LABEL_RATE = 100.0  # label frames per second (CPC's 160-sample step at 16 kHz)
LABELS_FILE = "converted_aligned_phones.txt"
SPLIT_FILES = {"train": "train_split.txt", "test": "test_split.txt"}


@dataclass
class PhoneLabels:
    """Frame labels per utterance id, the ids of each role with their list file and line, and the files' hashes."""

    frames: dict[str, np.ndarray]  # int8 class ids per 10 ms
    roles: dict[str, list[tuple[str, str]]]  # role → [(utterance id, "FILE:LINE" it came from)]
    identity: dict[str, object]  # folder and each file's SHA-256, for results.json


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; --labels names the CPC phone label folder ({LABELS_FILE}, "
                          f"{', '.join(SPLIT_FILES.values())})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _frame_labels(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """``{utterance id: int8 class ids}``. numpy parses each line (the real file: 28,539 lines, ~40M ids, in
    about 2 s, where Python ints took 14 s and 300 MB more)."""
    frames: dict[str, np.ndarray] = {}
    for number, line in lines_of(data, path, "phone label file", ConfigError):
        fields = line.split(None, 1)
        if not fields:
            continue
        uid, rest = fields[0], fields[1] if len(fields) > 1 else ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy only warns about a token it cannot read
                ids = np.fromstring(rest, dtype=np.int64, sep=" ")
        except ValueError:
            raise ConfigError(f"{path}:{number}: phone ids must be integers, got {line[:60]!r}") from None
        bad = ids[(ids < 0) | (ids >= CLASSES)]
        if len(bad) or not len(ids):
            raise ConfigError(f"{path}:{number}: " + (f"phone id {bad[0]} is outside [0, {CLASSES})" if len(bad) else
                                                      f"utterance {uid!r} has no frame labels"))
        if uid in frames:
            raise ConfigError(f"{path}:{number}: utterance {uid!r} is labelled twice")
        frames[uid] = ids.astype(np.int8)
    return frames


def _ids(path: Path, data: bytes) -> list[tuple[str, str]]:
    return [(line.strip(), f"{path}:{number}") for number, line in lines_of(data, path, "split list", ConfigError)
            if line.strip()]


def holds_phone_labels(folder: Path) -> bool:
    """Whether ``folder`` is a CPC phone label folder (``superb bench`` finds it under a data root)."""
    return (folder / LABELS_FILE).is_file()


def read_phone_labels(folder: str | Path, dev_ratio: float = 0.1, seed: int = 1337) -> PhoneLabels:
    """The label folder's frames and its train/dev/test ids (dev carved from train as s3prl does)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--labels {folder}: not a folder (the CPC phone labels: {LABELS_FILE}, "
                          f"{', '.join(SPLIT_FILES.values())})")
    files = {name: folder / name for name in (LABELS_FILE, *SPLIT_FILES.values())}
    data = {name: _read(path) for name, path in files.items()}
    frames = _frame_labels(files[LABELS_FILE], data[LABELS_FILE])
    train = _ids(files[SPLIT_FILES["train"]], data[SPLIT_FILES["train"]])
    random.Random(seed).shuffle(train)  # what random.seed(seed); random.shuffle(lines) gives
    cut = int(len(train) * (1 - dev_ratio))
    roles = {"train": train[:cut], "dev": train[cut:],
             "test": _ids(files[SPLIT_FILES["test"]], data[SPLIT_FILES["test"]])}
    for role, ids in roles.items():
        if not ids:
            raise ConfigError(f"{folder}: the {role} list is empty")
        for uid, where in ids:
            if uid not in frames:
                raise ConfigError(f"{where}: utterance {uid!r} has no labels in {files[LABELS_FILE]}")
    identity = {"folder": str(folder.resolve()), "split_seed": seed, "dev_ratio": dev_ratio,
                "files": {name: hashlib.sha256(blob).hexdigest() for name, blob in data.items()}}
    return PhoneLabels(frames, roles, identity)
