"""wav2vec 2.0, HuBERT and WavLM upstreams: torchaudio models returning every hidden state (SPEC §2).

The forward pass walks torchaudio's modules itself (``feature_extractor`` → ``encoder._preprocess`` →
``transformer._preprocess`` → each of ``transformer.layers``) so that hidden state 0 is the transformer
input, as base.py defines it. torchaudio's ``Transformer.layer_norm_first`` is the inverse of fairseq's:
True there means post-LN (Base: the norm is applied to the input, inside ``_preprocess``), False means
pre-LN (Large: the encoder's final norm follows the last layer, and we apply it to the last hidden state).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from superb.errors import ConfigError
from superb.extract.upstreams import checkpoints
from superb.extract.upstreams.base import Upstream, UpstreamSpec, file_sha256, parse_options


@dataclass(frozen=True)
class SSLOptions:
    """``-g`` options: ``normalize`` overrides the checkpoint's waveform normalisation (None: as it says;
    see ``checkpoints``' module docstring)."""

    normalize: bool | None = None


def conv_geometry(conv_layers: list[list[int]]) -> tuple[int, int]:
    """(window, hop) in samples of a CNN stack ``[(channels, kernel, stride), ...]``.

    Nested floors compose exactly (``floor((floor((n - k1) / s1) + 1 - k2) / s2) + 1`` is
    ``floor((n - k1 - s1 (k2 - 1)) / (s1 s2)) + 1``), so the stack yields ``floor((n - window) / hop) + 1``
    frames: 400 / 320 for the standard wav2vec2 stack.
    """
    window, hop = 1, 1
    for _, kernel, stride in conv_layers:
        window += (kernel - 1) * hop
        hop *= stride
    return window, hop


def normalize_waveforms(wavs: torch.Tensor, lengths: torch.Tensor, eps: float) -> torch.Tensor:
    """Zero mean, unit variance per row over its valid samples: ``(x - mean) / sqrt(var + eps)``, biased var.

    fairseq's ``layer_norm(wav, wav.shape)`` with eps 1e-5, transformers' ``Wav2Vec2FeatureExtractor`` with
    eps 1e-7 (over the samples its attention mask marks valid; superb never lets padding in).

    Args:
        wavs: ``(batch, samples)``, zero-padded.  lengths: ``(batch,)`` valid samples.
    Returns:
        ``(batch, samples)``, padding kept at zero.
    """
    valid = torch.arange(wavs.shape[1], device=wavs.device)[None, :] < lengths[:, None]
    count = lengths.clamp(min=1)[:, None].to(wavs.dtype)
    mean = (wavs * valid).sum(1, keepdim=True) / count
    var = (((wavs - mean) * valid) ** 2).sum(1, keepdim=True) / count
    return (wavs - mean) / torch.sqrt(var + eps) * valid


