"""Checkpoint loaders for wav2vec 2.0 / HuBERT / WavLM: detect the format of ``--ckpt``, build a torchaudio model.

``load_checkpoint(path, family)`` accepts:

* **Hugging Face folder**: ``config.json`` + ``model.safetensors`` or ``pytorch_model.bin`` (or their
  sharded ``*.index.json``), from ``Wav2Vec2Model``/``HubertModel``/``WavLMModel`` or a wrapper
  (``…ForPreTraining``, ``…ForCTC``: the backbone is taken, heads dropped).
* **fairseq ``.pt``** (wav2vec 2.0, HuBERT; pre-trained or fine-tuned): ``{'cfg' | 'args', 'model', …}``,
  and **microsoft/unilm WavLM ``.pt``**: ``{'cfg': flat dict, 'model': state_dict}``. Read without fairseq
  by ``fairseq_unpickle.load_pickled``.
* **torchaudio state dict**, our documented layout:

  - ``.pt``/``.pth``: ``torch.save({'format': 'superb-torchaudio/1', 'family': 'wavlm', 'config': {…},
    'normalize': False, 'state_dict': model.state_dict()})``, where ``config`` holds the keyword arguments
    of ``torchaudio.models.wav2vec2_model`` (or ``wavlm_model``) minus ``aux_num_out``;
  - ``.safetensors``: the state dict, with metadata ``{'superb': json.dumps({'family', 'config',
    'normalize'})}``.

  ``family`` and ``normalize`` may be left out (see below). ``save_torchaudio`` writes both forms.

Waveform normalisation (zero mean, unit variance per utterance over its own samples) is decided by the
checkpoint, as its own toolkit does it:

* fairseq/unilm: ``task.normalize`` / ``cfg.normalize``, applied as fairseq's ``layer_norm(wav)`` (eps 1e-5);
* Hugging Face folders: ``preprocessor_config.json``, read as transformers' ``Wav2Vec2FeatureExtractor``
  reads it (a missing key takes its default: ``do_normalize`` true, ``return_attention_mask`` false) and
  applied with its ``zero_mean_unit_var_norm`` (biased variance, eps 1e-7). Some Hub folders say
  ``do_normalize: true`` for a Base model that fairseq trained on raw waveforms; superb follows the file,
  as transformers and s3prl's ``hf_wav2vec2`` upstream do, and warns (``-g normalize: false`` gives the
  fairseq checkpoint's features). ``return_attention_mask`` only says how transformers batches the model;
  superb's features of an utterance never depend on its batch (group-norm models are batched with equal
  lengths only, layer-norm models get a frame mask), so they equal transformers' for the utterance alone
  whatever the flag says, and it is only recorded;
* HF folders without the file and torchaudio files without ``normalize``: the rule every official
  checkpoint follows, layer-norm feature extractor ⇔ normalised input.

``-g normalize: …`` overrides all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchaudio.models import Wav2Vec2Model, wav2vec2_model, wavlm_model

from superb.errors import CheckpointError, ConfigError
from superb.extract.upstreams import key_maps
from superb.extract.upstreams.fairseq_unpickle import load_pickled, parse_conv_layers

FAMILIES = ("wav2vec2", "hubert", "wavlm")
SIZES = ("tiny", "base", "large")
TORCHAUDIO_FORMAT = "superb-torchaudio/1"
ARCH_KEYS = (
    "extractor_mode", "extractor_conv_layer_config", "extractor_conv_bias", "encoder_embed_dim",
    "encoder_projection_dropout", "encoder_pos_conv_kernel", "encoder_pos_conv_groups", "encoder_num_layers",
    "encoder_num_heads", "encoder_attention_dropout", "encoder_ff_interm_features", "encoder_ff_interm_dropout",
    "encoder_dropout", "encoder_layer_norm_first", "encoder_layer_drop",
)
WAVLM_KEYS = ("encoder_num_buckets", "encoder_max_distance")
_FAIRSEQ_DEFAULT_CONV = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"
FAIRSEQ_NORM_EPS = 1e-5  # fairseq/unilm normalise with F.layer_norm(wav, wav.shape)
HF_NORM_EPS = 1e-7  # transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
PREPROCESSOR_FILE = "preprocessor_config.json"
PREPROCESSOR_DEFAULTS = {"do_normalize": True, "return_attention_mask": False}  # Wav2Vec2FeatureExtractor's


@dataclass
class LoadedModel:
    """A torchaudio model with what it was built from. ``config`` is JSON-able (lists, not tuples)."""

    model: Wav2Vec2Model
    family: str
    config: dict[str, Any]
    normalize: bool  # zero-mean/unit-variance waveforms before the CNN
    format: str  # "huggingface" | "fairseq" | "torchaudio" | "random-init"
    normalize_eps: float = FAIRSEQ_NORM_EPS  # added to the variance when normalising
    preprocessor: dict[str, bool] | None = None  # a Hugging Face folder's preprocessor_config.json, as read
    normalize_note: str | None = None  # why ``normalize`` departs from fairseq's rule (warned unless overridden)


# --- architectures ---------------------------------------------------------------------------------

def _conv(channels: int) -> list[list[int]]:
    return [[channels, 10, 5]] + [[channels, 3, 2]] * 4 + [[channels, 2, 2]] * 2


_BASE: dict[str, Any] = {
    "extractor_mode": "group_norm", "extractor_conv_layer_config": _conv(512), "extractor_conv_bias": False,
    "encoder_embed_dim": 768, "encoder_projection_dropout": 0.1, "encoder_pos_conv_kernel": 128,
    "encoder_pos_conv_groups": 16, "encoder_num_layers": 12, "encoder_num_heads": 12,
    "encoder_attention_dropout": 0.1, "encoder_ff_interm_features": 3072, "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.1, "encoder_layer_norm_first": False, "encoder_layer_drop": 0.0,
}
_LARGE = {**_BASE, "extractor_mode": "layer_norm", "encoder_embed_dim": 1024, "encoder_num_layers": 24,
          "encoder_num_heads": 16, "encoder_ff_interm_features": 4096, "encoder_layer_norm_first": True}
_TINY = {**_BASE, "extractor_conv_layer_config": _conv(16), "encoder_embed_dim": 32, "encoder_pos_conv_kernel": 16,
         "encoder_pos_conv_groups": 2, "encoder_num_layers": 2, "encoder_num_heads": 2,
         "encoder_ff_interm_features": 64}


def preset_config(family: str, size: str) -> tuple[dict[str, Any], bool]:
    """Factory kwargs and normalize flag of a ``--random-init`` size.

    ``tiny`` is Base-shaped (group norm, post-LN) with 2 layers, dim 32 and 16 CNN channels but the
    standard kernel/stride stack; ``base`` is each family's Base; ``large`` is wav2vec2 Large LV-60k
    (conv bias), HuBERT Large, WavLM Large (pre-LN, layer-norm extractor, normalised input).
    """
    _check_family(family)
    if size not in SIZES:
        raise ConfigError(f"unknown --random-init size {size!r}; choose one of {', '.join(SIZES)}")
    config = dict({"tiny": _TINY, "base": _BASE, "large": _LARGE}[size])
    if size == "large" and family == "wav2vec2":
        config["extractor_conv_bias"] = True
    if family == "wavlm":
        buckets, distance = (16, 64) if size == "tiny" else (320, 800)
        config.update(encoder_num_buckets=buckets, encoder_max_distance=distance)
    return config, size == "large"


def build_model(family: str, config: dict[str, Any], where: str = "config") -> Wav2Vec2Model:
    """torchaudio ``wav2vec2_model``/``wavlm_model`` from factory kwargs (checked against ``ARCH_KEYS``)."""
    _check_family(family)
    expected = set(ARCH_KEYS) | (set(WAVLM_KEYS) if family == "wavlm" else set())
    missing, unknown = sorted(expected - set(config)), sorted(set(config) - expected)
    if missing or unknown:
        raise CheckpointError(f"{where}: architecture config for {family} lacks {missing} / has unknown {unknown}")
    kwargs = dict(config)
    kwargs["extractor_conv_layer_config"] = [tuple(int(v) for v in c) for c in config["extractor_conv_layer_config"]]
    mode = kwargs["extractor_mode"]
    if mode not in ("group_norm", "layer_norm"):
        raise CheckpointError(f"{where}: extractor_mode must be group_norm or layer_norm, not {mode!r}")
    factory = wavlm_model if family == "wavlm" else wav2vec2_model
    try:
        return factory(**kwargs, aux_num_out=None)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: cannot build a {family} model from its config: {exc}") from None


def random_model(family: str, size: str, seed: int) -> LoadedModel:
    """Randomly initialised model; the same ``seed`` gives the same weights, the global RNG is untouched."""
    config, normalize = preset_config(family, size)
    with torch.random.fork_rng(devices=[]):  # seeding inside the fork leaves the caller's RNG as it was
        torch.manual_seed(seed)
        model = build_model(family, config)
    return LoadedModel(model.eval(), family, config, normalize, "random-init")


# --- format detection ------------------------------------------------------------------------------

def load_checkpoint(path: Path, family: str) -> LoadedModel:
    """Detect the format of ``path`` and load it as a ``family`` model (see the module docstring)."""
    _check_family(family)
    path = Path(path)
    if path.is_dir():
        return _load_huggingface(path, family)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.name == "config.json":
        return _load_huggingface(path.parent, family)
    if path.suffix == ".safetensors":
        return _load_torchaudio_safetensors(path, family)
    payload = load_pickled(path)
    if isinstance(payload, dict) and "state_dict" in payload and "config" in payload:
        return _load_torchaudio(path, payload, family)
    if isinstance(payload, dict) and "model" in payload and ("cfg" in payload or "args" in payload):
        return _load_fairseq(path, payload, family)
    keys = sorted(map(str, payload))[:8] if isinstance(payload, dict) else type(payload).__name__
    raise CheckpointError(
        f"{path}: unknown checkpoint format (top level: {keys}); expected a fairseq/unilm .pt "
        "({'model', 'cfg' or 'args'}), a torchaudio {'config', 'state_dict'} file, or a Hugging Face folder"
    )


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")


def _check_match(detected: str | None, family: str, where: str) -> None:
    if detected is not None and detected != family:
        raise CheckpointError(f"{where} holds a {detected} model, but -u {family} was asked for; use -u {detected}")


def _assemble(family: str, config: dict[str, Any], state: dict[str, torch.Tensor], normalize: bool,
              fmt: str, where: str, **extra: Any) -> LoadedModel:
    """Build the model and load ``state`` (torchaudio names) strictly, with readable errors."""
    model = build_model(family, config, where)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: does not match a {family} model with its config: {len(missing)} parameters missing "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{where}: parameter {key!r} has shape {list(value.shape)}, "
                f"the config implies {list(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=True)
    return LoadedModel(model.eval(), family, config, normalize, fmt, **extra)


# --- Hugging Face ------------------------------------------------------------------------------------

def _load_huggingface(folder: Path, family: str) -> LoadedModel:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder}: a checkpoint folder needs config.json (Hugging Face layout)")
    try:
        cfg = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_file}: not valid JSON ({exc})") from None
    model_type = cfg.get("model_type")  # transformers' names are our family names
    if model_type not in FAMILIES:
        raise CheckpointError(f"{config_file}: model_type {model_type!r} is not supported (wav2vec2, hubert, wavlm)")
    _check_match(model_type, family, str(folder))
    config = hf_config(cfg, family, str(config_file))
    state = _hf_weights(folder)
    prefix = f"{model_type}."  # ForCTC / ForPreTraining nest the backbone under it
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    state = key_maps.rename(state, key_maps.HF_RULES, key_maps.HF_BACKBONE, str(folder))
    if family == "wavlm":
        state = key_maps.fuse_wavlm_qkv(state, str(folder))
    rule = config["extractor_mode"] == "layer_norm"  # what fairseq trained such a model on
    preprocessor = read_preprocessor_config(folder)
    normalize = rule if preprocessor is None else preprocessor["do_normalize"]
    note = None
    if normalize != rule:
        note = (f"{folder / PREPROCESSOR_FILE} says do_normalize: {str(normalize).lower()}; superb follows it, as "
                f"transformers does (fairseq trains {config['extractor_mode']} models on "
                f"{'normalised' if rule else 'raw'} waveforms: -g normalize: {str(rule).lower()} for that)")
    return _assemble(family, config, state, normalize, "huggingface", str(folder), normalize_eps=HF_NORM_EPS,
                     preprocessor=preprocessor, normalize_note=note)


def read_preprocessor_config(folder: Path) -> dict[str, bool] | None:
    """``do_normalize`` and ``return_attention_mask`` of a folder's ``preprocessor_config.json``, with
    ``Wav2Vec2FeatureExtractor``'s defaults for missing keys; None without the file. Its sampling rate must
    be 16 kHz (transformers refuses other audio, and superb feeds 16 kHz)."""
    path = folder / PREPROCESSOR_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    rate = data.get("sampling_rate", 16_000)
    if rate != 16_000:
        raise CheckpointError(f"{path}: sampling_rate {rate!r}; superb feeds 16000 Hz audio to this model")
    read = {}
    for key, default in PREPROCESSOR_DEFAULTS.items():
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise CheckpointError(f"{path}: {key} must be true or false, got {value!r}")
        read[key] = value
    return read


def _hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Tensors of ``model.safetensors`` / ``pytorch_model.bin``, sharded or not."""
    from safetensors.torch import load_file

    def read(file: Path) -> dict[str, torch.Tensor]:
        if file.suffix != ".safetensors":  # a pickle: read as safely as a fairseq .pt, refused the same way
            state = load_pickled(file)
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise CheckpointError(f"{file}: not a state dict (a mapping of parameter names to tensors)")
            return state
        try:
            return load_file(file, device="cpu")
        except Exception as exc:
            raise CheckpointError(f"{file}: cannot read weights ({type(exc).__name__}: {exc})") from None

    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return dict(read(folder / name))
        index = folder / f"{name}.index.json"
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, json.JSONDecodeError, KeyError, AttributeError) as exc:
                raise CheckpointError(f"{index}: not a valid shard index ({exc})") from None
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(read(folder / Path(shard).name))
            return state
    raise CheckpointError(f"{folder}: no model.safetensors or pytorch_model.bin next to config.json")


