"""Corpus readers on tiny corpora in the official layouts: ids, splits, labels, lengths, and layout errors."""

from __future__ import annotations

import math
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from superb.errors import ConfigError, CorpusError
from superb.extract.audio import probe
from superb.extract.corpora.generic import Generic
from superb.extract.corpora.librispeech import LibriSpeech
from superb.extract.corpora.speech_commands import CLASSES, SpeechCommands, detect_version
from superb.registry import CORPORA
from superb.testing.checks import assert_lengths_decode, assert_ordered
from superb.testing.corpora import COMMANDS, librispeech_ids, which_set
from superb.testing.speech import write_noise

LS_SPLITS = ["train-clean-100", "dev-clean", "test-clean"]






def copy_of(root: Path, tmp_path: Path, name: str | None = None) -> Path:
    dst = tmp_path / (name or root.name)
    shutil.copytree(root, dst)
    return dst


def test_registry_points_at_the_readers():
    assert CORPORA.get("librispeech") is LibriSpeech
    assert CORPORA.get("speech_commands") is SpeechCommands
    assert CORPORA.get("generic") is Generic


# -- LibriSpeech -----------------------------------------------------------------------------------------


def expected_librispeech_ids(split_index: int) -> set[str]:
    ids = set()
    for j in range(2):
        spk, chap = librispeech_ids(split_index, j, 0)
        ids |= {f"{spk}-{chap}-{u:04d}" for u in range(2)}
    return ids


def test_librispeech_ids_splits_meta_lengths(librispeech_root):
    utts = LibriSpeech(librispeech_root).utterances(LS_SPLITS)
    assert_ordered(utts, LS_SPLITS)
    for s, split in enumerate(LS_SPLITS):
        assert {u.id for u in utts if u.split == split} == expected_librispeech_ids(s)
    first = utts[0]
    assert first.id == "103-1000-0000"
    assert first.meta == {"speaker": "103", "chapter": "1000", "transcript": "THE CAT SAT ON THE MAT"}
    assert first.path == str(librispeech_root.resolve() / "train-clean-100/103/1000/103-1000-0000.flac")
    for u in utts:
        spk, chap, _ = u.id.split("-")
        assert (u.meta["speaker"], u.meta["chapter"]) == (spk, chap)
        assert u.meta["transcript"] and u.meta["transcript"] == u.meta["transcript"].upper()
        assert (u.start, u.frames) == (0, -1)
    assert_lengths_decode(utts)


def test_librispeech_reads_only_the_splits_asked(librispeech_root):
    utts = LibriSpeech(librispeech_root).utterances(["dev-clean"])
    assert {u.id for u in utts} == expected_librispeech_ids(1)
    with pytest.raises(ConfigError, match="dev-cleen"):
        LibriSpeech(librispeech_root).utterances(["dev-cleen"])


def test_librispeech_accepts_top_folder_and_extra_files(librispeech_root, tmp_path):
    wanted = LibriSpeech(librispeech_root).utterances(LS_SPLITS)
    root = tmp_path / "unpacked"
    copy_of(librispeech_root, root, "LibriSpeech")
    chapter = root / "LibriSpeech/dev-clean/203/2000"
    (chapter / "notes.txt").write_text("extra\n")
    (chapter / "203-2000-0000.wav").write_bytes(b"not part of the layout")
    (root / "LibriSpeech/dev-clean/203/README").write_text("extra\n")
    (root / "LibriSpeech/dev-clean/.cache").mkdir()
    got = LibriSpeech(root).utterances(LS_SPLITS)
    assert [(u.id, u.split, u.num_samples, u.meta) for u in got] == [
        (u.id, u.split, u.num_samples, u.meta) for u in wanted
    ]
    assert got[0].path.startswith(str(root.resolve() / "LibriSpeech"))


def test_librispeech_missing_split_folder(librispeech_root):
    with pytest.raises(CorpusError, match="train-clean-360"):
        LibriSpeech(librispeech_root).utterances(["train-clean-360"])


def test_librispeech_missing_root(tmp_path):
    with pytest.raises(CorpusError, match="nowhere"):
        LibriSpeech(tmp_path / "nowhere")


