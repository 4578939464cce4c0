"""The training loop, readable in one sitting (after nanoGPT's): steps, accumulation, eval, checkpoints.

A *step* is one optimizer update (``gradient_accumulate_steps`` batches). Every ``log_step`` steps the
mean train loss goes to TensorBoard and ``log.jsonl``; every ``eval_step`` the ``eval_dataloaders`` are
scored and a better dev metric saves ``dev-best.ckpt``; every ``save_step`` ``states-STEP.ckpt`` is
written (the last ``max_keep`` are kept). A checkpoint is a plain dict (tensors, numbers, strings) that
loads with ``torch.load(weights_only=True)``, and holds where the data stream stood (its batch position) and
the torch RNG state, so a resumed run continues exactly where the killed one was.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superb import distributed
from superb.errors import CheckpointError
from superb.extract.upstreams.fairseq_unpickle import load_pickled
from superb.files import replaced
from superb.train.config import BEST_CHECKPOINT, Config, OptimizerConfig, selection_role
from superb.train.featurizer import Featurizer
from superb.train.optimizers import make_optimizer

_CHECKPOINT_KEYS = ("model", "args", "config", "progress")  # what every checkpoint of ``save`` holds


class DownstreamModel(nn.Module):
    """Optional upstream (on-the-fly path) → featurizer → task head."""

    def __init__(self, featurizer: Featurizer, head: nn.Module, upstream: nn.Module | None = None,
                 finetune: bool = False):
        super().__init__()
        self.upstream = upstream
        self.featurizer = featurizer
        self.head = head
        self.finetune = finetune
        if upstream is not None:
            for p in upstream.parameters():
                p.requires_grad = finetune
            if finetune and hasattr(upstream, "model"):  # s3prl: the CNN stays frozen when finetuning
                for p in upstream.model.feature_extractor.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> DownstreamModel:
        super().train(mode)
        if self.upstream is not None and not self.finetune:
            self.upstream.eval()  # a frozen upstream never runs dropout
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        if self.upstream is None or ("features" in batch and not self.finetune):  # stored, or shared (a sweep's
            hidden, lengths = batch["features"], batch["lengths"]  # frozen upstream, run once for every head)
        else:
            with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
                hidden, lengths = upstream_features(self.upstream, batch)
        return self.head_forward(self.featurizer(hidden), lengths, batch)

    def head_forward(self, x: torch.Tensor, lengths: torch.Tensor, batch: dict) -> tuple[Any, torch.Tensor]:
        """The head on the featurizer's output ``x (B, T, D)`` (a sweep computes every head's ``x`` at once)."""
        if getattr(self.head, "reads_batch", False):  # heads that align to the batch's targets (phone labels at
            return self.head(x, lengths, batch)  # their own rate, separation's STFT frames): (outputs, lengths)
        return self.head(x, lengths), lengths


def upstream_features(upstream: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The upstream's hidden states of a batch's waveforms and their frame lengths, on the states' device."""
    hidden, lengths = upstream(batch["wavs"], batch["wav_lengths"])
    return hidden, lengths.to(hidden.device)


