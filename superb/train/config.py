"""Task configs: YAML files loaded into typed dataclasses, with s3prl-style ``-o`` overrides.

Configs keep s3prl's top-level ``runner`` and ``optimizer`` blocks so its ``-o`` strings work unchanged;
the rest is ours: ``data`` (splits, batching), ``model`` (the head) and ``featurizer`` (layer choice).
Unknown keys are errors with suggestions (s3prl silently created misspelt keys), values are parsed as
YAML literals (s3prl ran ``eval`` on them), every value is type-checked against its field, and the
allowed values are declared on the field itself (``Annotated[int, Range(1)]``, ``OneOf(...)``), so a
``lr: .nan`` or ``total_steps: 0`` stops the run before any data is read, naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml

from superb.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The interval a config number must lie in; NaN and infinities never pass (every float field is
    checked for that even without a Range)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: float) -> str | None:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if math.isfinite(value) and above and below:
            return None
        kind = "an integer" if isinstance(value, int) else "a finite number"
        return f"must be {kind}{self._bounds()}, got {value!r}"

    def _bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return (f" in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f" {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f" {'<' if self.high_open else '<='} {self.high:g}"
        return ""


@dataclass(frozen=True)
class OneOf:
    """The names a config string (or each string of a list) may take."""

    choices: tuple[str, ...]

    def problem(self, value: str | list[str]) -> str | None:
        bad = [v for v in (value if isinstance(value, list) else [value]) if v not in self.choices]
        if not bad:
            return None
        listed = f"has {bad[0]!r}, which is" if isinstance(value, list) else f"{bad[0]!r} is"
        return f"{listed} not one of {', '.join(self.choices)}"


PositiveInt = Annotated[int, Range(1)]  # steps, intervals, sizes
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(0)]
Share = Annotated[float, Range(0, 1)]

SCHEDULERS = ("constant", "linear_schedule_with_warmup")
CTC_HEADS = ("linear", "rnn")
PROTOCOLS = ("dev", "s3prl")
EVAL_ROLES = ("train", "dev", "test")
DEV_SAMPLINGS = ("full", "s3prl_balanced")
BATCHINGS = ("pools", "s3prl_asr", "s3prl_ctc")  # the keys of superb.train.data.BATCH_PLANS (torch-free here)


@dataclass
class RunnerConfig:
    total_steps: PositiveInt = 200_000
    gradient_clipping: PositiveFloat = 1.0  # max gradient norm
    gradient_accumulate_steps: PositiveInt = 1
    log_step: PositiveInt = 100
    eval_step: PositiveInt = 5_000
    save_step: PositiveInt = 1_000
    max_keep: NonNegativeInt = 1  # states-STEP.ckpt kept; 0 keeps them all
    eval_dataloaders: Annotated[list[str], OneOf(EVAL_ROLES)] = field(default_factory=lambda: ["dev", "test"])
    # "dev": select on dev; "s3prl": s3prl's selection on test (ASV, SD only)
    protocol: Annotated[str, OneOf(PROTOCOLS)] = "dev"


@dataclass
class OptimizerConfig:
    # Adam, TorchAdam (s3prl's name for it), AdamW (torch.optim's) or s3prl_AdamW (s3prl's own: "AdamW*")
    name: str = "Adam"
    lr: NonNegativeFloat = 1.0e-4  # 0 keeps the weights where they are (a check, not training)
    eps: NonNegativeFloat = 1.0e-8
    # torch's AdamW default is 0.01: a config copying s3prl's TorchOptim AdamW says so
    weight_decay: NonNegativeFloat = 0.0
    # or linear_schedule_with_warmup (s3prl's "AdamW*" tasks): 0 → lr → 0
    scheduler: Annotated[str, OneOf(SCHEDULERS)] = "constant"
    warmup_steps: NonNegativeInt = 0
    # superb sweep / bench without --lr: the learning rates swept (empty: lr alone, s3prl's one rate)
    sweep_lrs: list[float] = field(default_factory=list)


@dataclass
class DataConfig:
    train: str = "train"  # store split names for the three roles
    dev: str = "dev"
    test: str = "test"
    batch_size: PositiveInt = 32  # with an s3prl_* batching: the bucket size (buckets may be halved)
    eval_batch_size: PositiveInt = 32
    # train batch plan (superb.train.data.BATCH_PLANS): pools, s3prl_asr, s3prl_ctc
    batching: Annotated[str, OneOf(BATCHINGS)] = "pools"
    half_batch_samples: NonNegativeInt | None = None  # s3prl_* batchings: halve above this many samples (None: s3prl's)
    num_workers: NonNegativeInt = 2  # threads that build batches ahead (reading and padding release the GIL)
    preload: bool = False  # hold the splits in RAM (refused when they do not fit)
    crop_seconds: PositiveFloat | None = None  # random train crops (SID: 8 s), on frames
    balanced: bool = False  # class-balanced sampling of train (KS)
    # every dev item once; "s3prl_balanced": s3prl's class-balanced draws (KS)
    dev_sampling: Annotated[str, OneOf(DEV_SAMPLINGS)] = "full"
    # ER: share of the training sessions' utterances held out as dev
    dev_ratio: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.2
    fold: Annotated[int, Range(1, 5)] | None = None  # ER: the IEMOCAP session left out as test (1..5)
    num_classes: PositiveInt = 4  # example: random labels over this many classes
    lexicon: str | list[str] | None = None  # pr: LibriSpeech-format lexicon file(s), read in order; None: CMUdict
    trials: str = "veri_test.txt"  # asv: the test trial list (a path, or a list file in the corpus root)
    dev_speakers: NonNegativeInt = 40  # asv (protocol dev): training speakers held out for the dev trial list
    dev_trials: PositiveInt = 8  # asv: dev trials per held-out utterance (half target, half non-target)
    chunk_frames: PositiveInt = 2000  # sd: training chunk length in frames (s3prl's chunk_size)
    labels: str | None = None  # phone tasks: the CPC phone label folder (--labels)
    split_seed: int = 1337  # phone tasks: s3prl's train_dev_seed, Python's random.shuffle of train_split.txt
    # audio_snips: the voices of train and dev (valid annotations), and of test (s3prl's defaults)
    train_speakers: list[str] = field(default_factory=lambda: ["Aditi", "Amy"])
    test_speakers: list[str] = field(default_factory=lambda: ["Aditi"])
    # atis: "train" (classes from train; a dev/test intent never trained on counts as wrong) or "s3prl"
    # (train, then dev, then test intents get outputs, as s3prl builds them)
    intent_classes: Annotated[str, OneOf(("train", "s3prl"))] = "train"
    num_class: Annotated[int, Range(2, 7)] = 2  # mosei: s3prl's class scheme (2, 3, 6 or 7)
    # sws2013: the windows documents and queries are cut into (s3prl's max_dur) and the scoring hop between them
    window_seconds: PositiveFloat = 3.0
    window_hop_seconds: PositiveFloat = 0.75
    test_store: str | None = None  # sws2013: the QUESST 2014 store it tests on (None: the quesst14 store beside it)


@dataclass
class ModelConfig:
    projector_dim: PositiveInt = 256
    pooling: str = "mean"
    # CTC tasks: "linear" (s3prl's PR head) or "rnn" (ASR/SF: projector → BiLSTMs)
    head: Annotated[str, OneOf(CTC_HEADS)] = "linear"
    rnn_layers: PositiveInt = 2  # rnn head: bidirectional LSTM layers after the projector
    rnn_dim: PositiveInt = 1024  # rnn head: units per direction
    rnn_dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.2
    agg_dim: PositiveInt = 1500  # asv: units of the last TDNN layer (statistics pooling doubles them)
    am_scale: PositiveFloat = 30.0  # asv: AM-softmax scale s
    am_margin: NonNegativeFloat = 0.4  # asv: AM-softmax margin m
    concat_n_frames: Annotated[int, Range(3)] = 9  # phone_linear_concat: frames concatenated (odd)
    hidden_size: PositiveInt = 768  # phone_1hidden: units of the hidden layer
    hidden_dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.0  # phone_1hidden: before the ReLU
    # audio_snips, atis: s3prl's connector width and 2-layer post-LN transformer (superb.train.tasks.sap)
    encoder_dim: PositiveInt = 512
    encoder_layers: NonNegativeInt = 2
    encoder_heads: PositiveInt = 8
    encoder_ffn: PositiveInt = 2048
    encoder_dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.1


@dataclass
class SpecAugConfig:
    """SpecAugment on the featurizer output during training, as s3prl's ``specaug`` block (ASR, SF)."""

    enabled: bool = False
    time_warp: bool = True  # s3prl's apply_time_warp: bicubic stretch around a random centre
    time_warp_window: NonNegativeInt = 5  # frames the centre may move
    num_time_mask: NonNegativeInt = 2  # 0: s3prl's apply_time_mask false
    time_mask_width: NonNegativeInt = 40  # frames, widths drawn from [0, this): s3prl's time_mask_width_range [0, this]
    num_freq_mask: NonNegativeInt = 4  # 0: s3prl's apply_freq_mask false
    freq_mask_width: NonNegativeInt = 50  # feature dims, widths from [0, this): s3prl's freq_mask_width_range [0, this]
    adaptive: bool = False  # s3prl's adaptive time masks: their number and width scale with the length
    adaptive_number_ratio: Share = 0.04
    adaptive_size_ratio: Share = 0.04
    max_n_time_masks: NonNegativeInt = 20


