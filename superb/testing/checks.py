"""Assertions that corpus-reader tests share: lengths match decoding, and the documented order holds."""

from __future__ import annotations

from superb.extract.audio import read
from superb.extract.corpora.base import Utterance


def assert_lengths_decode(utts: list[Utterance]) -> None:
    """There are utterances, and every ``num_samples`` is the length ``audio.read`` decodes at 16 kHz."""
    assert utts
    for u in utts:
        assert len(read(u.path, u.start, u.frames)) == u.num_samples, u.id


def assert_ordered(utts: list[Utterance], splits: list[str]) -> None:
    """Split by split in the order asked, sorted ids within a split."""
    assert list(dict.fromkeys(u.split for u in utts)) == splits
    for split in splits:
        ids = [u.id for u in utts if u.split == split]
        assert ids == sorted(ids)
