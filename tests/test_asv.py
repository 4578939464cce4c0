"""ASV end to end: the VoxCeleb1 verification reader (s3prl's sox trimming), training through the CLI with
both protocols, EER/minDCF and s3prl's score file."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from superb.errors import CorpusError
from superb.extract.audio import EDIT_KEY, read, read_record
from superb.extract.corpora.voxceleb1 import VoxCeleb1, read_trials
from superb.extract.trim import trim
from superb.testing.cli import one_error_line, read_results, run_superb_here
from superb.testing.corpora import make_voxceleb1


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


@pytest.fixture(scope="module")
def vox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 dev speakers × 8 utterances, 3 test speakers; one dev file gets digital silence around its speech."""
    root = make_voxceleb1(tmp_path_factory.mktemp("vox_sv"), speakers=10, videos=2, utts_per_video=4,
                          test_speakers=3)
    padded = next(iter(sorted((root / "dev" / "wav").glob("*/*/*.wav"))))
    wave, rate = soundfile.read(padded, dtype="float32")
    half = len(wave) // 2
    silence = np.zeros(rate // 2, dtype=np.float32)
    soundfile.write(padded, np.concatenate([silence, wave[:half], silence, wave[half:], silence]), rate)
    return root


@pytest.fixture(scope="module")
def sv_store(vox_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fbank without CMVN (per-utterance CMVN removes the spectral envelope that tells voices apart)."""
    out = tmp_path_factory.mktemp("sv_stores") / "fbank_plain"
    config = out.parent / "fbank.yaml"
    config.write_text("cmvn: false\n")
    result = superb("extract", "-u", "fbank", "-g", str(config), "--corpus", "voxceleb1", "--root", str(vox_root),
                    "-c", "verification=true", "-c", "min_seconds=1", "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert (out / "voxceleb1_sv").is_dir()
    return out


def test_verification_reader_trims_as_sox_and_keeps_archives_apart(vox_root):
    corpus = VoxCeleb1(vox_root, verification=True, min_seconds=1)
    assert corpus.splits == ("train", "test") and corpus.store_name == "voxceleb1_sv"
    utts = corpus.utterances(corpus.splits)
    train = [u for u in utts if u.split == "train"]
    test = [u for u in utts if u.split == "test"]
    assert {u.meta["speaker"] for u in train}.isdisjoint({u.meta["speaker"] for u in test})
    assert len(test) == 3 * 8 and len(train) == 10 * 8 - 3 * 8
    padded = train[0]
    whole = read(padded.path)
    expected = trim(whole)
    assert padded.num_samples == len(expected) < len(whole) - 16000  # the 1.5 s of silence is gone
    assert len(padded.meta[EDIT_KEY]["keep"]) == 2 and padded.meta[EDIT_KEY]["gain_db"] == -3.0
    np.testing.assert_allclose(read_record(padded.to_record()), expected, atol=1e-6)


def test_verification_reader_drops_short_train_files_and_says_so(vox_root):
    with pytest.warns(UserWarning, match=r"train utterances are 2\.0 s or shorter"):
        long_only = VoxCeleb1(vox_root, verification=True).utterances(["train"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        everything = VoxCeleb1(vox_root, verification=True, min_seconds=0.5).utterances(["train"])
    assert 0 < len(long_only) < len(everything)
    assert all(u.num_samples > 2 * 16000 for u in long_only)


def test_merged_wav_tree_takes_test_speakers_from_the_trial_list(vox_root, tmp_path):
    merged = tmp_path / "vox"
    shutil.copytree(vox_root / "dev" / "wav", merged / "wav")
    shutil.copytree(vox_root / "test" / "wav", merged / "wav", dirs_exist_ok=True)
    shutil.copy(vox_root / "veri_test.txt", merged / "veri_test.txt")
    corpus = VoxCeleb1(merged, verification=True, trim=False)
    utts = corpus.utterances(corpus.splits)
    trial_speakers = {u.split("/")[0] for _, a, b in read_trials(merged / "veri_test.txt") for u in (a, b)}
    assert {u.meta["speaker"] for u in utts if u.split == "test"} == trial_speakers
    assert all(EDIT_KEY not in u.meta for u in utts)


def test_verification_without_the_test_archive_is_one_clear_error(vox_root, tmp_path):
    partial = tmp_path / "vox"
    shutil.copytree(vox_root / "dev", partial / "dev")
    with pytest.raises(CorpusError, match="test/wav"):
        VoxCeleb1(partial, verification=True).utterances(["train", "test"])


# weight decay 0: the figures below were measured without it. With s3prl's 0.01 (the default since it was
# matched) the 2-speaker dev list picked step 200 (dev EER 0.045) whose test EER was 0.375; without it step
# 600, test EER 0.21 (seed 0). Selection on so small a dev list is noise; the optimiser itself is checked
# against s3prl's in test_config.py.
ASV_RUN = ("config.runner.total_steps=600,,config.runner.eval_step=200,,config.runner.save_step=200,,"
           "config.runner.log_step=100,,config.data.dev_speakers=2,,config.runner.gradient_accumulate_steps=1,,"
           "config.data.batch_size=8,,config.optimizer.lr=1e-3,,config.optimizer.weight_decay=0.0,,"
           "config.model.projector_dim=64,,config.model.agg_dim=128")


def test_asv_trains_and_scores_far_below_chance(sv_store, vox_root, tmp_path):
    expdir = tmp_path / "asv"
    result = superb("fit", "-d", "asv", "--features", str(sv_store), "-p", str(expdir), "-o", ASV_RUN)
    assert result.returncode == 0, result.stderr
    out = read_results(expdir)
    assert out["protocol"] == "dev" and (expdir / "dev-best.ckpt").is_file()
    assert out["notes"]["dev_speakers"] == 2 and out["notes"]["train_speakers"] == 5
    # measured (seeds 0-2, 600 steps): test EER of the dev-selected checkpoint 0.17-0.25 (chance 0.5)
    assert out["test"]["eer"] < 0.35 and 0 <= out["test"]["min_dcf"] <= 1
    # s3prl's score file, and the EER recomputed from it with sklearn directly
    trials = read_trials(vox_root / "veri_test.txt")
    lines = (expdir / "test_predict.txt").read_text().splitlines()
    assert len(lines) == len(trials)
    assert lines[0].split()[0] == f"{trials[0][1].replace('/', '-')}_{trials[0][2].replace('/', '-')}"
    labels = np.array([t[0] for t in trials])
    scores = np.array([float(line.split()[1]) for line in lines])
    fpr, tpr, _ = roc_curve(labels, scores)
    assert out["test"]["eer"] == pytest.approx(brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0), abs=1e-9)


def test_asv_s3prl_protocol_reports_the_best_test_checkpoint(sv_store, tmp_path):
    expdir = tmp_path / "asv_s3prl"
    result = superb("fit", "-d", "asv", "--features", str(sv_store), "-p", str(expdir), "-o",
                    ASV_RUN + ",,config.runner.protocol=s3prl")
    assert result.returncode == 0, result.stderr
    out = read_results(expdir)
    assert out["protocol"] == "s3prl" and (expdir / "test-best.ckpt").is_file()
    assert out["notes"]["dev_speakers"] == 0 and out["notes"]["train_speakers"] == 7 and out["dev"] == {}
    logged = [json.loads(line) for line in (expdir / "log.jsonl").read_text().splitlines()]
    test_eers = {r["step"]: r["eer"] for r in logged if r["split"] == "test"}
    assert len(test_eers) == 3  # every saved checkpoint scored
    assert out["best_step"] == min(test_eers, key=test_eers.get)
    assert out["test"]["eer"] == pytest.approx(min(test_eers.values()))
    # resuming from an earlier checkpoint finds the verification store again and ends the same
    again = superb("fit", "-d", "asv", "-e", str(expdir / "states-400.ckpt"))
    assert again.returncode == 0, again.stderr
    assert read_results(expdir) == out


def test_asv_refuses_the_identification_store_and_s3prl_protocol_elsewhere(tmp_path, voxceleb1_root):
    stores = tmp_path / "stores"
    assert superb("extract", "-u", "fbank", "--corpus", "voxceleb1", "--root", str(voxceleb1_root),
                  "--out", str(stores), "-q").returncode == 0
    line = one_error_line(superb("fit", "-d", "asv", "--features", str(stores / "voxceleb1"),
                                 "-p", str(tmp_path / "x")))
    assert "verification=true" in line
    line = one_error_line(superb("fit", "-d", "sid", "--features", str(stores), "-p", str(tmp_path / "y"),
                                 "-o", "config.runner.protocol=s3prl"))
    assert "protocol 's3prl'" in line and "asv, sd" in line


def test_asv_on_the_fly_reads_the_verification_corpus(vox_root, tmp_path):
    expdir = tmp_path / "asv_otf"
    result = superb("fit", "-d", "asv", "-u", "fbank", "--root", str(vox_root), "-p", str(expdir), "-o",
                    ASV_RUN.replace("total_steps=600", "total_steps=20").replace("eval_step=200", "eval_step=20")
                    .replace("save_step=200", "save_step=20"))
    assert result.returncode == 0, result.stderr
    out = read_results(expdir)
    assert out["source"] == "on-the-fly" and 0 <= out["test"]["eer"] <= 1
    assert len((expdir / "test_predict.txt").read_text().splitlines()) == len(read_trials(vox_root / "veri_test.txt"))


def test_trim_intervals_are_cached_and_refreshed_when_a_file_changes(vox_root, tmp_path, monkeypatch):
    import superb.extract.trim as trim_module

    monkeypatch.setenv("SUPERB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "vox"
    shutil.copytree(vox_root, root)
    first = VoxCeleb1(root, verification=True, min_seconds=0.5).utterances(["test"])
    [cache] = (tmp_path / "cache").glob("trim-*.jsonl")
    with cache.open("a") as handle:
        handle.write('{"path": "torn by a ki')  # what a kill mid-write leaves

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(trim_module, "silence_intervals", no_decoding)
    again = VoxCeleb1(root, verification=True, min_seconds=0.5).utterances(["test"])
    assert [u.to_record() for u in again] == [u.to_record() for u in first]
    changed = Path(first[0].path)
    wave, rate = soundfile.read(changed, dtype="float32")
    soundfile.write(changed, np.concatenate([np.zeros(rate, dtype=np.float32), wave]), rate)
    with pytest.raises(AssertionError, match="decoded again"):  # a changed file is trimmed anew
        VoxCeleb1(root, verification=True, min_seconds=0.5).utterances(["test"])
