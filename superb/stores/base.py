"""One store layout (SPEC §3, format version 1) behind a writer/reader pair per format.

A store is ``OUT/CORPUS/`` (Zarr v3) or ``OUT/CORPUS.h5`` (HDF5) and holds:

* attrs: ``format_version``, ``upstream``, ``sample_rate``, ``frame_rate``, ``num_layers``, ``dim``,
  ``dtype``, ``layers``, ``corpus``, ``superb_version``, ``created``, ``splits``, ``layout``;
* ``manifest/``: one row per utterance, columns ``id``, ``split``, ``path``, ``num_samples``,
  ``duration``, ``start``, ``frames``, ``meta`` (JSON text);
* per split ``SPLIT/``: ``features [total_frames, layers, dim]``, ``offsets [n+1]``, ``ids [n]``,
  ``done [n]`` and ``shard_done [num_shards]``.

Formats register a class with ``writer(path)`` and ``reader(path)`` in ``superb.registry.STORE_FORMATS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from superb.errors import StoreError
from superb.stores.layout import SplitLayout

FORMAT_VERSION = 1
MANIFEST_COLUMNS = ("id", "split", "path", "num_samples", "duration", "start", "frames", "meta")
SPLIT_ARRAYS = ("features", "offsets", "ids", "done", "shard_done")


@dataclass
class SplitData:
    """What a writer needs to lay out one split: its utterances (as records) and layout."""

    records: list[dict[str, Any]]
    layout: SplitLayout


def manifest_columns(records: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Column arrays of the manifest (strings as numpy unicode, ``meta`` as JSON text)."""
    def text(key: str) -> np.ndarray:
        return np.array([str(r[key]) for r in records], dtype=str) if records else np.zeros(0, dtype="<U1")

    return {
        "id": text("id"),
        "split": text("split"),
        "path": text("path"),
        "num_samples": np.array([r["num_samples"] for r in records], dtype=np.int64),
        "duration": np.array([r["num_samples"] / 16000 for r in records], dtype=np.float64),
        "start": np.array([r.get("start", 0) for r in records], dtype=np.int64),
        "frames": np.array([r.get("frames", -1) for r in records], dtype=np.int64),
        "meta": np.array([json.dumps(r.get("meta", {}), sort_keys=True, ensure_ascii=False) for r in records],
                         dtype=str) if records else np.zeros(0, dtype="<U1"),
    }


