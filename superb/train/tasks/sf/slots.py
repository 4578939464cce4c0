"""SF targets and metrics as s3prl defines them: characters + slot begin/end tokens, slot-type F1, slot-value CER.

Targets (s3prl ``downstream/ctc/text.py``, ``CharacterTextSlotEncoder.encode``, the encoder of SUPERB's SF runs
with ``snips.yaml``, ``text.mode: character-slot``): for the words of an ``all.iob.snips.txt`` line (BOS/EOS
and the ``O``/intent labels already dropped) and one slot tag per word,

- words that are a substring of ``"?!.,;-"`` (punctuation, or an empty word) are skipped; ``&`` becomes ``AND``;
- a ``B-<slot>`` token opens a slot where the tag is not ``O`` and differs from the previous word's tag, an
  ``E-<slot>`` token closes it where the next word's tag differs (neighbours are looked up in the unfiltered
  word list, skipped words included, exactly as s3prl does);
- each word is spelled in characters of s3prl's ``vocab/character.txt`` (``A``–``Z``, ``'`` and the space);
  any other character becomes ``<unk>``. We upper-case first (the released transcripts are upper case
  already, so this changes nothing there);
- words are separated by the space token ``" "``; the last word is followed by ``<eos>``, which s3prl's CTC
  targets contain (its ``<pad>``, index 0, is the blank; ours is ``<blank>``).

``PLAY THE SONG YESTERDAY BY THE BEATLES`` tagged ``O O music_item track O artist artist`` becomes
``P L A Y ␣ T H E ␣ B-music_item S O N G E-music_item ␣ B-track Y E S T E R D A Y E-track ␣ B Y ␣
B-artist T H E ␣ B E A T L E S E-artist <eos>``.

Tags in s3prl's files are bare slot names (``playlist``), so two adjacent values of one slot type merge into
one. Tags written with IOB prefixes (``B-playlist I-playlist``) are accepted too: the prefix is dropped and
``B-`` starts a new value even after the same slot type.

Metrics (s3prl ``downstream/ctc/metric.py``; the numbers SUPERB reports) work on the decoded string:
tokens joined, ``B-x`` rendered ``"B-x "`` and ``E-x`` rendered ``" E-x"`` (s3prl's ``idx_to_vocab``), runs of
spaces collapsed, then ``re.findall(r"B\\-(\\S+) (.+?) E\\-\\1")`` gives (slot type, value) pairs (``parse``),
tags left inside a value are removed (``clean``), and unbalanced tags are simply not matched.

- ``slot_type_f1``: per utterance, the sets of slot types of hypothesis and reference give
  P = |hyp ∩ ref| / |hyp|, R = |hyp ∩ ref| / |ref|, F1 = 2PR / (P + R) (0 if P + R = 0); 1 if both have no
  slot, 0 if only one has none. The mean over utterances.
- ``slot_value_cer``: every reference value is paired with the hypothesis value of the same slot type that
  has the lowest CER against it (the first one strictly below 100, s3prl's initial minimum; none: ``""``),
  or ``""`` if the hypothesis has no slot of that type. The result is Σ edit distance / Σ reference length
  over all pairs (characters, ``editdistance``).

Both are fractions as s3prl computes them (``slot_type_f1`` in [0, 1], ``slot_value_cer`` ≥ 0).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import editdistance

BLANK = "<blank>"
EOS = "<eos>"
UNK = "<unk>"
SPACE = " "
#: s3prl's ``downstream/ctc/vocab/character.txt``: the space, A–Z and the apostrophe.
CHARACTERS: tuple[str, ...] = (SPACE, *(chr(c) for c in range(ord("A"), ord("Z") + 1)), "'")
_CHARACTER_SET = frozenset(CHARACTERS)
_SKIPPED = "?!.,;-"  # s3prl: ``if wrd in "?!.,;-": continue`` (a substring test)
_SLOT = re.compile(r"B\-(\S+) (.+?) E\-\1")  # s3prl metric.parse
_OPEN_IN_VALUE = re.compile(r"B\-(\S+) ")  # s3prl metric.clean
_CLOSE_IN_VALUE = re.compile(r" E\-(\S+)")
_SPACES = re.compile(r" +")
_CER_START = 100  # s3prl slot_value_cer: ``min_cer = 100``


def begin_token(slot: str) -> str:
    return f"B-{slot}"


def end_token(slot: str) -> str:
    return f"E-{slot}"


def is_slot_token(token: str) -> bool:
    """``B-<slot>`` or ``E-<slot>`` (characters are single letters, so ``"B"`` is not one)."""
    return len(token) > 2 and token[:2] in ("B-", "E-")


def _split_tag(tag: str) -> tuple[str, bool]:
    """``(slot name or "O", starts a new value)``: bare names continue a run, IOB ``B-`` starts one."""
    if len(tag) > 2 and tag[:2] in ("B-", "I-"):
        return tag[2:], tag[0] == "B"
    return tag, False


def iob_to_tagged(words: Sequence[str], tags: Sequence[str], *, eos: bool = True) -> list[str]:
    """The CTC target s3prl trains SF on: characters, ``" "`` between words, ``B-x``/``E-x`` around slot values.

    Args:
        words: the utterance's words, without ``BOS``/``EOS``.
        tags: one slot tag per word: ``O`` or the slot name (or ``B-``/``I-`` + slot name).
        eos: end with ``<eos>`` as s3prl's targets do (only when the last word is not skipped, as there).
    Returns the token list (see the module docstring for the exact rules).
    """
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags: {list(words)!r} / {list(tags)!r}")
    parsed = [_split_tag(t) for t in tags]
    last = len(words) - 1
    tokens: list[str] = []
    for i, word in enumerate(words):
        if word in _SKIPPED:
            continue
        if word == "&":
            word = "AND"
        slot, starts = parsed[i]
        if slot != "O" and (i == 0 or starts or parsed[i - 1][0] != slot):
            tokens.append(begin_token(slot))
        tokens.extend(c if c in _CHARACTER_SET else UNK for c in word.upper())
        if slot != "O" and (i == last or parsed[i + 1][1] or parsed[i + 1][0] != slot):
            tokens.append(end_token(slot))
        if i < last:
            tokens.append(SPACE)
        elif eos:
            tokens.append(EOS)
    return tokens


def build_vocabulary(tagged_sequences: Iterable[Sequence[str]]) -> list[str]:
    """``<blank>`` (index 0, the CTC blank), ``<eos>``, ``<unk>``, s3prl's characters, then any other plain
    token found (sorted), then the slot tokens found, sorted by slot name with ``B-`` before ``E-``.

    The order depends only on the set of tokens, not on the order of the sequences.
    """
    base = (BLANK, EOS, UNK, *CHARACTERS)
    seen = {token for seq in tagged_sequences for token in seq}
    others = sorted(t for t in seen if t not in base and not is_slot_token(t))
    slots = sorted({t[2:] for t in seen if is_slot_token(t)})
    return [*base, *others, *(tok for slot in slots for tok in (begin_token(slot), end_token(slot)))]


def render(tokens: Sequence[str]) -> str:
    """The string s3prl's ``decode`` gives: ``B-x`` as ``"B-x "``, ``E-x`` as ``" E-x"``; blanks and ``<eos>``
    dropped (s3prl removes them from hypotheses; in references ``<eos>`` ends the sequence)."""
    parts = []
    for token in tokens:
        if token in (BLANK, EOS):
            continue
        if is_slot_token(token):
            parts.append(f"{token} " if token[0] == "B" else f" {token}")
        else:
            parts.append(token)
    return "".join(parts)


def _clean(text: str) -> str:
    return _CLOSE_IN_VALUE.sub("", _OPEN_IN_VALUE.sub("", text))


def parse_tagged(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """``(slot type, value)`` pairs in order, as s3prl's ``metric.parse`` reads a decoded sequence.

    A value is what lies between ``B-x`` and the next ``E-x`` (runs of spaces collapsed, tags inside removed);
    a begin tag without its end tag, or an end tag alone, yields nothing.
    """
    text = _SPACES.sub(" ", render(tokens))
    return [(slot, _clean(value)) for slot, value in _SLOT.findall(text)]


def _by_type(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Slot type → its values, types in order of first appearance (s3prl's ``ref_dict``/``hyp_dict``)."""
    out: dict[str, list[str]] = {}
    for slot, value in pairs:
        out.setdefault(slot, []).append(value)
    return out