@dataclass
class DecodeConfig:
    """asr: optional KenLM beam search at evaluation (s3prl's decoder defaults)."""

    lm: str | None = None  # ARPA or binary KenLM file; None: greedy only
    lexicon: str | None = None  # words (or a lexicon file); default: the ARPA's unigrams
    beam: PositiveInt = 5
    lm_weight: float = 2.0
    word_score: float = -1.0


@dataclass
class SeparationConfig:
    """separation_stft: the STFT of the targets and the reconstruction, the loss and the scoring (s3prl's
    ``datarc``/``modelrc`` of ``separation_stft/configs/cfg.yaml``)."""

    n_fft: PositiveInt = 512
    win_length: PositiveInt = 512
    hop_length: PositiveInt | None = None  # None: the upstream's frame hop (s3prl); any other value is refused
    center: bool = True
    # librosa.stft's padding: "reflect" before librosa 0.10 (SUPERB-SG's numbers), "constant" (zeros) after
    pad_mode: Annotated[str, OneOf(("reflect", "constant"))] = "reflect"
    mask_type: Annotated[str, OneOf(("NPSM", "PSM", "AM"))] = "NPSM"  # the loss's target: s3prl's MSELoss
    mask_activation: Annotated[str, OneOf(("relu", "sigmoid", "tanh"))] = "relu"
    # how estimates are paired with references when scored: "sir" (mir_eval's bss_eval_sources, through
    # asteroid's get_metrics as s3prl scores) or "si_sdr" (the pairing with the higher mean SI-SDR: faster)
    permutation: Annotated[str, OneOf(("sir", "si_sdr"))] = "sir"
    postprocess: bool = True  # s3prl's suppression of an impulse at the end of each estimate
    # processes that score mixtures beside training/evaluation (null: up to 8 where there are more than 2 cores;
    # 0: in the main process); the scores agree to float rounding (a process uses one BLAS thread)
    scoring_workers: NonNegativeInt | None = None


