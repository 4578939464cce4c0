"""LibriSpeech: ``ROOT/SPLIT/SPK/CHAP/SPK-CHAP-UTT.flac`` with transcripts in ``SPK-CHAP.trans.txt``.

``ROOT`` may also be the folder that holds the tarball's top folder (``ROOT/LibriSpeech/SPLIT``). Every
transcript line must have its audio and every audio file its transcript line: a half-extracted archive
would otherwise silently shrink the training set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, utterance_from_file
from superb.files import numbered_lines

SPLITS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
_UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_TRANS_LINE = re.compile(r"^(\S+) (\S.*)$")


class LibriSpeech(Corpus):
    """LibriSpeech reader; meta: ``speaker``, ``chapter``, ``transcript`` (upper case, as released)."""

    name = "librispeech"
    version = 1
    splits = SPLITS
    options = {}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return any(_numeric_dirs(folder / split) for split in SPLITS if (folder / split).is_dir())

    def split_dir(self, split: str) -> Path:
        """The folder of ``split``, directly under the root or under its ``LibriSpeech/`` top folder."""
        tried = [self.root / split, self.root / "LibriSpeech" / split]
        for candidate in tried:
            if candidate.is_dir():
                return candidate
        raise CorpusError(
            f"{tried[0]}: LibriSpeech split folder not found (also tried {tried[1]}); "
            f"is --root the folder that holds {split}/ after unpacking {split}.tar.gz?"
        )

    def default_splits(self) -> list[str]:
        """The splits unpacked under the root (people download a few of the seven)."""
        present = [s for s in self.splits if (self.root / s).is_dir() or (self.root / "LibriSpeech" / s).is_dir()]
        if not present:
            raise CorpusError(f"{self.root}: no LibriSpeech split folder ({', '.join(self.splits)}) here or "
                              "under LibriSpeech/")
        return present

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            found: list[Utterance] = []
            for chapter_dir in _chapter_dirs(self.split_dir(split)):
                found.extend(_read_chapter(chapter_dir, split))
            out.extend(sorted(found, key=lambda u: u.id))
        return out


def _numeric_dirs(folder: Path) -> list[Path]:
    """Sub-folders named by digits only; anything else (READMEs, hidden folders) is not part of the layout."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def _chapter_dirs(split_dir: Path) -> list[Path]:
    return [chapter for speaker in _numeric_dirs(split_dir) for chapter in _numeric_dirs(speaker)]


def _read_chapter(chapter_dir: Path, split: str) -> list[Utterance]:
    """The utterances of one ``SPK/CHAP`` folder, checked against its transcript file."""
    speaker, chapter = chapter_dir.parent.name, chapter_dir.name
    prefix = f"{speaker}-{chapter}-"
    audio: dict[str, Path] = {}
    for path in chapter_dir.iterdir():
        if path.is_file() and path.suffix.lower() == ".flac" and path.stem.startswith(prefix):
            if _UTT_ID.match(path.stem):
                audio[path.stem] = path
    trans = _transcript_file(chapter_dir, speaker, chapter)
    if trans is None:
        if audio:
            expected = chapter_dir / f"{speaker}-{chapter}.trans.txt"
            raise CorpusError(f"{audio[min(audio)]}: audio file has no transcript ({expected} not found)")
        return []
    texts = _read_transcripts(trans, prefix)
    for uid, lineno in texts.items():
        if uid not in audio:
            raise CorpusError(f"{trans}:{lineno[0]}: no audio file {chapter_dir / (uid + '.flac')} for {uid!r}")
    for uid, path in sorted(audio.items()):
        if uid not in texts:
            raise CorpusError(f"{path}: audio file has no transcript line in {trans}")
    meta = {"speaker": speaker, "chapter": chapter}
    return [
        utterance_from_file(uid, split, audio[uid], {**meta, "transcript": text})
        for uid, (_, text) in sorted(texts.items())
    ]


def _transcript_file(chapter_dir: Path, speaker: str, chapter: str) -> Path | None:
    wanted = f"{speaker}-{chapter}.trans.txt".lower()
    for path in chapter_dir.iterdir():
        if path.is_file() and path.name.lower() == wanted:
            return path
    return None


def _read_transcripts(trans: Path, prefix: str) -> dict[str, tuple[int, str]]:
    """``{utterance id: (line number, text)}``; blank lines are skipped, anything else must parse."""
    texts: dict[str, tuple[int, str]] = {}
    for lineno, raw in numbered_lines(trans):
        line = raw.strip()
        if not line:
            continue
        match = _TRANS_LINE.match(line)
        if match is None or not _UTT_ID.match(match.group(1)) or not match.group(1).startswith(prefix):
            raise CorpusError(
                f"{trans}:{lineno}: malformed transcript line {line[:80]!r} "
                f"(expected '{prefix}NNNN TEXT')"
            )
        uid, text = match.groups()
        if uid in texts:
            raise CorpusError(f"{trans}:{lineno}: {uid!r} already transcribed on line {texts[uid][0]}")
        texts[uid] = (lineno, text.strip())
    return texts
