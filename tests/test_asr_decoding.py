"""ASR text side and decoding: characters ↔ ids, corpus WER/UER/CER, greedy and KenLM beam search on hand-made
logits."""

from __future__ import annotations

import math
import sys

import jiwer
import pytest
import torch

from superb.errors import ConfigError
from superb.train.tasks.asr.decoding import BeamSearch, arpa_unigrams, greedy_text, read_words
from superb.train.tasks.asr.text import VOCAB, cer, decode, encode, uer, wer

# A bigram LM over five words. Unigrams alone favour CAN over CAT; after THE, the bigram favours CAT.
ARPA = """
\\data\\
ngram 1=8
ngram 2=6

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.7\tTHE\t-0.3
-1.6\tCAT\t-0.2
-1.0\tCAN\t-0.2
-1.6\tSAT\t-0.2
-2.0\tNAÏVE\t0

\\2-grams:
-0.1\t<s> THE
-0.2\tTHE CAT
-0.3\tCAT SAT
-0.3\tCAT </s>
-0.5\tCAN </s>
-0.3\tSAT </s>

\\end\\
"""


@pytest.fixture
def arpa(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(ARPA.lstrip("\n"), encoding="utf-8")
    return path


def frames_to_logits(frames: list[str | dict[str, float]]) -> torch.Tensor:
    """One utterance's logits ``(1, T, V)``: a frame is a token (probability 0.9) or ``{token: probability}``.

    The rest of each frame's mass is spread evenly over the other tokens; logits are log-probabilities.
    """
    rows = []
    for frame in frames:
        probs = {frame: 0.9} if isinstance(frame, str) else dict(frame)
        rest = (1.0 - sum(probs.values())) / (len(VOCAB) - len(probs))
        rows.append([math.log(probs.get(token, rest)) for token in VOCAB])
    return torch.tensor([rows], dtype=torch.float32)


def spell(text: str) -> list[str]:
    """Frames that spell ``text`` one token a frame, a blank between letters, ``|`` after each word."""
    frames: list[str] = []
    for word in text.split():
        for char in word:
            frames += [char, "<blank>"]
        frames.append("|")
    return frames


# THE, then C A, then a frame that is most likely F (no word), then N, then T.
AMBIGUOUS = spell("THE") + ["C", "<blank>", "A", "<blank>", {"F": 0.40, "N": 0.33, "T": 0.25}, "|"]


# --- text ---------------------------------------------------------------------------------------------------

def test_vocabulary():
    assert VOCAB[0] == "<blank>"
    assert VOCAB[1] == "|"
    assert sorted(VOCAB[2:]) == sorted("'ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert len(VOCAB) == len(set(VOCAB)) == 29


def test_encode_spells_words_and_ends_each_with_boundary():
    ids = encode("DON'T  go ")
    assert [VOCAB[i] for i in ids] == ["D", "O", "N", "'", "T", "|", "G", "O", "|"]
    assert encode("") == [] and encode("   ") == []


@pytest.mark.parametrize("transcript", ["HELLO WORLD", "I DON'T KNOW O'CLOCK", "'TIS THE SEASON'S", "A"])
def test_encode_decode_round_trip(transcript):
    assert decode(encode(transcript)) == transcript
    assert decode(encode(transcript.lower())) == transcript  # upper-cased as s3prl does


def test_decode_collapses_boundaries_and_skips_blanks():
    bar, blank = VOCAB.index("|"), 0
    a, b = VOCAB.index("A"), VOCAB.index("B")
    assert decode([bar, a, blank, bar, bar, b, bar]) == "A B"
    with pytest.raises(ValueError, match="29"):
        decode([len(VOCAB)])


@pytest.mark.parametrize("transcript, char", [("HELLO, WORLD", ","), ("NO|BAR", "|"), ("CAFÉ", "É"), ("R2D2", "2")])
def test_encode_unknown_character(transcript, char):
    with pytest.raises(ConfigError, match=repr(char)):
        encode(transcript)


HYPS = ["THE CAT SAT ON MAT", "HELLO WORD", "", "A B C D"]
REFS = ["THE CAT SAT ON THE MAT", "HELLO WORLD", "GOOD MORNING", "A B C"]


def test_wer_is_corpus_level_and_matches_jiwer():
    # hand count: 1 deletion + 1 substitution + 2 deletions + 1 insertion = 5 errors over 6 + 2 + 2 + 3 words
    assert wer(HYPS, REFS) == pytest.approx(5 / 13)
    assert wer(HYPS, REFS) == pytest.approx(jiwer.wer(REFS, HYPS))
    per_utt_mean = sum(jiwer.wer(r, h) for h, r in zip(HYPS, REFS, strict=True)) / len(REFS)
    assert wer(HYPS, REFS) != pytest.approx(per_utt_mean)  # corpus level, not a mean of utterances
    assert wer(REFS, REFS) == 0.0


def test_cer_matches_jiwer():
    assert cer(HYPS, REFS) == pytest.approx(jiwer.cer(REFS, HYPS))
    assert cer(["AB"], ["AC"]) == pytest.approx(1 / 2)
    assert cer(["A  B "], ["A B"]) == 0.0  # spaces normalised, but counted
    assert cer(["AB"], ["A B"]) == pytest.approx(1 / 3)


def s3prl_uer(pred_tokens_all: list[str], transcripts: list[str]) -> float:
    """s3prl 0.4.18 ``downstream/asr``: targets from ``dataset.py``'s ``process_trans``, the rate from
    ``expert.py``'s ``_compute_metrics`` (÷ 100 for a fraction). ``pred_tokens`` is what its greedy
    ``_decode`` gives: ``dictionary.string`` of the collapsed, blank-free ids, units joined by spaces."""
    import editdistance

    unit_error_sum, unit_length_sum = 0.0, 0
    for pred_tokens, transcript in zip(pred_tokens_all, transcripts, strict=True):
        target_tokens = " ".join(list(transcript.upper().replace(" ", "|"))) + " |"
        pred_tokens, target_tokens = pred_tokens.split(), target_tokens.split()
        unit_error_sum += editdistance.eval(pred_tokens, target_tokens)
        unit_length_sum += len(target_tokens)
    return unit_error_sum / unit_length_sum


# Greedy outputs as units: a missing final |, a leading and a doubled |, nothing, an extra word, all right.
UNIT_HYPS = ["T H E | C A T | S A T | O N | M A T", "| H E L L O | | W O R D |", "", "A | B | C | D |",
             "D O N ' T |"]
UNIT_REFS = ["THE CAT SAT ON THE MAT", "HELLO WORLD", "GOOD MORNING", "A B C", "don't"]


def test_uer_is_s3prls_unit_error_rate():
    hyps = [[VOCAB.index(u) for u in units.split()] for units in UNIT_HYPS]
    refs = [encode(transcript) for transcript in UNIT_REFS]
    expected = s3prl_uer(UNIT_HYPS, UNIT_REFS)
    # hand count: 5 (THE | and the final | missing) + 3 + 13 + 2 + 0 errors over 23 + 12 + 13 + 6 + 6 units
    assert expected == pytest.approx(23 / 60)
    assert uer(hyps, refs) == expected
    assert uer([[0, *h, 0] for h in hyps], refs) == expected  # blanks are not units
    texts = [decode(h) for h in hyps]  # the decoded text forgets the misplaced boundaries: CER differs
    assert cer(texts, [decode(r) for r in refs]) != pytest.approx(expected)


def test_asr_task_reports_uer_on_the_greedy_units():
    from superb.train.tasks.asr.task import TASK
    from superb.train.tasks.utterance import Prepared

    frames = ["|", "<blank>", *spell("HI"), "<blank>", "|", *spell("YOU")[:-1]]  # | H I | | Y O U, no final |
    logits = frames_to_logits(frames)
    prepared = Prepared(items={}, classes=[list(VOCAB)], heads=("characters",))
    predictions = TASK.predict(logits, torch.tensor([len(frames)]), prepared)
    assert predictions[0].text == "HI YOU" and predictions[0].lm_text is None
    metrics = TASK.metrics(predictions, [tuple(encode("HI YOU"))], prepared)
    assert metrics["uer"] == s3prl_uer(["| H I | | Y O U"], ["HI YOU"]) == pytest.approx(3 / 7)
    assert metrics["wer"] == 0.0 and metrics["cer"] == 0.0


def test_error_rates_reject_bad_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        wer(["A", "B"], ["A"])
    with pytest.raises(ValueError, match="empty"):
        cer(["A"], [""])
    with pytest.raises(ValueError, match="uer: the 1 references are all empty"):
        uer([[2]], [[0]])


# --- greedy -------------------------------------------------------------------------------------------------

def test_greedy_collapses_repeats_drops_blanks_and_honours_lengths():
    # "LL" needs a blank between the letters; repeated frames of one letter are one letter.
    frames = ["H", "H", "E", "L", "<blank>", "L", "L", "O", "|", "|", "W", "E", "|"]
    one = frames_to_logits(frames)
    other = frames_to_logits(spell("NO") + ["<blank>"] * (len(frames) - len(spell("NO"))))
    logits = torch.cat([one, other])
    assert greedy_text(logits, torch.tensor([len(frames), 4])) == ["HELLO WE", "NO"]
    assert greedy_text(logits, torch.tensor([9, 0])) == ["HELLO", ""]
    with pytest.raises(ValueError, match="lengths"):
        greedy_text(logits, torch.tensor([len(frames) + 1, 1]))
    with pytest.raises(ValueError, match="29"):
        greedy_text(logits[..., :-1], torch.tensor([1, 1]))


# --- beam search --------------------------------------------------------------------------------------------

def test_arpa_unigrams_and_word_list(arpa, tmp_path):
    assert arpa_unigrams(arpa) == ["THE", "CAT", "CAN", "SAT", "NAÏVE"]
    words = tmp_path / "words.txt"
    words.write_text("THE\tT H E |\n\n<unk>\nCAT\n", encoding="utf-8")
    assert read_words(words) == ["THE", "CAT"]
    words.write_text("THE\nNAÏVE\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"words\.txt:2.*'Ï'"):
        read_words(words)


def test_greedy_spells_a_non_word_the_lm_recovers_the_real_one(arpa):
    logits = frames_to_logits(AMBIGUOUS)
    lengths = torch.tensor([logits.shape[1]])
    assert greedy_text(logits, lengths) == ["THE CAF"]  # no such word

    search = BeamSearch(arpa)  # s3prl's defaults, lexicon from the ARPA unigrams
    assert search.words == ("THE", "CAT", "CAN", "SAT")
    assert search.skipped == ("NAÏVE",)
    assert search(logits, lengths) == ["THE CAT"]  # the bigram THE CAT outweighs the acoustics' N > T

    # Without the LM the lexicon still forces a real word, but the acoustically likelier one: the LM is what
    # turned CAN into CAT above.
    no_lm = BeamSearch(arpa, lm_weight=0.0)
    assert no_lm(logits, lengths) == ["THE CAN"]


def test_lexicon_only_outputs_lexicon_words(arpa, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("THE\nCAT\nSAT\n", encoding="utf-8")
    logits = frames_to_logits(AMBIGUOUS)
    lengths = torch.tensor([logits.shape[1]])
    # CAN (the likeliest real word) is not in this lexicon: with no LM weight, CAT is the best left.
    assert BeamSearch(arpa, words, lm_weight=0.0)(logits, lengths) == ["THE CAT"]
    assert BeamSearch(None, words)(logits, lengths) == ["THE CAT"]

    # Random logits: whatever comes out is made of lexicon words only, while greedy spells non-words.
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(6, 40, len(VOCAB), generator=gen) * 3
    lengths = torch.tensor([40, 33, 20, 40, 12, 0])
    greedy_words = {w for text in greedy_text(noise, lengths) for w in text.split()}
    assert greedy_words - {"THE", "CAT", "SAT"}
    texts = BeamSearch(arpa, words, lm_weight=0.0)(noise, lengths)
    assert len(texts) == 6 and texts[-1] == ""
    assert any(texts)
    assert {w for text in texts for w in text.split()} <= {"THE", "CAT", "SAT"}


def test_batch_equals_one_by_one_and_padding_is_ignored(arpa):
    search = BeamSearch(arpa)
    first, second = AMBIGUOUS, spell("CAT SAT")
    total = max(len(first), len(second)) + len(spell("SAT"))
    # Padding that spells a lexicon word: it would show up if the decoder read past a row's length.
    pad = (spell("SAT") * 3)
    batch = torch.cat([frames_to_logits((f + pad)[:total]) for f in (first, second)])
    lengths = torch.tensor([len(first), len(second)])
    assert search(batch, torch.tensor([total, total]))[1] == "CAT SAT SAT"  # the padding is decodable
    assert search(batch, lengths) == ["THE CAT", "CAT SAT"]
    assert search(batch[1:], lengths[1:]) == ["CAT SAT"]


def test_options_and_defaults(arpa):
    search = BeamSearch(arpa, beam=7, word_score=-2.5)
    assert search.options == {"beam": 7, "beam_threshold": 25.0, "lm_weight": 2.0, "word_score": -2.5,
                              "unk_score": -math.inf, "sil_score": 0.0}
    assert "beam=7" in repr(search)
    assert BeamSearch(arpa).options["beam"] == 5 and BeamSearch(arpa).options["word_score"] == -1.0


def test_beam_search_errors(arpa, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        BeamSearch(tmp_path / "missing.arpa")
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code\0" + bytes(64))
    with pytest.raises(ConfigError, match="binary KenLM.*word list"):
        BeamSearch(binary)
    not_arpa = tmp_path / "notes.txt"
    not_arpa.write_text("hello\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an ARPA"):
        BeamSearch(not_arpa)
    with pytest.raises(ConfigError, match="word list"):
        BeamSearch(None)
    with pytest.raises(ConfigError, match="cannot read word list"):
        BeamSearch(arpa, tmp_path / "missing-words.txt")
    with pytest.raises(ConfigError, match="beam"):
        BeamSearch(arpa, beam=0)
    with pytest.raises(ConfigError, match="lm_weight"):
        BeamSearch(arpa, lm_weight=float("nan"))


def test_missing_flashlight_is_a_config_error(arpa, monkeypatch):
    monkeypatch.setitem(sys.modules, "flashlight.lib.text.decoder", None)  # import now fails
    with pytest.raises(ConfigError, match="pip install flashlight-text"):
        BeamSearch(arpa)