@dataclass
class FeaturizerConfig:
    layer: NonNegativeInt | None = None  # None: softmax-weighted sum of every stored layer
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
    separation: SeparationConfig = field(default_factory=SeparationConfig)

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


BEST_CHECKPOINT = {"dev": "dev-best.ckpt", "test": "test-best.ckpt"}  # the selected model, by the role chosen on


def selection_role(task: Any, protocol: str) -> str | None:
    """The role whose metric picks the checkpoint: dev, or test where s3prl does so (ASV under s3prl), or None
    where s3prl reports the last checkpoint (sws2013 under s3prl)."""
    if protocol == "s3prl" and getattr(task, "s3prl_selects_last", False):
        return None
    return "test" if protocol == "s3prl" and getattr(task, "s3prl_checkpoint_on_test", False) else "dev"


def validate(config: Config, where: str) -> Config:
    """Every value within what its field declares (``Range``, ``OneOf``; floats finite), after ``-o`` and the
    command-line shortcuts; the first value that is not names its key. Then the checks across fields."""
    _check(config, where, "config")
    data = config.data
    if data.balanced and data.batching != "pools":
        raise ConfigError(f"{where}: config.data.balanced draws classes evenly with data.batching 'pools' only, "
                          f"not {data.batching!r}")
    return config


def _check(block: Any, where: str, key: str) -> None:
    hints = typing.get_type_hints(type(block), include_extras=True)
    for f in dataclasses.fields(block):
        value, name = getattr(block, f.name), f"{key}.{f.name}"
        if dataclasses.is_dataclass(value):
            _check(value, where, name)
            continue
        if value is None:
            continue
        for rule in _rules(hints[f.name], value):
            problem = rule.problem(value)
            if problem:
                raise ConfigError(f"{where}: {name} {problem}")


def _rules(hint: Any, value: Any) -> list[Any]:
    """The checks a field's annotation declares (through ``X | None``); a bare float must be finite."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        hint = options[0] if len(options) == 1 else None  # a union of several types declares no checks
    if typing.get_origin(hint) is Annotated:
        return list(hint.__metadata__)
    return [Range()] if isinstance(value, float) else []


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


def build(cls: type, data: Any, where: str, key: str = "config") -> Any:
    """A dataclass instance from nested ``data`` (read from ``where``, at ``key``), rejecting unknown keys and
    wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {key} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [key for key in data if key not in fields]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(fields), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: {key}: unknown key {unknown[0]!r}.{hint} Known: {', '.join(fields)}")
    values = {name: _coerce(hints[name], value, where, f"{key}.{name}") for name, value in data.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    where = f"{source}: {key}"
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, source, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, source, key)
        for option in inner:  # e.g. str | list[str]: the first type the value fits
            try:
                return _coerce(option, value, source, key)
            except ConfigError:
                pass
        names = " or ".join(getattr(o, "__name__", None) if typing.get_origin(o) is None else str(o) for o in inner)
        raise ConfigError(f"{where} must be {names}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (inner,) = typing.get_args(hint)
        return [_coerce(inner, v, source, key) for v in value]
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
