"""Tiny random wav2vec2 / HuBERT / WavLM models saved with the SAME weights in every checkpoint format.

For tests and the demo. A transformers model is built from ``seed`` and every parameter is perturbed (so
no layer norm is the identity and a swapped mapping shows), then saved as

* a Hugging Face folder (``save_hf_folder``; ``legacy=True``: ``pytorch_model.bin`` with a ``wav2vec2.``-style
  prefix and ``weight_g``/``weight_v`` names, as old Hub folders have);
* a fairseq ``.pt`` (``save_fairseq_checkpoint``): omegaconf-shaped ``cfg`` or an ``argparse.Namespace``
  ``args``, HuBERT's pickled ``Dictionary``, numpy scalars and meters in ``extra_state``; for WavLM the
  microsoft/unilm ``{'cfg': flat dict, 'model': …}``. The fairseq names are written out here from
  fairseq's module layout, not by inverting superb's loader table, so a mapping bug cannot cancel itself;
* a torchaudio file (``save_torchaudio_checkpoint``), its weights converted by torchaudio's own
  ``import_huggingface_model``.

Variants: ``post_ln`` (Base-like: group-norm extractor, no conv bias, post-LN) and ``pre_ln`` (Large-like:
layer-norm extractor, conv bias, ``do_stable_layer_norm``, normalised input). transformers is a test extra,
imported inside the functions. Pickling stand-ins under fairseq/omegaconf names needs fake modules in
``sys.modules``; they are installed only while ``torch.save`` runs and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import types
import typing
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superb.extract.upstreams.checkpoints import save_torchaudio

FAMILIES = ("wav2vec2", "hubert", "wavlm")
VARIANTS = ("post_ln", "pre_ln")
CHANNELS, DIM, LAYERS, HEADS, FFN, POS_KERNEL, POS_GROUPS, BUCKETS, MAX_DISTANCE = 16, 32, 2, 2, 64, 16, 2, 16, 64
CONV_KERNELS, CONV_STRIDES = [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]
CONV_STRING = f"[({CHANNELS}, 10, 5)] + [({CHANNELS}, 3, 2)] * 4 + [({CHANNELS}, 2, 2)] * 2"


def _check(family: str, variant: str) -> None:
    if family not in FAMILIES or variant not in VARIANTS:
        raise ValueError(f"family must be one of {FAMILIES} and variant one of {VARIANTS}; got {family!r}, {variant!r}")


# --- Hugging Face --------------------------------------------------------------------------------------

def build_hf_model(family: str, seed: int, variant: str = "post_ln") -> Any:
    """A transformers ``Wav2Vec2Model``/``HubertModel``/``WavLMModel``, seeded, perturbed, in eval mode."""
    import transformers

    _check(family, variant)
    post = variant == "post_ln"
    kwargs: dict[str, Any] = dict(
        hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=FFN,
        conv_dim=[CHANNELS] * 7, conv_kernel=CONV_KERNELS, conv_stride=CONV_STRIDES, conv_bias=not post,
        feat_extract_norm="group" if post else "layer", do_stable_layer_norm=not post,
        num_conv_pos_embeddings=POS_KERNEL, num_conv_pos_embedding_groups=POS_GROUPS,
    )
    if family == "wavlm":
        kwargs.update(num_buckets=BUCKETS, max_bucket_distance=MAX_DISTANCE)
    config_cls, model_cls = {
        "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2Model),
        "hubert": (transformers.HubertConfig, transformers.HubertModel),
        "wavlm": (transformers.WavLMConfig, transformers.WavLMModel),
    }[family]
    with torch.random.fork_rng(devices=[]):  # transformers initialises from the global RNG
        torch.manual_seed(seed)
        model = model_cls(config_cls(**kwargs))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return model.eval()


def save_hf_folder(family: str, path: Path, seed: int, *, variant: str = "post_ln", legacy: bool = False) -> Any:
    """Save the tiny model as a Hugging Face folder; returns the transformers model (eval mode)."""
    import transformers

    model = build_hf_model(family, seed, variant)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if legacy:  # an old ForPreTraining-style .bin: prefixed backbone, weight_g/weight_v, a head to drop
        model.config.save_pretrained(path)
        state = {f"{family}.{_legacy_weight_norm(k)}": v for k, v in model.state_dict().items()}
        state["project_q.weight"] = torch.zeros(8, DIM)
        torch.save(state, path / "pytorch_model.bin")
    else:
        model.save_pretrained(path)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=variant == "pre_ln").save_pretrained(path)
    return model


def _legacy_weight_norm(key: str) -> str:
    key = key.replace("parametrizations.weight.original0", "weight_g")
    return key.replace("parametrizations.weight.original1", "weight_v")


# --- torchaudio ----------------------------------------------------------------------------------------

def torchaudio_config(family: str, variant: str = "post_ln") -> dict[str, Any]:
    """The tiny model's torchaudio factory kwargs, written out independently of superb's converters."""
    _check(family, variant)
    post = variant == "post_ln"
    config: dict[str, Any] = {
        "extractor_mode": "group_norm" if post else "layer_norm",
        "extractor_conv_layer_config": [[CHANNELS, k, s] for k, s in zip(CONV_KERNELS, CONV_STRIDES, strict=True)],
        "extractor_conv_bias": not post, "encoder_embed_dim": DIM, "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": POS_KERNEL, "encoder_pos_conv_groups": POS_GROUPS, "encoder_num_layers": LAYERS,
        "encoder_num_heads": HEADS, "encoder_attention_dropout": 0.1, "encoder_ff_interm_features": FFN,
        "encoder_ff_interm_dropout": 0.1, "encoder_dropout": 0.1, "encoder_layer_norm_first": not post,
        "encoder_layer_drop": 0.1,
    }
    if family == "wavlm":
        config.update(encoder_num_buckets=BUCKETS, encoder_max_distance=MAX_DISTANCE)
    return config


def save_torchaudio_checkpoint(family: str, path: Path, seed: int, *, variant: str = "post_ln") -> Path:
    """Save the tiny model in superb's torchaudio format (``.pt``/``.pth`` or ``.safetensors`` by suffix)."""
    import logging

    from torchaudio.models.wav2vec2.utils import import_huggingface_model

    model = build_hf_model(family, seed, variant)
    quiet = logging.getLogger("torchaudio.models.wav2vec2.utils.import_huggingface")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it warns that a bare model has no CTC head
    try:
        imported = import_huggingface_model(model)
    finally:
        quiet.setLevel(level)
    return save_torchaudio(Path(path), family=family, config=torchaudio_config(family, variant),
                           state_dict=imported.state_dict(), normalize=variant == "pre_ln")