def hf_config(cfg: dict[str, Any], family: str, where: str) -> dict[str, Any]:
    """Hugging Face ``config.json`` → torchaudio factory kwargs (transformers' defaults where absent)."""
    def get(key: str, default: Any) -> Any:
        value = cfg.get(key)
        return default if value is None else value

    for key, allowed in (("hidden_act", "gelu"), ("feat_extract_activation", "gelu"), ("layer_norm_eps", 1e-5),
                         ("feat_proj_layer_norm", True), ("conv_pos_batch_norm", False)):
        if key in cfg and cfg[key] != allowed:
            raise CheckpointError(f"{where}: {key}={cfg[key]!r} is not supported (torchaudio's model has {allowed!r})")
    norm = get("feat_extract_norm", "group")
    if norm not in ("group", "layer"):
        raise CheckpointError(f"{where}: feat_extract_norm must be 'group' or 'layer', got {norm!r}")
    dims, kernels = get("conv_dim", [512] * 7), get("conv_kernel", [10, 3, 3, 3, 3, 2, 2])
    strides = get("conv_stride", [5, 2, 2, 2, 2, 2, 2])
    if not len(dims) == len(kernels) == len(strides):
        raise CheckpointError(f"{where}: conv_dim, conv_kernel and conv_stride differ in length")
    config = {
        "extractor_mode": f"{norm}_norm",
        "extractor_conv_layer_config": [[int(v) for v in c] for c in zip(dims, kernels, strides, strict=True)],
        "extractor_conv_bias": bool(get("conv_bias", False)),
        "encoder_embed_dim": int(get("hidden_size", 768)),
        "encoder_projection_dropout": float(get("feat_proj_dropout", 0.0)),
        "encoder_pos_conv_kernel": int(get("num_conv_pos_embeddings", 128)),
        "encoder_pos_conv_groups": int(get("num_conv_pos_embedding_groups", 16)),
        "encoder_num_layers": int(get("num_hidden_layers", 12)),
        "encoder_num_heads": int(get("num_attention_heads", 12)),
        "encoder_attention_dropout": float(get("attention_dropout", 0.1)),
        "encoder_ff_interm_features": int(get("intermediate_size", 3072)),
        "encoder_ff_interm_dropout": float(get("activation_dropout", 0.1)),
        "encoder_dropout": float(get("hidden_dropout", 0.1)),
        "encoder_layer_norm_first": bool(get("do_stable_layer_norm", False)),
        "encoder_layer_drop": float(get("layerdrop", 0.1)),
    }
    if family == "wavlm":
        config.update(encoder_num_buckets=int(get("num_buckets", 320)),
                      encoder_max_distance=int(get("max_bucket_distance", 800)))
    return config


