"""IEMOCAP for emotion recognition: ``SessionN/sentences/wav/DIALOG/UTT.wav``, labels in EmoEvaluation files.

Labels come from ``SessionN/dialog/EmoEvaluation/DIALOG.txt``, one line per turn:
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``. Every other line
(the ``%`` header, annotators' ``C-E1:``/``A-E1:`` lines, blanks) is skipped, as are the per-annotator
files in sub-folders (``Categorical/``, ``Attribute/``, ``Self-evaluation/``) and macOS ``._*`` files.
SUPERB (after s3prl) keeps four classes, merging ``exc`` into ``hap``; other labels (``fru``, ``sur``,
``xxx`` …) are dropped and counted in ``dropped``. One split per session: the ER task builds its own
leave-one-session-out folds. Only the sessions asked for must exist, so a reduced copy works.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.files import numbered_lines

SESSIONS = tuple(f"Session{n}" for n in range(1, 6))
LABELS = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}  # original -> SUPERB class
CLASSES = ("neu", "hap", "ang", "sad")
_LABEL_LINE = re.compile(
    r"^\[\s*\d+(?:\.\d*)?\s*-\s*\d+(?:\.\d*)?\s*\]\s+(?P<utt>\S+)\s+(?P<emo>[A-Za-z]+)\s+\[[^\]]*\]\s*$"
)
_UTT = re.compile(r"^(?P<session>Ses\d+)[FM]_\S*_(?P<gender>[FM])\d+[a-z]?$")

logger = logging.getLogger(__name__)


class Iemocap(Corpus):
    """IEMOCAP reader; meta: ``label`` (neu|hap|ang|sad), ``speaker`` (``Ses01F``), ``session`` (1-5),
    ``dialog``, ``original_label`` (e.g. ``exc``).

    Utterance ids are the turn names (``Ses01F_impro01_F000``). After ``utterances``, ``dropped`` maps each
    split read to a ``Counter`` of the labels left out.
    """

    name = "iemocap"
    version = 1
    splits = SESSIONS
    options: dict[str, Any] = {}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return any((folder / session / "dialog").is_dir() or (folder / session / "sentences").is_dir()
                   for session in SESSIONS)

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        self.dropped: dict[str, Counter[str]] = {}

    @property
    def base(self) -> Path:
        """The folder holding ``SessionN/``: the root, or its one sub-folder that does (``IEMOCAP_full_release``)."""
        return layout_root(self.root, _holds_layout, "IEMOCAP")

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        base = self.base
        for split in self.check_splits(splits):
            found, dropped = _read_session(base, split)
            self.dropped[split] = dropped
            if dropped:
                logger.info("%s: kept %d utterances, dropped %d outside %s (%s)", split, len(found),
                            sum(dropped.values()), "/".join(CLASSES),
                            ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))
            out.extend(sorted(found, key=lambda u: u.id))
        return out


def _holds_layout(folder: Path) -> bool:
    return any((folder / session).is_dir() for session in SESSIONS)


def _read_session(base: Path, session: str) -> tuple[list[Utterance], Counter[str]]:
    folder = base / session
    if not folder.is_dir():
        raise CorpusError(f"{folder}: IEMOCAP session folder not found; is --root IEMOCAP_full_release "
                          "(or ask only for the sessions your copy has)?")
    labels_dir = folder / "dialog" / "EmoEvaluation"
    if not labels_dir.is_dir():
        raise CorpusError(f"{labels_dir}: IEMOCAP label folder not found")
    wav_dir = folder / "sentences" / "wav"
    number = int(session.removeprefix("Session"))
    found: list[Utterance] = []
    dropped: Counter[str] = Counter()
    seen: dict[str, str] = {}
    for labels in _label_files(labels_dir):
        dialog = labels.stem
        for lineno, uid, emo in _read_labels(labels):
            if uid in seen:
                raise CorpusError(f"{labels}:{lineno}: {uid!r} already labelled in {seen[uid]}")
            seen[uid] = f"{labels.name}:{lineno}"
            if emo not in LABELS:
                dropped[emo] += 1
                continue
            wav = wav_dir / dialog / f"{uid}.wav"
            if not wav.is_file():
                raise CorpusError(f"{labels}:{lineno}: audio file {wav} not found for {uid!r}")
            match = _UTT.match(uid)
            meta = {"label": LABELS[emo], "speaker": match.group("session") + match.group("gender"),
                    "session": number, "dialog": dialog, "original_label": emo}
            found.append(utterance_from_file(uid, session, wav, meta))
    return found, dropped


def _label_files(labels_dir: Path) -> list[Path]:
    """``DIALOG.txt`` directly in EmoEvaluation; sub-folders, other suffixes and ``._*``/hidden files are not."""
    return sorted(p for p in labels_dir.iterdir()
                  if p.is_file() and p.suffix.lower() == ".txt" and not p.name.startswith("."))


def _read_labels(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, utterance id, emotion)`` of every ``[start - end]`` line; such a line must parse."""
    out = []
    # annotators' free-text comments may hold stray bytes; only the bracketed label lines matter
    for lineno, raw in numbered_lines(path, keep=lambda raw: raw.lstrip().startswith(b"[")):
        line = raw.strip()
        match = _LABEL_LINE.match(line)
        if match is None or not _UTT.match(match.group("utt")):
            raise CorpusError(f"{path}:{lineno}: malformed label line {line[:80]!r} "
                              "(expected '[START - END]<TAB>SesNNX_DIALOG_XNNN<TAB>EMO<TAB>[V, A, D]')")
        out.append((lineno, match.group("utt"), match.group("emo").lower()))
    return out
