"""The on-the-fly path: audio straight from the corpus, the upstream inside the training loop.

``CorpusSource`` gives a corpus the few store-like facts a task needs to assign items and labels
(splits, manifest records, ids), so tasks have one code path for both sources. It is also the baseline
of the fit benchmark (stored features vs running the upstream every step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from superb.errors import ConfigError
from superb.extract import audio
from superb.extract.upstreams.base import UpstreamSpec
from superb.registry import CORPORA
from superb.train.data import Item, pad_targets


@dataclass
class _SplitRecords:
    name: str
    records: list[dict[str, Any]]
    offsets: np.ndarray | None = None  # frame offsets at the upstream's rate (tasks with frame labels)

    @property
    def ids(self) -> np.ndarray:
        return np.array([r["id"] for r in self.records], dtype=object)

    @property
    def done(self) -> np.ndarray:
        return np.ones(len(self.records), dtype=bool)

    def __len__(self) -> int:
        return len(self.records)


class CorpusSource:
    """A corpus read in place: ``.path``, ``.attrs['corpus']``, ``.splits``, ``.split(name).records``."""

    def __init__(self, corpus: str, root: Path, options: dict[str, Any] | None = None,
                 spec: UpstreamSpec | None = None):
        reader = CORPORA.get(corpus)(root, **(options or {}))
        self.path = Path(root)
        self.attrs: dict[str, Any] = {"corpus": reader.describe(), "upstream": None}
        if spec is not None:  # what a store would say: the frame rate, and each utterance's frame count
            self.attrs["frame_rate"] = spec.frame_rate
        self.splits = reader.default_splits()  # e.g. only the LibriSpeech splits unpacked
        by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in self.splits}
        for utterance in reader.utterances(self.splits):
            by_split[utterance.split].append(utterance.to_record())
        self._views = {s: _SplitRecords(s, records, _offsets(records, spec)) for s, records in by_split.items()}
        self.test_source: CorpusSource | None = None  # a second corpus a task tests on (sws2013: QUESST 2014)

    def split(self, name: str) -> _SplitRecords:
        from superb.errors import StoreError

        if name not in self._views:
            raise StoreError(f"{self.path}: corpus has no split {name!r} (splits: {', '.join(self.splits)})")
        return self._views[name]


def _offsets(records: list[dict[str, Any]], spec: UpstreamSpec | None) -> np.ndarray | None:
    if spec is None:
        return None
    return np.concatenate([[0], np.cumsum([spec.num_frames(r["num_samples"]) for r in records])]).astype(np.int64)


class AudioItems(Dataset):
    """Waveforms of items; ``__getitem__`` takes ``(position, crop_seed)`` like ``StoreItems``.

    An item that is a window of frames (SD's chunks) gets exactly the samples from which the upstream
    (``spec``) computes those frames: ``[start·hop, (start + frames − 1)·hop + window)``.
    """

    def __init__(self, source: CorpusSource, items: list[Item], crop_samples: int | None = None,
                 spec: UpstreamSpec | None = None):
        self.records = [source.split(item.split).records[item.index] for item in items]
        self.items = list(items)
        self.crop_samples = crop_samples
        self.spec = spec
        self._ranges = [self._samples(item, r["num_samples"]) for item, r in zip(self.items, self.records, strict=True)]
        self.lengths = [end - first for first, end in self._ranges]

    def _samples(self, item: Item, total: int) -> tuple[int, int]:
        if item.start == 0 and item.frames < 0:
            return 0, total
        if self.spec is None:
            raise ValueError("frame-window items need the upstream's spec")
        if self.spec.pad:  # a centred STFT pads each cut's own ends: the window's frames would not be the utterance's
            raise ConfigError(f"upstream {self.spec.name!r} pads each utterance before framing, so a window of "
                              "frames (SD's training chunks) cannot be cut from the audio; extract a store instead")
        start = item.start * self.spec.hop
        frames = item.frames if item.frames >= 0 else self.spec.num_frames(total) - item.start
        return start, min(total, start + (frames - 1) * self.spec.hop + self.spec.window)

    def samples(self) -> list[int]:
        """Each item's utterance length in 16 kHz samples (as ``StoreItems.samples``)."""
        return [int(r["num_samples"]) for r in self.records]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, tuple[int, ...], int]:
        k, crop_seed = key
        r = self.records[k]
        wave = audio.read_record(r)
        first, end = self._ranges[k]
        wave = wave[first:end]
        if self.crop_samples and wave.shape[0] > self.crop_samples:
            start = int(np.random.default_rng(crop_seed).integers(0, wave.shape[0] - self.crop_samples + 1))
            wave = wave[start : start + self.crop_samples]
        return wave, self.items[k].target, k


def collate_waves(batch: list[tuple[np.ndarray, tuple[int, ...], int]]) -> dict[str, torch.Tensor]:
    """``wavs (B, N)`` zero-padded, ``wav_lengths (B,)``, and targets as ``data.pad_targets`` gives them."""
    lengths = torch.tensor([w.shape[0] for w, _, _ in batch], dtype=torch.long)
    wavs = torch.zeros(len(batch), max(int(lengths.max()), 1))
    for b, (w, _, _) in enumerate(batch):
        wavs[b, : w.shape[0]] = torch.from_numpy(w)
    return {"wavs": wavs, "wav_lengths": lengths, **pad_targets(batch)}