# --- fairseq / unilm -----------------------------------------------------------------------------------

def _load_fairseq(path: Path, payload: dict[str, Any], family: str) -> LoadedModel:
    where = str(path)
    model_cfg, normalize, name = _fairseq_cfg(payload, where)
    state = payload["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: 'model' is not a state dict")
    for prefix in ("w2v_encoder.w2v_model.", "w2v_model."):  # fine-tuned (CTC) checkpoints
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            break
    _check_match(_fairseq_family(name, state), family, where)
    config = fairseq_config(model_cfg, family, where)
    state = key_maps.rename(state, key_maps.FAIRSEQ_RULES, key_maps.FAIRSEQ_BACKBONE, where)
    projection = "encoder.feature_projection.projection."
    conv_dim, dim = config["extractor_conv_layer_config"][-1][0], config["encoder_embed_dim"]
    if projection + "weight" not in state and conv_dim == dim:  # fairseq skips the projection when dims agree
        state[projection + "weight"], state[projection + "bias"] = torch.eye(dim), torch.zeros(dim)
    if family == "wavlm":
        state = key_maps.fuse_wavlm_qkv(state, where)
    return _assemble(family, config, state, normalize, "fairseq", where)


def _fairseq_cfg(payload: dict[str, Any], where: str) -> tuple[dict[str, Any], bool, str]:
    """(model config, normalize, model name) from ``cfg`` (omegaconf, now plain), ``args`` or unilm's flat cfg."""
    cfg, args = payload.get("cfg"), payload.get("args")
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        model, task = cfg["model"], cfg.get("task") or {}
    elif isinstance(args, dict):
        model, task = args, args
    elif isinstance(cfg, dict):
        model, task = cfg, cfg
    else:
        raise CheckpointError(f"{where}: no model configuration ('cfg' or 'args') in the checkpoint")
    name = str(model.get("_name") or model.get("arch") or "")
    inner = model.get("w2v_args")
    if "w2v_args" in model or "w2v_path" in model:  # fine-tuned: the backbone's config is nested
        if not isinstance(inner, dict):
            raise CheckpointError(f"{where}: fine-tuned checkpoint without w2v_args; load its pre-trained .pt")
        task = task if "normalize" in task else (inner.get("task") or inner)
        model = inner.get("model") if isinstance(inner.get("model"), dict) else inner
    normalize = task.get("normalize", model.get("normalize"))
    return model, bool(normalize), name


