"""``superb fit`` and ``superb evaluate``: resolve the run, build its pieces, train, write the expdir.

Expdir (SPEC §5): ``command.txt``, ``args.yaml``, ``config.yaml``, TensorBoard events, ``log.jsonl``,
``states-STEP.ckpt``, ``dev-best.ckpt``, ``results.json`` (+ ``layer_weights.json`` and
``confusion-SPLIT[-HEAD].json`` for ``superb report``). Runs resume with ``-a`` (latest checkpoint of the
expdir) or ``-e`` (a given checkpoint, with its saved args and config; ``-o`` still wins).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from superb import distributed
from superb.errors import ConfigError, StoreError, disk_errors
from superb.extract.extraction import resolve_device
from superb.files import write_text
from superb.registry import TASKS, UPSTREAMS
from superb.stores.base import FeatureStore, find_stores, open_store
from superb.train import data as D
from superb.train.config import (
    BEST_CHECKPOINT,
    Config,
    apply_overrides,
    build,
    default_config_path,
    load_yaml,
    selection_role,
    validate,
)
from superb.train.featurizer import Featurizer
from superb.train.trainer import DownstreamModel, Trainer, load_checkpoint


@dataclass
class FitArgs:
    """Everything ``superb fit`` was asked (saved as ``args.yaml`` and in every checkpoint)."""

    task: str
    features: str | None = None  # stores/UPSTREAM or a corpus store
    upstream: str | None = None  # on-the-fly path
    root: str | None = None
    test_root: str | None = None
    ckpt: str | None = None
    random_init: str | None = None
    upstream_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    finetune: bool = False
    name: str | None = None
    expdir: str | None = None
    config: str | None = None
    override: str | None = None
    seed: int = 0
    layer: int | None = None
    fold: int | None = None
    labels: str | None = None  # phone tasks: the CPC label folder (config.data.labels)
    device: str = "auto"
    preload: bool = False
    workers: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _expdir(args: FitArgs) -> Path:
    if args.expdir:
        return Path(args.expdir)
    source = Path(args.features).name if args.features else (args.upstream or "run")
    name = args.name or "_".join(filter(None, [args.task, source, f"fold{args.fold}" if args.fold else None]))
    return Path("result") / "downstream" / name


def resolve_config(args: FitArgs, saved: dict[str, Any] | None = None) -> Config:
    """The task YAML (or ``-c``, or a checkpoint's saved config), then ``-o``, then CLI shortcuts."""
    task = TASKS.canonical(args.task)
    data = dict(saved) if saved is not None else load_yaml(Path(args.config) if args.config else
                                                            default_config_path(task))
    if args.override:
        apply_overrides(data, args.override)
    where = args.config or f"task {task!r}"
    config = build(Config, data, where)
    if args.layer is not None:
        config.featurizer.layer = args.layer
    if args.fold is not None:
        config.data.fold = args.fold
    if args.labels is not None:
        config.data.labels = args.labels
    if args.preload:
        config.data.preload = True
    if args.workers is not None:
        config.data.num_workers = args.workers
    return validate(config, where)


def find_task_store(features: Path, corpus: str | None, hint: str | None = None) -> Path:
    """``features`` itself if it is a store, else its store named ``corpus`` (``stores/UPSTREAM/CORPUS``)."""
    stores = find_stores(features)
    if not stores:
        raise StoreError(f"{features}: no feature store here (run `superb extract` first)")
    if len(stores) == 1 and stores[0] == features:
        return features
    for store in stores:
        if store.name in (corpus, f"{corpus}.h5"):
            return store
    if corpus is None and len(stores) == 1:
        return stores[0]
    names = ", ".join(s.name for s in stores)
    if corpus:
        raise StoreError(f"{features}: no store {corpus!r} (found: {names}); extract it with "
                         f"`superb extract --corpus {hint or corpus}`")
    raise StoreError(f"{features}: several stores ({names}); name one")


def task_store_name(task: Any) -> tuple[str | None, str | None]:
    """The store folder a task reads (the corpus name, or e.g. ``voxceleb1_sv``) and how to extract it."""
    return getattr(task, "store_name", task.corpus), getattr(task, "extract_hint", None)


def store_identity(store: FeatureStore) -> dict[str, Any]:
    corpus = store.attrs["corpus"]
    return {"path": str(store.path), "upstream": store.attrs.get("upstream"),
            "corpus": {"name": corpus["name"], "version": corpus.get("version")},
            "layers": store.attrs.get("layers"), "dtype": store.attrs.get("dtype")}


def check_identity(saved: dict[str, Any], now: dict[str, Any]) -> None:
    """The store a run was built on (``Built.identity``) is the one the checkpoint was trained on."""
    for key in ("upstream", "corpus", "layers", "dtype"):
        if saved.get(key) != now[key]:
            raise StoreError(f"{now['path']}: this store's {key} differs from the one the checkpoint was trained "
                             f"on ({saved.get('path')}); evaluate with the same store")


@dataclass
class Built:
    task: Any
    prepared: Any
    model: DownstreamModel
    datasets: dict[str, Any]
    collate: Any
    identity: dict[str, Any]


def build_run(args: FitArgs, config: Config, upstream: Any = None) -> Built:
    """Task, data and model of a run, from a store or (with ``-u``) from the corpus on the fly; ``upstream``:
    one made already, which the run shares (a sweep's heads share one frozen upstream)."""
    task = TASKS.get(args.task)
    if config.runner.protocol == "s3prl" and not any(getattr(task, flag, False) for flag in (
            "s3prl_selects_on_test", "s3prl_selects_last")):
        raise ConfigError(f"runner.protocol 's3prl' changes nothing for task {task.name!r} (s3prl selects it on "
                          "dev too); it applies to asv, sd, sws2013 and the phone tasks")
    if config.data.dev_sampling != "full" and not getattr(task, "s3prl_balanced_dev", False):
        raise ConfigError(f"data.dev_sampling {config.data.dev_sampling!r} is s3prl's dev protocol for ks only; "
                          f"s3prl scores task {task.name!r} on its whole dev set, as the default 'full' does")
    torch.manual_seed(args.seed)  # head initialisation: reruns with the same seed match
    if args.features and args.upstream:
        raise ConfigError("give --features STORE (stored features) or -u UPSTREAM --root DIR (on the fly), not both")
    if args.features:
        store = open_store(find_task_store(Path(args.features), *task_store_name(task)))
        prepared = task.prepare(store, config, args.seed)
        frame_rate = float(store.attrs["frame_rate"])
        crop = int(config.data.crop_seconds * frame_rate) if config.data.crop_seconds else None
        own = getattr(task, "dataset", None)  # a task that reads its own way (sws2013's pairs, its second store)
        if config.data.preload and own is None:
            _check_preload(store, prepared)
        datasets = {role: own(role, items, prepared, config) if own is not None else
                    D.StoreItems(store, items, crop if role == "train" else None, config.data.preload)
                    for role, items in prepared.items.items()}
        featurizer = Featurizer(store.layers, config.featurizer.layer, config.featurizer.normalize)
        head = task.build_head(int(store.attrs["dim"]), config.model, prepared)
        return Built(task, prepared, DownstreamModel(featurizer, head), datasets, D.collate, store_identity(store))
    if not (args.upstream and args.root):
        raise ConfigError("fit needs --features STORE, or -u UPSTREAM with --root CORPUS for the on-the-fly path")
    from superb.train.onthefly import AudioItems, CorpusSource, collate_waves

    if task.corpus is None:
        raise ConfigError(f"task {task.name!r} runs from a store only (it takes any corpus)")
    options = dict(getattr(task, "corpus_options", ()))  # e.g. ASV's VoxCeleb1 verification reader
    test_corpus = getattr(task, "test_corpus", None)  # sws2013: --test-root is another corpus (QUESST 2014)
    if args.test_root and test_corpus is None:
        options["test_root"] = args.test_root
    upstream = upstream or make_upstream(args)
    source = CorpusSource(task.corpus, Path(args.root), options, upstream.spec)
    if test_corpus is not None and args.test_root:
        source.test_source = CorpusSource(test_corpus, Path(args.test_root), dict(task.test_corpus_options),
                                          upstream.spec)
    prepared = task.prepare(source, config, args.seed)
    crop = int(config.data.crop_seconds * 16000) if config.data.crop_seconds else None
    own = getattr(task, "dataset", None)  # a task that reads its own way (sws2013's windows of audio)
    datasets = {role: own(role, items, prepared, config) if own is not None else
                AudioItems(source, items, crop if role == "train" else None, upstream.spec)
                for role, items in prepared.items.items()}
    featurizer = Featurizer(list(range(upstream.spec.num_layers)), config.featurizer.layer,
                            config.featurizer.normalize)
    torch.manual_seed(args.seed)  # head initialisation: reruns with the same seed match
    head = task.build_head(upstream.spec.dim, config.model, prepared)
    model = DownstreamModel(featurizer, head, upstream=upstream, finetune=args.finetune)
    identity = {"path": None, "upstream": upstream.identity(), "corpus": source.attrs["corpus"],
                "layers": featurizer.layers, "dtype": "float32"}
    return Built(task, prepared, model, datasets, D.collate if own is not None else collate_waves, identity)


def make_upstream(args: FitArgs) -> Any:
    """The on-the-fly path's upstream, as ``-u``, ``--ckpt``, ``-g`` and ``--random-init`` ask."""
    return UPSTREAMS.get(args.upstream).create(
        ckpt=Path(args.ckpt) if args.ckpt else None, options=args.upstream_config,
        random_init=args.random_init, seed=args.seed)


def _check_preload(store: FeatureStore, prepared: Any) -> None:
    """Refuse ``--preload`` before loading anything when the splits would not fit in free RAM."""
    frame_bytes = len(store.layers) * int(store.attrs["dim"]) * (2 if store.attrs["dtype"] == "float16" else 4)
    frames = 0
    for items in prepared.items.values():
        for item in items:
            start, stop = D.item_window(item, store.split(item.split).offsets)
            frames += stop - start
    need = frames * frame_bytes
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > 0.8 * free:
        raise ConfigError(f"--preload needs {need / 2**30:.1f} GiB of RAM, {free / 2**30:.1f} GiB is free; "
                          "drop --preload to read from the store")


def _loaders(built: Built, config: Config, seed: int, ctx: distributed.Context = distributed.Context(),
             batch_size: int | None = None):
    train = built.datasets["train"]
    classes = [item.target[0] for item in train.items] if config.data.balanced else None
    workers = 0 if config.data.preload else config.data.num_workers
    plan = D.batch_plan(config.data.batching, train, batch_size or config.data.batch_size,
                        config.data.half_batch_samples, classes)
    sampler = D.TrainBatches(plan, seed, ctx.rank, ctx.world)
    train_loader = D.loader(train, sampler, workers, built.collate, task_signals(built, "train"))
    evals = {role: D.loader(ds, eval_plan(role, ds, config, seed), workers, built.collate, task_signals(built, role))
             for role, ds in built.datasets.items() if role != "train"}
    return train_loader, evals


def task_signals(built: Built, role: str):
    """The task's reader of what a batch needs besides features (``batch_signals``), for one role, or None."""
    signals = getattr(built.task, "batch_signals", None)
    return None if signals is None else functools.partial(signals, built.prepared, role)


def eval_plan(role: str, dataset: Any, config: Config, seed: int) -> Any:
    """The batches a role is scored on: every item once, or for dev under ``data.dev_sampling:
    s3prl_balanced`` s3prl's class-balanced draws, drawn anew for each step scored."""
    if role == "dev" and config.data.dev_sampling == "s3prl_balanced":
        classes = [item.target[0] for item in dataset.items]
        return D.BalancedEvalDraws(dataset.lengths, classes, config.data.eval_batch_size, seed)
    return D.eval_batches(dataset.lengths, config.data.eval_batch_size)


def split_batch(batch: int, accumulate: int, world: int) -> tuple[int, int]:
    """s3prl's rule for several processes: the effective batch (per-process batch × processes ×
    accumulation) stays the config's ``batch × accumulate``. The processes take the place of
    accumulation steps first, then split the batch; what cannot be split exactly is refused."""
    shared = math.gcd(accumulate, world)
    rest = world // shared
    if batch % rest:
        raise ConfigError(f"{world} processes cannot keep the effective batch {batch} × {accumulate} "
                          f"(= {batch * accumulate}): it needs the batch or the accumulation to divide by the "
                          "process count; change one with -o config.data.batch_size=… or "
                          "config.runner.gradient_accumulate_steps=…")
    return batch // rest, accumulate // shared


def fit(args: FitArgs, past_exp: Path | None = None, auto_resume: bool = False,
        init_ckpt: Path | None = None, on_step=None) -> Path:
    """Train (or resume) a run; returns its expdir, which then holds ``results.json``. Under ``torchrun``
    every process trains its share; the main one alone evaluates, logs and writes the expdir."""
    ctx = distributed.context()
    device = distributed.device_for(ctx, resolve_device(args.device))  # cuda:LOCAL_RANK before NCCL binds it
    distributed.init(device)
    try:
        return _fit(args, past_exp, auto_resume, init_ckpt, on_step, ctx, device)
    finally:
        distributed.finish()


def _fit(args: FitArgs, past_exp: Path | None, auto_resume: bool, init_ckpt: Path | None, on_step,
         ctx: distributed.Context, device: torch.device) -> Path:
    run = open_run(args, past_exp, auto_resume, init_ckpt, ctx, device)
    with disk_errors(run.expdir, "-p", "rerun it with -a"):  # a full or read-only disk: one line
        try:
            run.trainer.fit(on_step=on_step)
            if ctx.main:
                write_results(run.trainer, run.expdir)
        finally:
            release(run.built.prepared)
    return run.expdir


@dataclass
class Run:
    """One run ready to train: its resolved args and config, expdir, data and model, and its trainer (resumed
    where it stopped when asked)."""

    args: FitArgs
    config: Config
    expdir: Path
    built: Built
    trainer: Trainer


def open_run(args: FitArgs, past_exp: Path | None, auto_resume: bool, init_ckpt: Path | None,
             ctx: distributed.Context, device: torch.device, upstream: Any = None) -> Run:
    """Resolve, build and (with ``-a``/``-e``) resume a run, and write its run files (``upstream``: a shared
    on-the-fly upstream, see ``build_run``)."""
    resume = _resume_checkpoint(args, past_exp, auto_resume)
    if resume is not None:
        saved_args = FitArgs(**resume["args"])
        saved_args.override = args.override or saved_args.override
        args = saved_args
        config = resolve_config(args, saved=resume["config"])
    else:
        config = resolve_config(args)
    if TASKS.canonical(args.task) == "er" and args.fold is None:
        args.fold = config.data.fold  # the config's default fold: name the expdir after it too
    expdir = _expdir(args)
    with disk_errors(expdir, "-p", "rerun it with -a"):  # a full or read-only disk: one line
        batch, accumulate = split_batch(config.data.batch_size, config.runner.gradient_accumulate_steps, ctx.world)
        if resume is None and _run_files(expdir):
            if not auto_resume:
                raise ConfigError(f"{expdir} already holds a run: resume it with -a, or choose another -n/-p")
            distributed.barrier()  # every process has looked before the main one clears
            if ctx.main:
                for path in _run_files(expdir):  # killed before its first checkpoint: start over, cleanly
                    path.unlink()
        if ctx.distributed and ctx.main:
            print(f"distributed: {ctx.world} processes × batch {batch} × accumulation {accumulate} = effective batch "
                  f"{ctx.world * batch * accumulate} (the config's {config.data.batch_size} × "
                  f"{config.runner.gradient_accumulate_steps})", file=sys.stderr)
        built = build_run(args, config, upstream)
        built.model.to(device)
        train_loader, evals = _loaders(built, config, args.seed, ctx, batch)
        meta = {"args": args.to_dict(), "config": config.to_dict(), "store": built.identity,
                "task": built.task.name, "classes": built.prepared.classes}
        trainer = Trainer(built.model, built.task, built.prepared, config, expdir, train_loader, evals, device, meta,
                          ctx=ctx, accumulate=accumulate)
        if resume is not None:
            if args.features:
                check_identity(resume["store"], built.identity)
            trainer.load(resume)
            if ctx.main:
                _forget_after(expdir, trainer.progress.step)
        elif init_ckpt is not None:
            trainer.load(load_checkpoint(init_ckpt), weights_only=True)
        expdir.mkdir(parents=True, exist_ok=True)  # only now: a run refused above leaves no empty expdir
        if ctx.main:
            _write_run_files(expdir, args, config)
    return Run(args, config, expdir, built, trainer)


def _resume_checkpoint(args: FitArgs, past_exp: Path | None, auto_resume: bool) -> dict[str, Any] | None:
    if past_exp is not None:
        return load_checkpoint(latest_checkpoint(past_exp))
    if auto_resume:
        expdir = _expdir(args)
        if any(expdir.glob("states-*.ckpt")):
            return load_checkpoint(latest_checkpoint(expdir))
    return None


def latest_checkpoint(path: Path) -> Path:
    """``path`` if it is a file, else the newest ``states-STEP.ckpt`` in it."""
    if path.is_file():
        return path
    states = sorted(path.glob("states-*.ckpt"), key=lambda p: int(p.stem.split("-")[1]))
    if not states:
        raise ConfigError(f"{path}: no states-STEP.ckpt to resume from")
    return states[-1]


def _run_files(expdir: Path) -> list[Path]:
    """What a run leaves in its expdir (checkpoints, logs, results), excluding the run's inputs."""
    if not expdir.is_dir():
        return []
    patterns = ("states-*.ckpt", *BEST_CHECKPOINT.values(), "log.jsonl", "results.json", "layer_weights.json",
                "confusion-*.json", "events.out.tfevents.*")
    return sorted({p for pattern in patterns for p in expdir.glob(pattern)})


def _forget_after(expdir: Path, step: int) -> None:
    """Resuming at ``step``: drop what a later point of the run left (logs, checkpoints, dev-best)."""
    for path in expdir.glob("states-*.ckpt"):
        if int(path.stem.split("-")[1]) > step:
            path.unlink()
    for name in BEST_CHECKPOINT.values():
        best = expdir / name
        if best.is_file() and load_checkpoint(best)["progress"]["step"] > step:
            best.unlink()
    log = expdir / "log.jsonl"
    if log.is_file():
        kept = [line for line in log.read_text().splitlines() if _logged(line, step)]
        write_text(log, "".join(line + "\n" for line in kept))  # a kill here keeps the old log whole


def _logged(line: str, step: int) -> bool:
    """A log line recorded at or before ``step``; a line torn by a kill or a full disk is dropped."""
    try:
        return json.loads(line)["step"] <= step
    except (ValueError, KeyError, TypeError):
        return False


def _write_run_files(expdir: Path, args: FitArgs, config: Config) -> None:
    write_text(expdir / "command.txt", " ".join(shlex.quote(a) for a in sys.argv) + "\n")
    write_text(expdir / "args.yaml", yaml.safe_dump(args.to_dict(), sort_keys=False))
    write_text(expdir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))


