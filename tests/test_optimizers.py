"""``s3prl_AdamW`` steps as s3prl's own AdamW (``s3prl/optimizers.py``), which no torch optimizer reproduces."""

from __future__ import annotations

import math

import pytest
import torch

from superb.train.config import OptimizerConfig
from superb.train.optimizers import OPTIMIZERS, S3prlAdamW, make_optimizer


def s3prl_adamw_steps(weights: torch.Tensor, grads: list[torch.Tensor], lr: float, eps: float, weight_decay: float,
                      betas=(0.9, 0.999)) -> torch.Tensor:
    """s3prl 0.4.18's ``AdamW.step`` (correct_bias=True), written out for one tensor."""
    p = weights.clone()
    exp_avg, exp_avg_sq = torch.zeros_like(p), torch.zeros_like(p)
    for step, grad in enumerate(grads, start=1):
        exp_avg.mul_(betas[0]).add_(grad, alpha=1.0 - betas[0])
        exp_avg_sq.mul_(betas[1]).addcmul_(grad, grad, value=1.0 - betas[1])
        denom = exp_avg_sq.sqrt().add_(eps)
        step_size = lr * math.sqrt(1.0 - betas[1] ** step) / (1.0 - betas[0] ** step)
        p.addcdiv_(exp_avg, denom, value=-step_size)
        if weight_decay > 0.0:
            p.add_(p, alpha=-lr * weight_decay)
    return p


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_s3prl_adamw_matches_s3prl_and_differs_from_torch(weight_decay):
    torch.manual_seed(0)
    start = torch.randn(50, dtype=torch.float64)
    grads = [torch.randn(50, dtype=torch.float64) * 1e-8 for _ in range(8)]  # gradients below eps: they differ most
    expected = s3prl_adamw_steps(start, grads, lr=2e-4, eps=1e-7, weight_decay=weight_decay)
    results = {}
    for name in ("s3prl_AdamW", "AdamW"):
        param = torch.nn.Parameter(start.clone())
        optimizer = make_optimizer([param], OptimizerConfig(name=name, lr=2e-4, eps=1e-7, weight_decay=weight_decay))
        for grad in grads:
            param.grad = grad.clone()
            optimizer.step()
        results[name] = param.detach()
    torch.testing.assert_close(results["s3prl_AdamW"], expected, rtol=0, atol=1e-15)
    # torch adds eps after the bias correction: its moves are several times s3prl's here
    moved_s3prl, moved_torch = (expected - start).abs().sum(), (results["AdamW"] - start).abs().sum()
    assert moved_torch > 2 * moved_s3prl


def test_state_survives_a_checkpoint_round_trip(tmp_path):
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = S3prlAdamW([param], lr=0.1)
    param.grad = torch.ones(3)
    optimizer.step()
    torch.save(optimizer.state_dict(), tmp_path / "opt.pt")
    again = S3prlAdamW([param], lr=0.1)
    again.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    assert int(again.state[param]["step"]) == 1
    assert set(OPTIMIZERS) == {"adam", "torchadam", "adamw", "s3prl_adamw"}
