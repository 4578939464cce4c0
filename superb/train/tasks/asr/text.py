"""LibriSpeech transcripts as CTC character targets, back to words, and corpus WER/UER/CER.

s3prl's ASR character setup (``downstream/asr/char.dict`` and ``dataset.py``): the transcript is
upper-cased, each space becomes the word boundary ``|``, and a final ``|`` ends the utterance, so every word
is followed by one ``|`` (``HI YOU`` → ``H I | Y O U |``). The characters are A–Z and the apostrophe. Our
vocabulary puts the CTC blank at index 0 and drops the fairseq specials s3prl's dictionary also carries
(``<pad>``, ``</s>``, ``<unk>``; s3prl even appends ``</s>`` to every CTC target), so it is 29 symbols, not 32.

Torch-free: the data side and the metrics import this without the model.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

from superb.errors import ConfigError
from superb.train.tasks.scoring import error_rate

BLANK = "<blank>"  #: the CTC blank, index 0
WORD_BOUNDARY = "|"  #: ends every word, the last one included

#: ``<blank>``, ``|``, ``'``, then A–Z: 29 symbols. A tuple, so a running job's vocabulary cannot change.
VOCAB: tuple[str, ...] = (BLANK, WORD_BOUNDARY, "'", *string.ascii_uppercase)
_INDEX = {token: i for i, token in enumerate(VOCAB)}
_CHARACTERS = frozenset(VOCAB[2:])  # what a transcript may spell words with


def encode(transcript: str) -> list[int]:
    """Transcript → token ids: upper-cased characters, ``|`` after every word (the last one too).

    Words are split on any whitespace, so runs of spaces and surrounding blanks count once; an empty
    transcript gives ``[]``. Raises ``ConfigError`` naming the character and the transcript for anything
    outside A–Z and ``'`` (``|`` included: it is not a character a transcript can hold).
    """
    ids: list[int] = []
    for word in transcript.upper().split():
        for char in word:
            if char not in _CHARACTERS:
                raise ConfigError(f"transcript {transcript!r}: character {char!r} is not in the ASR vocabulary; "
                                  "LibriSpeech transcripts hold only the letters A-Z and the apostrophe (').")
            ids.append(_INDEX[char])
        ids.append(_INDEX[WORD_BOUNDARY])
    return ids


def decode(ids: Iterable[int]) -> str:
    """Token ids → words separated by single spaces (``|`` is a space; blanks are skipped), stripped.

    Raises ``ValueError`` for an id outside ``0 .. len(VOCAB) - 1``.
    """
    chars = []
    for i in ids:
        i = int(i)
        if not 0 <= i < len(VOCAB):
            raise ValueError(f"decode: token id {i} is outside the ASR vocabulary (0..{len(VOCAB) - 1}).")
        if i != 0:
            chars.append(" " if VOCAB[i] == WORD_BOUNDARY else VOCAB[i])
    return " ".join("".join(chars).split())


def wer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus word error rate: total word edit distance ÷ total reference words (a fraction, not percent).

    Words are split on whitespace; as s3prl's ``_compute_metrics`` (which reports ×100). Raises ``ValueError``
    when the lists differ in length or the references hold no words.
    """
    return error_rate("wer", [h.split() for h in hyps], [r.split() for r in refs])


def uer(hyps: Sequence[Sequence[int]], refs: Sequence[Sequence[int]]) -> float:
    """s3prl's unit error rate (its ``asr`` expert's ``uer``, a fraction here, not percent): edit distance
    between token-id sequences, summed over utterances ÷ the summed reference lengths.

    s3prl compares ``dictionary.string(ids).split()`` of the greedy output (repeats collapsed, blanks
    dropped) with that of the target: units are the characters and ``|`` exactly as emitted, nothing
    normalised, so a leading, doubled or missing ``|`` is an error and the reference's final ``|`` counts.
    Ids map one to one to those units, so the distance over ids is the distance over units; blanks (id 0)
    are not units. Raises ``ValueError`` when the lists differ in length or every reference is empty.
    """
    def units(ids: Sequence[int]) -> list[int]:
        return [int(i) for i in ids if int(i) != 0]

    return error_rate("uer", [units(h) for h in hyps], [units(r) for r in refs])


def cer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus character error rate over the space-normalised words, spaces counted (as ``jiwer.cer``).

    Not s3prl's ``uer``: this scores the decoded text, so a boundary the model doubled or put first is no
    error, and the utterance's last word has no boundary to count (``HI YOU`` is 6 characters here, 7 units
    there). It is the CER other toolkits report. Each string's words are re-joined with single spaces first,
    so ``"A  B "`` is the 3 characters ``A B``. Raises ``ValueError`` when the lists differ in length or the
    references hold no characters.
    """
    return error_rate("cer", [" ".join(h.split()) for h in hyps], [" ".join(r.split()) for r in refs])