def _pairs(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]], metric: str):
    if len(hypotheses) != len(references):
        raise ValueError(f"{metric}: {len(hypotheses)} hypotheses but {len(references)} references")
    if not references:
        raise ValueError(f"{metric}: no utterances to score")
    return [(_by_type(parse_tagged(h)), _by_type(parse_tagged(r))) for h, r in zip(hypotheses, references,
                                                                                    strict=True)]


def slot_type_f1(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """s3prl's ``slot_type_f1``: mean over utterances of the F1 between the sets of slot types (module docstring)."""
    scores = []
    for hyp, ref in _pairs(hypotheses, references, "slot_type_f1"):
        if not hyp and not ref:
            scores.append(1.0)
        elif not hyp or not ref:
            scores.append(0.0)
        else:
            recall = sum(1 for slot in ref if slot in hyp) / len(ref)
            precision = sum(1 for slot in hyp if slot in ref) / len(hyp)
            total = precision + recall
            scores.append(2 * precision * recall / total if total > 0 else 0.0)
    return sum(scores) / len(scores)


def _cer(hypothesis: str, reference: str) -> float:
    return editdistance.eval(hypothesis, reference) / len(reference)


def slot_value_cer(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """s3prl's ``slot_value_cer``: character error rate of the best-matching hypothesis value of each reference
    slot value, pooled over all values (module docstring). 0.0 when the references hold no slot value."""
    errors = length = 0
    for hyp, ref in _pairs(hypotheses, references, "slot_value_cer"):
        for slot, values in ref.items():
            for value in values:  # non-empty: the pattern needs at least one character between the tags
                best, best_cer = "", _CER_START
                for candidate in hyp.get(slot, ()):
                    cer = _cer(candidate, value)
                    if cer < best_cer:
                        best, best_cer = candidate, cer
                errors += editdistance.eval(best, value)
                length += len(value)
    return errors / length if length else 0.0
