"""Assertions that corpus-reader tests share: lengths match decoding, and the documented order holds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

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


def checked_ecf(path: Path) -> dict[str, float]:
    """``{document id: seconds}`` of a QbE ground-truth ECF, asserting the NIST format the scorers read."""
    root = ET.parse(path).getroot()
    assert root.tag == "ecf"
    out = {}
    for excerpt in root:
        assert excerpt.tag == "excerpt" and excerpt.get("channel") == "1" and excerpt.get("tbeg") == "0.000"
        assert excerpt.get("audio_filename").startswith("Audio/")
        out[Path(excerpt.get("audio_filename")).stem] = float(excerpt.get("dur"))
    assert abs(float(root.get("source_signal_duration")) - sum(out.values())) < 1e-2
    return out


def checked_tlist(path: Path, ecf_name: str) -> list[str]:
    """The term ids of a QbE term list, in order, asserting its format (``termtext`` repeats the id)."""
    root = ET.parse(path).getroot()
    assert root.tag == "termlist" and root.get("ecf_filename") == ecf_name
    assert all(t.tag == "term" and t.findtext("termtext") == t.get("termid") for t in root)
    return [t.get("termid") for t in root]


def checked_rttm(path: Path) -> list[tuple[str, float, float, str]]:
    """``(document, tbeg, dur, term)`` of each ``LEXEME`` line of a QbE RTTM, asserting 9 fields, channel 1,
    stype ``lex``, and a leading ``SPEAKER`` line (readers must skip other types)."""
    lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert all(len(fields) == 9 and fields[2] == "1" for fields in lines) and lines[0][0] == "SPEAKER"
    lexemes = [f for f in lines if f[0] == "LEXEME"]
    assert all(f[6] == "lex" for f in lexemes)
    return [(f[1], float(f[3]), float(f[4]), f[5]) for f in lexemes]
