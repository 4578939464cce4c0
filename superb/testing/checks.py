"""Assertions that corpus-reader tests share: lengths match decoding, the documented order holds, list files
saved by Windows editors read the same and a stray byte is named by file and line."""

from __future__ import annotations

import codecs
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superb.errors import CorpusError, SuperbError
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


def assert_text_file_checks(path: Path, reading: Callable[[], Any], error: type[SuperbError] = CorpusError,
                             label_line: Callable[[bytes], bool] = lambda raw: bool(raw.strip())) -> None:
    """``reading()`` (which reads the text file ``path``, among others) gives the same result once ``path`` is
    saved with a UTF-8 byte-order mark and CRLF line ends; with a byte that is not UTF-8 appended to the last
    line ``label_line`` accepts, it raises ``error`` naming ``path`` and that line. ``path`` is left broken."""
    before = reading()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(codecs.BOM_UTF8 + b"".join(line.rstrip(b"\r\n") + b"\r\n" for line in lines))
    assert reading() == before, path
    lineno = max(n for n, line in enumerate(lines, start=1) if label_line(line))
    lines[lineno - 1] = lines[lineno - 1].rstrip(b"\r\n") + b"\xff\n"
    path.write_bytes(b"".join(lines))
    try:
        reading()
    except error as exc:
        said = str(exc)
    else:
        raise AssertionError(f"{path}: a byte that is not UTF-8 on line {lineno} went unnoticed")
    assert said.startswith((f"{path}:{lineno}: not UTF-8", f"{path.resolve()}:{lineno}: not UTF-8")), said


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