@pytest.fixture
def ls_copy(librispeech_root, tmp_path) -> Path:
    return copy_of(librispeech_root, tmp_path)


def test_librispeech_malformed_transcript_line(ls_copy):
    trans = ls_copy / "dev-clean/203/2000/203-2000.trans.txt"
    trans.write_text(trans.read_text() + "203-2000-0002\n")  # id without text, on line 3
    with pytest.raises(CorpusError, match=re.escape(f"{trans}:3: malformed")):
        LibriSpeech(ls_copy).utterances(["dev-clean"])


def test_librispeech_transcript_of_another_chapter_is_malformed(ls_copy):
    trans = ls_copy / "dev-clean/203/2000/203-2000.trans.txt"
    trans.write_text(trans.read_text() + "214-2010-0000 WRONG CHAPTER\n")
    with pytest.raises(CorpusError, match=re.escape(f"{trans}:3")):
        LibriSpeech(ls_copy).utterances(["dev-clean"])


def test_librispeech_transcript_without_audio(ls_copy):
    trans = ls_copy / "dev-clean/203/2000/203-2000.trans.txt"
    (ls_copy / "dev-clean/203/2000/203-2000-0001.flac").unlink()
    with pytest.raises(CorpusError, match=re.escape(f"{trans}:2: no audio file ") + ".*203-2000-0001.flac"):
        LibriSpeech(ls_copy).utterances(["dev-clean"])


def test_librispeech_audio_without_transcript_line(ls_copy):
    trans = ls_copy / "dev-clean/203/2000/203-2000.trans.txt"
    trans.write_text(trans.read_text().splitlines()[0] + "\n")
    flac = ls_copy / "dev-clean/203/2000/203-2000-0001.flac"
    with pytest.raises(CorpusError, match=re.escape(f"{flac}: audio file has no transcript line")):
        LibriSpeech(ls_copy).utterances(["dev-clean"])


def test_librispeech_audio_without_transcript_file(ls_copy):
    (ls_copy / "dev-clean/203/2000/203-2000.trans.txt").unlink()
    with pytest.raises(CorpusError, match="203-2000-0000.flac: audio file has no transcript"):
        LibriSpeech(ls_copy).utterances(["dev-clean"])


# -- Speech Commands -------------------------------------------------------------------------------------


def read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def word_files(root: Path) -> set[str]:
    return {f"{p.parent.name}/{p.name}" for p in root.glob("*/*.wav") if not p.parent.name.startswith("_")}


def no_suffix(entries: set[str]) -> set[str]:
    return {e.removesuffix(".wav") for e in entries}


def test_speech_commands_splits_follow_the_list_files(speech_commands_root):
    utts = SpeechCommands(speech_commands_root).utterances(["train", "dev", "test"])
    assert_ordered(utts, ["train", "dev", "test"])
    dev_list = read_list(speech_commands_root / "validation_list.txt")
    test_list = read_list(speech_commands_root / "testing_list.txt")
    assert dev_list and test_list
    words = {split: {u.id for u in utts if u.split == split and u.meta["label"] != "_silence_"}
             for split in ("train", "dev")}
    assert words["dev"] == no_suffix(dev_list)
    assert words["train"] == no_suffix(word_files(speech_commands_root) - dev_list - test_list)
    # the builder's lists are TensorFlow's hashing rule, so the reader agrees with it too
    assert {which_set(i) for i in words["train"]} == {"training"}
    assert {which_set(i) for i in words["dev"]} == {"validation"}
    assert_lengths_decode(utts)


def test_speech_commands_follows_lists_even_against_the_hash(speech_commands_root, tmp_path):
    root = copy_of(speech_commands_root, tmp_path)
    moved = sorted(no_suffix(word_files(root)) - no_suffix(read_list(root / "validation_list.txt"))
                   - no_suffix(read_list(root / "testing_list.txt")))[0]
    with (root / "validation_list.txt").open("a") as f:
        f.write(f"{moved}.wav\n")
    utts = SpeechCommands(root).utterances(["train", "dev"])
    assert [u.split for u in utts if u.id == moved] == ["dev"]


