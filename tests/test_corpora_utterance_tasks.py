"""Readers of the utterance-level tasks' corpora (VoxCeleb1, Fluent Speech Commands, IEMOCAP) on tiny copies:
ids, splits, labels, meta, lengths, the accepted layout variants, and the layout errors."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from superb.errors import ConfigError, CorpusError
from superb.extract.corpora.base import Utterance
from superb.extract.corpora.fluent_commands import FluentCommands
from superb.extract.corpora.iemocap import SESSIONS, Iemocap
from superb.extract.corpora.voxceleb1 import VoxCeleb1
from superb.registry import CORPORA
from superb.testing.checks import assert_lengths_decode, assert_ordered
from superb.testing.corpora import FSC_INTENTS, fluent_commands_plan, iemocap_plan, voxceleb1_plan

SPLITS = ["train", "dev", "test"]






def summary(utts: list[Utterance]) -> list[tuple]:
    """What must not change when only the layout around the files changes."""
    return [(u.id, u.split, u.num_samples, u.meta, Path(u.path).name) for u in utts]


def copy_of(root: Path, tmp_path: Path, name: str | None = None) -> Path:
    dst = tmp_path / (name or root.name)
    shutil.copytree(root, dst)
    return dst


def to_crlf(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line of ``path`` holding ``needle``."""
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return lineno
    raise LookupError(f"{needle!r} not in {path}")


def test_registry_points_at_the_readers():
    assert CORPORA.get("voxceleb1") is VoxCeleb1
    assert CORPORA.get("fluent_commands") is FluentCommands
    assert CORPORA.get("iemocap") is Iemocap


# -- VoxCeleb1 -------------------------------------------------------------------------------------------

VOX_SPLIT = {1: "train", 2: "dev", 3: "test"}


def test_voxceleb1_ids_splits_meta_lengths(voxceleb1_root):
    utts = VoxCeleb1(voxceleb1_root).utterances(SPLITS)
    assert_ordered(utts, SPLITS)
    plan = voxceleb1_plan()
    assert [(u.id, u.split) for u in utts] == sorted(
        ((p.rel.removesuffix(".wav"), VOX_SPLIT[p.code]) for p in plan), key=lambda x: (SPLITS.index(x[1]), x[0]))
    assert Counter(u.split for u in utts) == {"train": 24, "dev": 6, "test": 6}
    speakers = {split: {u.meta["speaker"] for u in utts if u.split == split} for split in SPLITS}
    assert len(speakers["train"]) == 6 and speakers["train"] == speakers["dev"] == speakers["test"]
    root = voxceleb1_root.resolve()
    for u in utts:
        speaker, video, name = u.id.split("/")
        assert u.meta == {"label": speaker, "speaker": speaker, "video": video}
        tree = "test" if speaker in ("id10270", "id10271") else "dev"
        assert u.path == str(root / tree / "wav" / f"{u.id}.wav")
        assert re.fullmatch(r"\d{5}", name)
    assert {u.meta["speaker"] for u in utts} == {"id10001", "id10002", "id10003", "id10004", "id10270", "id10271"}
    assert_lengths_decode(utts)


def test_voxceleb1_reads_only_the_splits_asked(voxceleb1_root):
    utts = VoxCeleb1(voxceleb1_root).utterances(["test", "dev"])
    assert_ordered(utts, ["test", "dev"])
    assert {u.id for u in utts if u.split == "dev"} == {p.rel[:-4] for p in voxceleb1_plan() if p.code == 2}
    with pytest.raises(ConfigError, match="valid"):
        VoxCeleb1(voxceleb1_root).utterances(["valid"])


