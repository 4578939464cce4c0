"""Training data from a feature store: items, deterministic batch plans, padding.

Every random choice (order, class-balanced draws, crops) is a function of ``(seed, epoch, position)``,
never of a global RNG or of which DataLoader worker ran, so a run resumed after ``kill -9`` sees exactly
the batches the uninterrupted run would have seen. Batches are built on threads (see ``Loader``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from superb.errors import ConfigError
from superb.stores.base import FeatureStore, into


@dataclass(frozen=True)
class Item:
    split: str
    index: int  # position in the store split
    target: Sequence[int]  # one class index per head, or a sequence's labels (an int array for SD frames)
    start: int = 0  # a window of the utterance's frames (SD's fixed 2,000-frame chunks); default: all
    frames: int = -1


def item_window(item: Item, offsets: np.ndarray) -> tuple[int, int]:
    """The item's frame range ``[start, stop)`` in its split's features array (``offsets`` of that split)."""
    first, end = int(offsets[item.index]), int(offsets[item.index + 1])
    start = first + item.start
    stop = end if item.frames < 0 else start + item.frames
    if not first <= start <= stop <= end:
        raise ConfigError(f"item window [{item.start}, +{item.frames}) is outside utterance {item.index} of "
                          f"split {item.split!r} ({end - first} frames)")
    return start, stop


class StoreItems(Dataset):
    """Features of a list of store items; ``__getitem__`` takes ``(position, crop_seed)``.

    ``crop_frames`` (train only) cuts a random window of that many frames from longer utterances, its
    start drawn from ``crop_seed``.
    """

    def __init__(self, store: FeatureStore, items: Sequence[Item], crop_frames: int | None = None,
                 preload: bool = False):
        self.items = list(items)
        self.crop_frames = crop_frames
        views = {name: store.split(name) for name in {item.split for item in self.items}}
        for item in self.items:
            if not views[item.split].done[item.index]:
                raise ConfigError(f"{store.path}: utterance {views[item.split].ids[item.index]!r} is not "
                                  "extracted yet; rerun `superb extract` to complete the store")
        self._read = {name: view.read_frames for name, view in views.items()}
        self._offsets = {name: view.offsets for name, view in views.items()}
        self._windows = [item_window(i, self._offsets[i.split]) for i in self.items]
        self.lengths = [stop - start for start, stop in self._windows]
        self.frame_shape = (len(store.layers), int(store.attrs["dim"]))
        self.dtype = np.dtype(store.attrs["dtype"])
        self._records = {name: view.records for name, view in views.items()}
        self._cache: list[np.ndarray] | None = None
        if preload:
            self._cache = [self._read[i.split](*w) for i, w in zip(self.items, self._windows, strict=True)]

    def samples(self) -> list[int]:
        """Each item's utterance length in 16 kHz samples (the manifest's; s3prl buckets by it)."""
        return [int(self._records[i.split][i.index]["num_samples"]) for i in self.items]

    def nbytes(self, frame_bytes: int) -> int:
        return sum(self.lengths) * frame_bytes

    def __len__(self) -> int:
        return len(self.items)

    def _crop(self, k: int, crop_seed: int) -> tuple[int, int]:
        """The frames ``[start, stop)`` item ``k`` gives, within its window (all of it, or a random crop)."""
        length = self.lengths[k]
        if self.crop_frames and length > self.crop_frames:
            start = int(np.random.default_rng(crop_seed).integers(0, length - self.crop_frames + 1))
            return start, start + self.crop_frames
        return 0, length

    def _frames(self, k: int, crop_seed: int, out: np.ndarray | None = None) -> np.ndarray:
        start, stop = self._crop(k, crop_seed)
        if self._cache is not None:
            return into(self._cache[k][start:stop], out)
        first = self._windows[k][0]
        return self._read[self.items[k].split](first + start, first + stop, out=out)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, tuple[int, ...], int]:
        k, crop_seed = key
        return self._frames(k, crop_seed), self.items[k].target, k

    def batch(self, keys: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """What ``collate`` makes of these items, with each item read straight into its row of the padded
        batch (no per-item buffer to allocate and copy again)."""
        spans = [self._crop(k, seed) for k, seed in keys]
        lengths = [stop - start for start, stop in spans]
        features = np.empty((len(keys), max(max(lengths), 1), *self.frame_shape), dtype=self.dtype)
        for b, ((k, seed), n) in enumerate(zip(keys, lengths, strict=True)):
            self._frames(k, seed, out=features[b, :n])
            features[b, n:] = 0
        rows = [(None, self.items[k].target, k) for k, _ in keys]
        return {"features": torch.from_numpy(features), "lengths": torch.tensor(lengths, dtype=torch.long),
                **pad_targets(rows)}


def pad_targets(batch: list[tuple]) -> dict[str, torch.Tensor]:
    """``targets (B, S)`` zero-padded, ``target_lengths (B,)`` and ``index (B,)`` (item positions).

    Utterance tasks have one target per head (S = heads); sequence tasks (CTC) a token sequence each.
    """
    lengths = torch.tensor([len(t) for _, t, _ in batch], dtype=torch.long)
    targets = torch.zeros(len(batch), max(int(lengths.max()), 1), dtype=torch.long)
    for b, (_, t, _) in enumerate(batch):
        targets[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    index = torch.tensor([k for _, _, k in batch], dtype=torch.long)
    return {"targets": targets, "target_lengths": lengths, "index": index}


def collate(batch: list[tuple[np.ndarray, tuple[int, ...], int]]) -> dict[str, torch.Tensor]:
    """Pad to the longest: ``features (B, T, L, D)`` in the store dtype, ``lengths (B,)``, and targets.

    The batch is an uninitialised numpy buffer with only the padding zeroed: ``torch.zeros`` wrote every
    page of a fresh allocation (a page fault per 4 KiB, ~34k per 134 MB batch), numpy reuses freed heap
    pages; ``benchmarks/loader.py`` measured the difference."""
    lengths = torch.tensor([x.shape[0] for x, _, _ in batch], dtype=torch.long)
    first = batch[0][0]
    features = np.empty((len(batch), max(int(lengths.max()), 1), *first.shape[1:]), dtype=first.dtype)
    for b, (x, _, _) in enumerate(batch):
        features[b, : x.shape[0]] = x
        features[b, x.shape[0] :] = 0
    return {"features": torch.from_numpy(features), "lengths": lengths, **pad_targets(batch)}


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


class Pools:
    """superb's own plan (``batching: pools``): each epoch a shuffled order is cut into pools of 50
    batches, each pool sorted by length (frames), so a batch pads little; the batches are then shuffled.
    With ``classes`` the epoch draws ``len`` items with replacement, each class equally likely (s3prl's
    WeightedRandomSampler for KS). Composition changes every epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, classes: Sequence[int] | None = None):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.classes = None if classes is None else np.asarray(classes)
        n, pool = len(self.lengths), batch_size * 50
        self.epoch_length = sum(-(-min(pool, n - p) // batch_size) for p in range(0, n, pool))  # every epoch

    def batches(self, seed: int, epoch: int) -> list[np.ndarray]:
        rng = _rng(seed, epoch, 1)
        n = len(self.lengths)
        order = balanced_draw(self.classes, rng) if self.classes is not None else rng.permutation(n)
        pool = self.batch_size * 50
        batches = []
        for p in range(0, n, pool):
            chunk = order[p : p + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[b : b + self.batch_size] for b in range(0, len(chunk), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]


class Buckets:
    """A fixed list of batches (s3prl's pre-made buckets), shuffled anew each epoch.

    The order of an epoch is ``torch.randperm(len, generator seeded with seed + epoch)``: the permutation
    s3prl's ``DistributedSampler`` (seed 0) draws, so under torchrun process ``r`` of ``w`` gets the buckets
    s3prl's rank ``r`` gets (with ``--seed 0``). s3prl's one-process ``RandomSampler`` seeds from torch's
    global RNG, whose state depends on everything drawn before it; no other program can replay it.
    """

    def __init__(self, buckets: list[np.ndarray], batch_size: int):
        self.buckets = buckets
        self.batch_size = batch_size  # the most a bucket holds (crop seeds per batch); many hold fewer
        self.epoch_length = len(buckets)

    def batches(self, seed: int, epoch: int) -> list[np.ndarray]:
        order = torch.randperm(len(self.buckets), generator=torch.Generator().manual_seed(seed + epoch))
        return [self.buckets[i] for i in order.tolist()]


#: s3prl ``downstream/asr/dataset.py``: ``HALF_BATCHSIZE_TIME``, compared with lengths in samples.
S3PRL_ASR_HALF_SAMPLES = 2000
#: s3prl ``downstream/ctc/data.py``: ``collect_audio_batch(half_batch_size_wav_len=300000)``, in samples.
S3PRL_CTC_HALF_SAMPLES = 300000


def _descending(values: Sequence[int]) -> np.ndarray:
    """Positions by value, largest first, ties in item order (Python's stable ``sorted(reverse=True)``)."""
    return np.argsort(-np.asarray(values, dtype=np.int64), kind="stable")


def s3prl_asr_buckets(samples: Sequence[int], bucket_size: int, half_above: int = S3PRL_ASR_HALF_SAMPLES
                      ) -> list[np.ndarray]:
    """s3prl's ASR buckets (``SequenceDataset.__init__``): utterances sorted by length (samples), longest
    first, cut into buckets of ``bucket_size``; a full bucket whose longest utterance has more than
    ``half_above`` samples becomes two (``[:size//2]``, ``[size//2:]``). The last, partial bucket is kept
    whole (never halved) if it holds more than one utterance; a single one left over is never trained on.

    s3prl's 2000 is 0.125 s of audio; every LibriSpeech utterance is longer (train-clean-100's shortest:
    22,560 samples), so every full bucket of 32 is halved: batches of 16. s3prl sorts with pandas'
    unstable quicksort over its length table's row order; ties (equal sample counts) are in item order here.
    """
    order = _descending(samples)
    buckets = []
    for start in range(0, len(order), bucket_size):
        bucket = order[start : start + bucket_size]
        if len(bucket) < bucket_size:
            if len(bucket) > 1:
                buckets.append(bucket)
        elif bucket_size >= 2 and max(samples[k] for k in bucket) > half_above:
            buckets.extend([bucket[: bucket_size // 2], bucket[bucket_size // 2 :]])
        else:
            buckets.append(bucket)
    return buckets


def s3prl_ctc_windows(samples: Sequence[int], target_lengths: Sequence[int], bucket_size: int,
                      half_above: int = S3PRL_CTC_HALF_SAMPLES) -> list[np.ndarray]:
    """s3prl's ``ctc`` buckets (PR's libriphone, SF's snips datasets and ``collect_audio_batch``).

    Utterances are sorted by target length (tokens), longest first. The dataset has one entry per
    utterance: entry ``i`` is the window of ``bucket_size`` utterances from ``min(n - size, i)`` (so windows
    overlap, an utterance is in up to ``size`` of them, and the last window is there ``size`` times). A
    window whose first utterance has more than ``half_above`` samples keeps its first half
    (``[:len//2]``, the rest is dropped). A batch lists its utterances by samples, longest first.

    s3prl's ties in target length follow ``Path.rglob``'s directory order (the file system's); here they
    follow item order. With fewer utterances than ``bucket_size`` every window is all of them (s3prl's
    negative slice start would give an arbitrary tail).
    """
    order = _descending(target_lengths)
    n = len(order)
    windows = []
    for i in range(n):
        start = max(0, min(n - bucket_size, i))
        window = order[start : start + bucket_size]
        if len(window) > 1 and samples[window[0]] > half_above:
            window = window[: len(window) // 2]
        windows.append(window[_descending([samples[k] for k in window])])
    return windows


@dataclass(frozen=True)
class BatchingChoice:
    """A train batch plan: how it is built from the train items, and s3prl's halving threshold (samples)."""

    build: Callable[..., Pools | Buckets]
    half_samples: int | None
    summary: str


def _pools(dataset: Dataset, batch_size: int, half: int | None, classes: list[int] | None) -> Pools:
    return Pools(dataset.lengths, batch_size, classes)


def _s3prl_asr(dataset: Dataset, batch_size: int, half: int | None, classes: list[int] | None) -> Buckets:
    return Buckets(s3prl_asr_buckets(dataset.samples(), batch_size, half), batch_size)


def _s3prl_ctc(dataset: Dataset, batch_size: int, half: int | None, classes: list[int] | None) -> Buckets:
    lengths = [len(item.target) for item in dataset.items]
    return Buckets(s3prl_ctc_windows(dataset.samples(), lengths, batch_size, half), batch_size)


#: ``data.batching``: the train batch plans.
BATCH_PLANS: dict[str, BatchingChoice] = {
    "pools": BatchingChoice(_pools, None, "length-sorted pools of 50 batches, composition reshuffled each epoch"),
    "s3prl_asr": BatchingChoice(_s3prl_asr, S3PRL_ASR_HALF_SAMPLES,
                                "s3prl's asr buckets by samples, halved above data.half_batch_samples"),
    "s3prl_ctc": BatchingChoice(_s3prl_ctc, S3PRL_CTC_HALF_SAMPLES,
                                "s3prl's ctc windows by target length, halved above data.half_batch_samples"),
}


def halving_threshold(name: str, half_samples: int | None) -> int | None:
    """The samples above which plan ``name`` halves a bucket: ``half_samples``, or s3prl's constant when
    that is None; None for a plan that never halves."""
    default = BATCH_PLANS[name].half_samples
    return None if default is None else default if half_samples is None else half_samples


def batch_plan(name: str, dataset: Dataset, batch_size: int, half_samples: int | None = None,
               classes: list[int] | None = None) -> Pools | Buckets:
    """The plan ``data.batching`` names over the train items (``dataset``: ``StoreItems``/``AudioItems``)."""
    return BATCH_PLANS[name].build(dataset, batch_size, halving_threshold(name, half_samples), classes)


class TrainBatches(Sampler):
    """The training stream: epoch after epoch of a plan's batches, each epoch a function of ``(seed, epoch)``.

    Batches are numbered across epochs (the *position*). One process takes every position from
    ``set_position``; process ``rank`` of ``world`` (torchrun) takes positions ``rank, rank + world, …``,
    so together the processes consume exactly the stream one process would, ``world`` batches at a time.
    Each item comes with a crop seed (``(position in the dataset, seed)`` pairs).
    """

    def __init__(self, plan: Pools | Buckets, seed: int, rank: int = 0, world: int = 1):
        if plan.epoch_length == 0:
            raise ConfigError("the train split gives no batch (too few utterances)")
        self.plan = plan
        self.seed = seed
        self.rank, self.world = rank, world
        self.position = 0
        self.epoch_length = plan.epoch_length
        self._epoch: tuple[int, list] | None = None

    def set_position(self, position: int) -> None:
        """Start at the stream's batch ``position`` (counted over all processes)."""
        self.position = position

    def batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        batches = self.plan.batches(self.seed, epoch)
        crops = _rng(self.seed, epoch, 2).integers(0, 2**31, size=(len(batches), self.plan.batch_size))
        return [[(int(k), int(crops[b, s])) for s, k in enumerate(batch)] for b, batch in enumerate(batches)]

    def at(self, position: int) -> list[tuple[int, int]]:
        """The batch at a stream position (its epoch's batches are built once and kept)."""
        epoch, index = divmod(position, self.epoch_length)
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, self.batches(epoch))
        return self._epoch[1][index]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        """This process's batches from ``position`` on, without end (the trainer stops at its step count)."""
        position = self.position + self.rank
        while True:
            yield self.at(position)
            position += self.world

    def __len__(self) -> int:
        return self.epoch_length


def balanced_draw(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``len(classes)`` item positions drawn with replacement, each class equally likely: s3prl's
    ``WeightedRandomSampler`` with its KS weights ``N / count(class)``, ``N`` draws."""
    weights = 1.0 / np.bincount(classes)[classes]
    return rng.choice(len(classes), size=len(classes), replace=True, p=weights / weights.sum())


def eval_batches(lengths: list[int], batch_size: int) -> list[list[tuple[int, int]]]:
    """Every item once, sorted by length (little padding); no crops."""
    return _sorted_batches(np.arange(len(lengths)), np.asarray(lengths), batch_size)


def _sorted_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int) -> list[list[tuple[int, int]]]:
    order = order[np.argsort(lengths[order], kind="stable")]
    return [[(int(k), 0) for k in order[b : b + batch_size]] for b in range(0, len(order), batch_size)]


class BalancedEvalDraws:
    """s3prl's KS dev loader: ``len`` items drawn with replacement, each class equally likely, drawn anew
    for every evaluation (``balanced_draw``). s3prl draws from torch's global RNG, so which clips a
    checkpoint was scored on depends on everything run before; here the draw is a function of
    ``(seed, step)``, the step of the model scored (``draw_for``), so a resumed run and ``superb evaluate``
    score a checkpoint on the sample the run logged for it. Batches are sorted by length (the accuracy
    does not depend on the batching)."""

    def __init__(self, lengths: list[int], classes: list[int], batch_size: int, seed: int):
        self.lengths, self.classes = np.asarray(lengths), np.asarray(classes)
        self.batch_size, self.seed = batch_size, seed
        self.step = 0

    def draw_for(self, step: int) -> None:
        self.step = step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if not len(self.classes):
            return iter([])
        order = balanced_draw(self.classes, _rng(self.seed, self.step, 3))
        return iter(_sorted_batches(order, self.lengths, self.batch_size))

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


class Loader:
    """Batches from a dataset, built ``prefetch`` ahead on a pool of ``threads`` threads.

    Threads, not worker processes: reading (``pread``, memory maps, libsndfile) and padding (numpy and
    torch copies) release the GIL, and a batch built in a thread needs no copy through shared memory —
    which on a 2-core machine cost more than the reading itself. ``threads=0`` builds batches inline.
    ``batch_sampler`` may be a ``TrainBatches`` (the trainer sets its position), a
    ``BalancedEvalDraws`` (the trainer names the step it scores) or a list of batches. ``signals(positions)``
    adds what a task reads besides the features (``task.batch_signals``: separation's waveforms).
    """

    def __init__(self, dataset: Dataset, batch_sampler: Sampler | list, threads: int, collate_fn=collate,
                 prefetch: int = 4, signals: Callable[[list[int]], dict] | None = None):
        self.dataset, self.batch_sampler, self.collate_fn = dataset, batch_sampler, collate_fn
        self.threads, self.prefetch = threads, max(prefetch, threads)
        self.signals = signals

    def _build(self, batch: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        if self.collate_fn is collate and hasattr(self.dataset, "batch"):  # read in place (StoreItems)
            out = self.dataset.batch(batch)
        else:
            out = self.collate_fn([self.dataset[key] for key in batch])
        if self.signals is not None:  # what a task reads besides features (separation: the waveforms)
            out.update(self.signals([k for k, _ in batch]))
        return out

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.threads <= 0:
            for batch in self.batch_sampler:
                yield self._build(batch)
            return
        with ThreadPoolExecutor(self.threads) as pool:
            pending: deque = deque()
            for batch in self.batch_sampler:
                pending.append(pool.submit(self._build, batch))
                if len(pending) > self.prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def __len__(self) -> int:
        return len(self.batch_sampler)


def loader(dataset: Dataset, batch_sampler: Sampler | list, workers: int, collate_fn=collate,
           signals: Callable[[list[int]], dict] | None = None) -> Loader:
    return Loader(dataset, batch_sampler, workers, collate_fn, signals=signals)
