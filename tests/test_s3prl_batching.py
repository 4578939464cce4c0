"""PR/ASR/SF train batches as s3prl makes them: its bucketing code, written out below, against superb's plans.

The s3prl parts are copied from 0.4.18 with only the audio reads replaced by a length table:
``downstream/asr/dataset.py`` (``SequenceDataset``: pandas sort, buckets, ``HALF_BATCHSIZE_TIME``),
``downstream/ctc/corpus/libriphone.py`` / ``snips.py`` (sort by text length, ``__getitem__`` windows) and
``downstream/ctc/data.py`` (``collect_audio_batch``: halving, order within a batch; ``load_dataset``:
``DataLoader(batch_size=1)`` over the buckets). The order of buckets is compared where s3prl's is
reproducible: its ``DistributedSampler`` (torchrun), seeded with ``seed + epoch``.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from superb.errors import ConfigError
from superb.train.config import BATCHINGS, default_config_path, load_config
from superb.train.data import (
    BATCH_PLANS,
    Buckets,
    Item,
    TrainBatches,
    batch_plan,
    s3prl_asr_buckets,
    s3prl_ctc_windows,
)
from superb.train.onthefly import AudioItems

HALF_BATCHSIZE_TIME = 2000


class S3prlAsrDataset(Dataset):
    """s3prl ``downstream/asr/dataset.py`` ``SequenceDataset``: the bucketing of ``__init__``, its
    ``__len__``/``__getitem__`` and ``collate_fn`` (transcripts: every utterance has one)."""

    def __init__(self, table: pd.DataFrame, bucket_size: int):
        table_list = table.sort_values(by=['length'], ascending=False)
        X = table_list['file_path'].tolist()
        X_lens = table_list['length'].tolist()
        usage_list = X
        self.X = []
        batch_x, batch_len = [], []
        for x, x_len in zip(X, X_lens):
            if x in usage_list:
                batch_x.append(x)
                batch_len.append(x_len)
                if len(batch_x) == bucket_size:
                    if (bucket_size >= 2) and (max(batch_len) > HALF_BATCHSIZE_TIME):
                        self.X.append(batch_x[:bucket_size//2])
                        self.X.append(batch_x[bucket_size//2:])
                    else:
                        self.X.append(batch_x)
                    batch_x, batch_len = [], []
        if len(batch_x) > 1:
            if x in usage_list:
                self.X.append(batch_x)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index]

    def collate_fn(self, items):
        assert len(items) == 1
        return items[0]


class S3prlCtcDataset(Dataset):
    """s3prl ``downstream/ctc/corpus/libriphone.py`` ``LibriPhoneDataset`` (``snips.py`` is the same): the
    sort of ``__init__`` and ``__getitem__``."""

    def __init__(self, file_list, text, bucket_size, ascending=False):
        self.bucket_size = bucket_size
        self.file_list, self.text = zip(*[(f_name, txt)
                                          for f_name, txt in sorted(zip(file_list, text), reverse=not ascending,
                                                                    key=lambda x:len(x[1]))])

    def __getitem__(self, index):
        if self.bucket_size > 1:
            index = min(len(self.file_list)-self.bucket_size, index)
            return [(f_path, txt) for f_path, txt in
                    zip(self.file_list[index:index+self.bucket_size], self.text[index:index+self.bucket_size])]
        else:
            return self.file_list[index], self.text[index]

    def __len__(self):
        return len(self.file_list)


def collect_audio_batch(batch, split, samples, half_batch_size_wav_len=300000):
    """s3prl ``downstream/ctc/data.py``, the audio read replaced by ``samples[file]``; returns the files."""
    if type(batch[0]) is not tuple:
        batch = batch[0]
    first_len = samples[batch[0][0]]
    if split == 'train':
        if first_len > half_batch_size_wav_len and len(batch) > 1:
            batch = batch[:len(batch)//2]
    file, audio_len = [], []
    for b in batch:
        file.append(b[0])
        audio_len.append(samples[b[0]])
    return [f for _, f in sorted(zip(audio_len, file), reverse=True, key=lambda x: x[0])]


def s3prl_loader(dataset: Dataset, collate_fn, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """s3prl's train ``DataLoader`` under torchrun: ``batch_size=1`` over the buckets, ``DistributedSampler``
    with ``set_epoch(epoch)`` (the runner's), for process ``rank`` of ``world``."""
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=seed)
    sampler.set_epoch(epoch)
    return [list(b) for b in DataLoader(dataset, batch_size=1, sampler=sampler, collate_fn=collate_fn)]


