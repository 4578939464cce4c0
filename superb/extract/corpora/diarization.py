"""Speaker diarization data (Libri2Mix as s3prl's ``diarization`` downstream uses it): Kaldi data dirs.

Layout: ``ROOT/{train,dev,test}/`` each holding

- ``wav.scp``: ``REC PATH``, one line per recording; ``PATH`` absolute or relative to ``ROOT``. Command pipes
  (``REC sox … |``) are refused: a reader never runs commands, and the store needs a file it can probe.
- ``segments``: ``SEG REC START END`` (seconds) and ``utt2spk``: ``SEG SPK``, who speaks when;
- ``reco2dur``: ``REC SECONDS``, each recording's length, against which segments are checked;
- ``rttm`` (``SPEAKER REC 1 START DUR <NA> <NA> SPK <NA>``): the same turns; used only when ``segments`` is
  absent. ``spk2utt`` and any other file (``utt2num_frames``, ``frame_shift`` …) are ignored.

``ROOT`` may also be the folder above, with the data dirs in its one sub-folder (s3prl's recipe keeps them in
``data/``). Only the split folder names ``train``, ``dev`` and ``test`` are read.

One ``Utterance`` per recording: the SD task turns its segments into frame labels at fit time, at the
upstream's frame rate, so nothing here depends on an upstream. Segment times may overshoot a recording's ends
by ``TOLERANCE`` seconds (rounding in the list files).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.files import numbered_lines

SPLITS = ("train", "dev", "test")
TOLERANCE = 0.01  # seconds a segment may stick out of [0, reco2dur]
# NIST RTTM line types other than SPEAKER: skipped, so full NIST files read too
_OTHER_RTTM_TYPES = frozenset({"SEGMENT", "NOSCORE", "NO_RT_METADATA", "LEXEME", "NON-LEX", "NON-SPEECH", "FILLER",
                               "EDIT", "IP", "CB", "A/P", "SU", "STYPE", "SPKR-INFO"})


@dataclass(frozen=True)
class Turn:
    """One speaker turn of a recording, with where it was read (``file:line``) for error messages."""

    rec: str
    start: float
    end: float
    speaker: str
    where: str


class Diarization(Corpus):
    """Kaldi-style diarization reader; meta: ``speakers`` (sorted ids) and ``segments``
    (``[[start, end, speaker], …]`` in seconds, sorted by start, end, speaker).

    Utterance ids are the recording ids of ``wav.scp``.
    """

    name = "diarization"
    version = 1
    splits = SPLITS
    options: dict[str, Any] = {}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return any((folder / s / "wav.scp").is_file() and (folder / s / "reco2dur").is_file() for s in SPLITS)

    @property
    def base(self) -> Path:
        """The folder holding the split dirs: the root or its one sub-folder that does (``ROOT/data``)."""
        return layout_root(self.root, _holds_layout, "diarization data")

    def split_dir(self, split: str) -> Path:
        folder = self.base / split
        if not folder.is_dir():
            raise CorpusError(f"{folder}: diarization data dir {split}/ not found; is --root the folder holding "
                              f"the Kaldi data dirs {', '.join(s + '/' for s in self.splits)}?")
        return folder

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            out.extend(read_data_dir(self.split_dir(split), split, self.base))
        return out


def _holds_layout(folder: Path) -> bool:
    return any((folder / split / "wav.scp").is_file() for split in SPLITS)


def read_data_dir(folder: Path, split: str, base: Path) -> list[Utterance]:
    """The recordings of one Kaldi data dir, sorted by id, each checked against its turns and duration."""
    scp, reco2dur = _required(folder / "wav.scp"), _required(folder / "reco2dur")
    audio = read_wav_scp(scp, base)
    durations = _read_durations(reco2dur)
    for rec, (_, lineno) in durations.items():
        if rec not in audio:
            raise CorpusError(f"{reco2dur}:{lineno}: recording {rec!r} is not in {scp}")
    for rec, (_, lineno) in audio.items():
        if rec not in durations:
            raise CorpusError(f"{scp}:{lineno}: recording {rec!r} has no line in {reco2dur}")
    if (folder / "segments").is_file():
        turns = _read_segments(folder / "segments", _required(folder / "utt2spk"))
    elif (folder / "rttm").is_file():
        turns = rttm_turns(folder / "rttm")
    else:
        raise CorpusError(f"{folder / 'segments'}: diarization segments not found (nor {folder / 'rttm'}); "
                          "a data dir needs segments + utt2spk, or an rttm")
    by_rec: dict[str, list[Turn]] = {rec: [] for rec in audio}
    for turn in turns:
        if turn.rec not in audio:
            raise CorpusError(f"{turn.where}: recording {turn.rec!r} is not in {scp}")
        duration = durations[turn.rec][0]
        if turn.end <= turn.start:
            raise CorpusError(f"{turn.where}: segment ends at {turn.end:g} s, not after its start {turn.start:g} s")
        if turn.start < -TOLERANCE or turn.end > duration + TOLERANCE:
            raise CorpusError(f"{turn.where}: segment [{turn.start:g}, {turn.end:g}] s lies outside recording "
                              f"{turn.rec!r} (0 to {duration:g} s in {reco2dur})")
        by_rec[turn.rec].append(turn)
    out = []
    for rec in sorted(audio):
        segments = sorted([t.start, t.end, t.speaker] for t in by_rec[rec])
        meta = {"speakers": sorted({t.speaker for t in by_rec[rec]}), "segments": segments}
        out.append(utterance_from_file(rec, split, audio[rec][0], meta))
    return out


def _required(path: Path) -> Path:
    if not path.is_file():
        raise CorpusError(f"{path}: Kaldi data file {path.name} not found in the diarization data dir")
    return path


def _lines(path: Path, fields: int, form: str, maxsplit: int = -1):
    """``(line number, fields)`` of each non-blank line, checking the field count against ``form``.

    With ``maxsplit`` the last field is the rest of the line (a path may hold spaces).
    """
    for lineno, raw in numbered_lines(path):
        parts = raw.strip().split(None, maxsplit)
        if not parts:
            continue
        if len(parts) != fields:
            raise CorpusError(f"{path}:{lineno}: malformed line {raw.strip()[:80]!r} (expected '{form}')")
        yield lineno, parts


def _seconds(text: str, path: Path, lineno: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CorpusError(f"{path}:{lineno}: {what} {text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise CorpusError(f"{path}:{lineno}: {what} {text!r} is not a finite number of seconds")
    return value


def _check_new(first_line: dict[str, int], key: str, path: Path, lineno: int) -> None:
    """Record where ``key`` is listed; a second listing is an error naming both lines."""
    if key in first_line:
        raise CorpusError(f"{path}:{lineno}: {key!r} listed twice (first on line {first_line[key]})")
    first_line[key] = lineno


def read_wav_scp(scp: Path, base: Path) -> dict[str, tuple[Path, int]]:
    """``{recording: (audio path, line number)}``; the path is the rest of the line (it may hold spaces)."""
    audio: dict[str, tuple[Path, int]] = {}
    lines: dict[str, int] = {}
    for lineno, (rec, rest) in _lines(scp, 2, "REC PATH", maxsplit=1):
        _check_new(lines, rec, scp, lineno)
        if rest.endswith("|"):
            raise CorpusError(f"{scp}:{lineno}: {rec!r} is a command pipe ({rest[:60]!r}); write the audio to "
                              "files and list their paths (e.g. with Kaldi's wav-copy or sox)")
        path = Path(rest).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise CorpusError(f"{scp}:{lineno}: audio file {path} of {rec!r} not found")
        audio[rec] = (path, lineno)
    return audio


def _read_durations(reco2dur: Path) -> dict[str, tuple[float, int]]:
    durations: dict[str, tuple[float, int]] = {}
    lines: dict[str, int] = {}
    for lineno, (rec, text) in _lines(reco2dur, 2, "REC SECONDS"):
        seconds = _seconds(text, reco2dur, lineno, "duration")
        if seconds <= 0:
            raise CorpusError(f"{reco2dur}:{lineno}: duration {text!r} of {rec!r} is not positive")
        _check_new(lines, rec, reco2dur, lineno)
        durations[rec] = (seconds, lineno)
    return durations


def _read_segments(segments: Path, utt2spk: Path) -> list[Turn]:
    speakers: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, (seg, spk) in _lines(utt2spk, 2, "SEG SPK"):
        _check_new(lines, seg, utt2spk, lineno)
        speakers[seg] = spk
    turns: list[Turn] = []
    seen: dict[str, int] = {}
    for lineno, (seg, rec, start, end) in _lines(segments, 4, "SEG REC START END"):
        _check_new(seen, seg, segments, lineno)
        if seg not in speakers:
            raise CorpusError(f"{segments}:{lineno}: segment {seg!r} has no speaker in {utt2spk}")
        turns.append(Turn(rec, _seconds(start, segments, lineno, "start"), _seconds(end, segments, lineno, "end"),
                          speakers[seg], f"{segments}:{lineno}"))
    return turns


def rttm_turns(path: str | Path) -> list[Turn]:
    """The ``SPEAKER`` lines of an RTTM file, in file order; other NIST line types and ``;;`` comments are skipped.

    Fields: ``SPEAKER REC CHANNEL START DURATION <NA> <NA> SPEAKER_ID <NA> [<NA>]`` (9 fields as s3prl's
    Libri2Mix files, 10 in NIST's format; only the first 8 are read). A turn's end, start + duration, is
    rounded to 1 µs to drop float noise. Raises ``CorpusError`` naming file:line.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: RTTM file not found")
    turns: list[Turn] = []
    for lineno, raw in numbered_lines(path):
        parts = raw.split()
        if not parts or parts[0].startswith(";;") or parts[0] in _OTHER_RTTM_TYPES:
            continue
        if parts[0] != "SPEAKER" or len(parts) < 8:
            raise CorpusError(f"{path}:{lineno}: malformed RTTM line {raw.strip()[:80]!r} (expected "
                              "'SPEAKER REC 1 START DUR <NA> <NA> SPK <NA>')")
        start = _seconds(parts[3], path, lineno, "start")
        duration = _seconds(parts[4], path, lineno, "duration")
        if duration <= 0:
            raise CorpusError(f"{path}:{lineno}: turn duration {parts[4]!r} is not positive")
        end = round(start + duration, 6)  # 0.251 + 0.79 is 1.041, as the segments file would say
        turns.append(Turn(parts[1], start, end, parts[7], f"{path}:{lineno}"))
    return turns
