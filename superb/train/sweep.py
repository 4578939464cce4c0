"""``superb sweep``: the cross product of learning rates, seeds and layers trained in one pass over the data.

Each grid point is a head with everything a ``superb fit`` has (its own featurizer weights, optimiser, schedule,
RNG, checkpoints, TensorBoard run, ``results.json``) in ``EXPDIR/<name>/``, written exactly as that fit would write
it; ``superb evaluate`` and ``superb report`` read it as one. The heads of one seed share the data stream (the batch
order and crops are the seed's): each batch is read and built once and fed to every head in turn, each head under
its own torch RNG state, so every head takes the steps its own ``superb fit`` takes and a sweep of one point *is*
that fit. Seeds are separate streams, trained one after another.

A head whose loss is not finite is stopped and marked (``diverged_at_step`` in its ``results.json``); the others go
on. ``-a`` resumes every head from its own last checkpoint: heads that stopped at different points of the stream
(a kill between their checkpoints) are fed again only from where each stood. ``EXPDIR/sweep.json`` lists the grid
and the head with the best dev metric (the task's direction) with its test figures, SUPERB's selection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from superb import distributed
from superb.errors import ConfigError, disk_errors
from superb.extract.extraction import resolve_device
from superb.files import write_text
from superb.train.runner import (FitArgs, Run, make_upstream, open_run, release, resolve_config, select_model,
                                 write_results)
from superb.train.trainer import Progress, StepBar, collect_outputs, to_device, upstream_features

ALL_LAYERS = "all"  # --layer all: the learned weighted sum of every stored layer


@dataclass
class SweepArgs:
    task: str
    expdir: str
    features: str | None = None
    upstream: str | None = None  # on the fly: one frozen upstream, run once per batch for every head
    root: str | None = None
    test_root: str | None = None
    ckpt: str | None = None
    random_init: str | None = None
    upstream_config: dict[str, Any] = field(default_factory=dict)
    lrs: list[float] | None = None  # None: the config's learning rate
    seeds: list[int] = field(default_factory=lambda: [0])
    layers: list[int | None] = field(default_factory=lambda: [None])  # None: the weighted sum
    override: str | None = None
    config: str | None = None
    fold: int | None = None
    labels: str | None = None
    device: str = "auto"
    preload: bool = False
    workers: int | None = None
    halving: int | None = None  # every this many steps, stop the worse half of a seed's live heads (dev metric)
    exact: bool = False  # each head's weighted sum on its own, bit for bit its fit's (else one batched contraction)


@dataclass(frozen=True)
class Point:
    lr: float | None
    seed: int
    layer: int | None

    @property
    def name(self) -> str:
        parts = [] if self.lr is None else [f"lr{self.lr:g}"]
        return "_".join(parts + [f"seed{self.seed}", f"layer{ALL_LAYERS if self.layer is None else self.layer}"])


def parse_values(text: str, option: str, kind: type) -> list[Any]:
    """``--lr 1e-2,1e-3`` → floats, ``--seed 0,1`` → ints, ``--layer all,6`` → None (all) and ints; one clear
    line for anything else."""
    out: list[Any] = []
    for item in (part.strip() for part in text.split(",")):
        if option == "--layer" and item == ALL_LAYERS:
            out.append(None)
            continue
        try:
            value = kind(item)
        except ValueError:
            what = "a number" if kind is float else "an integer" + (" or 'all'" if option == "--layer" else "")
            raise ConfigError(f"{option} {text!r}: {item!r} is not {what}") from None
        if kind is float and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{option} {text!r}: {item!r} is not a finite learning rate >= 0")
        if kind is int and option == "--layer" and value < 0:
            raise ConfigError(f"{option} {text!r}: layer {value} is negative")
        out.append(value)
    if len(set(out)) != len(out):
        raise ConfigError(f"{option} {text!r}: a value is repeated")
    return out


def grid(args: SweepArgs) -> list[Point]:
    lrs: list[float | None] = list(args.lrs) if args.lrs else [None]
    return [Point(lr, seed, layer) for seed, lr, layer in itertools.product(args.seeds, lrs, args.layers)]


def fit_args(args: SweepArgs, point: Point) -> FitArgs:
    """The ``superb fit`` a head stands for."""
    override = args.override or ""
    if point.lr is not None:
        override = ",,".join(filter(None, [override, f"config.optimizer.lr={point.lr!r}"]))
    return FitArgs(task=args.task, features=args.features, upstream=args.upstream, root=args.root,
                   test_root=args.test_root, ckpt=args.ckpt, random_init=args.random_init,
                   upstream_config=dict(args.upstream_config), expdir=str(Path(args.expdir) / point.name),
                   config=args.config, override=override or None, seed=point.seed, layer=point.layer,
                   fold=args.fold, labels=args.labels, device=args.device, preload=args.preload,
                   workers=args.workers)


class HeadRng:
    """A head's own torch RNG state (CPU and CUDA), swapped in around each of its steps."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        torch.set_rng_state(self.cpu)
        if self.cuda:
            torch.cuda.set_rng_state_all(self.cuda)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            if self.cuda:
                self.cuda = torch.cuda.get_rng_state_all()