def _fairseq_family(name: str, state: dict[str, Any]) -> str | None:
    """Family from the weights (WavLM's relative position keys) or the config's model name."""
    if any("relative_attention_bias" in k or "grep_linear" in k for k in state):
        return "wavlm"
    for stem, family in (("hubert", "hubert"), ("wav2vec", "wav2vec2"), ("wavlm", "wavlm")):
        if name.lower().startswith(stem):
            return family
    if "label_embs_concat" in state:
        return "hubert"
    if any(k.startswith("quantizer.") for k in state):
        return "wav2vec2"
    return None


def fairseq_config(model: dict[str, Any], family: str, where: str) -> dict[str, Any]:
    """fairseq/unilm model config → torchaudio factory kwargs (fairseq's defaults where absent)."""
    def get(key: str, default: Any) -> Any:
        value = model.get(key)
        return default if value is None else value

    mode = {"default": "group_norm", "layer_norm": "layer_norm"}.get(str(get("extractor_mode", "default")))
    if mode is None:
        raise CheckpointError(f"{where}: extractor_mode {model.get('extractor_mode')!r} is not supported")
    if get("activation_fn", "gelu") != "gelu":
        raise CheckpointError(f"{where}: activation_fn {model.get('activation_fn')!r} is not supported (gelu only)")
    if int(get("pos_conv_depth", 1)) != 1:
        raise CheckpointError(f"{where}: pos_conv_depth {model.get('pos_conv_depth')} is not supported (1 only)")
    conv = parse_conv_layers(get("conv_feature_layers", _FAIRSEQ_DEFAULT_CONV), where)
    config = {
        "extractor_mode": mode,
        "extractor_conv_layer_config": [list(c) for c in conv],
        "extractor_conv_bias": bool(get("conv_bias", False)),
        "encoder_embed_dim": int(get("encoder_embed_dim", 768)),
        "encoder_projection_dropout": float(get("dropout_input", 0.0)),
        "encoder_pos_conv_kernel": int(get("conv_pos", 128)),
        "encoder_pos_conv_groups": int(get("conv_pos_groups", 16)),
        "encoder_num_layers": int(get("encoder_layers", 12)),
        "encoder_num_heads": int(get("encoder_attention_heads", 12)),
        "encoder_attention_dropout": float(get("attention_dropout", 0.1)),
        "encoder_ff_interm_features": int(get("encoder_ffn_embed_dim", 3072)),
        "encoder_ff_interm_dropout": float(get("activation_dropout", 0.0)),
        "encoder_dropout": float(get("dropout", 0.1)),
        "encoder_layer_norm_first": bool(get("layer_norm_first", False)),
        "encoder_layer_drop": float(get("encoder_layerdrop", 0.0)),
    }
    if family == "wavlm":
        if not get("relative_position_embedding", False) or not get("gru_rel_pos", False):
            raise CheckpointError(f"{where}: WavLM without gated relative position embedding is not supported")
        config.update(encoder_num_buckets=int(get("num_buckets", 320)),
                      encoder_max_distance=int(get("max_distance", 1280)))
    return config


