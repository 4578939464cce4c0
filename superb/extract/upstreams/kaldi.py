"""Classic feature baselines: Kaldi-compatible fbank and MFCC (s3prl's ``fbank``/``mfcc``), STFT magnitude.

Computed per utterance with ``torchaudio.compliance.kaldi`` (snip_edges, 25 ms window, 10 ms shift, no
dither, so reruns match), Δ and ΔΔ by ``torchaudio.functional.compute_deltas`` (window 5), then
per-utterance CMVN exactly as s3prl's baseline ``CMVN`` (see ``cmvn``). Each has one hidden state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as F

from superb.errors import ConfigError
from superb.extract.upstreams.base import Upstream, UpstreamSpec, parse_options

WINDOW_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = 160  # 10 ms at 16 kHz


CMVN_EPS = 1e-10  # s3prl's CMVN adds it to the standard deviation
CMVN_STD = "unbiased+1e-10"  # in the identity of CMVN'd stores; earlier superb used the biased std + 1e-5


def cmvn(features: torch.Tensor, eps: float = CMVN_EPS) -> torch.Tensor:
    """Per-utterance mean and variance normalisation over time; ``features`` is ``(frames, dim)``.

    s3prl's ``upstream/baseline/extracter.py`` ``CMVN``: ``(x - mean) / (std + 1e-10)`` with torch's
    unbiased std (divisor T - 1) over the utterance's T frames. One frame has no unbiased std (s3prl gets
    NaN there): superb gives zeros, which is what ``x - mean`` is for a single frame.
    """
    if features.shape[0] < 2:
        return torch.zeros_like(features)
    mean = features.mean(dim=0, keepdim=True)
    std = features.std(dim=0, unbiased=True, keepdim=True)
    return (features - mean) / (std + eps)


def add_deltas(features: torch.Tensor, order: int, win_length: int = 5) -> torch.Tensor:
    """Append ``order`` orders of deltas: ``(frames, dim)`` → ``(frames, dim * (order + 1))``."""
    parts = [features]
    for _ in range(order):
        parts.append(F.compute_deltas(parts[-1].T.contiguous(), win_length=win_length).T)
    return torch.cat(parts, dim=-1)


class _NoCheckpoint(Upstream):
    """Shared plumbing of upstreams without weights: options from ``-g``, identity, per-row loop."""

    Options: ClassVar[type]

    def __init__(self, options: Any):
        super().__init__()
        self.options = options
        self.spec = self.make_spec(options)

    def make_spec(self, options: Any) -> UpstreamSpec:
        raise NotImplementedError

    def compute(self, wave: torch.Tensor) -> torch.Tensor:
        """``(samples,)`` → ``(frames, dim)`` for one utterance."""
        raise NotImplementedError

    @classmethod
    def create(cls, *, ckpt: Path | None = None, options: dict[str, Any] | None = None,
               random_init: str | None = None, seed: int = 0) -> Upstream:
        if ckpt is not None:
            raise ConfigError(f"upstream {cls.name!r} has no weights: drop --ckpt")
        if random_init is not None:
            raise ConfigError(f"upstream {cls.name!r} has no weights: drop --random-init")
        return cls(parse_options(cls.Options, options, f"upstream {cls.name!r} config"))

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "ckpt": None, "ckpt_sha256": None, "config": asdict(self.options)}

    def hidden_states(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        rows = [self.compute(wavs[i, : int(n)].float()) if self.spec.num_frames(int(n))
                else wavs.new_zeros(0, self.spec.dim) for i, n in enumerate(lengths)]
        frames = max(row.shape[0] for row in rows)
        out = wavs.new_zeros(len(rows), frames, 1, self.spec.dim)
        for i, row in enumerate(rows):
            out[i, : row.shape[0], 0] = row
        return out


@dataclass(frozen=True)
class KaldiOptions:
    num_mel_bins: int = 80
    num_ceps: int = 13
    deltas: int = 2  # orders of deltas appended
    cmvn: bool = True


class Fbank(_NoCheckpoint):
    name = "fbank"
    Options = KaldiOptions

    def make_spec(self, options: KaldiOptions) -> UpstreamSpec:
        dim = options.num_mel_bins * (options.deltas + 1)
        return UpstreamSpec(self.name, num_layers=1, dim=dim, window=WINDOW_SAMPLES, hop=HOP_SAMPLES)

    def compute(self, wave: torch.Tensor) -> torch.Tensor:
        feats = kaldi.fbank(wave[None], num_mel_bins=self.options.num_mel_bins, sample_frequency=16000,
                            dither=0.0)
        return self.finish(feats)

    def finish(self, feats: torch.Tensor) -> torch.Tensor:
        feats = add_deltas(feats, self.options.deltas)
        return cmvn(feats) if self.options.cmvn else feats

    def identity(self) -> dict[str, Any]:
        """With CMVN, the config names its std: stores made with superb's earlier CMVN (biased std + 1e-5)
        lack it, so extracting into them is refused and reports keep their runs apart."""
        identity = super().identity()
        if self.options.cmvn:
            identity["config"]["cmvn_std"] = CMVN_STD
        return identity


class Mfcc(Fbank):
    name = "mfcc"

    def make_spec(self, options: KaldiOptions) -> UpstreamSpec:
        dim = options.num_ceps * (options.deltas + 1)
        return UpstreamSpec(self.name, num_layers=1, dim=dim, window=WINDOW_SAMPLES, hop=HOP_SAMPLES)

    def compute(self, wave: torch.Tensor) -> torch.Tensor:
        feats = kaldi.mfcc(wave[None], num_ceps=self.options.num_ceps, num_mel_bins=23,
                           sample_frequency=16000, dither=0.0)
        return self.finish(feats)


@dataclass(frozen=True)
class StftOptions:
    """s3prl's ``upstream/log_stft/stft_mag.yaml``: 512-point Hann STFT every 320 samples (20 ms), centred."""

    n_fft: int = 512
    hop_length: int = 320
    win_length: int = 0  # 0: n_fft (s3prl's 512 with n_fft 512)
    center: bool = True  # pad n_fft // 2 samples at each end (reflected), as torch.stft(center=True)
    log: bool = False  # s3prl's log_stft_mag.yaml: log(max(|X|, 1e-8))


