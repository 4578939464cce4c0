"""Task configs: YAML files loaded into typed dataclasses, with s3prl-style ``-o`` overrides.

Configs keep s3prl's top-level ``runner`` and ``optimizer`` blocks so its ``-o`` strings work unchanged;
the rest is ours: ``data`` (splits, batching), ``model`` (the head) and ``featurizer`` (layer choice).
Unknown keys are errors with suggestions (s3prl silently created misspelt keys), values are parsed as
YAML literals (s3prl ran ``eval`` on them), and every value is type-checked against its field.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from superb.errors import ConfigError


@dataclass
class RunnerConfig:
    total_steps: int = 200_000
    gradient_clipping: float = 1.0
    gradient_accumulate_steps: int = 1
    log_step: int = 100
    eval_step: int = 5_000
    save_step: int = 1_000
    max_keep: int = 1
    eval_dataloaders: list[str] = field(default_factory=lambda: ["dev", "test"])
    protocol: str = "dev"  # "dev": select on dev; "s3prl": s3prl's selection on test (ASV, SD only)


@dataclass
class OptimizerConfig:
    name: str = "Adam"  # Adam, TorchAdam (s3prl's name for it) or AdamW
    lr: float = 1.0e-4
    eps: float = 1.0e-8
    weight_decay: float = 0.0
    scheduler: str = "constant"  # or linear_schedule_with_warmup (s3prl's "AdamW*" tasks): 0 → lr → 0
    warmup_steps: int = 0


@dataclass
class DataConfig:
    train: str = "train"  # store split names for the three roles
    dev: str = "dev"
    test: str = "test"
    batch_size: int = 32  # with an s3prl_* batching: the bucket size (buckets may be halved)
    eval_batch_size: int = 32
    batching: str = "pools"  # train batch plan (superb.train.data.BATCH_PLANS): pools, s3prl_asr, s3prl_ctc
    half_batch_samples: int | None = None  # s3prl_* batchings: halve above this many samples (None: s3prl's)
    num_workers: int = 2  # threads that build batches ahead (reading and padding release the GIL)
    preload: bool = False  # hold the splits in RAM (refused when they do not fit)
    crop_seconds: float | None = None  # random train crops (SID: 8 s), on frames
    balanced: bool = False  # class-balanced sampling of train (KS)
    dev_ratio: float = 0.2  # ER: share of the training sessions' utterances held out as dev
    fold: int | None = None  # ER: the IEMOCAP session left out as test (1..5)
    num_classes: int = 4  # example: random labels over this many classes
    lexicon: str | None = None  # pr: a LibriSpeech-format lexicon file instead of CMUdict
    trials: str = "veri_test.txt"  # asv: the test trial list (a path, or a list file in the corpus root)
    dev_speakers: int = 40  # asv (protocol dev): training speakers held out for the dev trial list
    dev_trials: int = 8  # asv: dev trials per held-out utterance (half target, half non-target)
    chunk_frames: int = 2000  # sd: training chunk length in frames (s3prl's chunk_size)


@dataclass
class ModelConfig:
    projector_dim: int = 256
    pooling: str = "mean"
    head: str = "linear"  # CTC tasks: "linear" (s3prl's PR head) or "rnn" (ASR/SF: projector → BiLSTMs)
    rnn_layers: int = 2  # rnn head: bidirectional LSTM layers after the projector
    rnn_dim: int = 1024  # rnn head: units per direction
    rnn_dropout: float = 0.2
    agg_dim: int = 1500  # asv: units of the last TDNN layer (statistics pooling doubles them)
    am_scale: float = 30.0  # asv: AM-softmax scale s
    am_margin: float = 0.4  # asv: AM-softmax margin m


@dataclass
class SpecAugConfig:
    """SpecAugment on the featurizer output during training, as s3prl's ``specaug`` block (ASR, SF)."""

    enabled: bool = False
    time_warp: bool = True  # s3prl's apply_time_warp: bicubic stretch around a random centre
    time_warp_window: int = 5  # frames the centre may move
    num_time_mask: int = 2
    time_mask_width: int = 40  # frames, widths drawn from [0, this]
    num_freq_mask: int = 4
    freq_mask_width: int = 50  # feature dims, widths drawn from [0, this]
    adaptive: bool = False  # s3prl's adaptive time masks: their number and width scale with the length
    adaptive_number_ratio: float = 0.04
    adaptive_size_ratio: float = 0.04
    max_n_time_masks: int = 20


@dataclass
class DecodeConfig:
    """asr: optional KenLM beam search at evaluation (s3prl's decoder defaults)."""

    lm: str | None = None  # ARPA or binary KenLM file; None: greedy only
    lexicon: str | None = None  # words (or a lexicon file); default: the ARPA's unigrams
    beam: int = 5
    lm_weight: float = 2.0
    word_score: float = -1.0


@dataclass
class FeaturizerConfig:
    layer: int | None = None  # None: softmax-weighted sum of every stored layer
    normalize: bool = False  # layer-norm each hidden state before weighting


