"""HDF5 stores: the same layout in one file, ``OUT/CORPUS.h5``, published only when complete.

HDF5 is not crash-safe: a process killed while it writes can leave the whole file unreadable. So the
extraction writes into a Zarr staging store beside it (``CORPUS.h5.staging/``, resumable like any Zarr
store) and ``finish`` copies that into ``CORPUS.h5.partial``, then renames it into place (or, when the
disk fills up, removes it: the staging store stays for the rerun). A reader never sees a half-written file.
Attributes are stored as JSON text, since HDF5 attributes cannot hold dicts. Readers open their own handle
in each process (h5py handles do not survive ``fork``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from superb.errors import StoreError
from superb.files import replaced
from superb.stores.base import (
    MANIFEST_COLUMNS,
    SPLIT_ARRAYS,
    FeatureStore,
    SplitData,
    SplitView,
    by_split,
    into,
    manifest_columns,
    records_from_columns,
    split_group,
)
from superb.stores.zarr_store import ZarrStore, ZarrWriter

COPIED_ARRAYS = tuple(a for a in SPLIT_ARRAYS if a != "features")  # features are copied shard by shard


def _staging(path: Path) -> Path:
    return path.with_name(path.name + ".staging")


def _trash(staging: Path) -> Path:
    return staging.with_name(staging.name + ".trash")


def _discard(staging: Path) -> None:
    """Rename, then delete: a kill mid-delete leaves a trash folder, never a half staging store."""
    trash = _trash(staging)
    os.replace(staging, trash)
    shutil.rmtree(trash)


def _read_attrs(handle: h5py.File) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in handle.attrs.items()}


def _dataset(group: h5py.Group, name: str, values: np.ndarray) -> None:
    if values.dtype.kind in "UOT":
        group.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
    else:
        group.create_dataset(name, data=values)


class Hdf5Writer(ZarrWriter):
    """Writes the Zarr staging store, then publishes it (plus any splits of an older file) as HDF5."""

    def __init__(self, path: Path):
        self.final = Path(path)
        super().__init__(_staging(self.final))
        trash = _trash(self.path)
        if trash.exists():  # a kill while discarding a published staging store
            shutil.rmtree(trash)

    def existing_attrs(self) -> dict[str, Any] | None:
        staged = super().existing_attrs()
        if staged is not None:
            return staged
        if self.final.is_file():
            with Hdf5Store(self.final) as old:
                return dict(old.attrs)
        return None

    def prepare(self, attrs: dict[str, Any], splits: dict[str, SplitData]) -> None:
        published = self._published_splits()
        todo = {name: data for name, data in splits.items() if name not in published}
        if todo or self.path.exists():
            super().prepare({**attrs, "splits": []}, todo)

    def _published_splits(self) -> list[str]:
        if not self.final.is_file():
            return []
        with h5py.File(self.final, "r") as handle:
            return list(json.loads(handle.attrs["splits"]))

    def shard_done(self, split: str) -> np.ndarray:
        if split in self._published_splits():
            with h5py.File(self.final, "r") as handle:
                return np.asarray(handle[split]["shard_done"][:], dtype=bool)
        return super().shard_done(split)

    def repair_done(self, split: str) -> None:
        if split not in self._published_splits():  # a published file was complete when it was written
            super().repair_done(split)

    def stored_records(self) -> dict[str, list[dict[str, Any]]]:
        held = {}
        if self.final.is_file():
            with Hdf5Store(self.final) as old:
                held = by_split(old.splits, lambda names: old.manifest())
        return {**super().stored_records(), **held}

    def relocate(self, corpus: dict[str, Any], records: list[dict[str, Any]]) -> None:
        """The staging store's manifest and attrs in place; a published file is rewritten whole (HDF5 files
        are only ever replaced, never edited, see the module doc)."""
        published = self._published_splits()
        if self.path.exists():
            super().relocate(corpus, [r for r in records if r["split"] not in published])
        if published:
            self._republish([Hdf5Store(self.final)], corpus, [r for r in records if r["split"] in published])

    def finish(self) -> None:
        if not self.path.exists():
            return
        sources: list[FeatureStore] = [ZarrStore(self.path)]
        if self.final.is_file():
            sources.insert(0, Hdf5Store(self.final))
        self._republish(sources)
        _discard(self.path)

    def _republish(self, sources: list[FeatureStore], corpus: dict[str, Any] | None = None,
                   records: list[dict[str, Any]] | None = None) -> None:
        try:
            with replaced(self.final) as partial:  # a full disk leaves the staging store and no partial file
                _publish(sources, partial, corpus, records)
        finally:
            for source in sources:
                source.close()


def _publish(sources: list[FeatureStore], target: Path, corpus: dict[str, Any] | None = None,
             records: list[dict[str, Any]] | None = None) -> None:
    """Copy every split of ``sources`` (the newest last) into a new HDF5 file at ``target``; ``corpus`` and
    ``records`` (a moved corpus) replace the sources' attr and manifest rows."""
    attrs = dict(sources[-1].attrs)
    splits: dict[str, FeatureStore] = {}
    for source in sources:
        for name in source.splits:
            splits[name] = source
    attrs["splits"] = list(splits)
    attrs["manifest"] = "manifest"
    if corpus is not None:
        attrs["corpus"] = corpus
    if records is None:
        records = [r for name, src in splits.items() for r in src.manifest() if r["split"] == name]
    # through a Python file: a full disk is then an OSError, and HDF5 is not left holding a file it could
    # not flush (with its own driver it raised a RuntimeError and the interpreter crashed at exit)
    with open(target, "w+b") as handle, h5py.File(handle, "w") as out:
        for key, value in attrs.items():
            out.attrs[key] = json.dumps(value)
        manifest = out.create_group("manifest")
        for column, values in manifest_columns(records).items():
            _dataset(manifest, column, values)
        for name, source in splits.items():
            src = source._split_group(name)
            group = out.create_group(name)
            for array in COPIED_ARRAYS:
                _dataset(group, array, np.asarray(src[array][:]))
            features = src["features"]
            total = features.shape[0]
            # contiguous: the file is written once, and readers can map the bytes directly
            dset = group.create_dataset("features", shape=features.shape, dtype=features.dtype)
            step = int(attrs["layout"]["shard_frames"])
            for start in range(0, total, step):
                dset[start : start + step] = features[start : start + step]


