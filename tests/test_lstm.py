"""``run_lstm`` gives what s3prl's packed batches give: outputs and gradients, both LSTM directions, any lengths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from superb.train.tasks.lstm import run_lstm, run_packed


@pytest.mark.parametrize(("bidirectional", "layers"), [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_plain_runs_equal_the_packed_batch(bidirectional, layers):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=layers, batch_first=True, bidirectional=bidirectional)
    lengths = torch.tensor([9, 4, 1, 9, 6])
    x = torch.randn(len(lengths), 9, 5)
    x[torch.arange(9)[None, :] >= lengths[:, None]] = 3.0  # padding that must not leak into valid frames
    results = []
    for run in (run_packed, run_lstm):
        xs = x.clone().requires_grad_()
        out = run(lstm, xs, lengths)
        weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        (out * weights).sum().backward()
        results.append((out.detach(), xs.grad, [p.grad.clone() for p in lstm.parameters()]))
        lstm.zero_grad()
    (out_a, grad_a, params_a), (out_b, grad_b, params_b) = results
    assert out_b.shape == (5, 9, 7 * (2 if bidirectional else 1))
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad_b, grad_a, rtol=0, atol=1e-6)
    for a, b in zip(params_a, params_b, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    assert out_b[1, 4:].abs().sum() == 0 and out_b[2, 1:].abs().sum() == 0  # padding stays zero


def test_an_empty_utterance_gives_zeros():
    lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    out = run_lstm(lstm, torch.randn(2, 5, 3), torch.tensor([5, 0]))
    assert out[1].abs().sum() == 0 and out[0].abs().sum() > 0