def results_upstream(upstream: dict[str, Any]) -> dict[str, Any]:
    """The upstream block of results.json (what ``superb report`` groups runs by) from a store's identity."""
    return {**{k: upstream.get(k) for k in ("name", "ckpt", "ckpt_sha256", "random_init")},
            "options": upstream.get("config") if upstream.get("ckpt_sha256") is None else upstream.get("options")}


def batching_record(data: Any) -> dict[str, Any]:
    """How train batches were made (results.json): the plan, and for s3prl's the halving threshold used."""
    return {"plan": data.batching, "batch_size": data.batch_size,
            "half_batch_samples": D.halving_threshold(data.batching, data.half_batch_samples)}


def select_model(trainer: Trainer, expdir: Path) -> int:
    """Load the model a run reports (``dev-best.ckpt``; ``test-best.ckpt`` under ``protocol: s3prl``; the last
    model where the task keeps no best) into ``trainer``; returns the step it was saved at."""
    chosen = selection_role(trainer.task, trainer.config.runner.protocol)
    best = expdir / BEST_CHECKPOINT[chosen] if chosen is not None else None  # None: the last model (sws2013, s3prl)
    if best is None or not best.is_file():
        return trainer.progress.step
    ckpt = load_checkpoint(best)
    trainer.load(ckpt, weights_only=True)
    return ckpt["progress"]["step"]


