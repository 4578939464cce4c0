"""The STFT side of separation, as s3prl's ``separation_stft`` computes it with librosa.

``librosa.stft(n_fft, hop_length, win_length, window="hann", center)`` is ``torch.stft`` with a periodic Hann
window of ``win_length`` (zero-padded to ``n_fft``), not normalised; ``librosa.istft(..., length=N)`` is
``torch.istft`` with the same window and ``length``: both divide the overlap-add by the summed squared windows,
and leave samples no frame covers (the tail past the last frame's window) at zero. Each utterance is
transformed alone, as s3prl's dataset does, so its centred padding reflects its own end, not the batch's.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from superb.train.config import SeparationConfig

IMPULSE_WINDOW = 512  # s3prl's postprocess: the last samples checked for an impulse
IMPULSE_MIN_TAIL = 2048  # ... only when the estimate is non-zero to within this many samples of its end


def stft_frames(samples: torch.Tensor | int, cfg: SeparationConfig, hop: int) -> torch.Tensor | int:
    """STFT frames of ``samples``: ``1 + n // hop`` centred, ``(n - n_fft) // hop + 1`` otherwise."""
    if cfg.center:
        return samples // hop + 1
    if isinstance(samples, int):
        return max(0, (samples - cfg.n_fft) // hop + 1)
    return ((samples - cfg.n_fft) // hop + 1).clamp(min=0)


def _window(cfg: SeparationConfig, device: torch.device) -> torch.Tensor:
    return torch.hann_window(cfg.win_length, device=device)


def stft(wave: torch.Tensor, cfg: SeparationConfig, hop: int) -> torch.Tensor:
    """``(samples,)`` → complex ``(frames, n_fft // 2 + 1)``. A wave too short to reflect is zero-padded."""
    mode = cfg.pad_mode if wave.shape[0] > cfg.n_fft // 2 else "constant"
    spec = torch.stft(wave.float(), cfg.n_fft, hop, cfg.win_length, window=_window(cfg, wave.device),
                      center=cfg.center, pad_mode=mode, normalized=False, return_complex=True)
    return spec.T


def batch_stft(waves: torch.Tensor, samples: torch.Tensor, cfg: SeparationConfig, hop: int) -> torch.Tensor:
    """``(B, ..., N)`` zero-padded waves → complex ``(B, ..., frames, bins)``, each utterance alone, zero frames
    past its own."""
    lengths = [int(n) for n in samples.tolist()]
    frames = [int(stft_frames(n, cfg, hop)) for n in lengths]
    out = torch.zeros(*waves.shape[:-1], max(frames + [1]), cfg.n_fft // 2 + 1, dtype=torch.complex64,
                      device=waves.device)
    for b, (n, t) in enumerate(zip(lengths, frames, strict=True)):
        for index in np.ndindex(*waves.shape[1:-1]):
            out[(b, *index)][:t] = stft(waves[(b, *index)][:n], cfg, hop)
    return out


def istft(spec: torch.Tensor, cfg: SeparationConfig, hop: int, samples: int) -> torch.Tensor:
    """Complex ``(..., frames, bins)`` → ``(..., samples)`` waves (librosa's ``istft(length=samples)``)."""
    with warnings.catch_warnings():  # "shorter than the length parameter": the uncovered tail is zeros, as librosa
        warnings.simplefilter("ignore", UserWarning)
        return torch.istft(spec.transpose(-1, -2), cfg.n_fft, hop, cfg.win_length, window=_window(cfg, spec.device),
                           center=cfg.center, length=samples)


def suppress_end_impulse(x: np.ndarray) -> np.ndarray:
    """s3prl's ``postprocess``: masks often leave an impulse at the end of an estimate. With ``p`` the last
    non-zero sample + 1 (and ``p`` within 2048 samples of the end), a sample in ``[p − 512, p)`` louder than
    everything before ``p − 512`` starts a tail that is set to zero. Estimates that end earlier, are too
    short, or are all zero come back unchanged (s3prl crashes on an all-zero one)."""
    nonzero = np.flatnonzero(x)
    if nonzero.size == 0:
        return x
    p = int(nonzero[-1]) + 1
    start = p - IMPULSE_WINDOW
    if p < x.shape[0] - IMPULSE_MIN_TAIL or start <= 0:
        return x
    loud = np.flatnonzero(np.abs(x[start:p]) > np.max(np.abs(x[:start])))
    if loud.size == 0:
        return x
    out = x.copy()
    out[start + int(loud[0]):] = 0
    return out
