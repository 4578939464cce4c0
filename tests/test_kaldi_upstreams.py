"""fbank / mfcc / stft_mag against torchaudio and s3prl's baseline recipe, and the upstream contract for all three."""

from __future__ import annotations

import pytest
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi

from superb.errors import ConfigError
from superb.extract import audio
from superb.extract.upstreams.base import parse_layers
from superb.extract.upstreams.kaldi import cmvn
from superb.registry import UPSTREAMS
from superb.testing.speech import synthesize


def _wave(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    return 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(n, generator=g)


def _forward(upstream, waves: list[torch.Tensor]):
    lengths = torch.tensor([w.shape[0] for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : w.shape[0]] = w
    return upstream(batch, lengths)


def test_fbank_equals_kaldi_plain():
    up = UPSTREAMS.get("fbank").create(options={"deltas": 0, "cmvn": False})
    wave = _wave(16000)
    hidden, lengths = _forward(up, [wave])
    ref = kaldi.fbank(wave[None], num_mel_bins=80, sample_frequency=16000, dither=0.0)
    assert hidden.shape == (1, ref.shape[0], 1, 80)
    torch.testing.assert_close(hidden[0, :, 0], ref, rtol=0, atol=1e-6)


def s3prl_extracter(feats: torch.Tensor) -> torch.Tensor:
    """s3prl's baseline ``Delta(order=2, win_length=5)`` then ``CMVN(use_cmvn=True)``, written out literally."""
    parts = [feats]
    for _ in range(2):
        delta = torchaudio.transforms.ComputeDeltas(win_length=5)(parts[-1].transpose(0, 1).unsqueeze(0))
        parts.append(delta.squeeze(0).transpose(0, 1))
    x = torch.cat(parts, dim=-1)
    return (x - x.mean(dim=0, keepdim=True)) / (1e-10 + x.std(dim=0, keepdim=True))


def test_fbank_default_is_s3prl_recipe():
    up = UPSTREAMS.get("fbank").create()
    wave = _wave(12345, seed=1)
    hidden, _ = _forward(up, [wave])
    ref = s3prl_extracter(kaldi.fbank(wave[None], num_mel_bins=80, sample_frequency=16000, dither=0.0))
    assert up.spec.dim == 240
    torch.testing.assert_close(hidden[0, :, 0], ref, rtol=0, atol=1e-6)
    # per-utterance CMVN: every dimension has zero mean over time, so mean-pooling gives ~0 vectors
    assert hidden[0, :, 0].mean(0).abs().max() < 1e-4


@pytest.mark.parametrize("frames", [2, 3, 7, 160, 1001])
def test_cmvn_is_s3prls_formula(frames):
    g = torch.Generator().manual_seed(frames)
    x = 3.0 * torch.randn(frames, 40, generator=g) - 7.0
    x[:, 0] = 2.5  # a constant dimension: 0 / (0 + 1e-10) = 0 in both
    s3prl = (x - x.mean(dim=0, keepdim=True)) / (1e-10 + x.std(dim=0, keepdim=True))
    torch.testing.assert_close(cmvn(x), s3prl, rtol=0, atol=1e-6)
    assert cmvn(x)[:, 0].abs().max() == 0


def test_cmvn_of_one_frame_is_zeros_where_s3prl_gives_nan():
    x = torch.tensor([[1.0, -2.0, 30.0]])
    with pytest.warns(UserWarning):  # torch: degrees of freedom <= 0
        assert torch.isnan(x.std(dim=0, keepdim=True)).all()
    assert torch.equal(cmvn(x), torch.zeros(1, 3))
    assert cmvn(torch.zeros(0, 3)).shape == (0, 3)
    up = UPSTREAMS.get("mfcc").create()
    hidden, frames = _forward(up, [_wave(500)])  # 400..559 samples make one frame
    assert frames.tolist() == [1] and torch.equal(hidden[0], torch.zeros(1, 1, 39))


def test_fbank_and_mfcc_equal_s3prl_on_speech(tmp_path):
    path = synthesize("the quick brown fox jumps over the lazy dog", tmp_path / "fox.wav")
    wave = torch.from_numpy(audio.read(path))
    for name, kaldi_feats in (("fbank", kaldi.fbank(wave[None], num_mel_bins=80, sample_frequency=16000)),
                              ("mfcc", kaldi.mfcc(wave[None], num_ceps=13, sample_frequency=16000))):
        hidden, _ = _forward(UPSTREAMS.get(name).create(), [wave])
        torch.testing.assert_close(hidden[0, :, 0], s3prl_extracter(kaldi_feats), rtol=0, atol=1e-6)


def test_cmvn_is_part_of_the_identity():
    """Stores made with superb's earlier CMVN (biased std + 1e-5) lack ``cmvn_std``, so they are refused."""
    assert UPSTREAMS.get("fbank").create().identity()["config"]["cmvn_std"] == "unbiased+1e-10"
    assert UPSTREAMS.get("mfcc").create().identity()["config"]["cmvn_std"] == "unbiased+1e-10"
    plain = UPSTREAMS.get("fbank").create(options={"cmvn": False}).identity()["config"]
    assert plain == {"num_mel_bins": 80, "num_ceps": 13, "deltas": 2, "cmvn": False}  # unchanged features


def test_mfcc_equals_kaldi():
    up = UPSTREAMS.get("mfcc").create(options={"deltas": 0, "cmvn": False})
    wave = _wave(9000, seed=2)
    hidden, _ = _forward(up, [wave])
    ref = kaldi.mfcc(wave[None], num_ceps=13, sample_frequency=16000, dither=0.0)
    torch.testing.assert_close(hidden[0, :, 0], ref, rtol=0, atol=1e-5)
    assert UPSTREAMS.get("mfcc").create().spec.dim == 39


@pytest.mark.parametrize("name", ["fbank", "mfcc", "stft_mag"])
def test_num_frames_matches_output_and_batch_independence(name):
    up = UPSTREAMS.get(name).create()
    lengths = [0, 1, 399, 400, 401, 511, 512, 560, 639, 640, 1000, 4321, 16000, 16001]
    waves = [_wave(n, seed=n) for n in lengths]
    hidden, frames = _forward(up, waves)
    for i, n in enumerate(lengths):
        assert int(frames[i]) == up.spec.num_frames(n)
        alone, alone_frames = _forward(up, [waves[i]])
        assert alone.shape[1] == up.spec.num_frames(n) == int(alone_frames[0])
        torch.testing.assert_close(hidden[i, : int(frames[i])], alone[0], rtol=0, atol=0)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="unknown option 'num_mels'"):
        UPSTREAMS.get("fbank").create(options={"num_mels": 40})
    with pytest.raises(ConfigError, match="must be true or false"):
        UPSTREAMS.get("fbank").create(options={"cmvn": "no"})
    with pytest.raises(ConfigError, match="has no weights"):
        UPSTREAMS.get("fbank").create(random_init="tiny")
    assert UPSTREAMS.get("fbank").create(options={"num_mel_bins": 40}).spec.dim == 120
    assert UPSTREAMS.get("stft_mag").create(options={"n_fft": 400, "hop_length": 160}).spec.dim == 201


def test_parse_layers():
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("2,0", 13) == [0, 2]
    assert parse_layers("4", 13) == [4]  # an integer is a layer index, never "the last n"
    with pytest.raises(ConfigError, match="out of range"):
        parse_layers("13", 13)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_layers("last", 13)


def test_unknown_upstream_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'wavlm'"):
        UPSTREAMS.get("wavlmm")