# --- torchaudio ----------------------------------------------------------------------------------------

def _load_torchaudio(path: Path, payload: dict[str, Any], family: str) -> LoadedModel:
    where = str(path)
    state, config = payload["state_dict"], payload["config"]
    if not isinstance(state, dict) or not isinstance(config, dict):
        raise CheckpointError(f"{where}: 'state_dict' and 'config' must both be dicts")
    return _torchaudio_common(where, dict(state), config, payload.get("family"), payload.get("normalize"), family)


def _load_torchaudio_safetensors(path: Path, family: str) -> LoadedModel:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = (handle.metadata() or {}).get("superb")
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read safetensors ({type(exc).__name__}: {exc})") from None
    if meta is None:
        raise CheckpointError(f"{path}: safetensors without 'superb' metadata (family, config); for a Hugging "
                              "Face model pass its folder instead")
    try:
        info = json.loads(meta)
        config = info["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid 'superb' metadata ({exc})") from None
    return _torchaudio_common(str(path), state, config, info.get("family"), info.get("normalize"), family)


def _torchaudio_common(where: str, state: dict[str, torch.Tensor], config: dict[str, Any], saved_family: Any,
                       normalize: Any, family: str) -> LoadedModel:
    if saved_family is None and any(".rel_attn_embed." in k for k in state):
        saved_family = "wavlm"
    _check_match(saved_family, family, where)
    config = {**config, "extractor_conv_layer_config": [list(c) for c in config.get("extractor_conv_layer_config", [])]}
    if normalize is None:
        normalize = config.get("extractor_mode") == "layer_norm"
    return _assemble(family, config, state, bool(normalize), "torchaudio", where)


def save_torchaudio(path: Path, *, family: str, config: dict[str, Any], state_dict: dict[str, torch.Tensor],
                    normalize: bool) -> Path:
    """Write the torchaudio format: ``torch.save`` dict for ``.pt``/``.pth``, metadata for ``.safetensors``."""
    _check_family(family)
    path = Path(path)
    config = {**config, "extractor_conv_layer_config": [list(c) for c in config["extractor_conv_layer_config"]]}
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        meta = json.dumps({"format": TORCHAUDIO_FORMAT, "family": family, "config": config, "normalize": normalize})
        save_file(tensors, str(path), metadata={"superb": meta})
    else:
        torch.save({"format": TORCHAUDIO_FORMAT, "family": family, "config": config, "normalize": normalize,
                    "state_dict": tensors}, path)
    return path
