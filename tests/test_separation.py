"""Source separation (separation_stft) on a tiny Libri2Mix in s3prl's folders: the STFT, loss and scores
against their definitions (librosa's STFT, s3prl's MSELoss, pb_bss's SI-SDR), a stft_mag store training
through the CLI to a positive test SI-SDRi, the on-the-fly path, saved estimates, and bad corpora refused in one
line."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from superb.extract.extraction import ExtractRequest, extract
from superb.registry import UPSTREAMS
from superb.testing.cli import alone_and_shared, one_error_line, read_results, run_superb_here
from superb.extract.corpora.separation import Separation, subsample_ids
from superb.testing.corpora import make_libri2mix
from superb.train.config import SeparationConfig
from superb.train.report import build_table, collect
from superb.train.tasks.separation import scoring
from superb.train.tasks.separation.signals import istft, stft, stft_frames, suppress_end_impulse
from superb.train.tasks.separation.task import TASK

HOP = 320


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


# -- the definitions, written out -----------------------------------------------------------------------------


def librosa_stft(x: np.ndarray, n_fft: int = 512, hop: int = HOP, pad_mode: str = "reflect") -> np.ndarray:
    """librosa.stft(center=True, window='hann') in numpy: padded by n_fft // 2, periodic Hann, rfft per frame."""
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode=pad_mode)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = 1 + (len(padded) - n_fft) // hop
    return np.stack([np.fft.rfft(window * padded[t * hop: t * hop + n_fft]) for t in range(frames)])


def pb_bss_si_sdr(reference: np.ndarray, estimation: np.ndarray) -> np.ndarray:
    """pb_bss.evaluation.si_sdr: project onto the reference without removing the mean."""
    scale = np.sum(reference * estimation, -1, keepdims=True) / np.sum(reference ** 2, -1, keepdims=True)
    projection = scale * reference
    return 10 * np.log10(np.sum(projection ** 2, -1) / np.sum((estimation - projection) ** 2, -1))


def s3prl_mse_loss(masks, feat_length, mix_mag, mix_phase, tgt_mags, tgt_phases) -> torch.Tensor:
    """s3prl's separation_stft MSELoss(num_srcs=2, mask_type='NPSM').compute_loss, written out."""
    def loss(permute):
        parts = []
        for s, t in enumerate(permute):
            refer = tgt_mags[t] * torch.relu(torch.cos(mix_phase - tgt_phases[t]))
            parts.append(torch.sum(torch.sum(torch.pow(masks[s] * mix_mag - refer, 2), -1), -1))
        return sum(parts) / feat_length
    scores = torch.stack([loss(p) for p in itertools.permutations(range(2))])
    return torch.sum(torch.min(scores, dim=0).values) / (2 * feat_length.shape[0])


