"""Reading audio: soundfile decodes, channels are averaged to mono, torchaudio resamples to 16 kHz.

``probe`` reads only the header, so a corpus's layout (and a store's offsets) can be fixed before any
audio is decoded. ``read`` then checks that the decoded length is what the header promised, so a
truncated file fails loudly instead of shifting every offset after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from superb.errors import AudioError

SAMPLE_RATE = 16_000

# libsndfile trims a cut-off WAV to the bytes present and only logs "data : DECLARED (should be ACTUAL)".
_WAV_DATA_LOG = re.compile(r"^data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
# Streamed WAVs (sox or espeak-ng writing to a pipe) declare a huge placeholder size instead: not truncated.
_STREAMED_WAV_SIZE = 0x7FFF0000


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    frames: int  # samples per channel, at ``sample_rate``
    channels: int


def resampled_length(frames: int, orig_rate: int, new_rate: int = SAMPLE_RATE) -> int:
    """Samples after resampling ``frames`` from ``orig_rate`` to ``new_rate`` (torchaudio's ceil rule)."""
    return -(-frames * new_rate // orig_rate)


def probe(path: str | Path) -> AudioInfo:
    """Header facts of an audio file; raises ``AudioError`` naming the file if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile reports corrupt and unsupported files alike
        raise AudioError(f"{path}: cannot read audio ({_first_line(exc)})") from None
    cut = _WAV_DATA_LOG.search(info.extra_info or "")
    if cut and int(cut.group(1)) < _STREAMED_WAV_SIZE:
        raise AudioError(
            f"{path}: truncated WAV (header declares {cut.group(1)} data bytes, file holds {cut.group(2)})"
        )
    if info.frames <= 0:
        raise AudioError(f"{path}: audio holds no samples")
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{path}: invalid header (rate {info.samplerate}, channels {info.channels})")
    return AudioInfo(sample_rate=int(info.samplerate), frames=int(info.frames), channels=int(info.channels))


def read(path: str | Path, start: int = 0, frames: int = -1, expected: int | None = None) -> np.ndarray:
    """Decode ``frames`` samples from ``start`` (both at the file's own rate), as mono float32 at 16 kHz.

    ``expected`` is the 16 kHz length the layout was built with; a mismatch raises ``AudioError``.
    Returns a 1-D ``np.ndarray`` of float32 in [-1, 1].
    """
    path = Path(path)
    info = probe(path)
    try:
        data, rate = soundfile.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_first_line(exc)})") from None
    wanted = (info.frames - start) if frames < 0 else frames
    if data.shape[0] != wanted:
        raise AudioError(f"{path}: truncated or corrupt audio (decoded {data.shape[0]} of {wanted} samples)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE:
        mono = resample(mono, rate)
    if expected is not None and mono.shape[0] != expected:
        raise AudioError(f"{path}: expected {expected} samples at 16 kHz, decoded {mono.shape[0]}")
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


EDIT_KEY = "audio_edit"  # record["meta"][EDIT_KEY]: {"gain_db": float, "keep": [[start, end], ...]} at 16 kHz


def apply_edit(wave: np.ndarray, edit: dict[str, Any]) -> np.ndarray:
    """A corpus's audio edit (VoxCeleb1 verification: sox ``gain`` then ``silence``): scale by ``gain_db`` and
    keep only the ``keep`` sample intervals (16 kHz), concatenated."""
    gain = float(10.0 ** (float(edit.get("gain_db", 0.0)) / 20.0))
    keep = edit.get("keep")
    if keep is not None:
        wave = np.concatenate([wave[int(a) : int(b)] for a, b in keep]) if keep else wave[:0]
    return (wave * np.float32(gain)).astype(np.float32, copy=False)


def read_record(record: dict[str, Any]) -> np.ndarray:
    """The 16 kHz samples a manifest record stands for: its segment of the file, then its audio edit if any;
    the length must be the record's ``num_samples`` (what the store was laid out with)."""
    edit = (record.get("meta") or {}).get(EDIT_KEY)
    if edit is None:
        return read(record["path"], start=record.get("start", 0), frames=record.get("frames", -1),
                    expected=record["num_samples"])
    wave = apply_edit(read(record["path"], start=record.get("start", 0), frames=record.get("frames", -1)), edit)
    if wave.shape[0] != record["num_samples"]:
        raise AudioError(f"{record['path']}: expected {record['num_samples']} samples after the corpus's audio "
                         f"edit, got {wave.shape[0]} (the file changed since the reader listed it)")
    return wave


def resample(wave: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with torchaudio (imported here so probing needs no torch)."""
    import torch
    import torchaudio.functional as F

    out = F.resample(torch.from_numpy(np.ascontiguousarray(wave)), orig_rate, new_rate)
    return out.numpy()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