def test_speech_commands_labels_words_speakers(speech_commands_root):
    utts = SpeechCommands(speech_commands_root).utterances(["train", "dev", "test"])
    for u in utts:
        assert u.meta["label"] in CLASSES
        assert set(u.meta) == {"label", "word", "speaker"}
        if u.meta["label"] == "_silence_":
            continue
        if u.split != "test":
            word, stem = u.id.split("/")
            assert u.meta["word"] == word
            assert u.meta["speaker"] == stem.split("_nohash_")[0]
        assert u.meta["label"] == (u.meta["word"] if u.meta["word"] in COMMANDS else "_unknown_")
    train = Counter(u.meta["label"] for u in utts if u.split == "train")
    assert set(train) == set(CLASSES)
    assert train["_unknown_"] == 2 * train["yes"]  # bed and zero
    test = [u for u in utts if u.split == "test"]
    assert Counter(u.meta["label"] for u in test).keys() == set(CLASSES)
    unknown = sorted((u.id, u.meta["word"]) for u in test if u.meta["label"] == "_unknown_")
    assert [word for _, word in unknown] == ["bed", "zero"]
    assert all(u.path.startswith(str(speech_commands_root.resolve().parent / "speech_commands_test_set_v0.01"))
               for u in test)
    assert {u.meta["speaker"] for u in test if u.meta["label"] == "_silence_"} == {""}


def test_speech_commands_silence_clips(speech_commands_root):
    utts = SpeechCommands(speech_commands_root).utterances(["train", "dev"])
    noise_dir = (speech_commands_root / "_background_noise_").resolve()
    for split in ("train", "dev"):
        words = [u for u in utts if u.split == split and u.meta["label"] != "_silence_"]
        clips = [u for u in utts if u.split == split and u.meta["label"] == "_silence_"]
        assert len(clips) == math.ceil(0.1 * len(words))
        assert {Path(u.path).parent for u in clips} == {noise_dir}
        for u in clips:
            info = probe(u.path)
            assert u.num_samples == 16_000
            assert u.frames == info.sample_rate  # one second at the file's own rate
            assert 0 <= u.start <= info.frames - u.frames
    train_clips = [u for u in utts if u.split == "train" and u.meta["label"] == "_silence_"]
    # taken from the noise files in turn, including the 22.05 kHz one
    assert {Path(u.path).name for u in train_clips} == {"pink_noise.wav", "running_tap.wav", "white_noise.wav"}
    assert_lengths_decode([u for u in utts if u.meta["label"] == "_silence_"])


def silence(root: Path, **options) -> list[tuple[str, str, str, int, int]]:
    utts = SpeechCommands(root, **options).utterances(["train", "dev"])
    return [(u.id, u.split, u.path, u.start, u.frames) for u in utts if u.meta["label"] == "_silence_"]


def test_speech_commands_silence_is_seeded(speech_commands_root):
    first = silence(speech_commands_root, silence_seed=3, silence_clips=12)
    assert len(first) == 24
    assert first == silence(speech_commands_root, silence_seed=3, silence_clips=12)
    other = silence(speech_commands_root, silence_seed=4, silence_clips=12)
    assert [s[3] for s in first] != [s[3] for s in other]
    train = [s[3] for s in first if s[1] == "train"]
    dev = [s[3] for s in first if s[1] == "dev"]
    assert train != dev
    assert silence(speech_commands_root, silence_clips=0) == []


def test_speech_commands_v2_by_folder_name_and_default_test_root(speech_commands_v2_root):
    corpus = SpeechCommands(speech_commands_v2_root)
    assert corpus.dataset_version == "v0.02"
    assert corpus.describe()["dataset_version"] == "v0.02"
    assert corpus.test_root == speech_commands_v2_root.parent / "speech_commands_test_set_v0.02"
    utts = corpus.utterances(["train", "dev", "test"])
    words = {u.meta["word"]: u.meta["label"] for u in utts if u.meta["label"] != "_silence_"}
    assert words == {"yes": "yes", "no": "no", "backward": "_unknown_", "learn": "_unknown_"}
    assert Counter(u.split for u in utts) == {"train": 12 + 2, "dev": 4 + 1, "test": 2 + 2 + 1}
    assert_lengths_decode(utts)


