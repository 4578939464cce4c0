"""Store layout, writers and readers, without audio: synthetic features through the real writers."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import zarr

from superb.errors import StoreError
from superb.registry import STORE_FORMATS
from superb.stores.base import FORMAT_VERSION, SplitData, open_store
from superb.stores.layout import SplitLayout, default_chunk_frames
from superb.stores.zarr_fastread import FastFrameReader
from superb.train.data import Item, StoreItems, collate

LAYERS, DIM = 3, 8


def _attrs(layout: dict) -> dict:
    return {
        "format_version": FORMAT_VERSION, "upstream": {"name": "synthetic", "ckpt_sha256": None},
        "sample_rate": 16000, "frame_rate": 50.0, "num_layers": LAYERS, "dim": DIM, "dtype": "float16",
        "layers": list(range(LAYERS)), "corpus": {"name": "generic", "root": "/x", "version": 1, "options": {}},
        "superb_version": "test", "created": "now", "splits": [], "layout": layout,
    }


def _split(name: str, frames: list[int], shard: int, block: int) -> SplitData:
    records = [{"id": f"{name}-{i}", "split": name, "path": f"/x/{i}.wav", "num_samples": 320 * n + 80,
                "start": 0, "frames": -1, "meta": {"label": str(i % 3), "text": "é ünïcode"}}
               for i, n in enumerate(frames)]
    return SplitData(records=records, layout=SplitLayout.from_frame_counts(frames, shard, block))


def _values(total: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((total, LAYERS, DIM)).astype(np.float16)


def _write_all(writer, name: str, data: SplitData, values: np.ndarray, blocks=None) -> None:
    layout = data.layout
    for block in range(layout.num_blocks) if blocks is None else blocks:
        first, end = layout.block_shard_range(block)
        start, stop = layout.shard_frame_range(first, end)
        writer.write_shards(name, first, values[start:stop])
        writer.mark_shards_done(name, first, end)


FRAMES = [5, 0, 17, 3, 40, 1, 0, 9, 33, 12]  # includes empty utterances and ones straddling shards


def test_layout_offsets_and_membership():
    layout = SplitLayout.from_frame_counts(FRAMES, shard_frames=8, block_shards=2)
    assert layout.total_frames == sum(FRAMES)
    assert layout.num_shards == -(-sum(FRAMES) // 8)
    assert list(layout.offsets[:4]) == [0, 5, 5, 22]
    # utterance 2 spans frames 5..22: shards 0, 1 and 2
    first, last = layout.utterance_shards()
    assert (first[2], last[2]) == (0, 2)
    assert list(layout.utterances_in(8, 16)) == [2]
    assert 1 not in layout.utterances_in(0, 8)  # empty utterances have no frames to compute
    shard_done = np.zeros(layout.num_shards, dtype=bool)
    shard_done[:2] = True
    done = layout.done_from_shards(shard_done)
    assert done[0] and done[1] and not done[2]
    assert layout.done_from_shards(np.ones(layout.num_shards, dtype=bool)).all()


def test_default_chunk_frames_bounds():
    assert default_chunk_frames(13 * 768 * 2) == 64
    assert default_chunk_frames(1) == 4096
    assert default_chunk_frames(10**9) == 16


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_store_round_trip_and_done_mask(tmp_path, fmt):
    cls = STORE_FORMATS.get(fmt)
    path = cls.store_path(tmp_path, "generic")
    layout = {"chunk_frames": 4, "shard_frames": 8, "block_shards": 2, "batch_seconds": 1.0}
    train, test = _split("train", FRAMES, 8, 2), _split("test", [7, 7, 2], 8, 2)
    writer = cls.writer(path)
    assert writer.existing_attrs() is None
    writer.prepare(_attrs(layout), {"train": train, "test": test})
    values = {"train": _values(train.layout.total_frames, 1), "test": _values(test.layout.total_frames, 2)}
    _write_all(writer, "train", train, values["train"], blocks=[0])  # only the first block so far
    if fmt == "zarr":  # a half-done Zarr store is readable; done bits guard the rest
        with open_store(path) as store:
            view = store.split("train")
            assert view.done[0] and not view.done[-1]
            with pytest.raises(StoreError, match="not extracted yet"):
                view.features(len(view) - 1)
    _write_all(writer, "train", train, values["train"], blocks=range(1, train.layout.num_blocks))
    _write_all(writer, "test", test, values["test"])
    writer.finish()
    with open_store(path) as store:
        assert store.format == fmt
        assert store.splits == ["train", "test"]
        assert store.completeness() == {"train": (10, 10), "test": (3, 3)}
        for name, data in (("train", train), ("test", test)):
            view = store.split(name)
            for i in range(len(view)):
                lo, hi = data.layout.offsets[i], data.layout.offsets[i + 1]
                np.testing.assert_array_equal(view.features(i), values[name][lo:hi])
                assert view.record(i)["meta"] == {"label": str(i % 3), "text": "é ünïcode"}
        # batches read in place equal the per-item reads padded by collate (crops and preload too)
        items = [Item("train", i, (i % 3,)) for i in range(len(FRAMES))]
        keys = [(k, 100 + k) for k in (4, 1, 8, 2, 0, 6)]
        for preload in (False, True):
            data = StoreItems(store, items, crop_frames=10, preload=preload)
            expected, got = collate([data[key] for key in keys]), data.batch(keys)
            assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
        feats, record = store.get("train-4")
        assert feats.shape == (40, LAYERS, DIM) and record["split"] == "train"
        with pytest.raises(StoreError, match="no utterance"):
            store.get("nope")
        with pytest.raises(StoreError, match="no split 'dev'"):
            store.split("dev")


def test_fast_reader_equals_zarr(tmp_path):
    arr = zarr.create_array(str(tmp_path / "a"), shape=(1000, LAYERS, DIM), dtype="float16",
                            chunks=(16, LAYERS, DIM), shards=(64, LAYERS, DIM), compressors=None,
                            fill_value=0, config={"write_empty_chunks": True})
    values = _values(1000)
    arr[:640] = values[:640]  # shards 10.. never written: read as fill
    fast = FastFrameReader.open(tmp_path / "a")
    assert fast is not None
    rng = np.random.default_rng(0)
    for _ in range(200):
        start = int(rng.integers(0, 999))
        end = int(rng.integers(start, min(1000, start + 200)))
        np.testing.assert_array_equal(fast.read(start, end), arr[start:end])
    into = np.full((30, LAYERS, DIM), 7, dtype=np.float16)
    assert fast.read(600, 620, out=into[5:25]) is not None  # straight into part of a buffer
    np.testing.assert_array_equal(into[5:25], arr[600:620])
    assert (into[:5] == 7).all() and (into[25:] == 7).all()
    strided = np.zeros((20, DIM, LAYERS), dtype=np.float16).transpose(0, 2, 1)  # not C-contiguous: copied
    np.testing.assert_array_equal(fast.read(600, 620, out=strided), arr[600:620])


def test_fast_reader_declines_other_encodings(tmp_path):
    zarr.create_array(str(tmp_path / "z"), shape=(100, LAYERS, DIM), dtype="float16",
                      chunks=(16, LAYERS, DIM), shards=(64, LAYERS, DIM))  # default compressor
    assert FastFrameReader.open(tmp_path / "z") is None


def test_fast_reader_detects_corrupt_index(tmp_path):
    arr = zarr.create_array(str(tmp_path / "a"), shape=(64, LAYERS, DIM), dtype="float16",
                            chunks=(16, LAYERS, DIM), shards=(64, LAYERS, DIM), compressors=None,
                            config={"write_empty_chunks": True})
    arr[:] = _values(64)
    shard = tmp_path / "a" / "c" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(OSError, match="index is corrupt"):
        FastFrameReader.open(tmp_path / "a").read(0, 4)


def test_open_store_errors(tmp_path):
    with pytest.raises(StoreError, match="no feature store"):
        open_store(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a superb feature store"):
        open_store(tmp_path / "plain")
    zarr.open_group(str(tmp_path / "foreign"), mode="w")
    with pytest.raises(StoreError, match="no format_version"):
        open_store(tmp_path / "foreign")


def test_fast_reader_is_thread_safe_across_many_shards(tmp_path):
    """Threads share one reader (the training loader does): >64 shards forces descriptor turnover."""
    import threading

    arr = zarr.create_array(str(tmp_path / "a"), shape=(100 * 8, 1, 4), dtype="float16", chunks=(4, 1, 4),
                            shards=(8, 1, 4), compressors=None, config={"write_empty_chunks": True})
    values = (np.arange(100 * 8 * 4) % 2000).astype(np.float16).reshape(-1, 1, 4)
    arr[:] = values
    fast = FastFrameReader.open(tmp_path / "a")
    wrong = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(4000):
            start = int(rng.integers(0, 790))
            if not np.array_equal(fast.read(start, start + 6), values[start : start + 6]):
                wrong.append(start)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


@pytest.mark.parametrize("fmt", ["zarr", "hdf5"])
def test_relocate_records_the_moved_corpus_and_keeps_the_features(tmp_path, fmt):
    """A moved corpus: the ``corpus`` attr and manifest paths change, nothing else (HDF5: published and staged)."""
    cls = STORE_FORMATS.get(fmt)
    path = cls.store_path(tmp_path, "generic")
    layout = {"chunk_frames": 4, "shard_frames": 8, "block_shards": 2, "batch_seconds": 1.0, "done_groups": 64}
    train, test = _split("train", FRAMES, 8, 2), _split("test", [7, 7, 2], 8, 2)
    writer = cls.writer(path)
    writer.prepare(_attrs(layout), {"train": train})
    _write_all(writer, "train", train, _values(train.layout.total_frames))
    writer.finish()  # HDF5: train is published
    writer = cls.writer(path)
    writer.prepare(_attrs(layout), {"test": test})  # HDF5: test is staged
    _write_all(writer, "test", test, _values(test.layout.total_frames, 2))
    held = writer.stored_records()
    assert {name: [r["id"] for r in rows] for name, rows in held.items()} == {
        name: [r["id"] for r in data.records] for name, data in (("train", train), ("test", test))}
    moved = [{**r, "path": r["path"].replace("/x/", "/y/")} for split in ("train", "test") for r in held[split]]
    with open_store(path) as store:
        before = [store.split("train").features(i) for i in range(len(FRAMES))]
    writer.relocate({**_attrs(layout)["corpus"], "root": "/y"}, moved)
    assert all(r["path"].startswith("/y/") for rows in writer.stored_records().values() for r in rows)
    writer.finish()
    with open_store(path) as store:
        assert store.attrs["corpus"]["root"] == "/y"
        assert sorted(r["id"] for r in store.manifest()) == sorted(r["id"] for r in moved)
        assert all(r["path"].startswith("/y/") for r in store.manifest())
        assert all(np.array_equal(store.split("train").features(i), before[i]) for i in range(len(FRAMES)))
        assert store.completeness() == {"train": (10, 10), "test": (3, 3)}
    if fmt == "zarr":  # the old manifest group is gone: one manifest, named by the attrs
        assert [p.name for p in path.iterdir() if p.name.startswith("manifest")] == [store.attrs["manifest"]]


def test_writer_lock_refuses_another_run_while_any_process_of_the_first_holds_it(tmp_path):
    """flock locks belong to open files, so one process can play both runs (every PID is this one's)."""
    from superb.stores.lock import WriterLock

    store = tmp_path / "generic"
    rank0, peer = WriterLock(store), WriterLock(store)
    rank0.claim()
    peer.join()  # torchrun: the other processes share rank 0's lock
    with pytest.raises(StoreError, match=f"another superb extract is writing this store \\(PID {os.getpid()} on"):
        WriterLock(store).claim()
    rank0.release()  # rank 0 finished first: its peer still holds the store
    with pytest.raises(StoreError, match=f"PID {os.getpid()}"):
        WriterLock(store).claim()
    peer.release()
    with WriterLock(store) as again:
        again.claim()
        assert (tmp_path / "generic.lock").read_text().splitlines() == [f"{os.getpid()} {socket.gethostname()}"]


def test_inspect_says_empty_before_any_split(tmp_path):
    """A store whose first split was never added (e.g. killed right after creating it) is empty, not complete."""
    from superb.stores.inspect import describe
    from superb.testing.cli import run_superb_here

    path = tmp_path / "generic"
    STORE_FORMATS.get("zarr").writer(path).prepare(_attrs({"chunk_frames": 4, "shard_frames": 8, "block_shards": 2,
                                                            "batch_seconds": 1.0}), {})
    with open_store(path) as store:
        report = describe(store)  # what --json prints
    assert report["state"] == "empty" and not report["complete"] and report["splits"] == {}
    text = run_superb_here("inspect", str(path))
    assert text.returncode == 0 and "empty" in text.stdout and "complete" not in text.stdout
