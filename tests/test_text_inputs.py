"""Every list, TSV and CSV superb reads goes through ``superb.files.numbered_lines``: a UTF-8 byte-order mark
and CRLF line ends read the same as plain UTF-8, and a byte that is not UTF-8 is one error naming file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from superb.errors import ConfigError, CorpusError
from superb.extract.corpora.diarization import rttm_turns
from superb.extract.corpora.quesst14 import enumerate_list
from superb.extract.corpora.voxceleb1 import read_trials
from superb.files import numbered_lines
from superb.registry import CORPORA
from superb.testing.checks import assert_text_file_checks
from superb.testing.cli import one_error_line, run_superb_here
from superb.train.tasks.asr.decoding import arpa_unigrams, read_words
from superb.train.tasks.pr.lexicon import Lexicon
from superb.train.tasks.qbe.scoring import read_lexemes

# (session fixture of the tiny corpus, corpus name, the list file inside it, options, splits or None for all)
CORPUS_LISTS = {
    "librispeech trans.txt": ("librispeech_root", "librispeech", "dev-clean/*/*/*.trans.txt", {}, None),
    "speech_commands validation_list": ("speech_commands_root", "speech_commands", "validation_list.txt", {},
                                        ["train", "dev"]),
    "speech_commands testing_list": ("speech_commands_root", "speech_commands", "testing_list.txt", {},
                                     ["train", "dev"]),
    "voxceleb1 iden_split": ("voxceleb1_root", "voxceleb1", "iden_split.txt", {"trim": False}, None),
    "fluent_commands csv": ("fluent_commands_root", "fluent_commands", "data/train_data.csv", {}, ["train"]),
    "iemocap EmoEvaluation": ("iemocap_root", "iemocap", "Session1/dialog/EmoEvaluation/*.txt", {}, ["Session1"]),
    "snips iob": ("snips_root", "snips", "all.iob.snips.txt", {}, None),
    "snips slots": ("snips_root", "snips", "slots.txt", {}, None),
    "generic tsv": ("generic_tsv", "generic", "corpus.tsv", {}, None),
}


@pytest.mark.parametrize("case", list(CORPUS_LISTS))
def test_corpus_lists(case, request, tmp_path):
    fixture, name, pattern, options, splits = CORPUS_LISTS[case]
    pristine = Path(request.getfixturevalue(fixture))
    folder = pristine.parent if name == "generic" else pristine  # the TSV's audio sits beside it
    root = Path(shutil.copytree(folder, tmp_path / folder.name))
    if name == "generic":
        root = root / pristine.name
    listing = sorted((root if root.is_dir() else root.parent).glob(pattern))[0]

    def reading():
        corpus = CORPORA.get(name)(root, **options)
        return [u.to_record() for u in corpus.utterances(splits or corpus.default_splits())]

    # IEMOCAP reads only its bracketed label lines (annotators' comments may hold stray bytes)
    label_line = (lambda raw: raw.startswith(b"[")) if name == "iemocap" else (lambda raw: bool(raw.strip()))
    assert_text_file_checks(listing, reading, label_line=label_line)


def test_iemocap_comment_lines_may_hold_stray_bytes(iemocap_root, tmp_path):
    root = Path(shutil.copytree(iemocap_root, tmp_path / "iemocap"))
    labels = sorted(root.glob("Session1/dialog/EmoEvaluation/*.txt"))[0]
    before = CORPORA.get("iemocap")(root).utterances(["Session1"])
    labels.write_bytes(labels.read_bytes() + b"C-E1:\tNeutral;\t(caf\xe9 latin-1 comment)\n")
    assert CORPORA.get("iemocap")(root).utterances(["Session1"]) == before


# files a task or scorer reads (the ASV trial list too): (text, reader, the error it raises)
TASK_FILES = {
    "quesst list": ("a/q1.wav nnenglish\nb/q2.wav nnenglish\n", enumerate_list, CorpusError),
    "rttm": ("SPEAKER rec 1 0.25 1.5 <NA> <NA> spk1 <NA>\nSPEAKER rec 1 2.0 1.0 <NA> <NA> spk2 <NA>\n",
             rttm_turns, CorpusError),
    "qbe ground-truth rttm": ("LEXEME doc 1 0.5 0.3 term1 <NA> <NA>\nLEXEME doc 1 1.5 0.3 term2 <NA> <NA>\n",
                              read_lexemes, CorpusError),
    "asv trial list": ("1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav\n"
                       "0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav\n", read_trials, CorpusError),
    "pr lexicon": ("HELLO HH AH0 L OW1\nWORLD W ER1 L D\n", Lexicon.from_file, ConfigError),
    "asr word list": ("HELLO\nWORLD\n", read_words, ConfigError),
    "asr arpa": ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0 <s>\n-0.5 HELLO\n-0.5 WORLD\n\n\\end\\\n",
                 arpa_unigrams, ConfigError),
}


def _comparable(value):
    return [value[word] for word in ("HELLO", "WORLD")] if isinstance(value, Lexicon) else value


@pytest.mark.parametrize("case", list(TASK_FILES))
def test_task_files(case, tmp_path):
    text, reader, error = TASK_FILES[case]
    path = tmp_path / "list.txt"
    path.write_text(text, encoding="utf-8")
    # the ARPA reader stops after its unigrams: break one of them
    label_line = (lambda raw: raw.startswith(b"-0.5")) if reader is arpa_unigrams else (lambda raw: bool(raw.strip()))
    assert_text_file_checks(path, lambda: _comparable(reader(path)), error, label_line)


def test_numbered_lines_drops_the_bom_and_line_ends_only(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbfa\r\n\r\n b\tc \r\n\xef\xbb\xbfx\ry\nlast")
    assert list(numbered_lines(path)) == [(1, "a"), (2, ""), (3, " b\tc "), (4, "\ufeffx\ry"), (5, "last")]
    with pytest.raises(ConfigError, match="cannot read lexicon .*missing.txt"):
        list(numbered_lines(tmp_path / "missing.txt", "lexicon", ConfigError))


def test_a_bad_byte_is_one_line_through_the_cli(generic_tsv, tmp_path):
    root = Path(shutil.copytree(generic_tsv.parent, tmp_path / "generic"))
    tsv = root / generic_tsv.name
    lines = tsv.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"utt1", b"utt\xe91")  # a Latin-1 é
    tsv.write_bytes(b"".join(lines))
    line = one_error_line(run_superb_here("extract", "-u", "fbank", "--corpus", "generic", "--root", str(tsv),
                                          "--out", str(tmp_path / "out"), "-q"))
    assert f"{tsv.resolve()}:3: not UTF-8 text (byte 0xe9 at column 4)" in line
    assert not (tmp_path / "out" / "generic").exists()
