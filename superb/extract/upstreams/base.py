"""The upstream contract: metadata (``UpstreamSpec``) apart from the module, and one forward call.

Layer convention (SPEC §2, as s3prl defines it), written once here:

* hidden state 0 is the transformer's input: CNN features → projection → positional convolution →
  layer norm where the model applies it there (post-LN models such as Base);
* hidden state i (1 ≤ i ≤ N) is the output of transformer layer i;
* for pre-LN models (wav2vec2 Large LV-60k, WavLM Large) the last hidden state is taken after the
  encoder's final layer norm.

Feature upstreams (fbank, mfcc) have one hidden state. Frame counts are a pure function of the sample
count (``UpstreamSpec.num_frames``); an upstream whose output disagrees raises instead of padding.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from superb.errors import ConfigError


@dataclass(frozen=True)
class UpstreamSpec:
    """What a store needs to know about an upstream before decoding any audio.

    Frames follow the convolution rule ``floor((n + 2·pad - window) / hop) + 1`` (0 when there are too few
    samples): window 400 / hop 320 for the wav2vec2 family, 400 / 160 for Kaldi features with snip_edges;
    a centred STFT (``stft_mag``) pads ``n_fft // 2`` samples at each end, so it gives ``1 + n // hop``.
    """

    name: str
    num_layers: int  # hidden states returned (13 for Base, 25 for Large, 1 for fbank)
    dim: int
    window: int  # samples that make the first frame
    hop: int  # samples between frames
    sample_rate: int = 16_000
    pad_safe: bool = True  # zero-padding a batch leaves every utterance's features unchanged
    pad: int = 0  # samples added at each end before framing (a centred STFT: n_fft // 2)

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop

    def num_frames(self, num_samples: int) -> int:
        """Exact frame count for an utterance of ``num_samples`` samples at ``sample_rate``."""
        padded = num_samples + 2 * self.pad
        if num_samples <= 0 or padded < self.window:
            return 0
        return (padded - self.window) // self.hop + 1

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "frame_rate": self.frame_rate}


class Upstream(torch.nn.Module):
    """Base class: a module mapping padded waveforms to all hidden states.

    Subclasses set ``spec`` in ``__init__`` and implement ``hidden_states``; they are built by the
    classmethod ``create`` from CLI-level options, which validates them.
    """

    name: ClassVar[str] = ""
    spec: UpstreamSpec

    def hidden_states(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """All hidden states of a batch.

        Args:
            wavs: ``(batch, samples)`` float waveforms at 16 kHz, zero-padded.
            lengths: ``(batch,)`` valid samples per row.
        Returns:
            ``(batch, frames, num_layers, dim)``, where ``frames`` is at least
            ``max(spec.num_frames(lengths))``; rows are valid up to their own frame count.
        """
        raise NotImplementedError

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states ``(batch, frames, layers, dim)`` and frame lengths ``(batch,)``."""
        frame_lengths = torch.tensor([self.spec.num_frames(int(n)) for n in lengths], dtype=torch.long)
        if self.spec.num_frames(wavs.shape[1]) == 0:  # nothing yields a frame: skip the model entirely
            empty = wavs.new_zeros(wavs.shape[0], 0, self.spec.num_layers, self.spec.dim)
            return empty, frame_lengths
        hidden = self.hidden_states(wavs, lengths)
        expected = int(frame_lengths.max())
        if hidden.dim() != 4 or hidden.shape[2:] != (self.spec.num_layers, self.spec.dim):
            raise RuntimeError(
                f"upstream {self.spec.name!r} returned shape {list(hidden.shape)}, expected "
                f"(batch, frames, {self.spec.num_layers}, {self.spec.dim})"
            )
        if hidden.shape[1] < expected:
            raise RuntimeError(
                f"upstream {self.spec.name!r} returned {hidden.shape[1]} frames for "
                f"{int(lengths.max())} samples; its spec says {expected}"
            )
        return hidden[:, :expected], frame_lengths

    def identity(self) -> dict[str, Any]:
        """Provenance stored with every feature store: name, checkpoint and hash, options."""
        raise NotImplementedError

    @classmethod
    def create(
        cls,
        *,
        ckpt: Path | None = None,
        options: dict[str, Any] | None = None,
        random_init: str | None = None,
        seed: int = 0,
    ) -> Upstream:
        """Build from CLI options: ``--ckpt``, ``-g`` YAML options, ``--random-init SIZE``, ``--seed``."""
        raise NotImplementedError


def parse_options(options_type: type, values: dict[str, Any] | None, where: str) -> Any:
    """Fill the dataclass ``options_type`` from ``values``; unknown keys and wrong types raise."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r} (options: {', '.join(fields)})")
    defaults = options_type()
    for key, value in values.items():
        default = getattr(defaults, key)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}: option {key!r} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: option {key!r} must be a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise ConfigError(f"{where}: option {key!r} must be an integer, got {value!r}")
            values[key] = type(default)(value)
        if isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where}: option {key!r} must be a string, got {value!r}")
    return options_type(**values)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, or of every file of a folder (sorted by name), for checkpoint identity."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def parse_layers(text: str, num_layers: int) -> list[int]:
    """``"all"`` → every hidden state; ``"0,4,8"`` → those indices (sorted, unique, each in range).

    Unlike timm's ``feature_take_indices`` an integer never means "the last n": ``"4"`` is layer 4.
    """
    text = str(text).strip()
    if text == "all":
        return list(range(num_layers))
    try:
        picked = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--layers {text!r}: expected 'all' or comma-separated integers like 0,4,8") from None
    if not picked:
        raise ConfigError(f"--layers {text!r}: no layer given")
    bad = [i for i in picked if not 0 <= i < num_layers]
    if bad:
        raise ConfigError(f"--layers: layer {bad[0]} out of range; this upstream has layers 0..{num_layers - 1}")
    return picked
