"""``superb extract``: run an upstream over a corpus once and fill a feature store, resumably.

The job walks each split's *blocks* (runs of whole shards, see ``superb.stores.layout``). For a block it
decodes the audio of every utterance touching it (threads, one block ahead), runs the upstream in
batches fixed by the block's contents, writes the block's shards whole, and only then marks them done.
Everything about a block is a function of the layout, so a rerun after ``kill -9`` skips finished
blocks, recomputes the rest the same way and ends with the same bytes as an uninterrupted run. An
utterance that straddles two blocks is computed in both; each block writes only its own frames.

Under ``torchrun`` the same job runs in every process. Rank 0 creates the store (or adds splits) while
the others wait; then the blocks of each split are dealt out in *done groups*: runs of consecutive blocks
whose ``shard_done`` flags share one chunk (at most ``DONE_GROUPS`` per split, a function of the layout
only, so a store written by N processes is byte-identical to one written by one). Process r of N takes
groups ``[r*G//N, (r+1)*G//N)`` of the split's G, so every shard and every flag chunk has one writer.
Processes leave ``done`` alone while they work; the one that finds every shard written when it finishes a
split (the last one) derives ``done`` from ``shard_done``. A killed run leaves ``done`` behind, never
ahead; the next run's rank 0 repairs it before anyone starts, and rerunning the same command resumes
each process's pending blocks. ``--format hdf5`` (one file) is refused under ``torchrun``.

One run writes a store at a time (``superb.stores.lock``: rank 0 claims the lock, its peers share it), and a
rerun must list the utterances the store holds (``superb.extract.corpus_match``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import superb
from superb import distributed
from superb.errors import ConfigError, StoreError, SuperbError, disk_error, disk_errors
from superb.extract import audio
from superb.extract.corpora.base import Corpus
from superb.extract.corpus_match import check_same_utterances, moved
from superb.extract.upstreams.base import Upstream, parse_layers
from superb.registry import CORPORA, STORE_FORMATS, UPSTREAMS
from superb.stores.base import FORMAT_VERSION, SplitData, StoreWriter
from superb.stores.layout import (
    CHUNKS_PER_SHARD,
    TARGET_BLOCK_BYTES,
    SplitLayout,
    default_chunk_frames,
)
from superb.stores.lock import WriterLock

DTYPES = {"float16": np.float16, "float32": np.float32}
DONE_GROUPS = 64  # at most this many done groups per split: the units processes of torchrun share out
HDF5_REFUSED = ("--format hdf5 cannot be written by several processes; extract to zarr (the default) with torchrun, "
                "or run without torchrun")


@dataclass
class ExtractRequest:
    """Everything ``superb extract`` was asked to do (the CLI fills it; tests build it directly)."""

    upstream: str
    corpus: str
    root: Path
    out: Path
    upstream_options: dict[str, Any] = field(default_factory=dict)
    corpus_options: dict[str, Any] = field(default_factory=dict)
    ckpt: Path | None = None
    random_init: str | None = None
    seed: int = 0
    splits: list[str] | None = None
    format: str = "zarr"
    dtype: str = "float16"
    layers: str = "all"
    device: str = "auto"
    batch_seconds: float = 32.0
    workers: int = 2
    chunk_frames: int | None = None  # advanced: frames per read chunk
    shard_frames: int | None = None  # advanced: frames per shard (a multiple of chunk_frames)
    block_shards: int | None = None  # advanced: shards computed and written together
    progress: bool = True


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device(name)


def plan_batches(lengths: list[int], max_samples: int, pad_safe: bool) -> list[list[int]]:
    """Group positions of ``lengths`` into batches of at most ``max_samples`` padded samples.

    Sorted by length so padding is small; an upstream that is not ``pad_safe`` (group norm sees the
    padding) only ever shares a batch with utterances of exactly its own length.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        fits = batch is not None and (len(batch) + 1) * lengths[i] <= max_samples
        if fits and (pad_safe or lengths[batch[0]] == lengths[i]):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def store_attrs(upstream: Upstream, corpus: Corpus, layers: list[int], req: ExtractRequest,
                layout: dict[str, Any]) -> dict[str, Any]:
    spec = upstream.spec
    return {
        "format_version": FORMAT_VERSION,
        "upstream": upstream.identity(),
        "spec": spec.to_dict(),
        "sample_rate": spec.sample_rate,
        "frame_rate": spec.frame_rate,
        "num_layers": spec.num_layers,
        "dim": spec.dim,
        "dtype": req.dtype,
        "layers": layers,
        "corpus": corpus.describe(),
        "superb_version": superb.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "splits": [],
        "layout": layout,
    }


