"""Trainer parts without a full run: featurizer, batch plans, crops, preload, loader, task registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from superb.errors import ConfigError
from superb.registry import TASKS
from superb.stores.base import into
from superb.train.data import (BalancedEvalDraws, Item, Loader, Pools, StoreItems, TrainBatches, balanced_draw,
                               collate, eval_batches)
from superb.train.featurizer import Featurizer


def test_featurizer_weighted_sum_starts_equal_and_single_layer_selects():
    hidden = torch.randn(2, 5, 3, 4)
    weighted = Featurizer([0, 1, 2])
    torch.testing.assert_close(weighted(hidden), hidden.mean(2))
    assert weighted.layer_weights() == {"layers": [0, 1, 2], "weights": pytest.approx([1 / 3] * 3)}
    single = Featurizer([0, 4, 8], layer=8)
    torch.testing.assert_close(single(hidden), hidden[:, :, 2])
    assert single.layer_weights() is None and not list(single.parameters())
    with pytest.raises(ConfigError, match="layer 5 is not in the store"):
        Featurizer([0, 4, 8], layer=5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_weighted_sum_matches_einsum_forward_and_backward(dtype):
    """The layer-by-layer weighted sum (no float32 copy of every layer) against the plain einsum, and its
    gradients against autograd's: for the weights (a store) and for the hidden states (finetuning)."""
    from superb.train.featurizer import WeightedSum

    torch.manual_seed(0)
    hidden = torch.randn(3, 7, 5, 6).to(dtype).double().requires_grad_()
    weights = torch.softmax(torch.randn(5, dtype=torch.float64), 0).requires_grad_()
    torch.autograd.gradcheck(WeightedSum.apply, (hidden, weights))  # float64: exact finite differences
    stored = hidden.detach().to(dtype)
    w = weights.detach().float().requires_grad_()
    ours = WeightedSum.apply(stored, w)
    theirs = torch.einsum("btld,l->btd", stored.float(), w)
    torch.testing.assert_close(ours, theirs)
    grad = torch.randn_like(ours)
    torch.testing.assert_close(torch.autograd.grad(ours, w, grad)[0], torch.autograd.grad(theirs, w, grad)[0])


def test_train_batches_are_a_function_of_seed_and_epoch():
    lengths = list(np.random.default_rng(0).integers(10, 500, size=103))
    a, b = TrainBatches(Pools(lengths, 8), seed=1), TrainBatches(Pools(lengths, 8), seed=1)
    assert a.batches(0) == b.batches(0) and a.batches(0) != a.batches(1)
    assert a.batches(0) != TrainBatches(Pools(lengths, 8), seed=2).batches(0)
    flat = sorted(k for batch in a.batches(0) for k, _ in batch)
    assert flat == list(range(103))  # a permutation: every item once per epoch
    assert a.epoch_length == len(a.batches(0)) == len(a.batches(5))
    a.set_position(3 * a.epoch_length + 4)
    stream = iter(a)
    resumed = [next(stream) for _ in range(a.epoch_length)]  # resuming skips the finished batches, no more
    assert resumed == a.batches(3)[4:] + a.batches(4)[:4]  # and runs on into the next epoch
    pools = [sorted(lengths[k] for k, _ in batch) for batch in a.batches(0)]
    spread = np.mean([p[-1] - p[0] for p in pools])
    assert spread < 0.5 * (max(lengths) - min(lengths))  # length-aware: little padding per batch


def test_processes_share_the_one_process_stream():
    """torchrun: process r of w takes stream positions r, r + w, …; together they read what one would."""
    lengths = list(np.random.default_rng(1).integers(10, 500, size=61))
    one = TrainBatches(Pools(lengths, 4), seed=3)
    one.set_position(10)
    alone = iter(one)
    expected = [next(alone) for _ in range(40)]
    shares = []
    for rank in range(2):
        part = TrainBatches(Pools(lengths, 4), seed=3, rank=rank, world=2)
        part.set_position(10)
        stream = iter(part)
        shares.append([next(stream) for _ in range(20)])
    assert [batch for pair in zip(*shares, strict=True) for batch in pair] == expected


def test_balanced_batches_draw_classes_evenly():
    classes = [0] * 900 + [1] * 90 + [2] * 10
    sampler = TrainBatches(Pools([100] * 1000, 50, classes), seed=0)
    drawn = np.bincount([classes[k] for batch in sampler.batches(0) for k, _ in batch], minlength=3)
    assert drawn.sum() == 1000 and all(250 < n < 420 for n in drawn), drawn


def test_balanced_draw_is_s3prls_weighted_sampler():
    """s3prl's speech_commands: ``WeightedRandomSampler(sample_weights, len(sample_weights))`` (with
    replacement) where ``sample_weights = [len(data) / class_counts[c] for c in data]``."""
    labels = [0] * 6 + [1] * 3 + [2]

    class Recorder:
        def choice(self, n, size, replace, p):
            self.call = (n, size, replace, p)
            return np.zeros(size, dtype=np.int64)

    rng = Recorder()
    balanced_draw(np.asarray(labels), rng)
    class_counts = {c: labels.count(c) for c in set(labels)}
    sample_weights = np.array([len(labels) / class_counts[c] for c in labels])
    n, size, replace, p = rng.call
    assert (n, size, replace) == (len(labels), len(labels), True)
    np.testing.assert_allclose(p, sample_weights / sample_weights.sum(), rtol=1e-15)


