"""Zarr v3 stores: one group per corpus, features sharded along frames, uncompressed.

Hidden states barely compress (zstd gained 1.09× at real CPU cost), so inner chunks hold raw
little-endian values; ``write_empty_chunks`` is on so every shard has the same byte layout. Writes go
through zarr's LocalStore, which replaces files atomically, so a killed writer leaves either the old or
the new shard, never half of one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from superb.errors import StoreError
from superb.stores.base import (
    MANIFEST_COLUMNS,
    FeatureStore,
    SplitData,
    SplitView,
    by_split,
    into,
    manifest_columns,
    records_from_columns,
    split_group,
)
from superb.stores.layout import SplitLayout
from superb.stores.zarr_fastread import FastFrameReader

_ARRAY_CONFIG = {"write_empty_chunks": True}


def _group_blocks(layout: SplitLayout, done_groups: int) -> int:
    """Blocks per *done group*: the blocks whose ``shard_done`` flags share one chunk (one file).

    A split has at most ``done_groups`` of them (the store's ``layout.done_groups``), so the count is a
    function of the layout alone: stores written by one process or by several are the same bytes.
    """
    return max(1, -(-layout.num_blocks // int(done_groups)))


def _is_group(path: Path) -> bool:
    return path.is_dir() and (path / "zarr.json").is_file()


def _layout_of(group: zarr.Group, layout_attrs: dict[str, Any]) -> SplitLayout:
    return SplitLayout(
        offsets=np.asarray(group["offsets"][:], dtype=np.int64),
        shard_frames=int(layout_attrs["shard_frames"]),
        block_shards=int(layout_attrs["block_shards"]),
    )


def _write_column(group: zarr.Group, name: str, values: np.ndarray, chunk: int | None = None) -> None:
    dtype = str if values.dtype.kind in "UO" or values.dtype.kind == "T" else values.dtype
    arr = group.create_array(name, shape=values.shape, dtype=dtype, chunks=(chunk or max(1, len(values)),),
                             overwrite=True, config=_ARRAY_CONFIG)
    if len(values):
        arr[:] = values


class ZarrWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._root: zarr.Group | None = None
        self._layouts: dict[str, SplitLayout] = {}
        self._flags: dict[str, np.ndarray] = {}  # shard_done as this writer left it (see mark_shards_done)
        self._groups: dict[str, zarr.Group] = {}  # splits whose arrays were found (checked once)

    def existing_attrs(self) -> dict[str, Any] | None:
        if not _is_group(self.path):
            if self.path.exists() and any(self.path.iterdir()):
                raise StoreError(f"{self.path}: exists and is not a Zarr feature store; choose another --out")
            return None
        return dict(zarr.open_group(str(self.path), mode="r").attrs)

    @property
    def root(self) -> zarr.Group:
        if self._root is None:
            self._root = zarr.open_group(str(self.path), mode="a", zarr_format=3)
        return self._root

    def prepare(self, attrs: dict[str, Any], splits: dict[str, SplitData]) -> None:
        root = self.root
        existing = list(root.attrs.get("splits", []))
        if not existing:
            root.attrs.update({k: v for k, v in attrs.items() if k != "splits"})
        new = [name for name in splits if name not in existing]
        if not new:
            return
        dtype = np.dtype(attrs["dtype"])
        layer_count, dim = len(attrs["layers"]), int(attrs["dim"])
        chunk = int(attrs["layout"]["chunk_frames"])
        for name in new:
            data = splits[name]
            group = root.create_group(name, overwrite=True)  # a half-made split from a killed run is redone
            shard = data.layout.shard_frames
            group.create_array(
                "features", shape=(data.layout.total_frames, layer_count, dim), dtype=dtype,
                chunks=(chunk, layer_count, dim), shards=(shard, layer_count, dim),
                compressors=None, fill_value=0, config=_ARRAY_CONFIG,
            )
            _write_column(group, "offsets", data.layout.offsets)
            _write_column(group, "ids", np.array([r["id"] for r in data.records], dtype=str))
            _write_column(group, "done", np.zeros(data.layout.num_utterances, dtype=bool))
            # one chunk per done group, so processes finishing different groups never rewrite one file;
            # stores made before distributed extraction (no layout.done_groups) keep one chunk
            groups = attrs["layout"].get("done_groups")
            flags = None if groups is None else _group_blocks(data.layout, groups) * data.layout.block_shards
            _write_column(group, "shard_done", np.zeros(data.layout.num_shards, dtype=bool), flags)
            if data.layout.num_shards == 0:  # nothing to compute: every (empty) utterance is done
                self.repair_done(name)
        records = self._existing_records(existing)
        for name in new:
            records.extend(splits[name].records)
        self._switch_manifest(records, {"splits": existing + new})

    def relocate(self, corpus: dict[str, Any], records: list[dict[str, Any]]) -> None:
        """Record where the corpus is now: its ``corpus`` attr and the manifest rows of the same utterances."""
        self._switch_manifest(records, {"corpus": corpus})

    def _switch_manifest(self, records: list[dict[str, Any]], attrs: dict[str, Any]) -> None:
        """Write ``records`` as a new manifest group, then name it in the attrs together with ``attrs`` (one
        atomic zarr.json write): a kill at any point leaves the old manifest and attrs or the new ones."""
        root = self.root
        old = root.attrs.get("manifest", "manifest")
        generation = int(old.rpartition("-")[2]) if old.startswith("manifest-") else 0
        name = f"manifest-{generation + 1}"
        manifest = root.create_group(name, overwrite=True)  # a leftover of a killed run is redone
        for column, values in manifest_columns(records).items():
            _write_column(manifest, column, values)
        root.attrs.update({**attrs, "manifest": name})
        if old in root:
            del root[old]

    def stored_records(self) -> dict[str, list[dict[str, Any]]]:
        if not _is_group(self.path):
            return {}
        return by_split(list(self.root.attrs.get("splits", [])), self._existing_records)

    def _existing_records(self, names: list[str]) -> list[dict[str, Any]]:
        if not names:
            return []
        group = self.root[self.root.attrs.get("manifest", "manifest")]
        columns = {c: group[c][:] for c in MANIFEST_COLUMNS}
        return [r for r in records_from_columns(columns) if r["split"] in names]

    def records(self, split: str) -> list[dict[str, Any]]:
        """Manifest rows of one split, in layout order."""
        return self._existing_records([split])

    def _split_group(self, split: str) -> zarr.Group:
        if split not in self._groups:
            self._groups[split] = split_group(self.path, self.root, split)
        return self._groups[split]

    def layout(self, split: str) -> SplitLayout:
        if split not in self._layouts:
            self._layouts[split] = _layout_of(self._split_group(split), self.root.attrs["layout"])
        return self._layouts[split]

    def shard_done(self, split: str) -> np.ndarray:
        return np.asarray(self._split_group(split)["shard_done"][:], dtype=bool)

    def write_shards(self, split: str, first_shard: int, data: np.ndarray) -> None:
        start = first_shard * self.layout(split).shard_frames
        self._split_group(split)["features"][start : start + len(data)] = data

    def done_group_blocks(self, split: str) -> int | None:
        groups = self.root.attrs["layout"].get("done_groups")
        return None if groups is None else _group_blocks(self.layout(split), groups)

    def mark_shards_done(self, split: str, first_shard: int, end_shard: int, update_done: bool = True) -> None:
        group = self._split_group(split)
        # a block's flags lie in one chunk of shard_done: only that chunk's file is rewritten
        group["shard_done"][first_shard:end_shard] = True
        if update_done:  # the only writer: the flags are those read once plus those marked since
            if split not in self._flags:
                self._flags[split] = self.shard_done(split)
            self._flags[split][first_shard:end_shard] = True
            done = self.layout(split).done_from_shards(self._flags[split])
            if len(done):
                group["done"][:] = done

    def repair_done(self, split: str) -> None:
        """Re-derive ``done`` from ``shard_done`` (a kill between the two writes leaves it behind)."""
        done = self.layout(split).done_from_shards(self.shard_done(split))
        array = self._split_group(split)["done"]
        if len(done) and not np.array_equal(done, array[:]):
            array[:] = done

    def finish(self) -> None:
        pass


class ZarrStore(FeatureStore):
    format = "zarr"

    def __init__(self, path: Path):
        try:
            self._root = zarr.open_group(str(path), mode="r")
        except Exception as exc:
            raise StoreError(f"{path}: cannot open Zarr store ({exc})") from None
        super().__init__(Path(path), dict(self._root.attrs))
        self._records: list[dict[str, Any]] | None = None

    def manifest(self) -> list[dict[str, Any]]:
        if self._records is None:
            group = self._root[self.attrs.get("manifest", "manifest")]
            columns = {c: group[c][:] for c in MANIFEST_COLUMNS}
            self._records = [r for r in records_from_columns(columns) if r["split"] in self.splits]
        return self._records

    def _frame_reader(self, name: str, array: zarr.Array):
        """Our direct shard reader when the array has our plain encoding, else zarr's slicing."""
        fast = FastFrameReader.open(self.path / name / "features")
        if fast is not None:
            return fast.read
        return lambda start, end, out=None: into(np.asarray(array[start:end]), out)

    def _split_group(self, name: str) -> zarr.Group:
        return split_group(self.path, self._root, name)

    def _split(self, name: str) -> SplitView:
        group = self._split_group(name)
        records = [r for r in self.manifest() if r["split"] == name]
        return SplitView(
            name=name,
            ids=np.asarray(group["ids"][:]),
            offsets=np.asarray(group["offsets"][:], dtype=np.int64),
            done=np.asarray(group["done"][:], dtype=bool),
            read_frames=self._frame_reader(name, group["features"]),
            records=records,
        )


class ZarrFormat:
    name = "zarr"

    @staticmethod
    def store_path(out: Path, corpus: str) -> Path:
        return Path(out) / corpus

    @staticmethod
    def detect(path: Path) -> bool:
        return _is_group(Path(path))

    @staticmethod
    def writer(path: Path) -> ZarrWriter:
        return ZarrWriter(path)

    @staticmethod
    def reader(path: Path) -> ZarrStore:
        return ZarrStore(path)