def _identity_key(attrs: dict[str, Any]) -> dict[str, Any]:
    """The parts of a store's attrs that must match for a rerun to add to it."""
    upstream = {k: v for k, v in attrs["upstream"].items() if k != "ckpt"}  # a moved file is the same
    corpus = attrs["corpus"]
    options = {k: v for k, v in corpus.get("options", {}).items() if not k.endswith("root")}
    return {"upstream": upstream, "layers": attrs["layers"], "dtype": attrs["dtype"],
            "corpus": {"name": corpus["name"], "version": corpus["version"], "options": options}}


def check_same_store(path: Path, existing: dict[str, Any], wanted: dict[str, Any]) -> None:
    old, new = _identity_key(existing), _identity_key(wanted)
    for key in ("upstream", "layers", "dtype", "corpus"):
        if old[key] != new[key]:
            raise StoreError(
                f"{path}: the store holds {key} {_short(old[key])}, this run asks for {_short(new[key])}; "
                "choose another --out or delete the store"
            )


def _short(value: Any) -> str:
    if isinstance(value, dict):
        keys = ("name", "ckpt_sha256", "random_init", "seed", "config", "version", "options")
        value = {k: value[k] for k in keys if k in value}
    text = str(value)
    return text if len(text) < 160 else text[:157] + "..."