# -- fixed inputs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_stft_is_librosas_and_istft_inverts_it(pad_mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000 + 123).astype(np.float32)
    cfg = SeparationConfig(pad_mode=pad_mode)
    spec = stft(torch.from_numpy(x), cfg, HOP)
    assert spec.shape == (stft_frames(len(x), cfg, HOP), 257) == (1 + len(x) // HOP, 257)
    np.testing.assert_allclose(spec.numpy(), librosa_stft(x, pad_mode=pad_mode), atol=2e-3, rtol=1e-4)
    back = istft(spec, cfg, HOP, len(x)).numpy()
    covered = (len(x) // HOP) * HOP + 256  # the last frame's window ends here; librosa leaves the rest at 0
    np.testing.assert_allclose(back[:covered], x[:covered], atol=1e-4)
    assert not back[covered:].any()


def test_stft_mag_upstream_is_s3prls_spectrogram():
    up = UPSTREAMS.get("stft_mag").create()
    assert (up.spec.dim, up.spec.hop, up.spec.frame_rate) == (257, 320, 50.0)
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    hidden, frames = up(torch.from_numpy(x)[None], torch.tensor([8000]))
    assert int(frames[0]) == up.spec.num_frames(8000) == 1 + 8000 // 320
    np.testing.assert_allclose(hidden[0, :, 0].numpy(), np.abs(librosa_stft(x)), atol=2e-3, rtol=1e-4)
    assert up.spec.num_frames(0) == 0 and up.spec.num_frames(1) == 1


def test_si_sdr_is_pb_bss_without_mean_removal():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((2, 4000)) + 0.5  # an offset: removing the mean would change the score
    estimate = 0.7 * reference + 0.3 * rng.standard_normal((2, 4000)) + 0.2
    np.testing.assert_allclose(scoring.si_sdr(reference, estimate), pb_bss_si_sdr(reference, estimate), atol=1e-6)
    centred = pb_bss_si_sdr(reference - reference.mean(-1, keepdims=True), estimate - estimate.mean(-1, keepdims=True))
    assert np.abs(scoring.si_sdr(reference, estimate) - centred).min() > 0.1


def test_scores_pair_estimates_whatever_their_order():
    rng = np.random.default_rng(3)
    t = np.arange(32000) / 16000
    references = np.stack([np.sin(2 * np.pi * 220 * t) * (t < 1.2), np.sin(2 * np.pi * 330 * t + 1) * (t > 0.5)])
    references += 0.01 * rng.standard_normal(references.shape)
    mixture = references.sum(0)
    estimates = references + 0.05 * rng.standard_normal(references.shape)
    for how in ("sir", "si_sdr"):
        straight = scoring.score_mixture(mixture, references, estimates, how, perceptual=True)
        swapped = scoring.score_mixture(mixture, references, estimates[::-1], how, perceptual=True)
        assert straight["permutation"] == [0, 1] and swapped["permutation"] == [1, 0]
        for key in ("si_sdr", "input_si_sdr", "stoi", "pesq"):
            assert swapped[key] == pytest.approx(straight[key]), key
        assert straight["si_sdr"] == pytest.approx(pb_bss_si_sdr(references, estimates).mean())
        assert straight["input_si_sdr"] == pytest.approx(pb_bss_si_sdr(references, mixture[None]).mean())
        assert straight["si_sdr"] - straight["input_si_sdr"] > 10 and 0 < straight["stoi"] <= 1


def test_the_scoring_pool_gives_the_inline_scores():
    rng = np.random.default_rng(5)
    jobs = []
    for _ in range(3):
        references = rng.standard_normal((2, 8000))
        jobs.append((references.sum(0), references, references + 0.2 * rng.standard_normal((2, 8000)), "sir", True))
    inline = [scoring.score_mixture(*job) for job in jobs]
    pool = scoring.MixtureScorer(1)
    try:
        pooled = pool.resolve([pool.submit(*job) for job in jobs])
    finally:
        pool.close()
    for a, b in zip(inline, pooled, strict=True):  # one BLAS thread in the pool: equal to float rounding
        assert a["permutation"] == b["permutation"]
        assert [b[k] for k in ("si_sdr", "input_si_sdr", "stoi", "pesq")] == pytest.approx(
            [a[k] for k in ("si_sdr", "input_si_sdr", "stoi", "pesq")], rel=1e-9)


def test_a_silent_estimate_is_scored_not_a_crash():
    rng = np.random.default_rng(4)
    references = rng.standard_normal((2, 16000))
    estimates = np.stack([np.zeros(16000), references[0] + 0.1 * rng.standard_normal(16000)])
    scores = scoring.score_mixture(references.sum(0), references, estimates, "sir", perceptual=True)
    assert scores["silent"] and scores["permutation"] == [1, 0] and scores["pesq"] is None
    summary = scoring.summarize([scores])
    assert summary["silent_mixtures"] == 1 and summary["pesq_failed"] == 1


def test_loss_is_s3prls_and_ignores_the_speaker_order():
    torch.manual_seed(0)
    cfg, samples = SeparationConfig(), torch.tensor([6000, 4500])
    mix = torch.randn(2, 6000)
    sources = torch.randn(2, 2, 6000)
    mix[1, 4500:] = sources[1, :, 4500:] = 0
    frames = stft_frames(samples, cfg, HOP)
    masks = torch.rand(2, 2, int(frames.max()), 257)
    batch = {"sep_mix": mix, "sep_sources": sources, "sep_samples": samples, "sep_stft": (cfg, HOP)}
    ours = TASK.loss(masks, frames, batch)
    mixture = [stft(mix[b, : int(n)], cfg, HOP) for b, n in enumerate(samples)]
    target = [[stft(sources[b, s, : int(n)], cfg, HOP) for b, n in enumerate(samples)] for s in range(2)]
    pad = torch.nn.utils.rnn.pad_sequence
    expected = s3prl_mse_loss(masks.unbind(1), frames.float(), pad([m.abs() for m in mixture], batch_first=True),
                              pad([m.angle() for m in mixture], batch_first=True),
                              [pad([x.abs() for x in t], batch_first=True) for t in target],
                              [pad([x.angle() for x in t], batch_first=True) for t in target])
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)
    swapped = {**batch, "sep_sources": sources.flip(1)}
    assert float(TASK.loss(masks, frames, swapped)) == pytest.approx(float(ours), rel=1e-6)


def test_an_end_impulse_is_cut_as_s3prl_cuts_it():
    x = np.zeros(10000, dtype=np.float32)
    x[:9990] = 0.1 * np.sin(np.arange(9990) / 5)
    x[9800] = 3.0  # louder than all before the last 512 samples
    out = suppress_end_impulse(x)
    assert not out[9800:].any() and np.array_equal(out[:9800], x[:9800])
    x[9800] = 0.05
    assert suppress_end_impulse(x) is x
    early = np.zeros(10000, dtype=np.float32)
    early[:5000] = 1.0  # silent for more than 2048 samples at the end: unchanged
    assert suppress_end_impulse(early) is early


def test_dev_1000_is_drawn_as_subsample_py_draws_it():
    import random

    ids = [f"{k:04d}_{k + 7:04d}" for k in range(30)]
    expected = sorted(ids)
    random.seed(7)
    random.shuffle(expected)
    assert subsample_ids(list(reversed(ids)), 10) == sorted(expected[:10])


# -- through the CLI ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def libri2mix(tmp_path_factory) -> tuple[Path, Path]:
    """``(--root, stores/stft_mag)``: 48 training mixtures, dev_1000 of 3, test of 4."""
    base = tmp_path_factory.mktemp("libri2mix")
    root = make_libri2mix(base, {"train-100": 48, "dev": 4, "test": 4})
    stores = base / "stores" / "stft_mag"
    extract(ExtractRequest(upstream="stft_mag", corpus="separation", root=root, out=stores, progress=False))
    return root, stores


SMALL = ("config.runner.total_steps=200,,config.runner.eval_step=100,,config.runner.log_step=100,,"
         "config.runner.save_step=100,,config.model.rnn_layers=1,,config.model.rnn_dim=64,,"
         "config.model.rnn_dropout=0.2,,config.optimizer.lr=3e-3")


def test_stft_mag_store_learns_to_separate_and_evaluate_saves_the_estimates(libri2mix, tmp_path):
    _, stores = libri2mix
    expdir = tmp_path / "sep"
    result = superb("fit", "-d", "separation_stft", "--features", str(stores), "-p", str(expdir), "-o", SMALL)
    assert result.returncode == 0, result.stderr
    out = read_results(expdir)
    # measured (seed 0, one thread): test SI-SDRi 7.8 dB after 300 steps at lr 3e-3, 6.2 dB at 1e-3
    assert out["test"]["si_sdri"] > 3.0, out["test"]
    assert out["test"]["mixtures"] == 4 and out["dev"]["mixtures"] == 3 and "stoi" not in out["dev"]
    assert 0.5 < out["test"]["stoi"] <= 1 and 1.0 <= out["test"]["pesq"] <= 4.7 and out["test"]["pesq_failed"] == 0
    assert out["notes"]["stft_hop"] == 320 and out["notes"]["permutation"] == "sir"
    rows = (expdir / "test_scores.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["mixture", "si_sdri", "si_sdr"] and len(rows) == 5
    table = build_table(collect([expdir]))
    assert [c.metric for c in table.columns] == ["si_sdri", "stoi", "pesq"]

    saved = tmp_path / "estimates"
    again = superb("evaluate", "-e", str(expdir), "-t", "test", "--save-audio", str(saved))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["si_sdri"] == pytest.approx(out["test"]["si_sdri"], abs=1e-6)
    first = rows[1].split("\t")[0]
    assert len(list(saved.glob("*.wav"))) == 8
    wave, rate = soundfile.read(str(saved / f"{first}_s1.wav"))
    assert rate == 16000 and wave.ndim == 1 and np.abs(wave).max() > 0


def test_on_the_fly_path_trains_the_same_as_the_store(libri2mix, tmp_path):
    root, stores = libri2mix
    # trained on the 4 test mixtures in one batch, no dropout: the two paths see the same batches (pools order
    # them by frames from a store, by samples on the fly) and must give the same losses
    small = ("config.runner.total_steps=2,,config.runner.log_step=1,,config.runner.eval_step=2,,"
             "config.runner.save_step=2,,config.model.rnn_layers=1,,config.model.rnn_dim=32,,"
             "config.model.rnn_dropout=0.0,,config.data.train=test,,config.data.batch_size=4,,"
             "config.optimizer.lr=3e-3,,config.separation.permutation=si_sdr")
    for name, source in (("store", ["--features", str(stores)]), ("otf", ["-u", "stft_mag", "--root", str(root)])):
        result = superb("fit", "-d", "separation_stft", *source, "-p", str(tmp_path / name), "-o", small)
        assert result.returncode == 0, result.stderr
    logs = {name: [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
            for name in ("store", "otf")}
    losses = {name: [r["loss"] for r in log if r["split"] == "train"] for name, log in logs.items()}
    assert losses["store"] == pytest.approx(losses["otf"], rel=1e-4) and len(losses["store"]) == 2
    assert losses["store"][1] < losses["store"][0]
    assert read_results(tmp_path / "otf")["source"] == "on-the-fly"


def test_librimix_own_folders_read_as_data_prepare_lists_them(libri2mix):
    """LibriMix's output itself (wavs, no lists): the same mixtures and sources, dev_1000 drawn as subsample.py."""
    lists, _ = libri2mix
    raw = Separation(lists.parent.parent / "Libri2Mix")
    listed = Separation(lists)
    assert raw.default_splits() == listed.default_splits() == ["train-100", "dev_1000", "test"]
    for split in ("train-100", "dev", "test"):
        assert [u.to_record() for u in raw.utterances([split])] == [u.to_record() for u in listed.utterances([split])]
    dev = [u.id for u in listed.utterances(["dev"])]  # 4, so subsample.py's 1,000 keep them all
    assert [u.id for u in raw.utterances(["dev_1000"])] == dev
    assert {u.split for u in raw.utterances(["dev_1000"])} == {"dev_1000"}


def _copy_lists(root: Path, tmp: Path) -> Path:
    """A copy of the Kaldi-style lists (the audio stays where they point)."""
    return Path(shutil.copytree(root, tmp / "lists"))


def test_bad_corpora_and_settings_fail_in_one_line(libri2mix, tmp_path):
    root, stores = libri2mix

    def extract_error(folder: Path) -> str:
        return one_error_line(superb("extract", "-u", "stft_mag", "--corpus", "separation", "--root", str(folder),
                                     "--splits", "test", "--out", str(tmp_path / "stores")))

    lists = _copy_lists(root, tmp_path / "a")
    scp = lists / "wav16k" / "min" / "test" / "s2" / "wav.scp"
    lines = scp.read_text().splitlines()
    scp.write_text("\n".join(lines[:-1] + [lines[-1].split()[0] + " " + str(tmp_path / "gone.wav")]) + "\n")
    assert f"{scp}:4" in (line := extract_error(lists)) and "not found" in line

    scp.write_text("\n".join(lines[:-1]) + "\n")  # the last mixture has no s2
    line = extract_error(lists)
    assert "has no s2 in" in line and str(scp.parent) in line

    short = tmp_path / "short.wav"
    first_s1 = Path(lines[0].split()[1].replace("/s2/", "/s1/"))
    wave, rate = soundfile.read(str(first_s1))
    soundfile.write(str(short), wave[:-100], rate)
    scp.write_text("\n".join([lines[0].split()[0] + " " + str(short), *lines[1:]]) + "\n")
    line = extract_error(lists)
    assert str(short) in line and "must line up" in line

    mismatch = one_error_line(superb("fit", "-d", "separation_stft", "--features", str(stores), "-p",
                                     str(tmp_path / "run"), "-o", "config.separation.hop_length=160"))
    assert "separation.hop_length 160 differs from the upstream's frame hop 320" in mismatch


def test_two_processes_train_as_one_and_a_resumed_run_ends_the_same(libri2mix, tmp_path):
    """torchrun: 2 processes × batch 4 give one process's 4 × 2 accumulated; ``-e states-10.ckpt`` resumes the
    one-process run to the same results (the batches' waveforms are read again where the stream stood). Trained
    on the 4 test mixtures, scored with the SI-SDR pairing: mir_eval's import alone costs 3 s a process."""
    _, stores = libri2mix
    override = ("config.runner.total_steps=20,,config.runner.log_step=5,,config.runner.eval_step=10,,"
                "config.runner.save_step=10,,config.runner.max_keep=2,,config.model.rnn_layers=1,,"
                "config.model.rnn_dim=32,,config.model.rnn_dropout=0.0,,config.data.batch_size=4,,"
                "config.runner.gradient_accumulate_steps=2,,config.optimizer.lr=3e-3,,config.data.train=test,,"
                "config.separation.permutation=si_sdr")
    args = ("fit", "-d", "separation_stft", "--features", str(stores), "-o", override)
    alone_and_shared(superb, args, tmp_path / "one", tmp_path / "two")

    def figures(expdir: Path) -> list[float]:
        log = [json.loads(line) for line in (expdir / "log.jsonl").read_text().splitlines()]
        return [x for r in log for x in (r["step"], r["loss"] if r["split"] == "train" else r["si_sdri"])]

    one = figures(tmp_path / "one")
    assert figures(tmp_path / "two") == pytest.approx(one, rel=1e-4) and len(one) == 12
    whole = read_results(tmp_path / "one")
    resumed = superb("fit", "-d", "separation_stft", "-e", str(tmp_path / "one" / "states-10.ckpt"))
    assert resumed.returncode == 0, resumed.stderr
    assert figures(tmp_path / "one") == pytest.approx(one, rel=1e-5)
    assert read_results(tmp_path / "one")["test"] == pytest.approx(whole["test"], rel=1e-5)


def test_a_centred_upstream_cannot_cut_frame_windows_from_audio():
    """SD's chunks on the fly need the frames a cut of audio gives; a centred STFT pads each cut anew."""
    from types import SimpleNamespace

    from superb.errors import ConfigError
    from superb.train.data import Item
    from superb.train.onthefly import AudioItems

    records = [{"id": "r", "path": "r.wav", "num_samples": 32000}]
    source = SimpleNamespace(split=lambda name: SimpleNamespace(records=records))
    spec = UPSTREAMS.get("stft_mag").create().spec
    with pytest.raises(ConfigError, match="pads each utterance before framing"):
        AudioItems(source, [Item("train", 0, (), 10, 20)], spec=spec)
    assert AudioItems(source, [Item("train", 0, ())], spec=spec).lengths == [32000]  # whole utterances are fine
