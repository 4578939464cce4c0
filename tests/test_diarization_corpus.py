"""The diarization reader on a tiny Libri2Mix-style corpus: recordings, turns against the audio, path styles,
variants, and a ``CorpusError`` naming the file (and line) for each layout fault."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from superb.errors import CorpusError
from superb.extract.corpora.diarization import Diarization
from superb.registry import CORPORA
from superb.testing.checks import assert_lengths_decode, assert_ordered
from superb.testing.corpora import DIARIZATION_SPLITS, DIARIZATION_WAV_SCP, make_diarization

SPLITS = list(DIARIZATION_SPLITS)


@pytest.fixture(scope="module")
def diar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 recordings per split, 6 s each, two voices taking four turns with one partial overlap."""
    return make_diarization(tmp_path_factory.mktemp("corpora") / "diarization")


@pytest.fixture
def copy(diar_root: Path, tmp_path: Path) -> Path:
    """A copy to break; ``dev/wav.scp``'s absolute paths still point at the pristine audio."""
    return Path(shutil.copytree(diar_root, tmp_path / "diarization"))


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write(path: Path, rows: list[str]) -> None:
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")


def test_registry_points_at_the_reader():
    assert CORPORA.get("diarization") is Diarization


def test_one_utterance_per_recording_with_sorted_turns(diar_root):
    utts = Diarization(diar_root).utterances(SPLITS)
    assert_ordered(utts, SPLITS)
    assert [sum(u.split == s for u in utts) for s in SPLITS] == [2, 2, 2]
    speakers = set()
    for u in utts:
        assert u.num_samples == 6 * 16_000
        assert len(u.meta["speakers"]) == 2 and u.meta["speakers"] == sorted(u.meta["speakers"])
        assert [part.split("-")[0] for part in u.id.split("_")] == u.meta["speakers"]  # Libri2Mix-style id
        segments = u.meta["segments"]
        assert segments == sorted(segments) and len(segments) == 4
        assert [s[2] for s in segments] == [u.meta["speakers"][i] for i in (0, 1, 0, 1)]  # turns A, B, A, B
        assert all(0 < start < end < 6 for start, end, _ in segments)
        overlaps = [(a, b) for a, b in zip(segments, segments[1:]) if b[0] < a[1]]
        assert len(overlaps) == 1 and overlaps[0][0][2] != overlaps[0][1][2]  # only the last two turns
        speakers |= set(u.meta["speakers"])
    assert len(speakers) == 12  # every recording has its own pair of voices
    assert_lengths_decode(utts)


def test_turns_are_where_the_speech_is(diar_root):
    for u in Diarization(diar_root).utterances(SPLITS):
        wave, rate = soundfile.read(u.path, dtype="float32")
        inside = np.zeros(len(wave), dtype=bool)
        for start, end, _ in u.meta["segments"]:
            a, b = round(start * rate), round(end * rate)
            inside[a:b] = True
            edge = rate // 100  # speech within 10 ms of both ends of each turn
            assert np.abs(wave[a:a + edge]).max() > 0.002 and np.abs(wave[b - edge:b]).max() > 0.002, u.id
        assert not np.any(wave[~inside]), u.id  # outside the turns: digital silence


def test_relative_and_absolute_wav_scp_paths(diar_root):
    assert set(DIARIZATION_WAV_SCP.values()) == {"relative", "absolute"}
    utts = Diarization(diar_root).utterances(SPLITS)
    for split in SPLITS:
        shown = [row.split(" ", 1)[1] for row in lines(diar_root / split / "wav.scp")]
        assert all(Path(p).is_absolute() == (DIARIZATION_WAV_SCP[split] == "absolute") for p in shown)
        paths = [u.path for u in utts if u.split == split]
        assert paths == [str((diar_root / "wav" / split / f"{u.id}.wav").resolve()) for u in utts if u.split == split]