def write_results(trainer: Trainer, expdir: Path, scored_step: int | None = None) -> dict[str, Any]:
    """Score the selected model (``select_model``; ``scored_step``: it is loaded already) on dev and test; write
    results.json, layer weights and confusions."""
    protocol = trainer.config.runner.protocol
    chosen = selection_role(trainer.task, protocol)
    if scored_step is None:
        scored_step = select_model(trainer, expdir)
    scores = {}
    for role in ("dev", "test"):
        if role in trainer.eval_loaders:
            metrics = trainer.evaluate(role, final=True, step=scored_step)
            if hasattr(trainer.task, "write_outputs"):
                trainer.task.write_outputs(expdir, role, *trainer.outputs[role], trainer.prepared)
            for head, confusion in metrics.pop("confusion", {}).items():
                suffix = "" if len(trainer.task.heads) == 1 else f"-{head}"
                write_text(expdir / f"confusion-{role}{suffix}.json", json.dumps(confusion))
            scores[role] = {k: v for k, v in metrics.items() if k != "loss"}
    extra: dict[str, Any] = {}
    if hasattr(trainer.task, "select_setting"):  # SD: the post-processing chosen on dev (or test: s3prl)
        scores, extra = trainer.task.select_setting(scores, protocol)
    args, store = trainer.meta["args"], trainer.meta["store"]
    results = {
        "task": trainer.task.name, "protocol": protocol, "dev_sampling": trainer.config.data.dev_sampling,
        "best_step": trainer.progress.best_step,
        **({"selected": "last step (s3prl)", "scored_step": scored_step} if chosen is None else {}),
        "dev": scores.get("dev", {}), "test": scores.get("test", {}),
        "upstream": results_upstream(store.get("upstream") or {}),
        "corpus": store["corpus"]["name"], "fold": trainer.config.data.fold if trainer.task.name == "er" else None,
        "layer": trainer.config.featurizer.layer, "lr": trainer.config.optimizer.lr, "seed": args["seed"],
        "source": "store" if args["features"] else ("finetune" if args["finetune"] else "on-the-fly"),
        "batching": batching_record(trainer.config.data),
        **({"notes": trainer.prepared.notes} if trainer.prepared.notes else {}),
        **({"diverged_at_step": trainer.diverged} if trainer.diverged is not None else {}),
        **({"halted_at_step": trainer.halted_at} if trainer.halted_at is not None else {}),
        **extra,
    }
    weights = trainer.model.featurizer.layer_weights()
    if weights is not None:
        write_text(expdir / "layer_weights.json", json.dumps(weights))
    write_text(expdir / "results.json", json.dumps(results, indent=2))  # last: the run is complete
    return results