def lr_factor(step: int, cfg: OptimizerConfig, total_steps: int) -> float:
    """The learning-rate multiplier after ``step`` updates.

    ``constant``: 1 (after an optional linear warm-up). ``linear_schedule_with_warmup`` (s3prl's, from
    transformers): rises linearly from 0 over ``warmup_steps``, then falls linearly to 0 at ``total_steps``.
    """
    warmup = cfg.warmup_steps
    if step < warmup:
        return step / warmup
    if cfg.scheduler == "linear_schedule_with_warmup":
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    return 1.0


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    position: int = 0  # batches of the training stream consumed (numbered across epochs), over all processes
    best_value: float | None = None
    best_step: int | None = None
    loss_sum: float = 0.0  # the train-loss window since the last log, so a resumed log matches
    loss_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Trainer:
    """One run's training. Under ``torchrun`` every process runs it on its share of the stream (the model
    wrapped in DistributedDataParallel for the steps); only the main process evaluates, logs and saves,
    and its checkpoints hold the plain model, which evaluates in one process."""

    model: DownstreamModel
    task: Any
    prepared: Any
    config: Config
    expdir: Path
    train_loader: Any
    eval_loaders: dict[str, Any]
    device: torch.device
    meta: dict[str, Any]  # args, store identity … stored in checkpoints
    progress: Progress = field(default_factory=Progress)
    ctx: distributed.Context = field(default_factory=distributed.Context)
    accumulate: int | None = None  # batches per update in this process (None: the config's)
    stop_on_divergence: bool = False  # a sweep stops a head whose loss is not finite (a fit keeps s3prl's skip)
    diverged: int | None = None  # the step at which the loss stopped being finite (stop_on_divergence)
    halted_at: int | None = None  # the step at which a sweep's successive halving stopped this head

    def __post_init__(self) -> None:
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.stepper: nn.Module = self.model  # what the training steps call
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.stepper = DistributedDataParallel(self.model, device_ids=ids)
        if self.accumulate is None:
            self.accumulate = self.config.runner.gradient_accumulate_steps
        self.optimizer = make_optimizer(self.params, self.config.optimizer)
        cfg, total = self.config.optimizer, self.config.runner.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg, total))
        self._writer = None
        self.outputs: dict[str, tuple[list, list, list]] = {}
        self.prefilled: dict[str, Outputs] = {}  # a role's outputs collected with other heads' (a sweep)

    # -- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "progress": self.progress.to_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **self.meta,
        }

    def save(self, name: str) -> Path:
        path = self.expdir / name
        with replaced(path) as partial, open(partial, "wb") as handle:  # a kill keeps the old checkpoint
            sink = _KeptWriteError(handle)
            try:
                torch.save(self.state(), sink)
            except RuntimeError:
                if sink.error is None:
                    raise
                raise sink.error from None  # a full disk: an OSError, which the CLI says in one line
        return path

    def load(self, ckpt: dict[str, Any], weights_only: bool = False) -> None:
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint does not fit this model: {str(exc).splitlines()[0]}") from None
        if weights_only:
            return
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        saved = dict(ckpt["progress"])
        epoch, within = saved.pop("epoch", 0), saved.pop("batch_in_epoch", 0)
        if saved.get("position") is None:  # checkpoints from before the stream was numbered across epochs
            saved["position"] = epoch * self.train_loader.batch_sampler.epoch_length + within
        self.progress = Progress(**saved)
        torch.set_rng_state(ckpt["rng"])
        if ckpt.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        if self.ctx.rank:  # the checkpoint holds the main process's RNG; the others draw their own
            torch.manual_seed(int(ckpt["args"]["seed"]) * 1_000_003 + self.progress.step * 1009 + self.ctx.rank)

    def _prune(self) -> None:
        states = sorted(self.expdir.glob("states-*.ckpt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in states[: -self.config.runner.max_keep] if self.config.runner.max_keep > 0 else []:
            old.unlink()

    # -- logging ----------------------------------------------------------------------------------
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.expdir), purge_step=self.progress.step or None)
        return self._writer

    def log(self, record: dict[str, Any]) -> None:
        with open(self.expdir / "log.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if isinstance(value, (int, float)) and key != "step":
                self.writer.add_scalar(f"{record.get('split', 'train')}/{key}", value, record["step"])

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, role: str, final: bool = False, step: int | None = None) -> dict[str, Any]:
        """Metrics of the current model on a role's loader (``loss``, the task metric, confusion…).

        The outputs themselves stay in ``self.outputs[role]``: item positions, predictions, targets.
        ``final`` (the results of the selected model) uses the task's ``final_metrics`` where it has one
        (SD scores every post-processing setting there, not at every evaluation during training).
        ``step``: the training step of the model scored (default: now), which picks a drawn dev sample.
        Outputs a sweep collected for this head along with the others' (``prefilled``) are used once.
        """
        outputs = self.prefilled.pop(role, None) or collect_outputs([self], role, step)[0]
        if getattr(self.task, "score_batch", None) is not None:  # scores still being computed elsewhere
            outputs.predictions = self.task.collect_scores(outputs.predictions, self.prepared)  # (separation)
        order = sorted(range(len(outputs.positions)), key=outputs.positions.__getitem__)  # item order
        positions, predictions, targets = ([seq[k] for k in order] for seq in
                                           (outputs.positions, outputs.predictions, outputs.targets))
        self.outputs[role] = (positions, predictions, targets)
        if not positions:
            return {"loss": float("nan"), self.task.metric: float("nan")}
        score = getattr(self.task, "final_metrics", self.task.metrics) if final else self.task.metrics
        metrics = score(predictions, targets, self.prepared, role=role)
        return {**({"loss": outputs.losses / outputs.count} if outputs.count else {}), **metrics}

    def _better(self, value: float) -> bool:
        best = self.progress.best_value
        if value != value:  # NaN never wins
            return False
        return best is None or (value > best if self.task.higher_is_better else value < best)

    def _eval_round(self) -> None:
        step = self.progress.step
        for role in self.config.runner.eval_dataloaders:
            if role not in self.eval_loaders:
                continue
            metrics = self.evaluate(role)
            self.log({"step": step, "split": role, **{k: v for k, v in metrics.items() if k != "confusion"}})
            chosen_on = selection_role(self.task, self.config.runner.protocol)  # None: the last model is reported
            if chosen_on is not None and role == chosen_on and self._better(metrics[self.task.metric]):
                self.progress.best_value, self.progress.best_step = metrics[self.task.metric], step
                self.save(BEST_CHECKPOINT[chosen_on])
        weights = self.model.featurizer.layer_weights()
        if weights is not None:
            for layer, w in zip(weights["layers"], weights["weights"], strict=True):
                self.writer.add_scalar(f"featurizer/layer_{layer}", w, step)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self, on_step=None, show_progress: bool = True) -> None:
        """Train from where ``progress`` stands to ``runner.total_steps`` on this run's own data stream."""
        with StepBar(show_progress and self.ctx.main, self.progress.step, self.config.runner.total_steps) as bar:
            self.begin()
            self.train_loader.batch_sampler.set_position(self.progress.position)
            for batch in (self.train_loader if not self.done else ()):
                if self.consume(to_device(batch, self.device), on_step, bar):
                    break
            self.end()

    @property
    def done(self) -> bool:
        return (self.progress.step >= self.config.runner.total_steps or self.diverged is not None
                or self.halted_at is not None)

    def begin(self) -> None:
        """Ready the steps: train mode, no gradients, a fresh accumulation and rate window."""
        self.stepper.train()
        self.optimizer.zero_grad(set_to_none=True)
        self._micro, self._started = 0, time.perf_counter()

    def consume(self, batch: dict[str, Any], on_step=None, bar=None) -> bool:
        """One batch of the stream (on the device): forward and backward, and after ``accumulate`` of them the
        update with its logging, evaluation and checkpoints. True once the run is done (its last step, or its
        loss not finite where ``stop_on_divergence``: a sweep stops such a head, the others go on)."""
        if self.learn(batch):
            return self.after_update(on_step, bar)
        return self.diverged is not None

    def learn(self, batch: dict[str, Any], features: torch.Tensor | None = None) -> bool:
        """Forward and backward of one batch, and the update once ``accumulate`` batches are in; True when it
        updated (``after_update`` is then due). ``features``: see ``batch_loss``."""
        self.start_batch()
        with self._no_sync(self._micro % self.accumulate != 0):  # gradients are averaged once, at the update
            loss = self.batch_loss(batch, features)
            (loss / self.accumulate).backward()
        return self.update(loss)

    def start_batch(self) -> None:
        self.progress.position += self.ctx.world
        self._micro += 1

    def batch_loss(self, batch: dict[str, Any], features: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss of a batch; ``features``: the featurizer's output, computed already (a sweep's
        batched weighted sums), so only the head runs."""
        if features is None:
            logits, lengths = self.stepper(batch)
        else:
            logits, lengths = self.model.head_forward(features, batch["lengths"], batch)
        return self.task.loss(logits, lengths, batch)

    def update(self, loss: torch.Tensor) -> bool:
        """What follows a batch's backward pass: the loss window, and after ``accumulate`` batches the optimizer
        step (skipped for gradients that are not finite, as s3prl). True when the step count moved; False
        mid-accumulation or for a loss that is not finite under ``stop_on_divergence`` (the head is stopped)."""
        progress, value = self.progress, float(loss.detach())
        if self.stop_on_divergence and not math.isfinite(value):
            self.diverged = progress.step
            if self.ctx.main:
                self.log({"step": progress.step, "split": "train", "diverged": True})
            return False
        progress.loss_sum += value
        progress.loss_count += 1
        if self._micro % self.accumulate:
            return False
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.runner.gradient_clipping)
        if math.isfinite(float(grad_norm)):  # s3prl skips updates with inf/nan gradients
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        progress.step += 1
        return True

    @property
    def evaluates_now(self) -> bool:
        """Whether ``after_update`` scores dev/test at this step (a sweep collects them for all heads at once)."""
        return self.ctx.main and self.progress.step % self.config.runner.eval_step == 0

    def after_update(self, on_step=None, bar=None) -> bool:
        """After an update: logging, evaluation and checkpoints, in that order (a checkpoint follows its step's
        evaluation, so a resumed run never misses one). True at the last step."""
        runner, progress, main = self.config.runner, self.progress, self.ctx.main
        step = progress.step
        if step % runner.log_step == 0:
            loss_sum, loss_count = distributed.all_sum([progress.loss_sum, progress.loss_count])
            if main:
                rate = runner.log_step / (time.perf_counter() - self._started)
                self.log({"step": step, "split": "train", "loss": loss_sum / loss_count,
                          "lr": self.scheduler.get_last_lr()[0], "steps_per_s": rate})
            progress.loss_sum, progress.loss_count, self._started = 0.0, 0, time.perf_counter()
        if self.evaluates_now:
            self._eval_round()
        if main and step % runner.save_step == 0:
            self.save(f"states-{step}.ckpt")
            self._prune()
        if bar is not None:
            bar(step, progress)
        if on_step is not None:
            on_step(step)
        return step >= runner.total_steps

    def end(self) -> None:
        """After the last step: score the final model if no evaluation did, keep it where it is the one
        reported (last-checkpoint protocols), flush the logs."""
        runner, progress, main = self.config.runner, self.progress, self.ctx.main
        if main and self.diverged is None and progress.best_step is None and progress.step % runner.eval_step:
            self._eval_round()
        if main and selection_role(self.task, runner.protocol) is None and progress.step % runner.save_step:
            self.save(f"states-{progress.step}.ckpt")  # the reported (last) model stays loadable by evaluate
            self._prune()
        if self._writer is not None:
            self._writer.flush()

    def _no_sync(self, skip: bool):
        """DDP's ``no_sync`` for the batches before an update (one process: nothing to skip)."""
        return self.stepper.no_sync() if skip and self.ctx.distributed else contextlib.nullcontext()