def records_from_columns(columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    n = len(columns["id"])
    return [
        {
            "id": str(columns["id"][i]),
            "split": str(columns["split"][i]),
            "path": str(columns["path"][i]),
            "num_samples": int(columns["num_samples"][i]),
            "duration": float(columns["duration"][i]),
            "start": int(columns["start"][i]),
            "frames": int(columns["frames"][i]),
            "meta": json.loads(str(columns["meta"][i])),
        }
        for i in range(n)
    ]


def by_split(splits: Sequence[str],
             read: Callable[[list[str]], list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Each of ``splits`` → its manifest rows, from ``read(splits)`` (rows of those splits, in layout order)."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in splits}
    for record in read(list(splits)):
        if record["split"] in out:
            out[record["split"]].append(record)
    return out


class StoreWriter(Protocol):
    """Writes one store. Single-writer per shard; every call leaves the store readable."""

    path: Path

    def existing_attrs(self) -> dict[str, Any] | None:
        """The attrs of a store already at ``path``, or None."""

    def prepare(self, attrs: dict[str, Any], splits: dict[str, SplitData]) -> None:
        """Create the store, or add splits that are missing; never touches existing splits' data."""

    def stored_records(self) -> dict[str, list[dict[str, Any]]]:
        """Every split the store holds → its manifest rows, in layout order (nothing before ``prepare``)."""

    def relocate(self, corpus: dict[str, Any], records: list[dict[str, Any]]) -> None:
        """Record a moved corpus: the ``corpus`` attr and the manifest rows (same utterances, new paths)."""

    def shard_done(self, split: str) -> np.ndarray:
        """Per-shard written mask of a split."""

    def layout(self, split: str) -> SplitLayout:
        """The split's offsets and shard geometry."""

    def records(self, split: str) -> list[dict[str, Any]]:
        """Manifest rows of one split, in layout order."""

    def repair_done(self, split: str) -> None:
        """Re-derive ``done`` from ``shard_done`` (before resuming; at the end of a distributed run)."""

    def done_group_blocks(self, split: str) -> int | None:
        """Blocks whose ``shard_done`` flags one process may set without touching other blocks' flags
        (one chunk); None where all flags of a split are one unit (stores older than distributed runs)."""

    def write_shards(self, split: str, first_shard: int, data: np.ndarray) -> None:
        """Write whole shards starting at ``first_shard`` (frames ``[first*S, first*S + len(data))``)."""

    def mark_shards_done(self, split: str, first_shard: int, end_shard: int, update_done: bool = True) -> None:
        """Record a block's shards as durable, then (unless told not to) update the utterances' ``done`` bits."""

    def finish(self) -> None:
        """Called once every split is complete (HDF5 publishes its file here)."""


def into(frames: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``frames`` copied into ``out`` when a caller gave one (readers that cannot read in place)."""
    if out is None:
        return frames
    out[...] = frames
    return out


@dataclass
class SplitView:
    """Read access to one split; ``features(i)`` refuses utterances whose ``done`` bit is unset."""

    name: str
    ids: np.ndarray
    offsets: np.ndarray
    done: np.ndarray
    read_frames: Callable[..., np.ndarray]  # (start, end, out=None) → frames [start, end) as [frames, layers,
    # dim], into ``out`` when given (see ``into``)
    records: list[dict[str, Any]] = field(default_factory=list)
    _index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, uid: str) -> int:
        if self._index is None:
            self._index = {str(u): i for i, u in enumerate(self.ids)}
        try:
            return self._index[uid]
        except KeyError:
            raise StoreError(f"split {self.name!r} has no utterance {uid!r}") from None

    def num_frames(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def features(self, i: int) -> np.ndarray:
        """``[frames, layers, dim]`` of utterance ``i`` (in manifest order)."""
        if not self.done[i]:
            raise StoreError(f"utterance {self.ids[i]!r} of split {self.name!r} is not extracted yet")
        return self.read_frames(int(self.offsets[i]), int(self.offsets[i + 1]))

    def record(self, i: int) -> dict[str, Any]:
        return self.records[i]

    def __iter__(self) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        for i in range(len(self)):
            if self.done[i]:
                yield self.records[i], self.features(i)


class FeatureStore:
    """A store opened for reading: attrs, manifest, and a ``SplitView`` per split."""

    format: str = ""

    def __init__(self, path: Path, attrs: dict[str, Any]):
        self.path = path
        self.attrs = attrs
        self._views: dict[str, SplitView] = {}
        check_format_version(path, attrs)

    @property
    def splits(self) -> list[str]:
        return list(self.attrs.get("splits", []))

    @property
    def layers(self) -> list[int]:
        return list(self.attrs["layers"])

    def split(self, name: str) -> SplitView:
        if name not in self.splits:
            raise StoreError(f"{self.path}: no split {name!r} (splits: {', '.join(self.splits) or 'none'})")
        if name not in self._views:  # a snapshot: reopen the store to see later extraction progress
            self._views[name] = self._split(name)
        return self._views[name]

    def _split(self, name: str) -> SplitView:
        raise NotImplementedError

    def manifest(self) -> list[dict[str, Any]]:
        """Every utterance's record, over all splits."""
        raise NotImplementedError

    def get(self, uid: str, split: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """An utterance's features ``[T, L, D]`` and manifest record, by id."""
        for name in [split] if split else self.splits:
            view = self.split(name)
            try:
                i = view.index(uid)
            except StoreError:
                continue
            return view.features(i), view.record(i)
        raise StoreError(f"{self.path}: no utterance {uid!r}")

    def completeness(self) -> dict[str, tuple[int, int]]:
        """Per split: (done utterances, all utterances)."""
        out = {}
        for name in self.splits:
            view = self.split(name)
            out[name] = (int(np.count_nonzero(view.done)), len(view))
        return out

    def nbytes(self) -> int:
        if self.path.is_file():
            return self.path.stat().st_size
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def close(self) -> None:
        pass

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_group(path: Path, root: Any, name: str) -> Any:
    """The group of split ``name`` (Zarr or HDF5 ``root``), once all its arrays are there.

    A split listed in the attrs without its arrays is a damaged store (before writer locks, two runs at
    once could leave one); say which array is missing rather than fail somewhere inside zarr or h5py.
    """
    missing = next((f"{name}/{array}" for array in SPLIT_ARRAYS if f"{name}/{array}" not in root), None)
    if missing is not None:
        raise StoreError(f"{path}: split {name!r} is listed but {missing} is missing (a damaged store); "
                         "delete the store and extract again")
    return root[name]


def check_format_version(path: Path, attrs: dict[str, Any]) -> None:
    version = attrs.get("format_version")
    if version is None:
        raise StoreError(f"{path}: not a superb feature store (no format_version attribute)")
    if version != FORMAT_VERSION:
        raise StoreError(f"{path}: store format version {version}, this superb reads {FORMAT_VERSION}")


def open_store(path: str | Path) -> FeatureStore:
    """Open a store for reading, whatever its format: ``OUT/CORPUS`` (Zarr) or ``OUT/CORPUS.h5``."""
    from superb.registry import STORE_FORMATS

    path = Path(path)
    for fmt in ("zarr", "hdf5"):
        cls = STORE_FORMATS.get(fmt)
        if cls.detect(path):
            return cls.reader(path)
    if path.with_suffix(".h5").is_file():
        return STORE_FORMATS.get("hdf5").reader(path.with_suffix(".h5"))
    if not path.exists():
        raise StoreError(f"{path}: no feature store here")
    raise StoreError(f"{path}: not a superb feature store (no Zarr group or HDF5 file)")


def find_stores(path: str | Path) -> list[Path]:
    """``path`` itself if it is a store, else the stores directly inside it (``stores/UPSTREAM``)."""
    from superb.registry import STORE_FORMATS

    path = Path(path)
    formats = [STORE_FORMATS.get(f) for f in ("zarr", "hdf5")]
    if any(f.detect(path) for f in formats):
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if any(f.detect(p) for f in formats))
    return []