# --- fairseq / unilm -----------------------------------------------------------------------------------

_HF_TO_FAIRSEQ = [  # HF name → fairseq/unilm name, from fairseq's and unilm's module layout
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(\w+)", r"feature_extractor.conv_layers.\1.0.\2"),
    (r"feature_projection\.layer_norm\.(\w+)", r"layer_norm.\1"),
    (r"feature_projection\.projection\.(\w+)", r"post_extract_proj.\1"),
    (r"encoder\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
    (r"encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
    (r"encoder\.layer_norm\.(\w+)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.attention\.(q_proj|k_proj|v_proj|out_proj)\.(\w+)",
     r"encoder.layers.\1.self_attn.\2.\3"),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_linear\.(\w+)", r"encoder.layers.\1.self_attn.grep_linear.\2"),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const", r"encoder.layers.\1.self_attn.grep_a"),
    (r"encoder\.layers\.(\d+)\.attention\.rel_attn_embed\.weight",
     r"encoder.layers.\1.self_attn.relative_attention_bias.weight"),
    (r"encoder\.layers\.(\d+)\.layer_norm\.(\w+)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(\w+)", r"encoder.layers.\1.fc1.\2"),
    (r"encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(\w+)", r"encoder.layers.\1.fc2.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(\w+)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"masked_spec_embed", "mask_emb"),
]


def _fairseq_state(hf_state: dict[str, torch.Tensor], variant: str) -> dict[str, torch.Tensor]:
    # group norm is module 2 of the first conv block; each layer norm is module 1 of Sequential 2
    norm = r"feature_extractor.conv_layers.\1.2." + (r"\2" if variant == "post_ln" else r"1.\2")
    rules = [(r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)", norm), *_HF_TO_FAIRSEQ]
    out = {}
    for key, value in hf_state.items():
        for pattern, replacement in rules:
            if match := re.fullmatch(pattern, key):
                out[match.expand(replacement)] = value.clone()
                break
        else:
            raise KeyError(f"no fairseq name for {key}")
    return out


def _fairseq_model_cfg(family: str, variant: str) -> dict[str, Any]:
    post = variant == "post_ln"
    cfg: dict[str, Any] = {
        "extractor_mode": "default" if post else "layer_norm", "encoder_layers": LAYERS, "encoder_embed_dim": DIM,
        "encoder_ffn_embed_dim": FFN, "encoder_attention_heads": HEADS, "activation_fn": "gelu",
        "layer_norm_first": not post, "conv_feature_layers": CONV_STRING, "conv_bias": not post,
        "conv_pos": POS_KERNEL, "conv_pos_groups": POS_GROUPS, "dropout": 0.1, "attention_dropout": 0.1,
        "activation_dropout": 0.0, "encoder_layerdrop": 0.05, "dropout_input": 0.1, "feature_grad_mult": 0.1,
    }
    if family == "wavlm":
        cfg.update(relative_position_embedding=True, num_buckets=BUCKETS, max_distance=MAX_DISTANCE,
                   gru_rel_pos=True, normalize=not post)
    return cfg


def save_fairseq_checkpoint(family: str, path: Path, seed: int, *, variant: str = "post_ln",
                            style: str = "cfg", zip_format: bool = True) -> Path:
    """Save the tiny model as a fairseq (``style`` ``cfg``: omegaconf-shaped; ``args``: Namespace) or unilm .pt.

    ``zip_format=False`` writes torch's legacy (pre-1.6) layout, as the first fairseq releases have.
    """
    if style not in ("cfg", "args"):
        raise ValueError(f"style must be 'cfg' or 'args', got {style!r}")
    model = build_hf_model(family, seed, variant)
    state = _fairseq_state(model.state_dict(), variant)
    model_cfg = _fairseq_model_cfg(family, variant)
    generator = torch.Generator().manual_seed(seed)
    if family == "wavlm":  # microsoft/unilm: a flat cfg dict, nothing else pickled
        payload: dict[str, Any] = {"cfg": model_cfg, "model": state}
    else:
        if family == "wav2vec2":
            state.update({"quantizer.vars": torch.randn(1, 8, 4, generator=generator),
                          "project_q.weight": torch.randn(4, 4, generator=generator),
                          "final_proj.weight": torch.randn(4, DIM, generator=generator)})
        else:
            state.update({"label_embs_concat": torch.randn(6, 4, generator=generator),
                          "final_proj.weight": torch.randn(4, DIM, generator=generator)})
        name, task_name = ("hubert", "hubert_pretraining") if family == "hubert" else ("wav2vec2", "audio_pretraining")
        task_cfg = {"_name": task_name, "normalize": variant == "pre_ln", "sample_rate": 16000, "labels": ["km"]}
        payload = {"model": state, "optimizer_history": [{"criterion_name": "ModelCriterion", "num_updates": 7}],
                   "extra_state": {"previous_best": np.float64(0.25), "metrics": {"train": _AverageMeter(1.5)}}}
        if style == "cfg":
            payload["args"] = None
            payload["cfg"] = _DictConfig({"_name": None, "common": {"seed": 1},
                                          "model": {"_name": name, **model_cfg}, "task": task_cfg})
        else:
            payload["args"] = argparse.Namespace(arch=name, task=task_name, normalize=variant == "pre_ln",
                                                 sample_rate=16000, **model_cfg)
        if family == "hubert":
            payload["task_state"] = {"dictionaries": [_Dictionary(["0", "1", "2"])]}
    with _fake_modules():
        torch.save(payload, Path(path), _use_new_zipfile_serialization=zip_format)
    return Path(path)


# Stand-ins pickled under the names real fairseq checkpoints use. Only their pickled shape matters.

class _Metadata:
    def __init__(self, key: Any, container: bool):
        self.ref_type, self.object_type, self.optional, self.key = typing.Any, dict if container else None, True, key
        self.flags: dict[str, bool] = {}
        if container:
            self.flags_root, self.resolver_cache = False, defaultdict(dict)
            self.key_type = self.element_type = typing.Any


class _ContainerMetadata(_Metadata):
    pass


class _AnyNode:
    def __init__(self, value: Any, key: Any, parent: Any):
        self._val, self._metadata, self._parent = value, _Metadata(key, container=False), parent


class _EnumNode(_AnyNode):
    pass


class _Choices:
    """A fairseq ``ChoiceEnum`` member; pickles as ``Choices(value)`` like an Enum."""

    def __init__(self, value: str):
        self.value = value

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (type(self), (self.value,))


class _DictConfig:
    def __init__(self, content: dict[str, Any], key: Any = None, parent: Any = None):
        self._metadata, self._parent, self._flags_cache = _ContainerMetadata(key, container=True), parent, None
        self._content = {k: _node(v, k, self) for k, v in content.items()}


class _ListConfig:
    def __init__(self, content: list[Any], key: Any = None, parent: Any = None):
        self._metadata, self._parent, self._flags_cache = _ContainerMetadata(key, container=True), parent, None
        self._content = [_node(v, i, self) for i, v in enumerate(content)]


def _node(value: Any, key: Any, parent: Any) -> Any:
    if isinstance(value, dict):
        return _DictConfig(value, key, parent)
    if isinstance(value, list):
        return _ListConfig(value, key, parent)
    if key == "extractor_mode":
        return _EnumNode(_Choices(value), key, parent)
    return _AnyNode(value, key, parent)


class _Dictionary:
    def __init__(self, symbols: list[str]):
        self.bos_word, self.unk_word, self.pad_word, self.eos_word = "<s>", "<unk>", "<pad>", "</s>"
        self.symbols = ["<s>", "<pad>", "</s>", "<unk>", *symbols]
        self.count = [1] * len(self.symbols)
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        self.bos_index, self.pad_index, self.eos_index, self.unk_index, self.nspecial = 0, 1, 2, 3, 4


class _AverageMeter:
    def __init__(self, value: float):
        self.val, self.sum, self.count, self.round = value, value, 1, 3


_FAKE_NAMES = {
    _Metadata: "omegaconf.base.Metadata", _ContainerMetadata: "omegaconf.base.ContainerMetadata",
    _AnyNode: "omegaconf.nodes.AnyNode", _EnumNode: "omegaconf.nodes.EnumNode",
    _DictConfig: "omegaconf.dictconfig.DictConfig", _ListConfig: "omegaconf.listconfig.ListConfig",
    _Choices: "fairseq.dataclass.constants.Choices", _Dictionary: "fairseq.data.dictionary.Dictionary",
    _AverageMeter: "fairseq.logging.meters.AverageMeter",
}


@contextlib.contextmanager
def _fake_modules() -> Iterator[None]:
    """Put the stand-ins in sys.modules under their fairseq/omegaconf names while pickling, then restore."""
    modules: dict[str, types.ModuleType] = {}
    for cls, full in _FAKE_NAMES.items():
        module_name, _, qualname = full.rpartition(".")
        parts = module_name.split(".")
        for i in range(1, len(parts) + 1):
            modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        setattr(modules[module_name], qualname, cls)
    saved = {name: sys.modules.get(name) for name in modules}
    originals = {cls: (cls.__module__, cls.__qualname__) for cls in _FAKE_NAMES}
    try:
        sys.modules.update(modules)
        for cls, full in _FAKE_NAMES.items():
            cls.__module__, _, cls.__qualname__ = full.rpartition(".")
        yield
    finally:
        for cls, (module, qualname) in originals.items():
            cls.__module__, cls.__qualname__ = module, qualname
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
