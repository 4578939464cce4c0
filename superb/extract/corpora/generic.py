"""A user's own audio: a folder of .wav/.flac/.ogg files, or a TSV ``id<TAB>path[<TAB>label[<TAB>split]]``.

Folder: found recursively; an utterance's id is its path relative to the folder without the suffix (``/``
kept), and the one split is ``all``. TSV: paths are relative to the TSV's folder or absolute; a first line
starting ``id<TAB>path`` is a header; with a fourth column the splits are its values, in order of first
appearance, else ``all``. Every row has the same number of columns, so a label cannot silently go missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, utterance_from_file
from superb.files import numbered_lines

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
DEFAULT_SPLIT = "all"
_COLUMNS = "id<TAB>path[<TAB>label[<TAB>split]]"


@dataclass(frozen=True)
class _Row:
    id: str
    path: Path
    split: str
    label: str | None


class Generic(Corpus):
    """Folder-or-TSV reader; meta: ``label`` when the TSV has a third column."""

    name = "generic"
    version = 1
    splits = (DEFAULT_SPLIT,)
    options: dict[str, Any] = {}

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        rows = _read_tsv(self.root) if self.root.is_file() else _scan_folder(self.root)
        self._rows = rows
        # the TSV's split column decides the splits of this instance
        self.splits = tuple(dict.fromkeys(row.split for row in rows))

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            for row in sorted((r for r in self._rows if r.split == split), key=lambda r: r.id):
                meta = {} if row.label is None else {"label": row.label}
                out.append(utterance_from_file(row.id, split, row.path, meta))
        return out


def _scan_folder(folder: Path) -> list[_Row]:
    rows: dict[str, _Row] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.suffix.lower() not in AUDIO_SUFFIXES or any(part.startswith(".") for part in rel.parts):
            continue
        if not path.is_file():
            continue
        uid = rel.with_suffix("").as_posix()
        if uid in rows:
            raise CorpusError(f"{path}: duplicate id {uid!r} (also {rows[uid].path}); keep one of the two files")
        rows[uid] = _Row(uid, path, DEFAULT_SPLIT, None)
    if not rows:
        raise CorpusError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found in this folder")
    return list(rows.values())


def _read_tsv(tsv: Path) -> list[_Row]:
    rows: dict[str, _Row] = {}
    first_line: dict[str, int] = {}
    width: int | None = None
    for lineno, line in numbered_lines(tsv):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if width is None and not rows and [x.lower() for x in fields[:2]] == ["id", "path"]:
            continue  # header
        where = f"{tsv}:{lineno}"
        if not 2 <= len(fields) <= 4 or not all(fields):
            raise CorpusError(f"{where}: malformed line {line[:80]!r} (expected {_COLUMNS}, no empty fields)")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise CorpusError(f"{where}: {len(fields)} columns, but earlier lines have {width} ({_COLUMNS})")
        uid, rel = fields[0], fields[1]
        if uid in rows:
            raise CorpusError(f"{where}: duplicate id {uid!r} (first on line {first_line[uid]})")
        path = Path(rel).expanduser()
        path = path if path.is_absolute() else tsv.parent / path
        if not path.is_file():
            raise CorpusError(f"{where}: audio file {path} not found")
        label = fields[2] if width >= 3 else None
        split = fields[3] if width == 4 else DEFAULT_SPLIT
        rows[uid] = _Row(uid, path, split, label)
        first_line[uid] = lineno
    if not rows:
        raise CorpusError(f"{tsv}: no utterances listed (expected lines {_COLUMNS})")
    return list(rows.values())