def sweep(args: SweepArgs, auto_resume: bool = False, on_step=None) -> dict[str, Any]:
    """Train every grid point (resuming with ``auto_resume``); returns what ``EXPDIR/sweep.json`` holds.
    ``on_step(name, step)`` is called after each head's update (tests stop a sweep midway with it)."""
    if bool(args.features) == bool(args.upstream and args.root):
        raise ConfigError("sweep needs --features STORE, or -u UPSTREAM with --root CORPUS (on the fly), not both")
    if not args.lrs:  # the task's own grid, where its config has one
        configured = resolve_config(fit_args(args, Point(None, args.seeds[0], args.layers[0]))).optimizer.sweep_lrs
        if configured:
            args = dataclasses.replace(args, lrs=parse_values(",".join(map(str, configured)),
                                                              "config optimizer.sweep_lrs", float))
    points = grid(args)
    ctx = distributed.context()
    device = distributed.device_for(ctx, resolve_device(args.device))
    distributed.init(device)
    try:
        heads: list[dict[str, Any]] = []
        for seed in dict.fromkeys(p.seed for p in points):
            heads += _train_group([p for p in points if p.seed == seed], args, auto_resume, on_step, ctx, device)
        summary = _summary(args, heads)
        if ctx.main:
            write_text(Path(args.expdir) / "sweep.json", json.dumps(summary, indent=2))
        return summary
    finally:
        distributed.finish()


def _train_group(points: list[Point], args: SweepArgs, auto_resume: bool, on_step, ctx: distributed.Context,
                 device: torch.device) -> list[dict[str, Any]]:
    """The heads of one seed, fed one data stream."""
    runs: list[Run] = []
    rngs: list[HeadRng] = []
    shared = make_upstream(fit_args(args, points[0])) if args.upstream else None  # random init: the seed's
    try:
        for point in points:
            runs.append(open_run(fit_args(args, point), None, auto_resume, None, ctx, device, shared))
            rngs.append(HeadRng())  # where this head's own fit would stand when its loop starts
        _check_shared_stream(runs)
        halving = Halving(Path(args.expdir), args.halving, runs, points) if args.halving else None
        for run in runs:
            run.trainer.stop_on_divergence = True
        # a stream of one head is its fit bit for bit: the shortcuts shared by several heads are left out
        pooled = set() if args.exact or len(runs) < 2 else {k for k, run in enumerate(runs) if _pools_first(run)}
        feeder = Feeder(runs[0].built.model.upstream, pooled)  # on the fly: the upstream shared, frozen
        with disk_errors(Path(args.expdir), "-p", "rerun it with -a"):
            _drive(runs, rngs, points, ctx, device, on_step, halving, feeder, batched=not args.exact)
            out = []
            for point, run, results in zip(points, runs, _write_all(runs, rngs, feeder, ctx), strict=True):
                out.append({"name": point.name, "lr": run.config.optimizer.lr, "seed": point.seed,
                            "layer": point.layer, "expdir": str(run.expdir),
                            "diverged_at_step": run.trainer.diverged, "halted_at_step": run.trainer.halted_at,
                            "dev": results.get("dev", {}), "test": results.get("test", {})})
        return out
    finally:
        for run in runs:
            release(run.built.prepared)


def _check_shared_stream(runs: list[Run]) -> None:
    """The heads of a stream must read it alike: the same data settings and step count (only lr, layer differ)."""
    first = runs[0].config
    for run in runs[1:]:
        if run.config.data != first.data or run.config.runner != first.runner:
            raise ConfigError(f"{run.expdir}: its data or runner settings differ from {runs[0].expdir}'s (a resumed "
                              "head with other settings?); a sweep's heads share one data stream")


