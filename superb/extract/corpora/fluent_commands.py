"""Fluent Speech Commands for intent classification: ``wavs/speakers/SPK/ID.wav`` + ``data/SPLIT_data.csv``.

The CSVs were written by pandas: header ``,path,speakerId,transcription,action,object,location`` with the
index in the unnamed first column, and ``path`` relative to the corpus root. Speakers are disjoint across
``train``/``valid``/``test``; SUPERB's ``dev`` is ``valid_data.csv``. The archive unpacks into
``fluent_speech_commands_dataset/``, so that folder in between is accepted too.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.files import numbered_lines

CSV_FILES = {"train": "train_data.csv", "dev": "valid_data.csv", "test": "test_data.csv"}
COLUMNS = ("path", "speakerId", "transcription", "action", "object", "location")
SLOTS = ("action", "object", "location")
AUDIO_PREFIX = ("wavs", "speakers")


class FluentCommands(Corpus):
    """Fluent Speech Commands reader; meta: ``action``, ``object``, ``location``, ``speaker``, ``transcription``.

    Utterance ids are the ``path`` column relative to ``wavs/speakers`` without ``.wav`` (``SPK/UUID``).
    """

    name = "fluent_commands"
    version = 1
    splits = ("train", "dev", "test")
    options: dict[str, Any] = {}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / "wavs").is_dir() and any((folder / "data" / name).is_file() for name in CSV_FILES.values())

    @property
    def base(self) -> Path:
        """The folder holding ``data/``: the root, or its one sub-folder that does."""
        return layout_root(self.root, _holds_layout, "Fluent Speech Commands")

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        base = self.base
        for split in self.check_splits(splits):
            found = [utterance_from_file(uid, split, path, meta) for uid, path, meta in _read_csv(base, split)]
            out.extend(sorted(found, key=lambda u: u.id))
        return out


def _holds_layout(folder: Path) -> bool:
    return (folder / "data").is_dir() and (folder / "wavs").is_dir()


def _read_csv(base: Path, split: str) -> list[tuple[str, Path, dict[str, str]]]:
    """``(id, wav path, meta)`` per row of ``split``'s CSV; every row's wav must exist."""
    path = base / "data" / CSV_FILES[split]
    if not path.is_file():
        raise CorpusError(f"{path}: Fluent Speech Commands CSV not found; is --root the unpacked "
                          "fluent_speech_commands_dataset folder?")
    rows: list[tuple[str, Path, dict[str, str]]] = []
    seen: dict[str, int] = {}
    reader = csv.DictReader(line for _, line in numbered_lines(path))  # its line_num counts the file's lines
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise CorpusError(f"{path}:1: column {missing[0]!r} missing from the header "
                          f"(expected ,{','.join(COLUMNS)})")
    for row in reader:
        lineno = reader.line_num
        if any(row[c] is None for c in COLUMNS):
            raise CorpusError(f"{path}:{lineno}: row has fewer fields than the header")
        parts = _audio_parts(row["path"], path, lineno)
        uid = PurePosixPath(*parts[2:]).with_suffix("").as_posix()
        if uid in seen:
            raise CorpusError(f"{path}:{lineno}: {row['path']!r} already listed on line {seen[uid]}")
        seen[uid] = lineno
        wav = base.joinpath(*parts)
        if not wav.is_file():
            raise CorpusError(f"{path}:{lineno}: audio file {wav} not found")
        meta = {slot: row[slot] for slot in SLOTS}
        meta.update(speaker=row["speakerId"], transcription=row["transcription"])
        rows.append((uid, wav, meta))
    return rows


def _audio_parts(rel: str, listing: Path, lineno: int) -> tuple[str, ...]:
    """The parts of ``wavs/speakers/SPK/ID.wav``; other paths (absolute, ``..``, elsewhere) are malformed."""
    parts = PurePosixPath(rel.strip().replace("\\", "/")).parts
    if len(parts) < 4 or parts[:2] != AUDIO_PREFIX or ".." in parts or not parts[-1].lower().endswith(".wav"):
        raise CorpusError(f"{listing}:{lineno}: malformed path {rel!r} (expected wavs/speakers/SPK/ID.wav)")
    return parts