class SelfSupervised(Upstream):
    """Shared body of the three families; subclasses only name their family."""

    name: ClassVar[str] = ""

    def __init__(self, loaded: checkpoints.LoadedModel, *, normalize: bool, ckpt: Path | None,
                 random_init: str | None, seed: int | None, options: SSLOptions):
        super().__init__()
        self.model = loaded.model.eval()
        self.normalize = normalize
        self.normalize_eps = loaded.normalize_eps
        self._preprocessor = loaded.preprocessor
        self._loaded_config = loaded.config
        self._format = loaded.format
        self._ckpt, self._random_init, self._seed, self._options = ckpt, random_init, seed, options
        self._sha256: str | None = None
        window, hop = conv_geometry(loaded.config["extractor_conv_layer_config"])
        self.spec = UpstreamSpec(
            name=self.name,
            num_layers=len(self.model.encoder.transformer.layers) + 1,
            dim=int(loaded.config["encoder_embed_dim"]),
            window=window,
            hop=hop,
            pad_safe=loaded.config["extractor_mode"] == "layer_norm",  # group norm sees the padding
        )

    @classmethod
    def create(cls, *, ckpt: Path | None = None, options: dict[str, Any] | None = None,
               random_init: str | None = None, seed: int = 0) -> SelfSupervised:
        """From ``--ckpt`` (any format ``checkpoints.load_checkpoint`` reads) or ``--random-init SIZE``."""
        opts = parse_options(SSLOptions, options, f"-g options of upstream {cls.name!r}")
        if opts.normalize is not None and not isinstance(opts.normalize, bool):
            raise ConfigError(f"-g options of upstream {cls.name!r}: normalize must be true, false or null")
        if ckpt is not None and random_init is not None:
            raise ConfigError(f"upstream {cls.name!r}: give --ckpt or --random-init, not both")
        if ckpt is None:
            if random_init is None:
                raise ConfigError(
                    f"upstream {cls.name!r} needs --ckpt PATH (a fairseq .pt, a Hugging Face folder or a torchaudio "
                    f"state dict), or --random-init {'|'.join(checkpoints.SIZES)} for tests and benchmarks"
                )
            loaded = checkpoints.random_model(cls.name, random_init, seed)
            message = (f"upstream {cls.name!r} uses RANDOM WEIGHTS (--random-init {random_init}, seed {seed}); "
                       "its features say nothing about a trained model")
            warnings.warn(message, stacklevel=2)
        else:
            loaded = checkpoints.load_checkpoint(Path(ckpt), cls.name)
            if loaded.normalize_note and opts.normalize is None:
                warnings.warn(loaded.normalize_note, stacklevel=2)
        normalize = loaded.normalize if opts.normalize is None else opts.normalize
        return cls(loaded, normalize=normalize, ckpt=None if ckpt is None else Path(ckpt),
                   random_init=random_init, seed=seed if ckpt is None else None, options=opts)

    def hidden_states(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """All hidden states, layer 0 = transformer input (see base.py).

        Args:
            wavs: ``(batch, samples)`` at 16 kHz, zero-padded.  lengths: ``(batch,)`` valid samples.
        Returns:
            ``(batch, frames, num_layers, dim)``; rows valid up to ``spec.num_frames(length)``.
        """
        lengths = lengths.to(wavs.device)
        if self.normalize:
            wavs = normalize_waveforms(wavs, lengths, self.normalize_eps)
        features, frame_lengths = self.model.feature_extractor(wavs, lengths)  # (batch, frames, channels)
        padded = bool((frame_lengths < features.shape[1]).any())
        x, mask = self.model.encoder._preprocess(features, frame_lengths if padded else None)  # zeroes padding
        transformer = self.model.encoder.transformer
        x = transformer._preprocess(x)  # + positional conv (+ layer norm for post-LN)
        states = [x]
        if self.name == "wavlm":  # WavLM attention takes a (batch, frames) key mask, added to its position bias
            key_mask = None if mask is None else mask[:, 0, 0, :]
            position_bias = None
            for layer in transformer.layers:
                x, position_bias = layer(x, None, position_bias=position_bias, key_padding_mask=key_mask)
                states.append(x)
        else:
            for layer in transformer.layers:
                x, _ = layer(x, mask)
                states.append(x)
        if not transformer.layer_norm_first:  # pre-LN: the encoder's final norm belongs to the last state
            states[-1] = transformer.layer_norm(states[-1])
        return torch.stack(states, dim=2)

    def identity(self) -> dict[str, Any]:
        """Name, checkpoint path and SHA-256 (or ``random-init`` with size and seed), format and config.

        Hugging Face folders add ``preprocessor`` (what ``preprocessor_config.json`` said, None without it):
        stores made before superb read that file lack it, so they are not added to.
        """
        if self._ckpt is not None and self._sha256 is None:
            self._sha256 = file_sha256(self._ckpt)
        identity = {
            "name": self.name,
            "ckpt": None if self._ckpt is None else str(self._ckpt),
            "ckpt_sha256": self._sha256 if self._ckpt is not None else "random-init",
            "random_init": self._random_init,
            "seed": self._seed,
            "format": self._format,
            "normalize": self.normalize,
            "options": {"normalize": self._options.normalize},
            "config": self._loaded_config,
            "spec": self.spec.to_dict(),
        }
        if self._format == "huggingface":
            identity["preprocessor"] = self._preprocessor
        return identity


class Wav2Vec2(SelfSupervised):
    """wav2vec 2.0 (Base: 13 hidden states, Large: 25)."""

    name: ClassVar[str] = "wav2vec2"


class Hubert(SelfSupervised):
    """HuBERT (Base: 13 hidden states, Large: 25)."""

    name: ClassVar[str] = "hubert"


class WavLM(SelfSupervised):
    """WavLM (Base/Base+: 13 hidden states, Large: 25); gated relative position bias in every layer."""

    name: ClassVar[str] = "wavlm"
