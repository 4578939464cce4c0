"""Sweep benchmark: wall time of a K-head ``superb sweep`` ÷ one ``superb fit`` of the same steps, and ÷ K fits.

Same store (random-init WavLM Base by default: 13 × 768 hidden states), same steps, one run each, measured in this
run: ``--task ks`` (Linear → mean-pool → Linear, batch 32 × 1 s Speech Commands), ``--task asv`` or ``--task pr``
or ``--task asr`` (the tasks of ``benchmarks/fit.py``). The K heads get K learning rates from 1e-2 down. A
discarded fit runs first, so no measured run pays the process's one-off costs. Goal (issue 16): a K = 8 sweep of a
light utterance head within 2× one fit on CPU.

    python benchmarks/sweep.py [--task ks] [--heads 8] [--steps 60] [--size base] [--device cpu]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from fit import CORPORA, machine, task_store  # benchmarks/fit.py: the task's tiny corpus and store, batch, overrides

from superb.train.runner import FitArgs, fit
from superb.train.sweep import SweepArgs, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="ks", choices=sorted(CORPORA))
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--size", default="base", choices=["tiny", "base", "large"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    lrs = [float(f"{10 ** (-2 - 3 * k / max(1, args.heads - 1)):.3g}") for k in range(args.heads)]
    work = Path(tempfile.mkdtemp(prefix="superb-sweep-bench-"))
    try:
        _, extra, batch, task_override = task_store(args.task, work, args.size, args.device)
        override = (f"config.runner.total_steps={args.steps},,config.runner.eval_step={args.steps},,"
                    f"config.runner.save_step={args.steps},,config.runner.log_step={args.steps},,"
                    f"config.data.batch_size={batch},,config.runner.gradient_accumulate_steps=1" + task_override)

        def one_fit(lr: float, name: str) -> float:
            started = time.perf_counter()
            fit(FitArgs(task=args.task, features=str(work / "stores"), expdir=str(work / "fits" / name),
                        override=f"{override},,config.optimizer.lr={lr}", device=args.device, **extra))
            return time.perf_counter() - started

        one_fit(lrs[0], "warm-up")  # the first run in a process pays one-off costs (imports, allocator, caches)
        single = one_fit(lrs[0], "one")
        started = time.perf_counter()
        sweep(SweepArgs(task=args.task, expdir=str(work / "sweep"), features=str(work / "stores"), lrs=lrs,
                        override=override, device=args.device, labels=extra.get("labels")))
        swept = time.perf_counter() - started
        separate = single + sum(one_fit(lr, f"lr{lr:g}") for lr in lrs[1:])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmachine: {machine(args.device)}; torch {torch.__version__}; task {args.task}, batch {batch}, "
          f"{args.steps} steps (+ one dev and test evaluation per head), WavLM {args.size} (random init)\n")
    print("| run | wall s | ratio to one fit | goal |")
    print("|---|---|---|---|")
    print(f"| one `superb fit` (baseline) | {single:.1f} | 1 | |")
    print(f"| `superb sweep`, K = {args.heads} learning rates | {swept:.1f} | {swept / single:.2f}x | <= 2x |")
    print(f"| {args.heads} separate fits | {separate:.1f} | {separate / single:.2f}x | |")
    print(f"\nsweep ÷ {args.heads} separate fits: {swept / separate:.2f}")


if __name__ == "__main__":
    main()