@pytest.mark.parametrize("layout", ["meta_folder_merged_wav", "archive_folders"])
def test_voxceleb1_layout_variants(voxceleb1_root, tmp_path, layout):
    wanted = VoxCeleb1(voxceleb1_root).utterances(SPLITS)
    outer = tmp_path / "download"
    base = copy_of(voxceleb1_root, outer, "VoxCeleb1")  # a folder in between
    if layout == "meta_folder_merged_wav":
        (base / "meta").mkdir()
        for name in ("iden_split.txt", "veri_test.txt"):
            (base / name).rename(base / "meta" / name)
        shutil.copytree(base / "dev/wav", base / "wav")
        shutil.copytree(base / "test/wav", base / "wav", dirs_exist_ok=True)
        shutil.rmtree(base / "dev")
        shutil.rmtree(base / "test")
        to_crlf(base / "meta/iden_split.txt")
        (base / "wav/id10001/notes.txt").write_text("extra\n")
    else:
        (base / "dev").rename(base / "vox1_dev_wav")
        (base / "test").rename(base / "vox1_test_wav")
    (outer / "vox1_dev_wav.zip.md5").write_text("extra\n")
    corpus = VoxCeleb1(outer)
    got = corpus.utterances(SPLITS)
    assert summary(got) == summary(wanted)
    assert all(u.path.startswith(str(base.resolve())) for u in got)
    veri = corpus.meta_file("veri_test.txt")
    assert veri.parent == (base / "meta" if layout == "meta_folder_merged_wav" else base).resolve()


def test_voxceleb1_veri_test_is_balanced_over_test_speakers(voxceleb1_root):
    trials = [line.split() for line in (voxceleb1_root / "veri_test.txt").read_text().splitlines()]
    assert Counter(t[0] for t in trials) == {"1": 12, "0": 12}  # one of each per test-archive utterance
    for label, a, b in trials:
        assert a != b
        assert a.split("/")[0] in ("id10270", "id10271") and b.split("/")[0] in ("id10270", "id10271")
        assert (a.split("/")[0] == b.split("/")[0]) == (label == "1")
        assert (voxceleb1_root / "test/wav" / a).is_file() and (voxceleb1_root / "test/wav" / b).is_file()


@pytest.fixture
def vox_copy(voxceleb1_root, tmp_path) -> Path:
    return copy_of(voxceleb1_root, tmp_path)


def test_voxceleb1_missing_iden_split(vox_copy):
    (vox_copy / "iden_split.txt").unlink()
    with pytest.raises(CorpusError, match=re.escape(f"{vox_copy.resolve() / 'iden_split.txt'}: VoxCeleb1 list file")):
        VoxCeleb1(vox_copy).utterances(["train"])


@pytest.mark.parametrize("bad", ["4 id10001/abc/00001.wav", "1", "1 id10001/00001.wav", "1 a/b/c.wav extra",
                                 "one id10001/abc/00001.wav"])
def test_voxceleb1_malformed_line(vox_copy, bad):
    listing = vox_copy / "iden_split.txt"
    lines = listing.read_text().splitlines()
    lines.insert(3, bad)
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:4: malformed line")):
        VoxCeleb1(vox_copy).utterances(["test"])


