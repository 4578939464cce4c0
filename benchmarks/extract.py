"""Extraction and store-read benchmarks; every figure is a ratio against a baseline timed in the same run.

(a) extraction wall time ÷ bare upstream forward time on the same audio (random-init WavLM Base by
    default; goal ≤ 1.10: decoding and writing hide behind compute);
(b) shuffled single-utterance and batch reads from a Zarr (and HDF5) store ÷ a numpy memmap of the same
    bytes (goal ≥ 0.5);
(c) store bytes per audio second ÷ raw fp16 (goal ≤ 1.0).

    python benchmarks/extract.py [--size base] [--audio-seconds 120] [--read-utterances 200]

Prints a Markdown table (paste it into docs/benchmarks.md). Runs on CUDA when ``--device cuda``.
"""

from __future__ import annotations

import argparse
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from superb.extract import audio
from superb.extract.extraction import ExtractRequest, extract, plan_batches, resolve_device
from superb.registry import STORE_FORMATS, UPSTREAMS
from superb.stores.base import FORMAT_VERSION, SplitData, open_store
from superb.stores.layout import CHUNKS_PER_SHARD, SplitLayout, default_chunk_frames
from superb.testing.speech import synthesize

SENTENCES = [
    "the quick brown fox jumps over the lazy dog while the cat sleeps by the warm fire",
    "speech models learn useful representations from large amounts of unlabelled audio",
    "please turn the lights off in the kitchen and lock the back door before you leave",
    "a feature store lets every downstream experiment reuse the same hidden states",
]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+f3", "en-gb-x-rp"]


def make_audio(folder: Path, seconds: float) -> float:
    """Synthesise 16 kHz FLAC utterances (as LibriSpeech ships) until ``seconds`` of audio exist."""
    total, i = 0.0, 0
    while total < seconds:
        text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3))
        path = folder / f"utt{i:04d}.flac"
        synthesize(text, path, voice=VOICES[i % len(VOICES)], rate=16000)
        total += audio.probe(path).frames / 16000
        i += 1
    return total


def bench_extraction(size: str, seconds: float, device: str, work: Path) -> dict[str, float]:
    corpus = work / "corpus"
    corpus.mkdir()
    total = make_audio(corpus, seconds)
    upstream = UPSTREAMS.get("wavlm").create(random_init=size, seed=0)
    dev = resolve_device(device)
    upstream = upstream.to(dev).eval()
    waves = [audio.read(p) for p in sorted(corpus.glob("*.flac"))]
    req = ExtractRequest(upstream="wavlm", corpus="generic", root=corpus, out=work / "stores",
                         random_init=size, device=device, progress=False)
    batches = plan_batches([w.shape[0] for w in waves], int(req.batch_seconds * 16000), upstream.spec.pad_safe)

    def bare_forward() -> None:
        with torch.inference_mode():
            for batch in batches:
                rows = [waves[i] for i in batch]
                wav = torch.zeros(len(rows), max(r.shape[0] for r in rows))
                for r, row in enumerate(rows):
                    wav[r, : row.shape[0]] = torch.from_numpy(row)
                hidden, _ = upstream(wav.to(dev), torch.tensor([r.shape[0] for r in rows]))
                hidden.to("cpu", torch.float16)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    bare_forward()  # warm-up (allocator, kernels)
    t0 = time.perf_counter()
    bare_forward()
    forward = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = extract(req, upstream=upstream)
    wall = time.perf_counter() - t0
    with open_store(path) as store:
        frames = sum(int(store.split(s).offsets[-1]) for s in store.splits)
        raw = frames * len(store.layers) * store.attrs["dim"] * 2
        size_ratio = store.nbytes() / raw
    return {"audio_s": total, "forward_s": forward, "extract_s": wall, "ratio": wall / forward,
            "rtf": forward / total, "bytes_ratio": size_ratio}