def default_layout(upstream: Upstream, n_layers: int, req: ExtractRequest) -> dict[str, Any]:
    frame_bytes = n_layers * upstream.spec.dim * np.dtype(DTYPES[req.dtype]).itemsize
    chunk = req.chunk_frames or default_chunk_frames(frame_bytes)
    shard = req.shard_frames or chunk * CHUNKS_PER_SHARD
    if shard % chunk:
        raise ConfigError(f"--shard-frames {shard} must be a multiple of --chunk-frames {chunk}")
    block = req.block_shards or max(1, TARGET_BLOCK_BYTES // (shard * frame_bytes))
    return {"chunk_frames": chunk, "shard_frames": shard, "block_shards": block,
            "batch_seconds": req.batch_seconds, "done_groups": DONE_GROUPS}


def extract(req: ExtractRequest, upstream: Upstream | None = None) -> Path:
    """Run (or resume) an extraction; returns the store's path.

    ``upstream`` may be passed already built (benchmarks time the job without model loading); it
    must be what ``req`` describes. Under ``torchrun`` every process calls this (see the module doc).
    A full or read-only disk raises ``DiskError`` naming the store; what was written stays, for the rerun.
    """
    with disk_errors(req.out, "--out"):
        return _extract(req, upstream)


def _extract(req: ExtractRequest, upstream: Upstream | None) -> Path:
    fmt = STORE_FORMATS.get(req.format)
    if req.dtype not in DTYPES:
        raise ConfigError(f"--dtype {req.dtype!r}: choose float16 or float32")
    ctx = distributed.context()
    if ctx.distributed and req.format == "hdf5":
        raise ConfigError(HDF5_REFUSED)
    corpus_cls = CORPORA.get(req.corpus)
    corpus: Corpus = corpus_cls(req.root, **req.corpus_options)
    splits = corpus.check_splits(req.splits or corpus.default_splits())
    if upstream is None:
        with warnings.catch_warnings():
            if not ctx.main:  # rank 0 says it (e.g. RANDOM WEIGHTS) once
                warnings.simplefilter("ignore")
            upstream = UPSTREAMS.get(req.upstream).create(
                ckpt=req.ckpt, options=req.upstream_options, random_init=req.random_init, seed=req.seed
            )
    layers = parse_layers(req.layers, upstream.spec.num_layers)
    path = fmt.store_path(req.out, corpus.store_name)
    device = distributed.device_for(ctx, resolve_device(req.device))
    distributed.init(device)

    with WriterLock(path) as lock:  # held until this process is done with the store (see superb.stores.lock)
        failure: Exception | None = None
        if ctx.main:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock.claim()
                _prepare(fmt.writer(path), path, corpus, splits, upstream, layers, req, ctx)
            except Exception as exc:
                failure = disk_error(exc, req.out, "--out") or exc  # so the other processes say it too
        # the others wait here until the store exists, then read it as rank 0 left it; if rank 0 failed,
        # every process stops with its one line
        said = (None if failure is None else str(failure) if isinstance(failure, SuperbError)
                else "rank 0 failed while preparing the store (see its traceback)")
        said = distributed.broadcast(said)
        if failure is not None:
            raise failure
        if said is not None:
            raise StoreError(said)
        if not ctx.main:
            lock.join()

        writer: StoreWriter = fmt.writer(path)
        runner = _Runner(upstream, layers, req, writer.existing_attrs()["layout"], device, ctx)
        complete = [runner.run_split(writer, name) for name in splits]
        if all(complete):
            writer.finish()
    distributed.finish()
    return path


def _prepare(writer: StoreWriter, path: Path, corpus: Corpus, splits: list[str], upstream: Upstream,
             layers: list[int], req: ExtractRequest, ctx: distributed.Context) -> None:
    """Create the store or add the missing splits, and repair ``done`` after a kill (rank 0 only)."""
    existing = writer.existing_attrs()
    layout_attrs = existing["layout"] if existing else default_layout(upstream, len(layers), req)
    attrs = store_attrs(upstream, corpus, layers, req, layout_attrs)
    if existing:
        check_same_store(path, existing, attrs)
        if ctx.distributed and "done_groups" not in layout_attrs:
            raise StoreError(f"{path}: this store predates distributed extraction (one shard_done chunk "
                             "per split), so one process must finish it; rerun the command without torchrun")
        if layout_attrs["batch_seconds"] != req.batch_seconds:
            _say(f"resuming with the store's --batch-seconds {layout_attrs['batch_seconds']} "
                 "(so every block is computed as before)")

    # the splits this run touches must hold what the corpus lists now; after a move, all of them must
    held = writer.stored_records() if existing else {}
    touched = {name: held[name] for name in splits if name in held}
    new_splits = [s for s in splits if s not in held]
    listed = _records(corpus, [*touched, *new_splits])
    check_same_utterances(path, str(corpus.root), touched, listed)
    change = moved(existing["corpus"], attrs["corpus"], touched, listed) if existing else None
    if change:
        listed.update(_records(corpus, [name for name in held if name not in touched]))
        check_same_utterances(path, str(corpus.root), held, listed)
        _say(f"{path}: the corpus moved ({change}), its utterances are the same; the store now records "
             f"{corpus.root}")
        writer.relocate(attrs["corpus"], [r for name in held for r in listed[name]])
    if new_splits or not existing:
        by_split: dict[str, SplitData] = {}
        for name in new_splits:
            records = listed[name]
            frames = [upstream.spec.num_frames(r["num_samples"]) for r in records]
            layout = SplitLayout.from_frame_counts(frames, layout_attrs["shard_frames"],
                                                   layout_attrs["block_shards"])
            by_split[name] = SplitData(records=records, layout=layout)
        writer.prepare(attrs, by_split)
    for name in splits:  # a kill between a block's shard_done and done writes leaves done behind
        writer.repair_done(name)


def _records(corpus: Corpus, splits: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each split → the manifest rows of its utterances as the corpus lists them now, in layout order (none
    for a split the store holds but this corpus lacks: ``check_same_utterances`` then names the difference)."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in splits}
    known = [name for name in splits if name in corpus.splits]
    for utterance in corpus.utterances(known) if known else []:
        out[utterance.split].append(utterance.to_record())
    return out


def _say(text: str, style: str = "yellow") -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(text, style=style)  # one line each, whatever the width


class _Runner:
    """Computes and writes the pending blocks of a split.

    Each utterance is *owned* by the block holding its first frame and is computed in a batch of that
    block's plan (``plan_batches`` over the owned utterances' sample counts, known from the manifest).
    Frames that spill past the block's end are carried to the next blocks, so a sequential run
    computes every utterance once. A resumed run recomputes a spilling utterance with its owner's
    batch, which gives the same bytes; so does a process of ``torchrun`` starting at its first group.
    """

    def __init__(self, upstream: Upstream, layers: list[int], req: ExtractRequest, layout: dict[str, Any],
                 device: torch.device, ctx: distributed.Context):
        self.device, self.ctx = device, ctx
        self.upstream = upstream.to(self.device).eval()
        self.layers = torch.tensor(layers, dtype=torch.long, device=self.device)
        self.dtype = DTYPES[req.dtype]
        self.torch_dtype = {"float16": torch.float16, "float32": torch.float32}[req.dtype]
        self.max_samples = int(float(layout["batch_seconds"]) * audio.SAMPLE_RATE)
        self.workers = max(1, req.workers)
        self.progress = req.progress and ctx.main

    def run_split(self, writer: StoreWriter, split: str) -> bool:
        """Compute this process's pending blocks; returns whether the split is now complete."""
        shard_done = writer.shard_done(split)
        if not shard_done.all():
            self._run_blocks(writer, split, shard_done)
        if not self.ctx.distributed:
            return True  # done was updated block by block
        if not writer.shard_done(split).all():
            return False  # another process is still at work; the last one to finish writes done
        writer.repair_done(split)
        return True

    def _share(self, writer: StoreWriter, split: str, layout: SplitLayout) -> range:
        """The blocks this process computes: all, or under torchrun its contiguous run of done groups."""
        if not self.ctx.distributed:
            return range(layout.num_blocks)
        size = writer.done_group_blocks(split)
        groups = -(-layout.num_blocks // size)
        rank, world = self.ctx.rank, self.ctx.world
        first, end = rank * groups // world * size, (rank + 1) * groups // world * size
        return range(first, min(end, layout.num_blocks))

    def _run_blocks(self, writer: StoreWriter, split: str, shard_done: np.ndarray) -> None:
        layout = writer.layout(split)
        pending = [b for b in range(layout.num_blocks) if not shard_done[slice(*layout.block_shard_range(b))].all()]
        share = self._share(writer, split, layout)
        blocks = [b for b in pending if b in share]
        if self.ctx.distributed and self.ctx.main:
            mine = f"blocks {share.start}-{share.stop - 1}" if share else "none"
            _say(f"distributed extraction: {self.ctx.world} processes; {split}: {len(pending)} of "
                 f"{layout.num_blocks} blocks pending, rank 0 takes {mine}", style="")
        records = writer.records(split)
        plan = _BlockPlan(layout, [r["num_samples"] for r in records], self.max_samples,
                          self.upstream.spec.pad_safe)
        cache: dict[int, np.ndarray] = {}  # utterance → its frames, until its last block is written
        with ThreadPoolExecutor(self.workers) as decoder, ThreadPoolExecutor(1) as io, \
                _progress(self.progress, split, layout, records, blocks) as advance:
            pending_write: Future | None = None
            ahead = self._decode(decoder, records, plan.batches_for(blocks[0], cache)) if blocks else {}
            for k, block in enumerate(blocks):
                batches, waves = plan.batches_for(block, cache), ahead
                for batch in batches:
                    cache.update(self._compute(batch, waves, layout))
                if k + 1 < len(blocks):  # decode the next block while this one is assembled and written
                    ahead = self._decode(decoder, records, plan.batches_for(blocks[k + 1], cache))
                data = self._assemble(layout, block, cache)
                if pending_write is not None:
                    pending_write.result()  # at most one block in flight: bounded memory
                pending_write = io.submit(self._write, writer, split, layout, block, data, not self.ctx.distributed)
                start, end = layout.shard_frame_range(*layout.block_shard_range(block))
                for i in [i for i in cache if layout.offsets[i + 1] <= end]:
                    del cache[i]
                advance(block)
            if pending_write is not None:
                pending_write.result()

    @staticmethod
    def _write(writer: StoreWriter, split: str, layout: SplitLayout, block: int, data: np.ndarray,
               update_done: bool) -> None:
        first, end = layout.block_shard_range(block)
        writer.write_shards(split, first, data)
        writer.mark_shards_done(split, first, end, update_done=update_done)

    @staticmethod
    def _decode(pool: ThreadPoolExecutor, records: list[dict[str, Any]],
                batches: list[list[int]]) -> dict[int, Future]:
        return {i: pool.submit(_read, records[i]) for batch in batches for i in batch}

    @torch.inference_mode()
    def _compute(self, batch: list[int], waves: dict[int, Future], layout: SplitLayout) -> dict[int, np.ndarray]:
        """Hidden states of one batch: utterance → ``(frames, kept layers, dim)`` in the store dtype."""
        rows = [waves[i].result() for i in batch]
        wav = torch.zeros(len(rows), max(r.shape[0] for r in rows))
        for r, row in enumerate(rows):
            wav[r, : row.shape[0]] = torch.from_numpy(row)
        hidden, frame_lengths = self.upstream(wav.to(self.device), torch.tensor([r.shape[0] for r in rows]))
        # cast on the device: half the bytes to copy back (IEEE rounding, same values as numpy's)
        hidden = hidden.index_select(2, self.layers).to(self.torch_dtype).cpu().numpy()
        out = {}
        for r, i in enumerate(batch):
            frames = int(layout.offsets[i + 1] - layout.offsets[i])
            if int(frame_lengths[r]) != frames:
                raise RuntimeError(f"utterance {i}: upstream gave {int(frame_lengths[r])} frames, layout says {frames}")
            out[i] = hidden[r, :frames]
        return out

    def _assemble(self, layout: SplitLayout, block: int, cache: dict[int, np.ndarray]) -> np.ndarray:
        """The block's frames, ``(block frames, kept layers, dim)``, from the computed utterances."""
        start, end = layout.shard_frame_range(*layout.block_shard_range(block))
        out = np.zeros((end - start, len(self.layers), self.upstream.spec.dim), dtype=self.dtype)
        for i in layout.utterances_in(start, end):
            lo, hi = int(layout.offsets[i]), int(layout.offsets[i + 1])
            a, b = max(lo, start), min(hi, end)
            out[a - start : b - start] = cache[int(i)][a - lo : b - lo]
        return out


class _BlockPlan:
    """Which batches compute the utterances a block needs (see ``_Runner``); a function of the layout."""

    def __init__(self, layout: SplitLayout, samples: list[int], max_samples: int, pad_safe: bool):
        self.layout = layout
        block_frames = layout.shard_frames * layout.block_shards
        nonempty = np.nonzero(layout.offsets[1:] > layout.offsets[:-1])[0]
        owners = layout.offsets[nonempty] // block_frames
        self.owned: dict[int, list[int]] = {}
        for i, owner in zip(nonempty.tolist(), owners.tolist(), strict=True):
            self.owned.setdefault(owner, []).append(i)
        self.owner = dict(zip(nonempty.tolist(), owners.tolist(), strict=True))
        self._batches: dict[int, list[list[int]]] = {}
        self.samples, self.max_samples, self.pad_safe = samples, max_samples, pad_safe

    def owner_batches(self, block: int) -> list[list[int]]:
        if block not in self._batches:
            owned = self.owned.get(block, [])
            plan = plan_batches([self.samples[i] for i in owned], self.max_samples, self.pad_safe)
            self._batches[block] = [[owned[j] for j in batch] for batch in plan]
        return self._batches[block]

    def batches_for(self, block: int, cache: dict[int, np.ndarray]) -> list[list[int]]:
        """The block's own batches, plus the owner batches of earlier utterances it needs but lacks."""
        start, end = self.layout.shard_frame_range(*self.layout.block_shard_range(block))
        batches: list[list[int]] = []
        for i in self.layout.utterances_in(start, end).tolist():
            owner = self.owner[i]
            if owner < block and i not in cache:
                batch = next(b for b in self.owner_batches(owner) if i in b)
                if batch not in batches:
                    batches.append(batch)
        return batches + self.owner_batches(block)


def _read(record: dict[str, Any]) -> np.ndarray:
    return audio.read_record(record)


class _progress:
    """A rich progress bar over utterances and audio seconds; advances when a block is computed."""

    def __init__(self, enabled: bool, split: str, layout: SplitLayout, records: list[dict[str, Any]],
                 blocks: list[int]):
        self.enabled, self.split, self.layout, self.records, self.blocks = enabled, split, layout, records, blocks

    def __enter__(self):
        starts = self.layout.offsets[:-1]
        block_frames = self.layout.shard_frames * self.layout.block_shards
        owner = np.minimum(starts // max(block_frames, 1), max(self.layout.num_blocks - 1, 0))
        seconds = np.array([r["num_samples"] / audio.SAMPLE_RATE for r in self.records])
        self.per_block = {b: (int((owner == b).sum()), float(seconds[owner == b].sum())) for b in self.blocks}
        if not self.enabled:
            return lambda block: None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(f"[bold]{self.split}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} utt"),
            TextColumn("{task.fields[rate]:.1f} audio-s/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False, redirect_stdout=False,
        )
        total = sum(n for n, _ in self.per_block.values())
        self.task = self.bar.add_task(self.split, total=total, rate=0.0)
        self.seconds = 0.0
        self.bar.start()

        def advance(block: int) -> None:
            n, secs = self.per_block[block]
            self.seconds += secs
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            self.bar.update(self.task, advance=n, rate=self.seconds / elapsed)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()