class StepBar:
    """Steps, steps per second and ETA on stderr; the best dev metric so far in the description."""

    def __init__(self, enabled: bool, start: int, total: int):
        self.enabled, self.start, self.total = enabled, start, total

    def __enter__(self):
        if not self.enabled:
            return lambda step, progress: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"),
                            TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
        self.task = self.bar.add_task("train", total=self.total, completed=self.start, rate="")
        self.bar.start()

        def update(step: int, progress: Progress) -> None:
            best = "" if progress.best_value is None else f" best dev {progress.best_value:.4f}@{progress.best_step}"
            speed = self.bar.tasks[0].speed
            self.bar.update(self.task, completed=step, description=f"train{best}",
                            rate=f"{speed:.2f} steps/s" if speed else "")

        return update

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


def _unpad(targets: torch.Tensor, lengths: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(row[: int(n)].tolist()) for row, n in zip(targets.cpu(), lengths.cpu(), strict=True)]


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@dataclass
class Outputs:
    """What one model gave on a role's batches, in loader order: item positions, predictions, targets, and the
    summed loss over ``count`` items (tasks without a loss outside training leave it 0)."""

    positions: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    losses: float = 0.0
    count: int = 0

    def add(self, trainer: Trainer, batch: dict[str, Any], role: str) -> None:
        logits, lengths = trainer.model(batch)
        size = len(batch["target_lengths"])
        loss = trainer.task.loss(logits, lengths, batch)  # None: no loss outside training (ASV embeddings)
        if loss is not None:
            self.losses += float(loss) * size
            self.count += size
        score_batch = getattr(trainer.task, "score_batch", None)
        if score_batch is not None:  # scored against the batch's signals, so no waveform piles up (separation)
            self.predictions.extend(score_batch(logits, lengths, batch, trainer.prepared, role))
        else:
            self.predictions.extend(trainer.task.predict(logits, lengths, trainer.prepared))
        self.targets.extend(_unpad(batch["targets"], batch["target_lengths"]))
        self.positions.extend(batch["index"].tolist())