def _frame_reader(path: Path, dset: h5py.Dataset):
    """A memory map of a contiguous, uncompressed dataset (as ``finish`` writes), else h5py slicing."""
    offset = dset.id.get_offset() if dset.chunks is None and dset.compression is None else None
    if offset is None or dset.shape[0] == 0:
        return lambda start, end, out=None: into(dset[start:end], out)
    mapped = np.memmap(path, mode="r", dtype=dset.dtype, offset=offset, shape=dset.shape)
    return lambda start, end, out=None: np.array(mapped[start:end]) if out is None else into(mapped[start:end], out)


class Hdf5Store(FeatureStore):
    format = "hdf5"

    def __init__(self, path: Path):
        self._pid = -1
        self._handle: h5py.File | None = None
        self.path = Path(path)
        try:
            attrs = _read_attrs(self.handle)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open HDF5 store ({exc})") from None
        super().__init__(Path(path), attrs)
        self._records: list[dict[str, Any]] | None = None

    @property
    def handle(self) -> h5py.File:
        if self._handle is None or self._pid != os.getpid():  # one handle per process
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._handle

    def _split_group(self, name: str) -> h5py.Group:
        return split_group(self.path, self.handle, name)

    def manifest(self) -> list[dict[str, Any]]:
        if self._records is None:
            group = self.handle["manifest"]
            columns = {c: np.asarray(group[c].asstr()[:] if group[c].dtype.kind == "O" else group[c][:])
                       for c in MANIFEST_COLUMNS}
            self._records = [r for r in records_from_columns(columns) if r["split"] in self.splits]
        return self._records

    def _split(self, name: str) -> SplitView:
        group = self._split_group(name)
        return SplitView(
            name=name,
            ids=np.asarray(group["ids"].asstr()[:]),
            offsets=np.asarray(group["offsets"][:], dtype=np.int64),
            done=np.asarray(group["done"][:], dtype=bool),
            read_frames=_frame_reader(self.path, group["features"]),
            records=[r for r in self.manifest() if r["split"] == name],
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class Hdf5Format:
    name = "hdf5"

    @staticmethod
    def store_path(out: Path, corpus: str) -> Path:
        return Path(out) / f"{corpus}.h5"

    @staticmethod
    def detect(path: Path) -> bool:
        path = Path(path)
        return path.is_file() and path.suffix in (".h5", ".hdf5")

    @staticmethod
    def writer(path: Path) -> Hdf5Writer:
        return Hdf5Writer(path)

    @staticmethod
    def reader(path: Path) -> Hdf5Store:
        return Hdf5Store(path)
