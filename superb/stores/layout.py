"""Where every utterance's frames live in a split's ``features`` array, fixed before any audio is decoded.

A split's features are one array ``[total_frames, layers, dim]``: utterance i occupies frames
``offsets[i]:offsets[i+1]``, in manifest order. The array is cut along frames into *shards* of
``shard_frames`` (the unit a writer writes whole) and each shard into *chunks* of ``chunk_frames`` (the
unit a reader fetches). Extraction walks *blocks* of ``block_shards`` consecutive shards; a block is
computed and written by one writer, so no shard ever has two writers.

An utterance is *done* when every shard holding one of its frames has been written; an utterance with
no frames counts as held by the shard its offset falls in. ``done`` is therefore derived from the
per-shard ``shard_done`` mask, never the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TARGET_CHUNK_BYTES = 1 << 20  # one read fetches about 1 MiB
CHUNKS_PER_SHARD = 16  # so a shard is about 16 MiB: few files, whole-shard writes
TARGET_BLOCK_BYTES = 128 << 20  # frames held in memory per block during extraction


def default_chunk_frames(frame_bytes: int) -> int:
    """The power of two nearest ``TARGET_CHUNK_BYTES / frame_bytes``, between 16 and 4096 frames."""
    frames = max(1.0, TARGET_CHUNK_BYTES / max(1, frame_bytes))
    power = 1 << round(math.log2(frames))
    return int(min(4096, max(16, power)))


@dataclass(frozen=True)
class SplitLayout:
    offsets: np.ndarray  # (n + 1,) int64, offsets[0] == 0
    shard_frames: int
    block_shards: int

    @classmethod
    def from_frame_counts(cls, frames: Sequence[int], shard_frames: int, block_shards: int) -> SplitLayout:
        offsets = np.zeros(len(frames) + 1, dtype=np.int64)
        np.cumsum(np.asarray(frames, dtype=np.int64), out=offsets[1:])
        return cls(offsets=offsets, shard_frames=int(shard_frames), block_shards=int(block_shards))

    @property
    def num_utterances(self) -> int:
        return len(self.offsets) - 1

    @property
    def total_frames(self) -> int:
        return int(self.offsets[-1])

    @property
    def num_shards(self) -> int:
        return -(-self.total_frames // self.shard_frames)

    @property
    def num_blocks(self) -> int:
        return -(-self.num_shards // self.block_shards)

    def block_shard_range(self, block: int) -> tuple[int, int]:
        """Shards ``[first, end)`` of a block."""
        first = block * self.block_shards
        return first, min(first + self.block_shards, self.num_shards)

    def shard_frame_range(self, first_shard: int, end_shard: int) -> tuple[int, int]:
        """Frames ``[start, end)`` covered by shards ``[first_shard, end_shard)``."""
        return first_shard * self.shard_frames, min(end_shard * self.shard_frames, self.total_frames)

    def utterances_in(self, start: int, end: int) -> np.ndarray:
        """Indices of utterances with at least one frame in ``[start, end)``, in manifest order."""
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        last = int(np.searchsorted(self.offsets, end, side="left"))  # exclusive
        idx = np.arange(max(first, 0), min(last, self.num_utterances))
        lo, hi = self.offsets[idx], self.offsets[idx + 1]
        return idx[(hi > lo) & (lo < end) & (hi > start)]

    def utterance_shards(self) -> tuple[np.ndarray, np.ndarray]:
        """For each utterance, its first and last shard (inclusive); empty ones map to one shard."""
        lo, hi = self.offsets[:-1], self.offsets[1:]
        last_shard = max(self.num_shards - 1, 0)
        first = np.minimum(lo // self.shard_frames, last_shard)
        last = np.where(hi > lo, (hi - 1) // self.shard_frames, first)
        return first, last

    def done_from_shards(self, shard_done: np.ndarray) -> np.ndarray:
        """The per-utterance ``done`` mask implied by the per-shard one."""
        if self.num_shards == 0:
            return np.ones(self.num_utterances, dtype=bool)
        missing = np.concatenate([[0], np.cumsum(~shard_done.astype(bool))])
        first, last = self.utterance_shards()
        return (missing[last + 1] - missing[first]) == 0