@torch.no_grad()
def collect_outputs(trainers: list[Trainer], role: str, step: int | None = None, feed=None,
                    guards: list | None = None) -> list[Outputs]:
    """Each trainer's outputs on ``role``, the loader read once for all (a sweep's heads share its batches: each
    batch is read, padded and moved once). ``feed(batch)``: the batch each trainer's model reads (default: the
    batch itself); ``guards[k]()``: a context each model runs in (a sweep's per-head RNG). ``step`` picks a
    drawn dev sample (default: the first trainer's step)."""
    first = trainers[0]
    loader = first.eval_loaders[role]
    draw_for = getattr(loader.batch_sampler, "draw_for", None)
    if draw_for is not None:
        draw_for(first.progress.step if step is None else step)
    outputs = [Outputs() for _ in trainers]
    for trainer in trainers:
        trainer.model.eval()
    try:
        for batch in loader:
            batch = to_device(batch, first.device)
            fed = feed(batch) if feed is not None else [batch] * len(trainers)
            for k, (trainer, out) in enumerate(zip(trainers, outputs, strict=True)):
                with guards[k]() if guards is not None else contextlib.nullcontext():
                    out.add(trainer, fed[k], role)
    finally:
        for trainer in trainers:
            trainer.model.train()
    return outputs


class _KeptWriteError:
    """A file that keeps the ``OSError`` of a failed write: torch's zip writer swallows it and raises only
    ``RuntimeError: unexpected pos``, which would hide a full disk."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint ``superb fit`` wrote, as plain data; never unpickles code. Anything else (an empty, cut
    short or foreign file, an upstream checkpoint) is one ``CheckpointError`` line."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    ckpt = load_pickled(path, stand_ins=False)
    if not isinstance(ckpt, dict) or not all(isinstance(ckpt.get(key), dict) for key in _CHECKPOINT_KEYS):
        found = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a checkpoint of superb fit (top level: {found}; expected "
                              f"{', '.join(_CHECKPOINT_KEYS)}); pass a states-STEP.ckpt or dev-best.ckpt of a run "
                              "(an upstream's checkpoint goes to --ckpt)")
    return ckpt