def superb_epoch(plan, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """Process ``rank``'s batches of ``epoch`` in superb's stream (positions ``rank, rank + world, …``)."""
    stream = TrainBatches(plan, seed, rank, world)
    stream.set_position(epoch * stream.epoch_length)
    batches = iter(stream)
    count = len(range(rank, stream.epoch_length, world))
    return [[k for k, _ in next(batches)] for _ in range(count)]


def test_librispeech_buckets_are_all_halved_to_16():
    """s3prl's 2000 is compared with samples: LibriSpeech's shortest utterances (train-clean-100: 22,560
    samples, 1.41 s) are far above it, so every bucket of 32 is halved; the 27 shortest of 28,539 stay one
    batch (not halved), no utterance is lost."""
    samples = np.random.default_rng(0).integers(22_560, 392_401, size=28_539)
    buckets = s3prl_asr_buckets(list(samples), 32)
    assert len(buckets) == 2 * 891 + 1 and [len(b) for b in buckets[:-1]] == [16] * 1782 and len(buckets[-1]) == 27
    assert sorted(np.concatenate(buckets).tolist()) == list(range(28_539))
    assert [len(b) for b in s3prl_asr_buckets([1000] * 70, 32)] == [32, 32, 6]  # nothing over 2000: whole
    assert [len(b) for b in s3prl_asr_buckets([5000] * 65, 32)] == [16] * 4  # a single leftover is dropped


@pytest.mark.parametrize("n, size, world", [(203, 32, 1), (203, 32, 2), (50, 7, 3), (61, 16, 1)])
def test_asr_buckets_and_their_order_equal_s3prls(n, size, world):
    rng = np.random.default_rng(n)
    lengths = rng.choice(np.arange(1000, 400_000), size=n, replace=False)  # distinct: pandas' sort is unstable
    lengths[: n // 3] = rng.choice(np.arange(100, 2000), size=n // 3, replace=False)  # some buckets stay whole
    files = [f"utt{k}" for k in range(n)]
    s3prl = S3prlAsrDataset(pd.DataFrame({"file_path": files, "length": lengths}), size)
    plan = Buckets(s3prl_asr_buckets(list(lengths), size), size)
    assert [[files[k] for k in b] for b in plan.buckets] == s3prl.X
    for epoch in (0, 3):
        for rank in range(world):
            theirs = s3prl_loader(s3prl, s3prl.collate_fn, 0, epoch, rank, world)
            ours = [[files[k] for k in b] for b in superb_epoch(plan, 0, epoch, rank, world)]
            assert ours == theirs[: len(ours)]  # s3prl pads the last round with repeats; superb runs on


@pytest.mark.parametrize("n, size, world", [(120, 16, 1), (120, 16, 2), (40, 32, 1), (33, 1, 1), (10, 16, 1)])
def test_ctc_windows_and_their_order_equal_s3prls(n, size, world):
    """Ties in text length are many (they keep item order in both), and a few windows are halved."""
    rng = np.random.default_rng(n + size)
    tokens = rng.integers(5, 40, size=n)
    samples = rng.integers(20_000, 280_000, size=n)
    long = [*np.argsort(-tokens, kind="stable")[:2], *rng.choice(n, size=2, replace=False)]
    samples[long] = rng.integers(300_001, 400_000, size=4)  # two of them head a window: halved
    files = [f"utt{k}" for k in range(n)]
    text = [list(range(t)) + [1] for t in tokens]  # s3prl's tokens end with <eos>: one more, same order
    s3prl = S3prlCtcDataset(files, text, size)
    collate = partial(collect_audio_batch, split="train", samples=dict(zip(files, samples.tolist())))
    windows = s3prl_ctc_windows(list(samples), list(tokens), size)
    plan = Buckets(windows, size)
    if n >= size:  # s3prl's negative slice start (a corpus smaller than a batch) is not reproduced
        assert [[files[k] for k in w] for w in windows] == [collate([s3prl[i]]) for i in range(n)]
    else:
        assert all(sorted(w.tolist()) == list(range(n)) for w in windows if len(w) > n // 2)  # all (or halved)
        return
    halved = [w for w in windows if len(w) < size]
    assert size == 1 or len(halved) >= 1
    for seed in (0, 5):
        for rank in range(world):
            theirs = s3prl_loader(s3prl, collate, seed, 2, rank, world)
            ours = [[files[k] for k in b] for b in superb_epoch(plan, seed, 2, rank, world)]
            assert ours == theirs[: len(ours)]


class _Train:
    """A train dataset as the plans see it: items with targets, frames, samples."""

    def __init__(self, samples: list[int], tokens: list[int]):
        self.items = [Item("train", k, tuple(range(t))) for k, t in enumerate(tokens)]
        self.lengths = [s // 320 for s in samples]
        self._samples = samples

    def samples(self) -> list[int]:
        return self._samples


def test_batch_plan_names_and_thresholds():
    train = _Train([5000, 400_000, 1800, 1500], [3, 9, 4, 2])
    assert [b.tolist() for b in batch_plan("s3prl_asr", train, 2).buckets] == [[1], [0], [2, 3]]
    assert [b.tolist() for b in batch_plan("s3prl_asr", train, 2, half_samples=10**6).buckets] == [[1, 0], [2, 3]]
    assert [b.tolist() for b in batch_plan("s3prl_ctc", train, 2).buckets] == [[1], [0, 2], [0, 3], [0, 3]]
    assert [b.tolist() for b in batch_plan("s3prl_ctc", train, 2, half_samples=0).buckets] == [[1], [2], [0], [0]]
    with pytest.raises(ConfigError, match="gives no batch"):
        TrainBatches(batch_plan("s3prl_asr", _Train([5000], [3]), 2), seed=0)
    records = [{"num_samples": n, "path": "x.wav"} for n in train.samples()]  # the on-the-fly path
    source = SimpleNamespace(split=lambda name: SimpleNamespace(records=records))
    on_the_fly = AudioItems(source, train.items)
    assert [b.tolist() for b in batch_plan("s3prl_ctc", on_the_fly, 2).buckets] == [[1], [0, 2], [0, 3], [0, 3]]


def test_a_resumed_stream_gives_the_uninterrupted_batches():
    """Resuming at a stream position (a checkpoint's) continues exactly where the run stood, across epochs,
    for one process and for each of two (positions r, r + 2, … of the one stream)."""
    rng = np.random.default_rng(3)
    train = _Train(list(rng.integers(1000, 400_000, size=45)), list(rng.integers(3, 30, size=45)))
    for name in ("s3prl_asr", "s3prl_ctc"):
        plan = batch_plan(name, train, 8)
        whole = iter(TrainBatches(plan, seed=4))
        uninterrupted = [next(whole) for _ in range(3 * plan.epoch_length)]
        for stop in (5, plan.epoch_length + 2):
            resumed = TrainBatches(plan, seed=4)
            resumed.set_position(stop)
            again = iter(resumed)
            assert [next(again) for _ in range(len(uninterrupted) - stop)] == uninterrupted[stop:]
            shares = []
            for rank in range(2):
                part = TrainBatches(plan, seed=4, rank=rank, world=2)
                part.set_position(stop)
                stream = iter(part)
                shares.append([next(stream) for _ in range(10)])
            assert [b for pair in zip(*shares, strict=True) for b in pair] == uninterrupted[stop : stop + 20]
        assert TrainBatches(plan, seed=4).batches(0) != TrainBatches(plan, seed=4).batches(1)  # reshuffled
        assert sorted(map(tuple, (b.tolist() for b in plan.batches(0, 0)))) == \
            sorted(map(tuple, (b.tolist() for b in plan.batches(0, 1))))  # the same buckets every epoch


def test_pr_asr_sf_configs_batch_as_s3prl_and_the_choice_is_checked():
    for task, expected in {"pr": ("s3prl_ctc", 16, 300_000), "asr": ("s3prl_asr", 32, 2000),
                           "sf": ("s3prl_ctc", 32, 300_000), "ks": ("pools", 32, None)}.items():
        data = load_config(default_config_path(task)).data
        assert (data.batching, data.batch_size, data.half_batch_samples) == expected, task
    assert BATCHINGS == tuple(BATCH_PLANS)  # the torch-free config's list is the registry's
    with pytest.raises(ConfigError, match="data.batching 'buckets' is not one of pools, s3prl_asr, s3prl_ctc"):
        load_config(default_config_path("pr"), "config.data.batching=buckets")
    with pytest.raises(ConfigError, match="data.balanced draws classes evenly with data.batching 'pools' only"):
        load_config(default_config_path("ks"), "config.data.balanced=true,,config.data.batching=s3prl_asr")
    with pytest.raises(ConfigError, match="config.data.half_batch_samples must be an integer >= 0, got -1"):
        load_config(default_config_path("asr"), "config.data.half_batch_samples=-1")