def test_voxceleb1_duplicate_line(vox_copy):
    listing = vox_copy / "iden_split.txt"
    first = listing.read_text().splitlines()[0]
    listing.write_text(listing.read_text() + first.replace("1 ", "3 ", 1) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:37: ") + ".*already listed on line 1"):
        VoxCeleb1(vox_copy).utterances(["train"])


def test_voxceleb1_listed_file_in_neither_tree(vox_copy):
    listing = vox_copy / "iden_split.txt"
    rel = [p.rel for p in voxceleb1_plan() if p.code == 3 and p.rel.startswith("id10270")][0]
    (vox_copy / "test/wav" / rel).unlink()
    lineno = line_of(listing, rel)
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:{lineno}: '{rel}' is in none")):
        VoxCeleb1(vox_copy).utterances(["test"])
    VoxCeleb1(vox_copy).utterances(["train", "dev"])  # only the splits asked are looked up


def test_voxceleb1_no_audio_folder_or_two_copies(vox_copy, tmp_path):
    for tree in ("dev", "test"):
        shutil.rmtree(vox_copy / tree)
    with pytest.raises(CorpusError, match=re.escape(f"{vox_copy.resolve() / 'dev/wav'}: VoxCeleb1 audio folder")):
        VoxCeleb1(vox_copy).utterances(["train"])
    for copy in ("a", "b"):
        (tmp_path / "two" / copy).mkdir(parents=True)
        (tmp_path / "two" / copy / "iden_split.txt").write_text("")
    with pytest.raises(CorpusError, match="several VoxCeleb1 copies inside \\(a, b\\)"):
        VoxCeleb1(tmp_path / "two").utterances(["train"])


# -- Fluent Speech Commands ------------------------------------------------------------------------------

FSC_SPLIT = {"train": "train", "valid": "dev", "test": "test"}


def test_fluent_commands_ids_splits_meta_lengths(fluent_commands_root):
    utts = FluentCommands(fluent_commands_root).utterances(SPLITS)
    assert_ordered(utts, SPLITS)
    plan = {p.path[len("wavs/speakers/"):-len(".wav")]: p for p in fluent_commands_plan()}
    assert sorted((u.id, u.split) for u in utts) == sorted((uid, FSC_SPLIT[p.csv]) for uid, p in plan.items())
    assert Counter(u.split for u in utts) == {"train": 24, "dev": 6, "test": 6}
    root = fluent_commands_root.resolve()
    for u in utts:
        p = plan[u.id]
        assert u.meta == {"action": p.action, "object": p.object, "location": p.location, "speaker": p.speaker,
                          "transcription": p.transcription}
        assert u.path == str(root / p.path)
        assert u.id.split("/")[0] == u.meta["speaker"]
    speakers = {split: {u.meta["speaker"] for u in utts if u.split == split} for split in SPLITS}
    assert (len(speakers["train"]), len(speakers["dev"]), len(speakers["test"])) == (4, 1, 1)
    assert not (speakers["train"] & speakers["dev"]) and not (speakers["dev"] & speakers["test"])
    intents = {(u.meta["action"], u.meta["object"], u.meta["location"]) for u in utts}
    assert intents == {(a, o, loc) for a, o, loc, _ in FSC_INTENTS}
    # pandas quotes a transcription with a comma; the reader must unquote it
    assert "Louder, please" in {u.meta["transcription"] for u in utts}
    assert_lengths_decode(utts)


def test_fluent_commands_reads_only_the_splits_asked(fluent_commands_root, tmp_path):
    root = copy_of(fluent_commands_root, tmp_path)
    (root / "data/train_data.csv").unlink()
    utts = FluentCommands(root).utterances(["dev"])
    assert {u.split for u in utts} == {"dev"} and len(utts) == 6


def test_fluent_commands_layout_variants(fluent_commands_root, tmp_path):
    wanted = FluentCommands(fluent_commands_root).utterances(SPLITS)
    outer = tmp_path / "unpacked"
    base = copy_of(fluent_commands_root, outer, "fluent_speech_commands_dataset")
    for name in ("train", "valid", "test"):
        to_crlf(base / f"data/{name}_data.csv")
    # an extra column and reordered columns are harmless
    rows = list(csv.reader((base / "data/test_data.csv").open(newline="")))
    with (base / "data/test_data.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        for row in rows:
            writer.writerow([row[0], *reversed(row[1:]), "extra" if row[0] else "notes"])
    (base / "wavs/speakers/README").write_text("extra\n")
    (outer / "LICENSE").write_text("extra\n")
    got = FluentCommands(outer).utterances(SPLITS)
    assert summary(got) == summary(wanted)
    assert all(u.path.startswith(str(base.resolve())) for u in got)


@pytest.fixture
def fsc_copy(fluent_commands_root, tmp_path) -> Path:
    return copy_of(fluent_commands_root, tmp_path)


def test_fluent_commands_missing_csv(fsc_copy):
    (fsc_copy / "data/valid_data.csv").unlink()
    with pytest.raises(CorpusError, match=re.escape(f"{fsc_copy.resolve() / 'data/valid_data.csv'}: Fluent")):
        FluentCommands(fsc_copy).utterances(["dev"])


@pytest.mark.parametrize("column", ["path", "speakerId", "transcription", "action", "object", "location"])
def test_fluent_commands_missing_column(fsc_copy, column):
    listing = fsc_copy / "data/test_data.csv"
    lines = listing.read_text().splitlines()
    lines[0] = lines[0].replace(column, "renamed", 1)
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:1: column {column!r} missing")):
        FluentCommands(fsc_copy).utterances(["test"])


def test_fluent_commands_row_without_wav(fsc_copy):
    listing = fsc_copy / "data/train_data.csv"
    rel = list(csv.DictReader(listing.open(newline="")))[4]["path"]
    (fsc_copy / rel).unlink()
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:6: audio file ") + ".*not found"):
        FluentCommands(fsc_copy).utterances(["train"])


@pytest.mark.parametrize("bad", ["/abs/x.wav", "wavs/speakers/../../x.wav", "audio/SPK/x.wav", "wavs/speakers/x.wav"])
def test_fluent_commands_malformed_path(fsc_copy, bad):
    listing = fsc_copy / "data/valid_data.csv"
    lines = listing.read_text().splitlines()
    lines.insert(2, f"99,{bad},SPK,Stop the music,deactivate,music,none")
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:3: malformed path {bad!r}")):
        FluentCommands(fsc_copy).utterances(["dev"])


def test_fluent_commands_short_row_and_duplicate(fsc_copy):
    listing = fsc_copy / "data/test_data.csv"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join([*lines, "99,wavs/speakers/SPK/x.wav,SPK"]) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{listing.resolve()}:{len(lines) + 1}: row has fewer fields")):
        FluentCommands(fsc_copy).utterances(["test"])
    listing.write_text("\n".join([*lines, lines[1]]) + "\n")
    duplicate = re.escape(f"{listing.resolve()}:{len(lines) + 1}: ") + ".*already listed on line 2"
    with pytest.raises(CorpusError, match=duplicate):
        FluentCommands(fsc_copy).utterances(["test"])


# -- IEMOCAP ---------------------------------------------------------------------------------------------

KEPT = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}


def test_iemocap_ids_labels_meta_lengths(iemocap_root):
    corpus = Iemocap(iemocap_root)
    assert corpus.splits == ("Session1", "Session2", "Session3", "Session4", "Session5")
    utts = corpus.utterances(list(SESSIONS))
    assert_ordered(utts, list(SESSIONS))
    plan = iemocap_plan()
    kept = {t.id: t for t in plan if t.label in KEPT}
    assert sorted(u.id for u in utts) == sorted(kept)
    root = iemocap_root.resolve()
    for u in utts:
        t = kept[u.id]
        assert u.split == f"Session{t.session}"
        assert u.meta == {"label": KEPT[t.label], "speaker": f"Ses{t.session:02d}{t.gender}", "session": t.session,
                          "dialog": t.dialog, "original_label": t.label}
        assert u.path == str(root / f"Session{t.session}/sentences/wav/{t.dialog}/{u.id}.wav")
    # the speaker is the speaking turn's gender, not the dialog's
    male_turn = next(u for u in utts if u.id.startswith("Ses01F_") and u.id.split("_")[-1].startswith("M"))
    assert male_turn.meta["speaker"] == "Ses01M"
    assert Counter(u.meta["label"] for u in utts) == {"neu": 8, "hap": 8, "ang": 8, "sad": 8}
    assert_lengths_decode(utts)


def test_iemocap_merges_exc_and_counts_dropped(iemocap_root):
    corpus = Iemocap(iemocap_root)
    utts = corpus.utterances(list(SESSIONS))
    originals = Counter((u.meta["original_label"], u.meta["label"]) for u in utts)
    assert originals[("exc", "hap")] == 4 and originals[("hap", "hap")] == 4
    assert {u.meta["original_label"] for u in utts} == {"neu", "hap", "exc", "ang", "sad"}
    plan = iemocap_plan()
    for session in SESSIONS:
        n = int(session[-1])
        assert corpus.dropped[session] == Counter(t.label for t in plan if t.session == n and t.label not in KEPT)
    assert sum(corpus.dropped.values(), Counter()) == {"fru": 4, "xxx": 4}


def test_iemocap_reduced_copy(iemocap_root, tmp_path):
    root = tmp_path / "reduced"
    for session in ("Session2", "Session4"):
        shutil.copytree(iemocap_root / session, root / session)
    utts = Iemocap(root).utterances(["Session4", "Session2"])
    assert_ordered(utts, ["Session4", "Session2"])
    assert {u.meta["session"] for u in utts} == {2, 4}
    with pytest.raises(CorpusError, match=re.escape(f"{root.resolve() / 'Session1'}: IEMOCAP session folder")):
        Iemocap(root).utterances(["Session1"])


def test_iemocap_layout_variants(iemocap_root, tmp_path):
    wanted = Iemocap(iemocap_root).utterances(list(SESSIONS))
    outer = tmp_path / "download"
    base = copy_of(iemocap_root, outer, "IEMOCAP_full_release")
    labels = base / "Session1/dialog/EmoEvaluation"
    for path in labels.glob("*.txt"):
        to_crlf(path)
    bad = "[1.0 - 2.0]\tnot a label line\n"
    (labels / "._Ses01F_impro01.txt").write_text(bad)  # macOS resource fork
    (labels / "Categorical/Ses01F_impro01_e9_cat.txt").write_text(bad)
    (labels / "Ses01F_impro01.anvil").write_text(bad)
    (labels / "notes").mkdir()
    (base / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_X999.wav").write_bytes(b"unlabelled: not read")
    (outer / "IEMOCAP_full_release.tar.gz.md5").write_text("extra\n")
    got = Iemocap(outer).utterances(list(SESSIONS))
    assert summary(got) == summary(wanted)
    assert all(u.path.startswith(str(base.resolve())) for u in got)


@pytest.fixture
def iemocap_copy(iemocap_root, tmp_path) -> Path:
    return copy_of(iemocap_root, tmp_path)


def test_iemocap_labelled_wav_missing(iemocap_copy):
    labels = iemocap_copy / "Session3/dialog/EmoEvaluation/Ses03M_script01_1.txt"
    turn = next(t for t in iemocap_plan() if t.dialog == "Ses03M_script01_1" and t.label in KEPT)
    (iemocap_copy / f"Session3/sentences/wav/{turn.dialog}/{turn.id}.wav").unlink()
    lineno = line_of(labels, f"\t{turn.id}\t")
    with pytest.raises(CorpusError, match=re.escape(f"{labels.resolve()}:{lineno}: audio file ") + ".*not found"):
        Iemocap(iemocap_copy).utterances(["Session3"])
    Iemocap(iemocap_copy).utterances(["Session2"])


def test_iemocap_dropped_turn_needs_no_wav(iemocap_copy):
    turn = next(t for t in iemocap_plan() if t.label == "fru")
    (iemocap_copy / f"Session{turn.session}/sentences/wav/{turn.dialog}/{turn.id}.wav").unlink()
    utts = Iemocap(iemocap_copy).utterances([f"Session{turn.session}"])
    assert utts and turn.id not in {u.id for u in utts}


@pytest.mark.parametrize("bad", ["[6.2901 - 8.2357]\tSes02F_impro01_F009\t[2.5000, 2.5000, 2.5000]",
                                 "[6.2901 - 8.2357]\tSes02F_impro01_F009\tneu",
                                 "[6.2901 - 8.2357]\tutt9\tneu\t[2.5000, 2.5000, 2.5000]",
                                 "[6.2901 8.2357]\tSes02F_impro01_F009\tneu\t[2.5000, 2.5000, 2.5000]"])
def test_iemocap_malformed_label_line(iemocap_copy, bad):
    labels = iemocap_copy / "Session2/dialog/EmoEvaluation/Ses02F_impro01.txt"
    lines = labels.read_text().splitlines()
    lines.insert(4, bad)
    labels.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError, match=re.escape(f"{labels.resolve()}:5: malformed label line")):
        Iemocap(iemocap_copy).utterances(["Session2"])


def test_iemocap_duplicate_turn_and_missing_label_folder(iemocap_copy):
    labels = iemocap_copy / "Session5/dialog/EmoEvaluation"
    original = (labels / "Ses05F_impro01.txt").read_text()
    (labels / "Ses05F_zcopy.txt").write_text(original)
    lineno = line_of(labels / "Ses05F_zcopy.txt", "Ses05F_impro01_")
    with pytest.raises(CorpusError, match=re.escape(f"{(labels / 'Ses05F_zcopy.txt').resolve()}:{lineno}: ")
                       + ".*already labelled in Ses05F_impro01.txt"):
        Iemocap(iemocap_copy).utterances(["Session5"])
    shutil.rmtree(labels)
    with pytest.raises(CorpusError, match=re.escape(f"{labels.resolve()}: IEMOCAP label folder not found")):
        Iemocap(iemocap_copy).utterances(["Session5"])