def synthetic_store(work: Path, fmt: str, n: int, layers: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(100, 800, size=n).tolist()  # 2–16 s at 50 frames/s
    frame_bytes = layers * dim * 2
    chunk = default_chunk_frames(frame_bytes)
    layout = SplitLayout.from_frame_counts(frames, chunk * CHUNKS_PER_SHARD, 4)
    records = [{"id": f"u{i}", "split": "train", "path": "-", "num_samples": 320 * f + 80, "start": 0,
                "frames": -1, "meta": {}} for i, f in enumerate(frames)]
    attrs = {"format_version": FORMAT_VERSION, "upstream": {"name": "synthetic"}, "sample_rate": 16000,
             "frame_rate": 50.0, "num_layers": layers, "dim": dim, "dtype": "float16",
             "layers": list(range(layers)), "corpus": {"name": "generic", "root": "-", "version": 1, "options": {}},
             "superb_version": "bench", "created": "-", "splits": [],
             "layout": {"chunk_frames": chunk, "shard_frames": chunk * CHUNKS_PER_SHARD, "block_shards": 4,
                        "batch_seconds": 32.0}}
    cls = STORE_FORMATS.get(fmt)
    path = cls.store_path(work / f"synthetic-{fmt}", "generic")
    writer = cls.writer(path)
    writer.prepare(attrs, {"train": SplitData(records, layout)})
    values = np.empty((layout.total_frames, layers, dim), dtype=np.float16)
    for start in range(0, layout.total_frames, 4096):  # random but cheap to make
        block = rng.standard_normal((min(4096, layout.total_frames - start), layers, dim), dtype=np.float32)
        values[start : start + len(block)] = block
    for block in range(layout.num_blocks):
        first, end = layout.block_shard_range(block)
        lo, hi = layout.shard_frame_range(first, end)
        writer.write_shards("train", first, values[lo:hi])
        writer.mark_shards_done("train", first, end)
    writer.finish()
    raw = work / "raw.npy"
    np.save(raw, values)
    return path, raw, layout


def time_reads(read, offsets: np.ndarray, order: list[int], batch: int) -> tuple[float, float]:
    """(single utterances per second, utterances per second in padded batches of ``batch``)."""
    t0 = time.perf_counter()
    for i in order:
        read(int(offsets[i]), int(offsets[i + 1]))
    single = len(order) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for k in range(0, len(order), batch):
        rows = [read(int(offsets[i]), int(offsets[i + 1])) for i in order[k : k + batch]]
        out = np.zeros((len(rows), max(r.shape[0] for r in rows), *rows[0].shape[1:]), dtype=rows[0].dtype)
        for r, row in enumerate(rows):
            out[r, : row.shape[0]] = row
    batched = len(order) / (time.perf_counter() - t0)
    return single, batched


def bench_reads(work: Path, n: int, layers: int, dim: int, rounds: int = 3):
    """Read rates per reader, and each store's bytes ÷ the raw fp16 bytes."""
    results: dict[str, tuple[float, float]] = {}
    zpath, raw, layout = synthetic_store(work, "zarr", n, layers, dim)
    hpath, _, _ = synthetic_store(work, "hdf5", n, layers, dim)
    raw_bytes = layout.total_frames * layers * dim * 2
    sizes = {"zarr": open_store(zpath).nbytes() / raw_bytes, "hdf5": open_store(hpath).nbytes() / raw_bytes,
             "hours": layout.total_frames / 50 / 3600}
    memmap = np.load(raw, mmap_mode="r")
    readers = {
        "memmap": lambda a, b: np.array(memmap[a:b]),
        "zarr (superb reader)": open_store(zpath).split("train").read_frames,
        "hdf5 (superb reader)": open_store(hpath).split("train").read_frames,
    }
    import zarr

    zarray = zarr.open_array(str(zpath / "train" / "features"), mode="r")
    readers["zarr (zarr-python)"] = lambda a, b: np.asarray(zarray[a:b])
    order = list(range(n))
    random.Random(0).shuffle(order)
    for name, read in readers.items():  # warm the page cache and the readers' index caches
        time_reads(read, layout.offsets, order, 16)
    for name, read in readers.items():
        best = (0.0, 0.0)
        for _ in range(rounds):
            single, batched = time_reads(read, layout.offsets, order, 16)
            best = (max(best[0], single), max(best[1], batched))
        results[name] = best
    return results, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="base", choices=["tiny", "base", "large"])
    parser.add_argument("--audio-seconds", type=float, default=120.0)
    parser.add_argument("--read-utterances", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="superb-bench-"))
    try:
        ext = bench_extraction(args.size, args.audio_seconds, args.device, work)
        reads, sizes = bench_reads(work, args.read_utterances, 13, 768)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or 'cpu'}, " \
        f"{torch.get_num_threads()} threads"
    print(f"\nmachine: {device}; torch {torch.__version__}\n")
    print("| figure | baseline | ours | ratio | goal |")
    print("|---|---|---|---|---|")
    print(f"| (a) extraction, random-init WavLM {args.size}, {ext['audio_s']:.0f} s audio | bare forward "
          f"{ext['forward_s']:.2f} s (RTF {ext['rtf']:.3f}) | {ext['extract_s']:.2f} s | "
          f"{ext['ratio']:.3f} | ≤ 1.10 |")
    base_single, base_batch = reads["memmap"]
    for name, (single, batched) in reads.items():
        if name == "memmap":
            continue
        print(f"| (b) shuffled single reads, {name} | memmap {base_single:.0f} utt/s | {single:.0f} utt/s | "
              f"{single / base_single:.2f} | ≥ 0.5 |")
        print(f"| (b) shuffled batch-16 reads, {name} | memmap {base_batch:.0f} utt/s | {batched:.0f} utt/s | "
              f"{batched / base_batch:.2f} | ≥ 0.5 |")
    print(f"| (c) store bytes per audio second (WavLM store, fp16, 13 × 768) | raw fp16 | | "
          f"{ext['bytes_ratio']:.4f} | ≤ 1.0 |")
    for fmt in ("zarr", "hdf5"):
        print(f"| (c) store bytes per audio second ({fmt}, {sizes['hours']:.2f} h synthetic store, 13 × 768) | "
              f"raw fp16 | | {sizes[fmt]:.4f} | ≤ 1.0 |")


if __name__ == "__main__":
    main()