def test_same_arguments_same_bytes(tmp_path):
    def digest(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    root = tmp_path / "d"
    make_diarization(root, recordings_per_split=1, seconds=5.0, seed=3)
    first = digest(root)
    shutil.rmtree(root)
    make_diarization(root, recordings_per_split=1, seconds=5.0, seed=3)
    assert digest(root) == first
    other = tmp_path / "e"
    make_diarization(other, recordings_per_split=1, seconds=5.0, seed=4)
    assert lines(other / "train" / "segments") != lines(root / "train" / "segments")  # the seed places turns
    with pytest.raises(ValueError, match="too short"):
        make_diarization(tmp_path / "f", recordings_per_split=1, seconds=2.0)


def test_data_folder_rttm_fallback_and_extra_files(diar_root, tmp_path):
    wanted = Diarization(diar_root).utterances(SPLITS)
    parent = tmp_path / "recipe"
    data = Path(shutil.copytree(diar_root, parent / "data"))  # s3prl keeps the dirs in data/
    for split in SPLITS:
        (data / split / "segments").unlink()
        (data / split / "utt2spk").unlink()
        (data / split / "utt2num_frames").write_text("ignored 1\n")
    got = Diarization(parent).utterances(SPLITS)
    assert [(u.id, u.meta) for u in got] == [(u.id, u.meta) for u in wanted]  # same turns, from the rttm


def test_missing_split_folder(copy):
    shutil.rmtree(copy / "test")
    assert len(Diarization(copy).utterances(["train", "dev"])) == 4
    with pytest.raises(CorpusError, match=r"diarization/test"):
        Diarization(copy).utterances(SPLITS)


@pytest.mark.parametrize("name", ["wav.scp", "reco2dur", "utt2spk"])
def test_missing_list_file(copy, name):
    (copy / "train" / name).unlink()
    with pytest.raises(CorpusError, match=rf"train/{name}: .*not found"):
        Diarization(copy).utterances(["train"])


def test_missing_segments_and_rttm(copy):
    (copy / "train" / "segments").unlink()
    (copy / "train" / "rttm").unlink()
    with pytest.raises(CorpusError, match=r"train/segments: .*nor .*train/rttm"):
        Diarization(copy).utterances(["train"])


def break_line(path: Path, lineno: int, edit) -> None:
    rows = lines(path)
    rows[lineno - 1] = edit(rows[lineno - 1])
    write(path, rows)


def fields(index: int, value: str):
    def edit(row: str) -> str:
        parts = row.split()
        parts[index] = value
        return " ".join(parts)
    return edit


@pytest.mark.parametrize(("name", "lineno", "edit", "message"), [
    ("segments", 2, lambda row: row.rsplit(" ", 1)[0], "malformed line"),
    ("segments", 3, fields(3, "late"), "not a number"),
    ("segments", 2, fields(1, "nowhere"), "'nowhere' is not in"),
    ("segments", 1, lambda row: " ".join(row.split()[:2] + [row.split()[3], row.split()[2]]), "not after its start"),
    ("segments", 4, fields(3, "6.02"), "outside recording"),
    ("segments", 1, fields(2, "-0.02"), "outside recording"),
    ("segments", 2, fields(0, "stray-segment"), "has no speaker"),
    ("utt2spk", 1, lambda row: row + " extra", "malformed line"),
    ("reco2dur", 1, fields(1, "six"), "not a number"),
    ("reco2dur", 2, fields(1, "0"), "not positive"),
    ("reco2dur", 2, fields(0, "unknown-rec"), "not in .*wav.scp"),
    ("wav.scp", 1, lambda row: row.split()[0], "malformed line"),
    ("wav.scp", 1, lambda row: f"{row.split()[0]} sox {row.split()[1]} -t wav - |", "command pipe"),
    ("wav.scp", 2, lambda row: row.replace(".wav", ".flac"), "not found"),
])
def test_layout_faults_name_file_and_line(copy, name, lineno, edit, message):
    break_line(copy / "train" / name, lineno, edit)
    with pytest.raises(CorpusError, match=rf"train/{name}:{lineno}: .*{message}"):
        Diarization(copy).utterances(["train"])


def test_small_overshoot_is_tolerated(copy):
    break_line(copy / "train" / "segments", 4, fields(3, "6.005"))
    utts = Diarization(copy).utterances(["train"])
    assert max(end for u in utts for _, end, _ in u.meta["segments"]) == 6.005


def test_duplicates_and_missing_durations(copy):
    scp = copy / "train" / "wav.scp"
    write(scp, lines(scp) + [lines(scp)[0]])
    with pytest.raises(CorpusError, match=r"train/wav.scp:3: .*listed twice \(first on line 1\)"):
        Diarization(copy).utterances(["train"])
    write(scp, lines(scp)[:2])
    reco2dur = copy / "train" / "reco2dur"
    write(reco2dur, lines(reco2dur)[:1])
    with pytest.raises(CorpusError, match=r"train/wav.scp:2: .*no line in .*reco2dur"):
        Diarization(copy).utterances(["train"])


def test_rttm_faults_name_file_and_line(copy):
    (copy / "train" / "segments").unlink()
    rttm = copy / "train" / "rttm"
    break_line(rttm, 3, fields(1, "elsewhere"))
    with pytest.raises(CorpusError, match=r"train/rttm:3: .*'elsewhere' is not in"):
        Diarization(copy).utterances(["train"])
    break_line(rttm, 3, lambda row: "SPEAKER elsewhere 1 0.5")
    with pytest.raises(CorpusError, match=r"train/rttm:3: malformed RTTM line"):
        Diarization(copy).utterances(["train"])
