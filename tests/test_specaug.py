"""SpecAugment as s3prl applies it on the featurizer output (ASR, SF): warp, masks, padding untouched."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from superb.train.config import ModelConfig, SpecAugConfig
from superb.train.tasks.ctc import CtcHead, RnnCtcHead, build_ctc_head, spec_augment, time_warp


def test_time_warp_keeps_shape_and_ends_and_moves_the_middle():
    torch.manual_seed(0)
    x = torch.arange(40, dtype=torch.float32)[:, None].repeat(1, 3)  # a ramp over time
    moved = False
    for _ in range(20):
        y = time_warp(x, window=5)
        assert y.shape == x.shape
        assert torch.allclose(y[0], x[0], atol=0.6) and torch.allclose(y[-1], x[-1], atol=0.6)
        moved |= not torch.allclose(y, x, atol=1e-3)
    assert moved


def test_time_warp_leaves_short_utterances_alone():
    x = torch.randn(10, 4)
    assert torch.equal(time_warp(x, window=5), x)


def test_masks_zero_bands_and_spans_within_valid_frames_only():
    torch.manual_seed(1)
    cfg = SpecAugConfig(enabled=True, time_warp=False, num_time_mask=2, time_mask_width=5, num_freq_mask=2,
                        freq_mask_width=3)
    x = torch.ones(2, 30, 12)
    x[1, 20:] = 7.0  # padding of the second row must come out unchanged
    y = spec_augment(x, torch.tensor([30, 20]), cfg)
    assert torch.equal(y[1, 20:], x[1, 20:]) and torch.equal(x[0], torch.ones(30, 12))  # input not modified
    zero_dims = (y[:, :20] == 0).all(dim=1)
    zero_frames = (y[:, :20] == 0).all(dim=2)
    assert zero_dims.any() and zero_frames.any()
    assert zero_dims.sum(dim=1).max() <= 2 * 3 and zero_frames.sum(dim=1).max() <= 2 * 5


@pytest.mark.parametrize("frames, expected_masks", [(100, 4), (1000, 20)])
def test_adaptive_time_masks_scale_with_length(frames, expected_masks):
    """s3prl's adaptive option: min(0.04 T, 20) masks of width ≤ min(40, 0.04 T)."""
    torch.manual_seed(2)
    cfg = SpecAugConfig(enabled=True, time_warp=False, num_freq_mask=0, adaptive=True)
    widest = min(cfg.time_mask_width, int(cfg.adaptive_size_ratio * frames))
    zeros = [(spec_augment(torch.ones(1, frames, 4), torch.tensor([frames]), cfg)[0] == 0).all(dim=1).sum()
             for _ in range(30)]
    assert max(zeros) <= expected_masks * widest
    assert max(zeros) > widest  # more than one mask


def test_heads_by_name_and_specaug_only_in_training():
    cfg = SpecAugConfig(enabled=True, freq_mask_width=3)
    assert isinstance(build_ctc_head(5, ModelConfig(head="linear", projector_dim=8), cfg, 7), CtcHead)
    rnn = build_ctc_head(5, ModelConfig(head="rnn", projector_dim=8, rnn_dim=4, rnn_layers=1), cfg, 7)
    assert isinstance(rnn, RnnCtcHead)
    x, lengths = torch.randn(2, 50, 5), torch.tensor([50, 30])
    rnn.eval()
    assert torch.equal(rnn(x, lengths), rnn(x, lengths))
    assert rnn(x, lengths).shape == (2, 50, 7)
    rnn.train()
    torch.manual_seed(3)
    assert not torch.equal(rnn(x, lengths), rnn(x, lengths))  # dropout and SpecAugment draw anew


def test_unknown_head_is_a_config_error(tmp_path):
    from superb.errors import ConfigError
    from superb.train.config import default_config_path, load_config

    with pytest.raises(ConfigError, match="model.head 'lstm' is not one of linear, rnn"):
        load_config(default_config_path("sf"), "config.model.head=lstm")


