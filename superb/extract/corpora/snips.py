"""Audio SNIPS for slot filling, in s3prl's preprocessed layout (``preprocess/snips_prepare_data.sh``).

Layout: ``ROOT/{train,valid,test}/SPEAKER-snips-SPLIT-N.wav`` (16 kHz), ``ROOT/all.iob.snips.txt`` with one line
per utterance of every speaker::

    Aditi-snips-valid-0 BOS PLAY THE SONG YESTERDAY EOS<TAB>O O music_item track PlayMusic

(the id is the wav's stem; after the tab: ``O`` for ``BOS``, one slot tag per word, the intent in ``EOS``'s
place), and ``ROOT/slots.txt`` (the slot names, first line ``O``). s3prl's tags are bare slot names; tags with
IOB prefixes (``B-playlist``) are accepted too.

Every split folder holds all 16 Polly voices; SUPERB keeps, as s3prl's ``snips.yaml`` does, 8 speakers for
train, 4 for dev (``valid/``) and 4 for test, and ignores the others' wavs. A kept wav must have its iob
line; lines without a wav are fine (they belong to the voices left out). The folder that holds ``SNIPS/``
(s3prl's script writes ``CORPORA/SNIPS``) is accepted as the root too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.files import numbered_lines

IOB_FILE = "all.iob.snips.txt"
SLOTS_FILE = "slots.txt"
FOLDERS = {"train": "train", "dev": "valid", "test": "test"}  # our split -> folder under the root
#: SUPERB's speaker split (s3prl ``downstream/ctc/snips.yaml``: train/valid/test_speakers).
SPEAKERS: dict[str, tuple[str, ...]] = {
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "dev": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}
_FORMAT = "UTTID BOS WORDS… EOS<TAB>O SLOT_PER_WORD… INTENT"


@dataclass(frozen=True)
class IobLine:
    """One parsed line of ``all.iob.snips.txt``."""

    lineno: int
    words: tuple[str, ...]  # without BOS/EOS
    tags: tuple[str, ...]  # one per word
    intent: str


class Snips(Corpus):
    """Audio SNIPS reader; meta: ``words``, ``slots`` (a tag per word), ``intent``, ``speaker``, ``transcript``.

    Utterance ids are the wav stems (``Aditi-snips-valid-0``); ``transcript`` is the words joined by spaces.
    """

    name = "snips"
    version = 1
    splits = ("train", "dev", "test")
    options: dict[str, Any] = {}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / IOB_FILE).is_file()

    @property
    def base(self) -> Path:
        """The folder holding ``all.iob.snips.txt`` and the split folders: the root or its one sub-folder that does."""
        return layout_root(self.root, _holds_layout, "Audio SNIPS")

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        splits = self.check_splits(splits)
        base = self.base
        folders = {split: base / FOLDERS[split] for split in splits}
        for path in (base / IOB_FILE, base / SLOTS_FILE):
            if not path.is_file():
                raise CorpusError(f"{path}: Audio SNIPS {path.name} not found; is --root the SNIPS folder written "
                                  "by s3prl's preprocess/snips_prepare_data.sh?")
        for split, folder in folders.items():
            if not folder.is_dir():
                raise CorpusError(f"{folder}: Audio SNIPS split folder {FOLDERS[split]}/ (split {split!r}) not found")
        labels = read_iob(base / IOB_FILE)
        slots = read_slots(base / SLOTS_FILE)
        out: list[Utterance] = []
        for split, folder in folders.items():
            found = []
            for uid, wav in sorted(_speaker_wavs(folder, SPEAKERS[split]).items()):
                line = labels.get(uid)
                if line is None:
                    raise CorpusError(f"{wav}: no line for {uid!r} in {base / IOB_FILE}")
                _check_tags(line, slots, base / IOB_FILE, base / SLOTS_FILE)
                meta = {"words": list(line.words), "slots": list(line.tags), "intent": line.intent,
                        "speaker": uid.split("-")[0], "transcript": " ".join(line.words)}
                found.append(utterance_from_file(uid, split, wav, meta))
            if not found:
                raise CorpusError(f"{folder}: no wav of the SUPERB {split} speakers ({', '.join(SPEAKERS[split])}); "
                                  "expected files like "
                                  f"{SPEAKERS[split][0]}-snips-{FOLDERS[split]}-0.wav")
            out.extend(found)
        return out


def _holds_layout(folder: Path) -> bool:
    return (folder / IOB_FILE).is_file() or any((folder / name).is_dir() for name in FOLDERS.values())


def _speaker_wavs(folder: Path, speakers: Sequence[str]) -> dict[str, Path]:
    """``{stem: path}`` of the ``.wav`` files under ``folder`` (any depth, as s3prl's ``rglob``) whose speaker
    (the stem up to the first ``-``) is one of ``speakers``; other voices and other files are ignored."""
    wanted = set(speakers)
    wavs: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() != ".wav" or path.name.startswith(".") or not path.is_file():
            continue
        if path.stem.split("-")[0] not in wanted:
            continue
        if path.stem in wavs:
            raise CorpusError(f"{path}: utterance {path.stem!r} is also at {wavs[path.stem]}")
        wavs[path.stem] = path
    return wavs


def read_iob(path: Path) -> dict[str, IobLine]:
    """``{utterance id: IobLine}`` of ``all.iob.snips.txt``; blank lines are skipped, anything else must parse.

    A repeated id with the same content is accepted; with other content it is an error.
    """
    lines: dict[str, IobLine] = {}
    for lineno, raw in numbered_lines(path):
        if not raw.strip():
            continue
        uid, line = _parse_iob_line(raw, path, lineno)
        previous = lines.get(uid)
        if previous is not None:
            if (previous.words, previous.tags, previous.intent) != (line.words, line.tags, line.intent):
                raise CorpusError(f"{path}:{lineno}: {uid!r} already labelled differently on line "
                                  f"{previous.lineno}")
            continue
        lines[uid] = line
    return lines


def _parse_iob_line(raw: str, path: Path, lineno: int) -> tuple[str, IobLine]:
    text, tab, labels = raw.partition("\t")
    parts, tags = text.split(), labels.split()
    shown = raw[:100].replace("\t", "<TAB>")
    if not tab:
        raise CorpusError(f"{path}:{lineno}: no tab between the words and the labels in {shown!r} "
                          f"(expected '{_FORMAT}')")
    if len(parts) < 3 or parts[1] != "BOS" or parts[-1] != "EOS":
        raise CorpusError(f"{path}:{lineno}: malformed line {shown!r}: the words must be framed by BOS and EOS "
                          f"(expected '{_FORMAT}')")
    words = tuple(parts[2:-1])
    if len(tags) != len(words) + 2:
        raise CorpusError(f"{path}:{lineno}: {len(words)} words but {len(tags)} labels in {shown!r}; expected "
                          f"{len(words) + 2} (O, one slot tag per word, the intent)")
    return parts[0], IobLine(lineno, words, tuple(tags[1:-1]), tags[-1])


def read_slots(path: Path) -> frozenset[str]:
    """The slot names of ``slots.txt`` (one per line; ``O`` and blank lines included or not)."""
    return frozenset(line.strip() for _, line in numbered_lines(path) if line.strip())


def _check_tags(line: IobLine, slots: frozenset[str], iob: Path, slots_file: Path) -> None:
    """Every tag is ``O`` or a slot of ``slots.txt`` (bare or with an IOB prefix): s3prl's encoder fails otherwise."""
    for tag in line.tags:
        bare = tag[2:] if len(tag) > 2 and tag[:2] in ("B-", "I-") else tag
        if tag != "O" and tag not in slots and bare not in slots:
            raise CorpusError(f"{iob}:{line.lineno}: slot tag {tag!r} is not listed in {slots_file}")