@dataclass
class Config:
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    featurizer: FeaturizerConfig = field(default_factory=FeaturizerConfig)
    specaug: SpecAugConfig = field(default_factory=SpecAugConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_config_path(task: str) -> Path:
    return Path(str(resources.files("superb.configs") / f"{task}.yaml"))


def load_yaml(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config blocks")
    return data


def load_config(path: Path, overrides: str | None = None) -> Config:
    """Read ``path`` (a task YAML), apply ``-o`` overrides, and validate everything."""
    data = load_yaml(path)
    if overrides:
        apply_overrides(data, overrides)
    return validate(build(Config, data, str(path)), str(path))


SCHEDULERS = ("constant", "linear_schedule_with_warmup")
CTC_HEADS = ("linear", "rnn")
PROTOCOLS = ("dev", "s3prl")
BATCHINGS = ("pools", "s3prl_asr", "s3prl_ctc")  # the keys of superb.train.data.BATCH_PLANS (torch-free here)
BEST_CHECKPOINT = {"dev": "dev-best.ckpt", "test": "test-best.ckpt"}  # the selected model, by the role chosen on


def selection_role(task: Any, protocol: str) -> str:
    """The role whose metric picks the checkpoint: dev, or test where s3prl does so (ASV under s3prl)."""
    return "test" if protocol == "s3prl" and getattr(task, "s3prl_checkpoint_on_test", False) else "dev"
EVAL_ROLES = ("train", "dev", "test")


def validate(config: Config, where: str) -> Config:
    """Checks across fields that types alone cannot express."""
    runner = config.runner
    for key in ("total_steps", "gradient_accumulate_steps", "log_step", "eval_step", "save_step"):
        if getattr(runner, key) < 1:
            raise ConfigError(f"{where}: runner.{key} must be at least 1, got {getattr(runner, key)}")
    unknown = [r for r in runner.eval_dataloaders if r not in EVAL_ROLES]
    if unknown:
        raise ConfigError(f"{where}: runner.eval_dataloaders has {unknown[0]!r}; use {', '.join(EVAL_ROLES)}")
    if config.optimizer.scheduler not in SCHEDULERS:
        raise ConfigError(f"{where}: optimizer.scheduler {config.optimizer.scheduler!r} is not one of "
                          f"{', '.join(SCHEDULERS)}")
    if runner.protocol not in PROTOCOLS:
        raise ConfigError(f"{where}: runner.protocol {runner.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if config.model.head not in CTC_HEADS:
        raise ConfigError(f"{where}: model.head {config.model.head!r} is not one of {', '.join(CTC_HEADS)}")
    if config.data.batch_size < 1 or config.data.eval_batch_size < 1:
        raise ConfigError(f"{where}: data.batch_size and data.eval_batch_size must be at least 1")
    data = config.data
    if data.batching not in BATCHINGS:
        raise ConfigError(f"{where}: data.batching {data.batching!r} is not one of {', '.join(BATCHINGS)}")
    if data.half_batch_samples is not None and data.half_batch_samples < 0:
        raise ConfigError(f"{where}: data.half_batch_samples must be at least 0, got {data.half_batch_samples}")
    if data.balanced and data.batching != "pools":
        raise ConfigError(f"{where}: data.balanced draws classes evenly with data.batching 'pools' only, "
                          f"not {data.batching!r}")
    return config


def parse_literal(raw: str) -> Any:
    """A YAML literal (number, bool, string, list, null) from command-line text, never evaluated; text
    that is not a literal stays a string."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def parse_overrides(text: str) -> list[tuple[list[str], Any]]:
    """``"config.optimizer.lr=1e-3,,config.runner.total_steps=2000"`` → ``[(['optimizer','lr'], 0.001), …]``.

    ``,,`` separates fields; values are YAML literals (numbers, strings, lists, null), never evaluated.
    """
    out = []
    for item in filter(None, (part.strip() for part in text.split(",,"))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-o {item!r}: expected config.BLOCK.KEY=VALUE")
        path = key.strip().split(".")
        if path[0] == "config":
            path = path[1:]
        if not path or not all(path):
            raise ConfigError(f"-o {item!r}: expected config.BLOCK.KEY=VALUE")
        out.append((path, parse_literal(raw)))
    return out


def apply_overrides(data: dict[str, Any], overrides: str) -> None:
    for path, value in parse_overrides(overrides):
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"-o config.{'.'.join(path)}: {part!r} is not a block")
        node[path[-1]] = value


def build(cls: type, data: Any, where: str) -> Any:
    """A dataclass instance from nested ``data``, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [key for key in data if key not in fields]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(fields), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}.{hint} Known: {', '.join(fields)}")
    values = {key: _coerce(hints[key], value, f"{where}: {key}") for key, value in data.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _coerce(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (inner,) = typing.get_args(hint)
        return [_coerce(inner, v, where) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads "1e-3" as a string
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {hint!r}")  # a bug in the schema, named
