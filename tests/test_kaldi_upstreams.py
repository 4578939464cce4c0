"""fbank / mfcc / stft_mag against torchaudio called directly, and the upstream contract for all three."""

from __future__ import annotations

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as F

from superb.errors import ConfigError
from superb.extract.upstreams.base import parse_layers
from superb.registry import UPSTREAMS


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


def test_fbank_default_is_s3prl_recipe():
    up = UPSTREAMS.get("fbank").create()
    wave = _wave(12345, seed=1)
    hidden, _ = _forward(up, [wave])
    f = kaldi.fbank(wave[None], num_mel_bins=80, sample_frequency=16000, dither=0.0)
    d1 = F.compute_deltas(f.T, win_length=5).T
    d2 = F.compute_deltas(d1.T, win_length=5).T
    full = torch.cat([f, d1, d2], dim=-1)
    ref = (full - full.mean(0)) / (full.std(0, unbiased=False) + 1e-5)
    assert up.spec.dim == 240
    torch.testing.assert_close(hidden[0, :, 0], ref, rtol=1e-5, atol=1e-5)
    # per-utterance CMVN: every dimension has zero mean over time, so mean-pooling gives ~0 vectors
    assert hidden[0, :, 0].mean(0).abs().max() < 1e-4


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
