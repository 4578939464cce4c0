"""SpecAugment as s3prl applies it on the featurizer output (ASR, SF): warp, masks, padding untouched."""

from __future__ import annotations

import pytest
import torch

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