def test_speech_commands_version_from_word_folders(tmp_path):
    for name, folders, version in [
        ("sc_a", ["yes", "backward"], "v0.02"),
        ("sc_b", ["yes", "bed"], "v0.01"),
        ("speech_commands_v0.02", ["yes"], "v0.02"),
        ("speech_commands_v0.01", ["yes", "learn"], "v0.01"),  # the name wins
    ]:
        for folder in folders:
            (tmp_path / name / folder).mkdir(parents=True)
        assert detect_version(tmp_path / name) == version, name


def test_speech_commands_explicit_test_root(speech_commands_root, tmp_path):
    train = copy_of(speech_commands_root, tmp_path / "a", "my_train")
    test = copy_of(speech_commands_root.parent / "speech_commands_test_set_v0.01", tmp_path / "b", "my_test")
    utts = SpeechCommands(train, test_root=test).utterances(["test"])
    assert len(utts) == 13
    assert all(u.path.startswith(str(test.resolve())) for u in utts)
    with pytest.raises(CorpusError, match="speech_commands_test_set_v0.01"):
        SpeechCommands(train).utterances(["test"])


def test_speech_commands_extra_files_are_harmless(speech_commands_root, tmp_path):
    wanted = SpeechCommands(speech_commands_root).utterances(["train", "dev", "test"])
    root = copy_of(speech_commands_root, tmp_path / "x")
    shutil.copytree(speech_commands_root.parent / "speech_commands_test_set_v0.01",
                    tmp_path / "x/speech_commands_test_set_v0.01")
    (root / "yes/.DS_Store").write_bytes(b"\0")
    (root / "yes/._0dabe8a1_nohash_0.wav").write_bytes(b"\0")  # macOS resource fork
    (root / ".ipynb_checkpoints").mkdir()
    (root / "_background_noise_/notes.txt").write_text("x")
    (tmp_path / "x/speech_commands_test_set_v0.01/LICENSE").write_text("x")
    got = SpeechCommands(root).utterances(["train", "dev", "test"])
    assert [(u.id, u.split, u.meta, u.start, u.num_samples) for u in got] == [
        (u.id, u.split, u.meta, u.start, u.num_samples) for u in wanted
    ]


@pytest.fixture
def sc_copy(speech_commands_root, tmp_path) -> Path:
    return copy_of(speech_commands_root, tmp_path)


@pytest.mark.parametrize("name", ["validation_list.txt", "testing_list.txt"])
def test_speech_commands_missing_list_file(sc_copy, name):
    (sc_copy / name).unlink()
    with pytest.raises(CorpusError, match=re.escape(f"{sc_copy / name}: Speech Commands list file not found")):
        SpeechCommands(sc_copy).utterances(["train"])


def test_speech_commands_missing_background_noise(sc_copy):
    shutil.rmtree(sc_copy / "_background_noise_")
    with pytest.raises(CorpusError, match=re.escape(f"{sc_copy / '_background_noise_'}: background-noise folder")):
        SpeechCommands(sc_copy).utterances(["dev"])


def test_speech_commands_noise_too_short(sc_copy):
    for path in (sc_copy / "_background_noise_").glob("*.wav"):
        path.unlink()
    write_noise(sc_copy / "_background_noise_/short.wav", 0.99)
    with pytest.raises(CorpusError, match="no background-noise .wav of 1 s or longer"):
        SpeechCommands(sc_copy, silence_clips=1).utterances(["train"])


def test_speech_commands_list_entry_without_file(sc_copy):
    listed = sc_copy / "validation_list.txt"
    n = len(read_list(listed))
    listed.write_text(listed.read_text() + "yes/ffffffff_nohash_0.wav\n")
    with pytest.raises(CorpusError, match=re.escape(f"{listed}:{n + 1}: 'yes/ffffffff_nohash_0.wav' names no file")):
        SpeechCommands(sc_copy).utterances(["train"])


def test_speech_commands_entry_in_both_lists(sc_copy):
    entry = sorted(read_list(sc_copy / "validation_list.txt"))[0]
    with (sc_copy / "testing_list.txt").open("a") as f:
        f.write(entry + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"validation_list.txt:1: '{entry}' is also in testing_list.txt")):
        SpeechCommands(sc_copy).utterances(["dev"])