def evaluate(ckpt_path: Path, split: str, override: str | None = None, save_audio: Path | None = None
             ) -> dict[str, Any]:
    """Score a checkpoint on ``split`` (a role: dev/test/train, or a store split name) with its saved run;
    ``save_audio``: a folder for the separated waveforms (tasks that make them)."""
    path = ckpt_path
    if ckpt_path.is_dir():
        found = [ckpt_path / n for n in BEST_CHECKPOINT.values() if (ckpt_path / n).is_file()]
        if not found and any(ckpt_path.glob("states-*.ckpt")):  # a run that reports its last model (sws2013)
            found = [latest_checkpoint(ckpt_path)]
        path = found[0] if found else ckpt_path / BEST_CHECKPOINT["dev"]
    ckpt = load_checkpoint(path)
    args = FitArgs(**ckpt["args"])
    args.override = override or args.override
    config = resolve_config(args, saved=ckpt["config"])
    if split not in ("train", "dev", "test"):  # a store split by name (e.g. test-other): score it as test
        config.data.test, split = split, "test"
    built = build_run(args, config)
    if args.features:
        check_identity(ckpt["store"], built.identity)
    if split not in built.datasets:
        raise ConfigError(f"-t {split!r}: this run has splits {', '.join(built.datasets)}")
    if save_audio is not None:
        if not hasattr(built.task, "batch_signals"):
            raise ConfigError(f"--save-audio: task {built.task.name!r} makes no audio (separation_stft does)")
        built.prepared.extras["save_audio"] = Path(save_audio)
    device = resolve_device(args.device)
    built.model.to(device)
    plan = eval_plan(split, built.datasets[split], config, args.seed)
    evals = {split: D.loader(built.datasets[split], plan, 0, built.collate, task_signals(built, split))}
    trainer = Trainer(built.model, built.task, built.prepared, config, path.parent, None, evals, device, ckpt)
    trainer.load(ckpt, weights_only=True)
    try:
        metrics = trainer.evaluate(split, step=ckpt["progress"]["step"])
    finally:
        release(built.prepared)
    metrics.pop("confusion", None)
    return metrics


def release(prepared: Any) -> None:
    """Close what a run's helpers hold open (``extras`` values with ``close``: separation's scoring processes),
    so a process running many fits (tests, sweeps) does not keep them."""
    for helper in prepared.extras.values():
        close = getattr(helper, "close", None)
        if callable(close):
            close()
