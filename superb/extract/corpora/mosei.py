"""CMU-MOSEI sentiment and emotion, as s3prl's ``mosei`` downstream uses it, segments cut on the fly.

``--root`` holds ``Full/WAV_16000/VIDEO.wav`` (s3prl's ``data_dir``, the ``Audio`` folder of ``CMU_MOSEI.zip``),
or is the folder above it (holding ``Audio/``). The labels are s3prl's ``CMU_MOSEI_Labels.csv`` (latin-1; columns
``file, index, start, end, label2a, label2b, label6, label7, split``), found at the root, next to ``Full/`` or
its parent, or given with ``-c labels=FILE``.

s3prl first cuts every segment to ``Segmented_Audio/SPLIT/VIDEO_INDEX.wav`` with pydub
(``utility/segment_audio.py``); here each segment is an utterance of the full recording, cut at exactly the
samples pydub keeps: ``int(ms · rate / 1000)`` for ``ms = max(0, start)·1000`` and ``end·1000``, both clamped to the
recording's length in whole milliseconds. Split 0 is train, 1 dev, 2 test; split 3 (in no standard fold) is
left out, as s3prl leaves it. Ids are ``VIDEO_INDEX``; meta: ``video``, ``label2a``, ``label2b``, ``label6``,
``label7`` (the task derives the class from them, ``data.num_class``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.audio import AudioInfo, probe, resampled_length
from superb.extract.corpora.base import Corpus, Utterance, layout_root

LABELS = "CMU_MOSEI_Labels.csv"
AUDIO = Path("Full") / "WAV_16000"
SPLIT_CODES = {"0": "train", "1": "dev", "2": "test"}  # "3": in no standard fold, left out
COLUMNS = ("file", "index", "start", "end", "label2a", "label2b", "label6", "label7", "split")


class Mosei(Corpus):
    name = "mosei"
    version = 1
    splits = ("train", "dev", "test")
    options: dict[str, Any] = {"labels": None}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / AUDIO).is_dir() or (folder / "Audio" / AUDIO).is_dir()

    @property
    def base(self) -> Path:
        """The folder holding ``Full/WAV_16000``."""
        root = layout_root(self.root, lambda p: (p / AUDIO).is_dir() or (p / "Audio" / AUDIO).is_dir(), "CMU-MOSEI")
        base = root if (root / AUDIO).is_dir() else root / "Audio"
        if not (base / AUDIO).is_dir():
            raise CorpusError(f"{self.root}: no {AUDIO}/ here; --root is CMU-MOSEI's Audio folder (holding {AUDIO}/)")
        return base

    def label_file(self) -> Path:
        if self.opts["labels"]:
            path = Path(self.opts["labels"]).expanduser()
            if not path.is_file():
                raise CorpusError(f"{path}: MOSEI label file (-c labels) not found")
            return path
        for folder in dict.fromkeys([self.root, self.base, self.base.parent]):
            if (folder / LABELS).is_file():
                return folder / LABELS
        raise CorpusError(f"{self.root / LABELS}: not found (nor beside {AUDIO.parts[0]}/ or its parent); give s3prl's "
                          "downstream/mosei/utility/CMU_MOSEI_Labels.csv with -c labels=FILE")

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        wanted = set(self.check_splits(splits))
        audio = self.base / AUDIO
        headers: dict[str, AudioInfo] = {}
        out: list[Utterance] = []
        for row, where in read_labels(self.label_file()):
            split = SPLIT_CODES.get(row["split"])
            if split not in wanted:
                continue
            path = audio / f"{row['file']}.wav"
            if row["file"] not in headers:
                if not path.is_file():
                    raise CorpusError(f"{where}: recording {row['file']!r} not found ({path})")
                headers[row["file"]] = probe(path)
            info = headers[row["file"]]
            first, last = pydub_samples(row["start"], row["end"], info)
            if last <= first:
                raise CorpusError(f"{where}: segment [{row['start']}, {row['end']}] s of {row['file']!r} holds no "
                                  f"audio (the recording lasts {info.frames / info.sample_rate:.3f} s)")
            meta = {"video": row["file"], **{k: row[k] for k in ("label2a", "label2b", "label6", "label7")}}
            out.append(Utterance(id=f"{row['file']}_{row['index']}", split=split, path=str(path.resolve()),
                                 num_samples=resampled_length(last - first, info.sample_rate), meta=meta,
                                 start=first, frames=last - first))
        order = {s: k for k, s in enumerate(self.splits)}
        return sorted(out, key=lambda u: order[u.split])  # split by split, the label file's order within


def pydub_samples(start: float, end: float, info: AudioInfo) -> tuple[int, int]:
    """The samples ``[first, last)`` pydub keeps for ``recording[max(0, start)·1000 : end·1000]`` (milliseconds)."""
    length_ms = round(1000 * info.frames / info.sample_rate)  # pydub's len()
    per_ms = info.sample_rate / 1000.0

    def position(ms: float) -> int:
        return int(min(ms, length_ms) * per_ms)

    return position(max(0, start * 1000)), position(end * 1000)


def read_labels(path: Path) -> list[tuple[dict[str, Any], str]]:
    """``(row, file:line)`` per row of s3prl's label CSV: times as floats, labels and split as ints/strings."""
    try:
        text = path.read_bytes().decode("latin-1")  # s3prl reads it with encoding="latin-1"
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read the MOSEI labels ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CorpusError(f"{path}:1: no column {missing[0]!r} (expected {', '.join(COLUMNS)})")
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for record in reader:
        where = f"{path}:{reader.line_num}"
        try:
            row = {"file": record["file"].strip(), "index": str(int(float(record["index"]))),
                   "start": float(record["start"]), "end": float(record["end"]),
                   **{k: int(float(record[k])) for k in ("label2a", "label2b", "label6", "label7")},
                   "split": str(int(float(record["split"])))}
        except (TypeError, ValueError):
            raise CorpusError(f"{where}: malformed row (a missing or non-numeric field among "
                              f"{', '.join(COLUMNS[1:])})") from None
        key = (row["file"], row["index"])
        if key in seen:
            raise CorpusError(f"{where}: segment {row['file']}_{row['index']} listed twice (first on line {seen[key]})")
        seen[key] = reader.line_num
        rows.append((row, where))
    return rows
