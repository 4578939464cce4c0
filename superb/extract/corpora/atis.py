"""Spoken ATIS for intent classification, as s3prl's ``atis`` downstream reads it.

``--root`` is the ``atis`` folder s3prl expects (or a folder with one such copy inside):

- ``{train,dev,test}/ID.wav``: the audio (16 kHz mono in s3prl's copy, which it loads unchecked; any rate and
  channel count is converted here);
- ``nlu_iob/iob.{train,dev,test}``: tab-separated, no header, two columns: the words with the wav id as the
  first token, and the IOB tags with the intent as the last token. A combined intent (``atis_flight#atis_airfare``)
  is its own class, as in s3prl. ``all.trans.txt``, ``all.iob.trans.txt`` and ``slot_vocabs.txt`` are not needed.

As s3prl: a row is kept only when its wav exists and its id has not been seen before in that split. The
rows left out are counted and said in one warning per split (s3prl drops them silently). Meta: ``intent``,
``words``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.files import numbered_lines

SPLITS = ("train", "dev", "test")
IOB = Path("nlu_iob")


class Atis(Corpus):
    name = "atis"
    version = 1
    splits = SPLITS
    options: dict[str, Any] = {}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / IOB).is_dir() and any((folder / s).is_dir() for s in SPLITS)

    @property
    def base(self) -> Path:
        return layout_root(self.root, lambda p: (p / IOB).is_dir(), "ATIS")

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            iob, folder = self.base / IOB / f"iob.{split}", self.base / split
            if not iob.is_file():
                raise CorpusError(f"{iob}: ATIS annotation not found; is --root the atis folder (holding nlu_iob/ "
                                  "and train/, dev/, test/)?")
            if not folder.is_dir():
                raise CorpusError(f"{folder}: ATIS audio folder {split}/ not found")
            kept, no_wav, repeated = [], 0, 0
            seen: set[str] = set()
            for uid, words, intent in read_iob(iob):
                wav = folder / f"{uid}.wav"
                if not wav.is_file():
                    no_wav += 1
                    continue
                if uid in seen:
                    repeated += 1
                    continue
                seen.add(uid)
                kept.append(utterance_from_file(uid, split, wav, {"intent": intent, "words": words}))
            if no_wav or repeated:
                warnings.warn(f"{iob}: {no_wav} row(s) without a wav in {folder} and {repeated} repeated id(s) "
                              "left out, as s3prl leaves them out")
            if not kept:
                raise CorpusError(f"{iob}: no row has its wav in {folder}")
            out.extend(kept)
        return out


def read_iob(path: Path) -> list[tuple[str, list[str], str]]:
    """``(wav id, words, intent)`` per row: column 1 is ``ID WORDS…``, column 2 ``TAGS… INTENT``."""
    rows = []
    for lineno, line in numbered_lines(path, "ATIS annotation"):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2 or not columns[0].split() or not columns[1].split():
            raise CorpusError(f"{path}:{lineno}: malformed line {line[:80]!r} "
                              "(expected 'ID WORDS…<TAB>TAGS… INTENT')")
        words, tags = columns[0].split(), columns[1].split()
        rows.append((words[0], words[1:], tags[-1]))
    return rows
