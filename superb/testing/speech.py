"""Deterministic test audio: espeak-ng speech and seeded noise, written in any rate, channel count and format.

Tiny corpora built from real (synthetic) speech exercise the same code paths as the real corpora, and a
different espeak-ng voice per "speaker" gives speaker and accent variety for free. The same arguments always
give byte-identical files: espeak-ng is deterministic, and sox runs with ``-R`` (repeatable) and ``-D`` (no
dither, whose noise would otherwise be random).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

FORMATS = {".wav": "wav", ".flac": "flac"}  # suffix -> sox output type (16-bit PCM)


def require_tools() -> None:
    """Raise ``RuntimeError`` naming the missing program if espeak-ng or sox is not installed."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found on PATH; the test corpora need them "
            "(Debian/Ubuntu: apt-get install espeak-ng sox)"
        )


def _output_type(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r} (choose from {', '.join(FORMATS)})")
    return kind


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def synthesize(
    text: str,
    path: str | Path,
    voice: str = "en-us",
    rate: int = 16_000,
    speed: int | None = None,
    pitch: int | None = None,
    channels: int = 1,
    duration: float | None = None,
) -> Path:
    """Speak ``text`` with espeak-ng and write it to ``path`` (format from the suffix: .wav or .flac).

    Args:
        voice: espeak-ng voice, optionally with a variant (``"en-gb-scotland"``, ``"en-us+f3"``).
        rate: output sample rate in Hz (espeak-ng itself speaks at 22050 Hz; sox converts).
        speed: words per minute (espeak-ng's default is 175).
        pitch: 0-99 (espeak-ng's default is 50).
        channels: 1, or more to copy the mono speech into every channel.
        duration: seconds; pad with silence or cut to exactly ``round(duration * rate)`` samples.
    Returns the path written.
    """
    require_tools()
    path = Path(path)
    kind = _output_type(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    speak = ["espeak-ng", "-v", voice]
    if speed is not None:
        speak += ["-s", str(int(speed))]
    if pitch is not None:
        speak += ["-p", str(int(pitch))]
    effects = ["channels", str(int(channels)), "rate", str(int(rate))]
    if duration is not None:
        samples = round(duration * rate)
        effects += ["pad", "0", f"{samples}s", "trim", "0", f"{samples}s"]
    with tempfile.TemporaryDirectory(prefix="superb-tts-") as tmp:
        raw = Path(tmp) / "speech.wav"
        _run([*speak, "-w", str(raw), "--", text])
        _run(["sox", "-R", "-D", "-V1", str(raw), "-b", "16", "-t", kind, str(path), *effects])
    return path


def noise(seconds: float, rate: int = 16_000, seed: int = 0, color: str = "white", amplitude: float = 0.1,
          channels: int = 1) -> np.ndarray:
    """Seeded noise, ``[samples, channels]`` float32 in [-1, 1]; ``color`` is ``"white"`` or ``"pink"``."""
    rng = np.random.default_rng(seed)
    samples = round(seconds * rate)
    white = rng.standard_normal((samples, channels))
    if color == "white":
        wave = white
    elif color == "pink":  # 1/f power: scale the spectrum by 1/sqrt(f)
        spectrum = np.fft.rfft(white, axis=0)
        freqs = np.arange(spectrum.shape[0], dtype=np.float64)
        freqs[0] = 1.0
        wave = np.fft.irfft(spectrum / np.sqrt(freqs)[:, None], n=samples, axis=0)
    else:
        raise ValueError(f"unknown noise color {color!r} (choose 'white' or 'pink')")
    peak = np.abs(wave).max() or 1.0
    return (wave / peak * amplitude).astype(np.float32)


def write_noise(path: str | Path, seconds: float, rate: int = 16_000, seed: int = 0, color: str = "white",
                amplitude: float = 0.1, channels: int = 1) -> Path:
    """Write seeded noise (``noise``'s arguments) as 16-bit PCM .wav or .flac; same arguments, same bytes."""
    path = Path(path)
    _output_type(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = noise(seconds, rate=rate, seed=seed, color=color, amplitude=amplitude, channels=channels)
    soundfile.write(str(path), wave, rate, subtype="PCM_16")
    return path


# -- speech with its phoneme timing (espeak-ng's library, in a child process) --------------------------------


def synthesize_phones(text: str, path: str | Path, voice: str = "en-us", rate: int = 16_000,
                      speed: int | None = None, pitch: int | None = None) -> list[tuple[int, str]]:
    """Speak ``text`` as ``synthesize`` does, but through espeak-ng's library, and return its phonemes: the
    ``(first sample at rate, espeak-ng phoneme mnemonic)`` of each, in order (``_`` is a pause).

    Each utterance is spoken by a fresh process (``superb.testing.espeak_phones``): the library's synthesiser
    carries state from one utterance to the next (timings drift by a few samples), so this keeps the same
    arguments giving the same bytes, and lets utterances be spoken in parallel."""
    require_tools()
    path = Path(path)
    kind = _output_type(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="superb-tts-") as tmp:
        raw = Path(tmp) / "speech.wav"
        done = subprocess.run([sys.executable, "-m", "superb.testing.espeak_phones", text, voice,
                               str(speed if speed is not None else 175), str(pitch if pitch is not None else 50),
                               str(raw)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"espeak-ng's library failed: {done.stderr.strip()}")
        native, events = json.loads(done.stdout)
        _run(["sox", "-R", "-D", "-V1", str(raw), "-b", "16", "-t", kind, str(path), "channels", "1",
              "rate", str(int(rate))])
    return [(round(sample * rate / native), phoneme) for sample, phoneme in events]