def test_balanced_dev_draws_are_a_function_of_seed_and_step():
    classes = [0] * 90 + [1] * 9 + [2]
    lengths = list(range(100, 0, -1))
    draws = BalancedEvalDraws(lengths, classes, 16, seed=5)

    def drawn(step: int, sampler: BalancedEvalDraws = draws) -> list[list[int]]:
        sampler.draw_for(step)
        return [[k for k, _ in batch] for batch in sampler]

    first = drawn(10)
    assert len(first) == len(draws) == 7 and all(len(b) <= 16 for b in first)
    items = [k for batch in first for k in batch]
    assert len(items) == 100 and len(set(items)) < 100  # with replacement
    assert [lengths[k] for k in items] == sorted(lengths[k] for k in items)  # batches sorted by length
    assert drawn(10) == first and drawn(20) != first
    assert drawn(10, BalancedEvalDraws(lengths, classes, 16, seed=6)) != first
    shares = np.bincount([classes[k] for step in range(50) for b in drawn(step) for k in b], minlength=3) / 5000
    assert np.all(np.abs(shares - 1 / 3) < 0.04), shares  # each class a third, whatever its size
    assert list(BalancedEvalDraws([], [], 16, seed=0)) == []


def test_eval_batches_cover_everything_once_sorted():
    lengths = [5, 1, 9, 3]
    batches = eval_batches(lengths, 3)
    assert [k for batch in batches for k, _ in batch] == [1, 3, 0, 2]


class _FakeView:
    def __init__(self, frames: list[int]):
        self.offsets = np.concatenate([[0], np.cumsum(frames)]).astype(np.int64)
        self.values = np.arange(self.offsets[-1] * 2, dtype=np.float16).reshape(-1, 1, 2)
        self.done = np.ones(len(frames), dtype=bool)
        self.ids = np.array([f"u{i}" for i in range(len(frames))])
        self.records = [{"num_samples": 320 * n} for n in frames]

    def read_frames(self, start: int, end: int, out: np.ndarray | None = None) -> np.ndarray:
        return into(self.values[start:end].copy(), out)


class _FakeStore:
    path = "fake"
    layers = [0]
    attrs = {"dim": 2, "dtype": "float16"}

    def __init__(self, frames: list[int]):
        self.view = _FakeView(frames)

    def split(self, name: str) -> _FakeView:
        return self.view


def test_crops_are_seeded_and_preload_gives_the_same_items():
    store = _FakeStore([30, 5, 12])
    items = [Item("train", i, (i,)) for i in range(3)]
    lazy = StoreItems(store, items, crop_frames=10)
    cached = StoreItems(store, items, crop_frames=10, preload=True)
    x, target, position = lazy[(0, 7)]
    assert x.shape == (10, 1, 2) and target == (0,) and position == 0
    np.testing.assert_array_equal(x, cached[(0, 7)][0])
    starts = {int(lazy[(0, seed)][0][0, 0, 0]) // 2 for seed in range(40)}
    assert len(starts) > 5 and all(0 <= s <= 20 for s in starts)  # random windows inside the utterance
    assert lazy[(1, 7)][0].shape[0] == 5  # shorter than the crop: whole
    assert lazy.samples() == [9600, 1600, 3840]  # the manifest's, per item (s3prl's buckets use them)
    store.view.done[2] = False
    with pytest.raises(ConfigError, match="not extracted yet"):
        StoreItems(store, items)


def test_collate_pads_and_threaded_loader_keeps_order():
    store = _FakeStore([3, 1, 4, 1, 5, 9, 2, 6])
    data = StoreItems(store, [Item("train", i, (i % 2,)) for i in range(8)])
    batch = collate([data[(0, 0)], data[(1, 0)]])
    assert batch["features"].shape == (2, 3, 1, 2) and batch["lengths"].tolist() == [3, 1]
    assert batch["features"][1, 1:].abs().sum() == 0 and batch["targets"].tolist() == [[0], [1]]
    assert batch["index"].tolist() == [0, 1] and batch["target_lengths"].tolist() == [1, 1]
    ragged = collate([(np.zeros((2, 1, 2), np.float16), (4, 5, 6), 7), (np.zeros((1, 1, 2), np.float16), (9,), 3)])
    assert ragged["targets"].tolist() == [[4, 5, 6], [9, 0, 0]] and ragged["target_lengths"].tolist() == [3, 1]
    plan = eval_batches(data.lengths, 3)
    inline = [b["lengths"].tolist() for b in Loader(data, plan, threads=0)]
    threaded = [b["lengths"].tolist() for b in Loader(data, plan, threads=3, prefetch=2)]
    assert inline == threaded == [[1, 1, 2], [3, 4, 5], [6, 9]]


def test_s3prl_task_names_are_aliases():
    assert TASKS.canonical("speech_commands") == "ks"
    assert TASKS.canonical("voxceleb1") == "sid"
    assert TASKS.canonical("fluent_commands") == "ic"
    assert TASKS.canonical("emotion") == "er"
    with pytest.raises(ConfigError, match="Did you mean 'sid'"):
        TASKS.canonical("sidd")
