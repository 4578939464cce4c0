"""The optimizers a config's ``optimizer.name`` picks, registered by name (lower case).

``Adam``/``TorchAdam`` and ``AdamW`` are torch's classes. ``s3prl_AdamW`` is s3prl's own AdamW
(``s3prl/optimizers.py``, the "AdamW*" of SUPERB's phone, SNIPS, ATIS, MOSEI, separation and example
configs): the transformers-style update, whose epsilon is added to ``sqrt(v)`` *before* the bias correction
is folded into the step size, and whose decoupled weight decay comes after the update. torch's AdamW adds
epsilon after the correction, so no torch setting reproduces it; the difference is largest in the first
steps, where s3prl's update is up to ``sqrt(1 − β2)`` ≈ 0.03 times smaller for tiny gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from superb.errors import ConfigError
from superb.train.config import OptimizerConfig


class S3prlAdamW(torch.optim.Optimizer):
    """s3prl's ``AdamW`` (bias-corrected step size, ``eps`` on the raw second moment, weight decay last)."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-7, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)  # a tensor: saved and loaded as such
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = int(state["step"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"] * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


def _adam(params: list, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)


def _adamw(params: list, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)


def _s3prl_adamw(params: list, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return S3prlAdamW(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)


#: ``optimizer.name`` (any case) → builder over the trainable parameters.
OPTIMIZERS: dict[str, Callable[[list, OptimizerConfig], torch.optim.Optimizer]] = {
    "adam": _adam,
    "torchadam": _adam,  # s3prl's name for torch.optim.Adam
    "adamw": _adamw,  # torch.optim.AdamW (s3prl: TorchOptim with torch_optim_name AdamW)
    "s3prl_adamw": _s3prl_adamw,
}


def make_optimizer(params: list, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    build = OPTIMIZERS.get(cfg.name.lower())
    if build is None:
        raise ConfigError(f"config optimizer.name: {cfg.name!r} is not one of Adam, TorchAdam, AdamW, s3prl_AdamW")
    return build(params, cfg)