class StftMagnitude(_NoCheckpoint):
    """``|STFT|`` as s3prl's ``stft_mag`` upstream (``upstream/log_stft/expert.py``): ``torch.stft`` with a periodic
    Hann window of ``win_length``, centred with reflect padding, not normalised; linear magnitude (``log``: its
    log). Frames: ``1 + n // hop_length`` when centred. An utterance of at most ``n_fft // 2`` samples cannot be
    reflected (s3prl crashes there): it is padded with zeros instead."""

    name = "stft_mag"
    Options = StftOptions

    def make_spec(self, options: StftOptions) -> UpstreamSpec:
        win = options.win_length or options.n_fft
        if options.n_fft < 2 or options.hop_length < 1 or not 1 <= win <= options.n_fft:
            raise ConfigError(f"upstream 'stft_mag': n_fft {options.n_fft}, hop_length {options.hop_length}, "
                              f"win_length {options.win_length} (need n_fft >= 2, hop >= 1, 1 <= win <= n_fft)")
        return UpstreamSpec(self.name, num_layers=1, dim=options.n_fft // 2 + 1, window=options.n_fft,
                            hop=options.hop_length, pad=options.n_fft // 2 if options.center else 0)

    def compute(self, wave: torch.Tensor) -> torch.Tensor:
        o = self.options
        win = o.win_length or o.n_fft
        window = torch.hann_window(win, dtype=wave.dtype, device=wave.device)
        mode = "reflect" if wave.shape[0] > o.n_fft // 2 else "constant"
        spec = torch.stft(wave, o.n_fft, o.hop_length, win, window=window, center=o.center, pad_mode=mode,
                          normalized=False, return_complex=True).abs().T
        return torch.log(spec.clamp(min=1e-8)) if o.log else spec