def test_speech_commands_test_set_missing_class_folder(speech_commands_root, tmp_path):
    test = copy_of(speech_commands_root.parent / "speech_commands_test_set_v0.01", tmp_path)
    shutil.rmtree(test / "_silence_")
    with pytest.raises(CorpusError, match=re.escape(f"{test / '_silence_'}: class folder missing")):
        SpeechCommands(speech_commands_root, test_root=test).utterances(["test"])


@pytest.mark.parametrize("options", [{"silence_seed": "1"}, {"silence_clips": -1}, {"silence_seed": True},
                                     {"test_rot": "x"}])
def test_speech_commands_bad_options(speech_commands_root, options):
    with pytest.raises(ConfigError):
        SpeechCommands(speech_commands_root, **options)


# -- generic ---------------------------------------------------------------------------------------------

GENERIC_IDS = ["alice/farewell", "alice/greeting", "bob/farewell", "bob/greeting", "carol"]


def test_generic_folder(generic_dir):
    corpus = Generic(generic_dir)
    assert corpus.splits == ("all",)
    utts = corpus.utterances(["all"])
    assert [u.id for u in utts] == GENERIC_IDS
    assert all(u.meta == {} and u.split == "all" for u in utts)
    rates = {u.id: probe(u.path).sample_rate for u in utts}
    assert rates["bob/farewell"] == 8_000 and rates["alice/farewell"] == 22_050
    assert probe(generic_dir / "bob/greeting.wav").channels == 2
    assert_lengths_decode(utts)


def test_generic_tsv_with_labels_and_splits(generic_tsv):
    corpus = Generic(generic_tsv)
    assert corpus.splits == ("train", "test")
    utts = corpus.utterances(["train", "test"])
    assert [(u.id, u.split, u.meta["label"]) for u in utts] == [
        ("utt0", "train", "greet"), ("utt2", "train", "greet"), ("utt4", "train", "greet"),
        ("utt1", "test", "bye"), ("utt3", "test", "bye"),
    ]
    assert utts[0].path == str((generic_tsv.parent / "audio/alice/greeting.wav").resolve())
    assert_lengths_decode(utts)
    with pytest.raises(ConfigError):
        corpus.utterances(["all"])


def write_tsv(tmp_path: Path, lines: list[str]) -> Path:
    tsv = tmp_path / "list.tsv"
    tsv.write_text("".join(line + "\n" for line in lines))
    return tsv


def test_generic_tsv_without_header_or_label(generic_dir, tmp_path):
    audio = generic_dir.resolve()
    tsv = write_tsv(tmp_path, [f"b\t{audio}/carol.flac", "", f"a\t{audio}/bob/greeting.wav"])
    utts = Generic(tsv).utterances(["all"])
    assert [(u.id, u.meta) for u in utts] == [("a", {}), ("b", {})]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["id\tpath", "a\tAUDIO/carol.flac", "just-one-field"], r":3: malformed line"),
        (["a\tAUDIO/carol.flac\tx", "b\tAUDIO/bob/greeting.wav"], r":2: 2 columns, but earlier lines have 3"),
        (["a\tAUDIO/carol.flac\t"], r":1: malformed line"),
        (["a\tAUDIO/carol.flac", "a\tAUDIO/bob/greeting.wav"], r":2: duplicate id 'a' \(first on line 1\)"),
        (["a\tAUDIO/missing.wav"], r":1: audio file .*missing.wav not found"),
    ],
)
def test_generic_tsv_errors(generic_dir, tmp_path, lines, message):
    tsv = write_tsv(tmp_path, [line.replace("AUDIO", str(generic_dir.resolve())) for line in lines])
    with pytest.raises(CorpusError, match=re.escape(str(tsv)) + message):
        Generic(tsv)


def test_generic_folder_duplicate_id_and_empty(generic_dir, tmp_path):
    root = copy_of(generic_dir, tmp_path)
    shutil.copyfile(root / "carol.flac", root / "carol.wav")
    with pytest.raises(CorpusError, match="duplicate id 'carol'"):
        Generic(root)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/readme.txt").write_text("x")
    with pytest.raises(CorpusError, match=re.escape(f"{tmp_path / 'empty'}: no audio files")):
        Generic(tmp_path / "empty")