class Halving:
    """Successive halving: at every ``every`` steps the live heads of a stream are ranked by the dev metric they
    logged at that step, and the worse half (rounded down) stops. Each round is written to ``EXPDIR/halving.json``
    before it takes effect, so a resumed sweep stops the same heads where they were stopped."""

    def __init__(self, expdir: Path, every: int, runs: list[Run], points: list[Point]):
        runner = runs[0].config.runner
        if every % runner.eval_step or "dev" not in runner.eval_dataloaders:
            raise ConfigError(f"--halving {every}: heads are compared on the dev metric logged every "
                              f"runner.eval_step ({runner.eval_step}) steps; give a multiple of it (and keep dev in "
                              "runner.eval_dataloaders)")
        self.path, self.every, self.runs, self.points = expdir / "halving.json", every, runs, points
        self.rounds: list[dict[str, Any]] = json.loads(self.path.read_text())["rounds"] if self.path.is_file() else []
        names = {p.name for p in points}
        mine = [r for r in self.rounds if set(r["kept"]) | set(r["stopped"]) <= names]  # this stream's rounds
        self.decided = {r["step"] for r in mine}
        # a resumed head stopped by a recorded round trains up to that round's step again (its later checkpoints
        # and log lines were dropped on resume), then stops there
        self.planned = {name: r["step"] for r in mine for name in r["stopped"]}
        self._apply_planned()

    def _apply_planned(self) -> None:
        for run, point in zip(self.runs, self.points, strict=True):
            step = self.planned.get(point.name)
            if step is not None and not run.trainer.done and run.trainer.progress.step >= step:
                run.trainer.halted_at = step

    def after_batch(self, ctx: distributed.Context) -> None:
        self._apply_planned()
        live = [(run, point) for run, point in zip(self.runs, self.points, strict=True) if not run.trainer.done]
        steps = {run.trainer.progress.step for run, _ in live}
        if len(live) < 2 or len(steps) != 1:
            return
        step = steps.pop()
        if step % self.every or step in self.decided:
            return
        self.decided.add(step)
        task = live[0][0].trainer.task
        scores = [_logged(run.expdir, step, task.metric) if ctx.main else 0.0 for run, _ in live]
        scores = distributed.all_sum(scores)  # the main process read the logs; every process takes its decision
        worst = -math.inf if task.higher_is_better else math.inf
        ranked = sorted(range(len(live)), key=lambda k: scores[k] if scores[k] == scores[k] else worst,
                        reverse=task.higher_is_better)  # stable: ties keep grid order
        stopped = sorted(ranked[len(live) - len(live) // 2:])
        record = {"step": step, "metric": task.metric, "scores": {p.name: scores[k] for k, (_, p) in enumerate(live)},
                  "kept": [live[k][1].name for k in ranked[: len(live) - len(live) // 2]],
                  "stopped": [live[k][1].name for k in stopped]}
        self.rounds.append(record)
        if ctx.main:
            write_text(self.path, json.dumps({"every": self.every, "rounds": self.rounds}, indent=2))
        for k in stopped:
            live[k][0].trainer.halted_at = step


def _logged(expdir: Path, step: int, metric: str) -> float:
    """The dev ``metric`` a head logged at ``step`` (NaN if it has none)."""
    for line in (expdir / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("step") == step and record.get("split") == "dev" and metric in record:
            return float(record[metric])
    return math.nan


def _summable(run: Run, ctx: distributed.Context) -> bool:
    """A head whose featurizer is a plain learned weighted sum (no layer norm, one process): its sum can be one
    row of the batched contraction."""
    featurizer = run.built.model.featurizer
    return featurizer.weights is not None and not featurizer.normalize and not ctx.distributed


def _pools_first(run: Run) -> bool:
    """A head that reads its input only through per-utterance means of an affine map (``pools_affine``) behind a
    linear featurizer (the weighted sum or one layer, no layer norm): it trains alike on the batch's per-layer
    means, since a mean commutes with every linear step before it."""
    model = run.built.model
    return bool(getattr(model.head, "pools_affine", False)) and not model.featurizer.normalize


def mean_pooled(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with its hidden states ``(B, T, L, D)`` replaced by each utterance's mean over its valid frames,
    per layer, as one float32 frame ``(B, 1, L, D)`` of length 1: one pass over the batch for every head, whose
    weighted sums and projectors then run on B rows instead of B·T. Equal to the frame-wise path to float
    rounding (another summation order). Summed utterance by utterance, over its own frames only (on the fly the
    padding is not zero), upcast on the way: 6 ms for a KS batch of WavLM Base where a float32 copy of the
    batch and one masked matrix product took 43."""
    hidden, lengths = batch["features"], batch["lengths"]
    sums = torch.stack([hidden[b, :n].sum(0, dtype=torch.float32) for b, n in enumerate(lengths.tolist())])
    means = sums / lengths.clamp(min=1).to(sums.device, torch.float32)[:, None, None]
    return {**batch, "features": means[:, None], "lengths": torch.ones_like(lengths)}


def batched_weighted_sums(hidden: torch.Tensor, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every head's ``Σ_l softmax(w)_l · hidden[:, :, l]`` from one matrix product: the layers copied once into a
    contiguous float32 ``(L, B·T·D)`` block (the stored float16 upcast on the way), ``softmax(W) (K, L)`` times it,
    and one product more for all heads' weight gradients. Returns each head's ``(B, T, D)`` (``unbind``: its
    backward stacks the K gradients once). Equal to the heads' own sums to float rounding (another summation
    order); for a fixed K and position, a head's result does not depend on the other heads' weights."""
    batch, frames, layers, dim = hidden.shape
    block = torch.empty((layers, batch, frames, dim), dtype=torch.float32, device=hidden.device)
    for layer in range(layers):
        block[layer].copy_(hidden[:, :, layer])
    stacked = torch.stack([torch.softmax(w, dim=0) for w in weights])
    sums = stacked @ block.view(layers, -1)
    return [x.view(batch, frames, dim) for x in sums.unbind(0)]


def _batched_step(trainers: list, rngs: list[HeadRng], group: list[int], ks: list[int], batch: dict) -> list[int]:
    """One batch for the heads ``ks`` at once: the weighted sums of the whole ``group`` in one contraction (always
    all of it, in grid order, so a head's sum is computed alike whichever heads are still training: a resumed or
    halved sweep gives the figures of an uninterrupted one), each head's forward under its own RNG, one backward
    pass for all (their parameters are disjoint, so each gets its own gradient). Returns the heads that updated."""
    hidden = batch["features"]
    weights = [trainers[k].model.featurizer.weights if k in ks else trainers[k].model.featurizer.weights.detach()
               for k in group]
    sums = batched_weighted_sums(hidden, weights)
    losses = []
    for k in ks:
        trainers[k].start_batch()
        with rngs[k].active():
            losses.append(trainers[k].batch_loss(batch, features=sums[group.index(k)]))
    torch.stack([loss / trainers[k].accumulate for loss, k in zip(losses, ks, strict=True)]).sum().backward()
    updated = []
    for loss, k in zip(losses, ks, strict=True):
        with rngs[k].active():
            if trainers[k].update(loss):
                updated.append(k)
    return updated


class Feeder:
    """What each head's model reads of a batch, the shared work done once: the frozen upstream's hidden states (on
    the fly) and the per-utterance means for the heads that pool (``pooled``)."""

    def __init__(self, upstream: torch.nn.Module | None, pooled: set[int]):
        self.upstream, self.pooled = upstream, pooled

    def features(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.upstream is None:
            return batch
        with torch.no_grad():
            hidden, lengths = upstream_features(self.upstream, batch)
        return {**batch, "features": hidden, "lengths": lengths}

    def split(self, batch: dict[str, Any], heads: list[int]) -> list[dict[str, Any]]:
        """One batch per head of ``heads``, from a batch with its features."""
        means = mean_pooled(batch) if any(k in self.pooled for k in heads) else None
        return [means if k in self.pooled else batch for k in heads]

    def __call__(self, heads: list[int]):
        """``feed(batch)`` → one batch per head of ``heads``, from a loader's batch (``collect_outputs``'s feed)."""
        return lambda batch: self.split(self.features(batch), heads)


def _evaluate_together(trainers: list, rngs: list[HeadRng], heads: list[int], feeder: Feeder,
                       step: int | None = None, roles: tuple[str, ...] | None = None) -> None:
    """Collect the outputs of ``heads`` on each of their evaluation roles in one pass over its loader; each head's
    own ``evaluate`` then scores them (``prefilled``), as it would have scored its own pass."""
    first = trainers[heads[0]]
    for role in roles or first.config.runner.eval_dataloaders:
        if role not in first.eval_loaders:
            continue
        outputs = collect_outputs([trainers[k] for k in heads], role, step, feeder(heads),
                                  [rngs[k].active for k in heads])
        for k, out in zip(heads, outputs, strict=True):
            trainers[k].prefilled[role] = out


def _write_all(runs: list[Run], rngs: list[HeadRng], feeder: Feeder, ctx: distributed.Context) -> list[dict]:
    """Every head's results.json: its reported model loaded, dev and test collected for the heads reported at the
    same step in one pass each (that step picks a drawn dev sample), then scored and written per head."""
    if not ctx.main:
        return [{} for _ in runs]
    trainers = [run.trainer for run in runs]
    steps = []
    for run, rng in zip(runs, rngs, strict=True):
        with rng.active():
            steps.append(select_model(run.trainer, run.expdir))
    for step in dict.fromkeys(steps):
        _evaluate_together(trainers, rngs, [k for k, s in enumerate(steps) if s == step], feeder, step,
                           ("dev", "test"))
    out = []
    for run, rng, step in zip(runs, rngs, steps, strict=True):
        with rng.active():
            out.append(write_results(run.trainer, run.expdir, scored_step=step))
    return out


def _drive(runs: list[Run], rngs: list[HeadRng], points: list[Point], ctx: distributed.Context,
           device: torch.device, on_step, halving: Halving | None, feeder: Feeder, batched: bool = True) -> None:
    trainers = [run.trainer for run in runs]
    total = runs[0].config.runner.total_steps
    for trainer in trainers:
        trainer.begin()
    waiting = [t for t in trainers if not t.done]
    if waiting:
        loader = trainers[0].train_loader  # every head's loader would give the same batches: read them once
        position = min(t.progress.position for t in waiting)
        loader.batch_sampler.set_position(position)
        start = min(t.progress.step for t in trainers)
        with StepBar(ctx.main, start, total) as bar:
            group = [k for k, run in enumerate(runs) if _summable(run, ctx) and k not in feeder.pooled]
            group = group if batched and len(group) > 1 else []  # their sums: one contraction
            reports = [None if on_step is None else (lambda step, name=p.name: on_step(name, step)) for p in points]
            for batch in loader:
                batch = feeder.features(to_device(batch, device))  # on the fly: the upstream once for all heads
                ready = [k for k, t in enumerate(trainers) if not t.done and t.progress.position == position]
                together = [k for k in ready if k in group]  # (not stopped, not resumed further on)
                updated = _batched_step(trainers, rngs, group, together, batch) if together else []
                alone = [k for k in ready if k not in together]
                for k, fed in zip(alone, feeder.split(batch, alone), strict=True):
                    with rngs[k].active():
                        if trainers[k].learn(fed):
                            updated.append(k)
                updated.sort()
                due = [k for k in updated if trainers[k].evaluates_now]
                if due:  # dev/test read once for every head that scores them at this step
                    _evaluate_together(trainers, rngs, due, feeder)
                for k in updated:
                    with rngs[k].active():
                        trainers[k].after_update(reports[k])
                position += ctx.world
                if halving is not None:
                    halving.after_batch(ctx)
                bar(min([t.progress.step for t in trainers if t.diverged is None and t.halted_at is None]
                        or [total]), Progress())
                if all(t.done for t in trainers):
                    break
    for trainer, rng in zip(trainers, rngs, strict=True):
        with rng.active():
            trainer.end()


def _summary(args: SweepArgs, heads: list[dict[str, Any]]) -> dict[str, Any]:
    """The grid and SUPERB's pick: the head with the best dev metric (the task's direction), its test figures."""
    from superb.registry import TASKS

    task = TASKS.get(args.task)
    metric, higher = task.metric, task.higher_is_better
    scored = [h for h in heads if h["diverged_at_step"] is None and _finite(h["dev"].get(metric))]
    halving = Path(args.expdir) / "halving.json"
    best = (max if higher else min)(scored, key=lambda h: h["dev"][metric]) if scored else None
    return {"task": TASKS.canonical(args.task), "metric": metric, "higher_is_better": higher,
            "features": args.features, "grid": {"lr": args.lrs, "seed": args.seeds, "layer": args.layers},
            "best": None if best is None else best["name"], "heads": heads,
            **({"halving": json.loads(halving.read_text())} if args.halving and halving.is_file() else {})}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
