"""Data-loader benchmark: training batches per second from a feature store ÷ a numpy memmap of the same bytes.

A training epoch as ``superb fit`` reads it for KS: whole utterances (no crop), batch 32, class-balanced
``TrainBatches`` order (drawn with replacement, length-pooled, shuffled), ``StoreItems`` + ``collate``
through superb's ``Loader`` with 0 (inline), 2 and 4 threads. The baseline runs the same batches, the
same ``Loader`` and the same ``collate`` (same tensors: ``features (B, T, L, D)`` in the store dtype,
lengths, targets) on a dataset that hands out views of a ``numpy.memmap`` of the same bytes at the same
frame offsets, so each frame is copied once, from the page cache into the padded batch: the best a
plain-numpy reader does. Also "memmap + copy": each item copied out of the memmap first, as any reader
into its own buffer must (the store's ``pread`` does that copy).

By default the store is synthesised through superb's own store writer (random fp16 frames shaped like
WavLM Base: 13 layers x 768 dims, 50 frames/s; about 1.3 GB); ``--store PATH`` reads an existing one.
Figures are warm page cache (each file was just written, and each reader reads one untimed epoch first;
dropping caches needs root); best (and median) of ``--rounds`` interleaved rounds. A timed pass is ``--epochs`` epochs
through one ``Loader`` (as a fit's epoch). Also minor page faults per batch (the whole process, all threads):
allocating a fresh padded batch costs one fault per 4 KiB page where transparent huge pages are opt-in.

    python benchmarks/loader.py [--utterances 320] [--seconds 2,6] [--workers 0,2,4] [--batch 32] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import zarr

from superb.registry import STORE_FORMATS
from superb.stores.base import FORMAT_VERSION, SplitData, open_store
from superb.stores.layout import CHUNKS_PER_SHARD, SplitLayout, default_chunk_frames
from superb.train import data as D

FRAME_RATE = 50
CLASSES = 12  # Speech Commands v1.0


def synthetic_store(folder: Path, fmt: str, n: int, seconds: tuple[float, float], layers: int, dim: int,
                    seed: int = 0) -> tuple[Path, Path, np.ndarray]:
    """A store of ``n`` random utterances written through superb's writer, and a raw file of the same bytes.

    (``benchmarks/extract.py`` has a similar helper, but with 2–16 s utterances fixed and the whole
    array held in RAM; this one writes block by block.)
    """
    rng = np.random.default_rng(seed)
    lo, hi = (int(round(s * FRAME_RATE)) for s in seconds)
    frames = rng.integers(lo, hi + 1, size=n).tolist()
    frame_bytes = layers * dim * 2
    chunk = default_chunk_frames(frame_bytes)
    layout = SplitLayout.from_frame_counts(frames, chunk * CHUNKS_PER_SHARD, 4)
    records = [{"id": f"u{i:05d}", "split": "train", "path": "-", "num_samples": 320 * f + 80, "start": 0,
                "frames": -1, "meta": {"label": str(i % CLASSES)}} for i, f in enumerate(frames)]
    attrs = {"format_version": FORMAT_VERSION, "upstream": {"name": "synthetic"}, "sample_rate": 16000,
             "frame_rate": float(FRAME_RATE), "num_layers": layers, "dim": dim, "dtype": "float16",
             "layers": list(range(layers)), "corpus": {"name": "generic", "root": "-", "version": 1, "options": {}},
             "superb_version": "bench", "created": "-", "splits": [],
             "layout": {"chunk_frames": chunk, "shard_frames": chunk * CHUNKS_PER_SHARD, "block_shards": 4,
                        "batch_seconds": 32.0}}
    cls = STORE_FORMATS.get(fmt)
    path = cls.store_path(folder / "store", "generic")
    writer = cls.writer(path)
    writer.prepare(attrs, {"train": SplitData(records, layout)})
    raw = folder / "features.bin"
    with open(raw, "wb") as out:
        for block in range(layout.num_blocks):
            first, end = layout.block_shard_range(block)
            start, stop = layout.shard_frame_range(first, end)
            # random fp16 in (-2, 2), cheap to make: random bits with the top exponent bit cleared
            bits = np.frombuffer(rng.bytes((stop - start) * frame_bytes), dtype="<u2") & np.uint16(0xBFFF)
            values = bits.view(np.float16).reshape(stop - start, layers, dim)
            writer.write_shards("train", first, values)
            writer.mark_shards_done("train", first, end)
            out.write(values.tobytes())
    writer.finish()
    return path, raw, layout.offsets


def copy_store(store_path: Path, folder: Path, split: str, n: int | None) -> tuple[Path, Path, np.ndarray]:
    """An existing store, and a raw file of its split's first ``n`` utterances' bytes (same frame offsets)."""
    with open_store(store_path) as store:
        view = store.split(split)
        count = len(view) if n is None else min(n, len(view))
        if not view.done[:count].all():
            raise SystemExit(f"{store_path}: split {split!r} is not completely extracted")
        raw = folder / "features.bin"
        with open(raw, "wb") as out:
            for i in range(count):
                out.write(np.ascontiguousarray(view.features(i)).tobytes())
        return store_path, raw, view.offsets[: count + 1]


class MemmapItems(torch.utils.data.Dataset):
    """``StoreItems``' interface over a memmap: ``(frames view or copy, target, position)``."""

    def __init__(self, memmap: np.ndarray, items: list[D.Item], offsets: np.ndarray, copy: bool):
        self.memmap, self.items, self.copy = memmap, items, copy
        self.windows = [D.item_window(item, offsets) for item in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, tuple[int, ...], int]:
        k, _ = key
        start, stop = self.windows[k]
        x = self.memmap[start:stop]
        return (np.array(x) if self.copy else x), self.items[k].target, k


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def timed_pass(dataset, batches: list, threads: int) -> tuple[float, int]:
    """(seconds, minor page faults) to build every batch of ``batches`` through superb's ``Loader``."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for batch in D.Loader(dataset, batches, threads):
        assert batch["features"].dim() == 4  # the batch is dropped: the loader alone is timed
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="read this store instead of synthesising one")
    parser.add_argument("--split", default="train", help="with --store: the split to read")
    parser.add_argument("--format", default="zarr", choices=["zarr", "hdf5"], help="format of the synthetic store")
    parser.add_argument("--utterances", type=int, default=320, help="synthetic store size (or first N of --store)")
    parser.add_argument("--seconds", default="2,6", help="synthetic utterance lengths, MIN,MAX seconds")
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--workers", default="0,2,4", help="loader threads to time (0: inline)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed pass")
    parser.add_argument("--batches", type=int, help="cut each timed pass to this many batches")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is reported")
    parser.add_argument("--dir", type=Path, help="where the temporary files go (default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and raw file")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    seconds = tuple(float(s) for s in args.seconds.split(","))
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")  # memmap views

    work = Path(tempfile.mkdtemp(prefix="superb-loader-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        if args.store:
            store_path, raw, offsets = copy_store(args.store, work, args.split, args.utterances)
        else:
            store_path, raw, offsets = synthetic_store(work, args.format, args.utterances, seconds, args.layers,
                                                       args.dim)
        setup = time.perf_counter() - t0
        store = open_store(store_path)
        split = args.split if args.store else "train"
        n = len(offsets) - 1
        items = [D.Item(split, i, (i % CLASSES,)) for i in range(n)]
        store_items = D.StoreItems(store, items)
        frame_shape = store_items[(0, 0)][0].shape[1:]
        dtype = store_items[(0, 0)][0].dtype
        frame_bytes = int(np.prod(frame_shape)) * dtype.itemsize
        memmap = np.memmap(raw, dtype=dtype, mode="r", shape=(int(offsets[-1]), *frame_shape))
        readers = {
            f"store ({store.format}, superb StoreItems)": store_items,
            "memmap (views; baseline)": MemmapItems(memmap, items, offsets, copy=False),
            "memmap + copy per item": MemmapItems(memmap, items, offsets, copy=True),
        }
        # the same check superb's tests make: both readers hand out the same frames
        assert np.array_equal(readers["memmap (views; baseline)"][(n - 1, 0)][0], store_items[(n - 1, 0)][0])

        sampler = D.TrainBatches(store_items.lengths, args.batch, seed=0, classes=[it.target[0] for it in items])
        warm = sampler.batches(0)
        timed = [b for e in range(1, args.epochs + 1) for b in sampler.batches(e)][: args.batches]
        lengths = np.asarray(store_items.lengths)
        useful = sum(int(lengths[[k for k, _ in b]].sum()) for b in timed)
        padded = sum(len(b) * int(lengths[[k for k, _ in b]].max()) for b in timed)
        configs = [(name, w) for w in workers for name in readers]
        times: dict[tuple[str, int], list[float]] = {config: [] for config in configs}
        faults: dict[tuple[str, int], list[int]] = {config: [] for config in configs}
        for name in readers:  # page cache, the store's shard index cache
            timed_pass(readers[name], warm, max(workers))
        for _ in range(args.rounds):
            for name, w in configs:
                seconds_taken, faults_taken = timed_pass(readers[name], timed, w)
                times[name, w].append(seconds_taken)
                faults[name, w].append(faults_taken)
        store.close()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    gb = useful * frame_bytes / 1e9
    print(f"\nmachine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} "
          f"threads; torch {torch.__version__}; zarr {zarr.__version__}; numpy {np.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"store: {n} utterances, {int(offsets[-1])} frames x {' x '.join(map(str, frame_shape))} {dtype} "
          f"({int(offsets[-1]) * frame_bytes / 1e9:.2f} GB; built in {setup:.0f} s); timed pass: {len(timed)} "
          f"batches of {args.batch} ({args.epochs} class-balanced epoch{'s' if args.epochs > 1 else ''}), "
          f"{gb:.2f} GB of frames, "
          f"{padded / useful - 1:.1%} padding; warm page cache; best (median) of {args.rounds}\n")
    print("| reader | loader threads | batches/s (median) | GB/s | ratio to memmap (same threads) "
          "| page faults per batch |")
    print("|---|---|---|---|---|---|")
    for name, w in configs:
        best, median = min(times[name, w]), float(np.median(times[name, w]))
        ratio = min(times["memmap (views; baseline)", w]) / best
        fault_rate = float(np.median(faults[name, w])) / len(timed)
        print(f"| {name} | {w} | {len(timed) / best:.2f} ({len(timed) / median:.2f}) | {gb / best:.2f} | "
              f"{ratio:.2f} | {fault_rate:,.0f} |")


if __name__ == "__main__":
    main()
