"""LSTM head benchmark: training steps per second of ``run_lstm`` ÷ the packed batch s3prl's heads use
(``pack_padded_sequence`` → ``nn.LSTM`` → ``pad_packed_sequence``), same batch, same machine; and the largest
difference between the two in outputs and input gradients (they must agree to float rounding).

Shapes like the SUPERB heads: ASR/SF's bidirectional LSTM (s3prl: 1024 units, 2 layers, batch 32) and SD's
unidirectional one (512 units, 1 layer, 2,000-frame chunks). The defaults here are smaller so that a CPU run
ends in a minute; lengths are drawn from half to all of ``--frames``.

    python benchmarks/lstm.py [--frames 200 800] [--batch 8] [--dim 80] [--hidden 64] [--steps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn

from superb.train.tasks.lstm import run_packed, run_lstm


def seconds_per_step(step, steps: int, sync) -> float:
    step()  # warm-up
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dim", type=int, default=80)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, device {args.device}, batch {args.batch}, {args.dim} → {args.hidden} units")
    print(f"{'lstm':>14} {'frames':>6} {'packed s/step':>14} {'run_lstm s/step':>16} {'ratio':>6} {'max |diff|':>10}")
    torch.manual_seed(0)
    for bidirectional in (True, False):
        lstm = nn.LSTM(args.dim, args.hidden, batch_first=True, bidirectional=bidirectional).to(args.device)
        for frames in args.frames:
            x = torch.randn(args.batch, frames, args.dim, device=args.device, requires_grad=True)
            lengths = torch.randint(frames // 2, frames + 1, (args.batch,))
            lengths[0] = frames

            def step(run):
                x.grad = None
                out = run(lstm, x, lengths)
                out.square().sum().backward()
                return out.detach(), x.grad.clone()

            (out_a, grad_a), (out_b, grad_b) = step(run_packed), step(run_lstm)
            diff = max(float((out_a - out_b).abs().max()), float((grad_a - grad_b).abs().max()))
            packed = seconds_per_step(lambda: step(run_packed), args.steps, sync)
            ours = seconds_per_step(lambda: step(run_lstm), args.steps, sync)
            kind = "bidirectional" if bidirectional else "forward"
            print(f"{kind:>14} {frames:>6} {packed:>14.4f} {ours:>16.4f} {packed / ours:>5.1f}× {diff:>10.1e}")


if __name__ == "__main__":
    main()