def s3prl_specaug(xs: list[torch.Tensor], cfg: SpecAugConfig) -> list[torch.Tensor]:
    """s3prl 0.4.18 ``downstream/specaug.py`` ``SpecAug.forward`` written out: pad to the longest, warp each
    utterance (``TimeWarp``), then ``MaskAlongAxis`` over frequency and over time, slice back."""
    lengths = [x.size(0) for x in xs]
    batch, longest, dim = len(xs), max(lengths), xs[0].size(1)
    spec = xs[0].new_zeros((batch, longest, dim))
    for i, x in enumerate(xs):
        spec[i, : lengths[i]] = x
    if cfg.time_warp:
        window, warped_spec = cfg.time_warp_window, spec.new_zeros(spec.size())
        for i in range(batch):
            x = spec[i][None, : lengths[i]][:, None]  # (1, 1, T, F)
            t = x.shape[2]
            if t - window > window:
                center = torch.randint(window, t - window, (1,))[0]
                warped = torch.randint(center - window, center + window, (1,))[0] + 1
                left = F.interpolate(x[:, :, :center], (warped, x.shape[3]), mode="bicubic", align_corners=False)
                right = F.interpolate(x[:, :, center:], (t - warped, x.shape[3]), mode="bicubic",
                                      align_corners=False)
                x[:, :, :warped] = left
                x[:, :, warped:] = right
            warped_spec[i, : lengths[i]] = x[0, 0]
        spec = warped_spec
    for axis, width, num_mask in ((2, cfg.freq_mask_width, cfg.num_freq_mask),
                                  (1, cfg.time_mask_width, cfg.num_time_mask)):
        d, t = spec.shape[axis], width
        if axis == 1 and cfg.adaptive:
            num_mask = min(int(cfg.adaptive_number_ratio * d), cfg.max_n_time_masks)
            t = min(width, int(cfg.adaptive_size_ratio * d))
        mask_length = torch.randint(0, t, (batch, num_mask)).unsqueeze(2)
        mask_pos = torch.randint(0, max(1, d - mask_length.max()), (batch, num_mask)).unsqueeze(2)
        aran = torch.arange(d)[None, None, :]
        mask = ((mask_pos <= aran) * (aran < (mask_pos + mask_length))).any(dim=1)
        spec = spec.masked_fill(mask.unsqueeze(2) if axis == 1 else mask.unsqueeze(1), 0.0)
    return [spec[i, : lengths[i]] for i in range(batch)]


@pytest.mark.parametrize("task, lengths", [("sf", [130, 97, 64, 9]), ("asr", [160, 158, 151]),
                                           ("adaptive", [900, 700, 260])])
def test_spec_augment_equals_s3prls_on_the_same_draws(task, lengths):
    """Same torch seed, same draws in the same order: every valid frame equals s3prl's output; the
    padding is left as it was (s3prl slices it away)."""
    from superb.train.config import default_config_path, load_config

    adaptive = task == "adaptive"
    cfg = load_config(default_config_path("sf" if adaptive else task)).specaug
    cfg = dataclasses.replace(cfg, adaptive=True) if adaptive else cfg
    generator = torch.Generator().manual_seed(len(lengths))
    xs = [torch.randn(n, 64, generator=generator) for n in lengths]
    padded = torch.full((len(xs), max(lengths), 64), 5.0)
    for i, x in enumerate(xs):
        padded[i, : len(x)] = x
    masked_some = False
    for seed in range(4):
        torch.manual_seed(seed)
        ours = spec_augment(padded, torch.tensor(lengths), cfg)
        torch.manual_seed(seed)
        theirs = s3prl_specaug(xs, cfg)
        for i, n in enumerate(lengths):
            assert torch.equal(ours[i, :n], theirs[i])
            assert torch.equal(ours[i, n:], padded[i, n:])
        masked_some |= bool((ours == 0).any())
    assert masked_some
