"""Silence trimming (s3prl's ASV front end): known structures, a slow reference, and parity with ``sox``.

The synthetic signals use a Nyquist square wave (every sample ±A), so a sample is either fully loud or
not and the RMS window's lag is exact: a loud burst ending at ``e`` keeps the window loud through
``e + 318``, so quiet starts at ``e + 319`` (``WINDOW - 1`` samples later).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from superb.extract.trim import gain_factor, silence_intervals, trim, trimmed_length

RATE = 16_000
WINDOW = 320  # 20 ms RMS window
NEED = 1_600  # 0.1 s
LAG = WINDOW - 1
GAIN = 10 ** (-3 / 20)
SOX = ["gain", "-3.0", "silence", "1", "0.1", "0.1%", "-1", "0.1", "0.1%"]


def square(samples: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.where(np.arange(samples) % 2 == 0, 1.0, -1.0)).astype(np.float32)


def silence(samples: int) -> np.ndarray:
    return np.zeros(samples, dtype=np.float32)


def cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32)


# --- known structure -------------------------------------------------------------------------------------


def test_gain_factor():
    assert gain_factor(-3.0) == pytest.approx(0.7079457843841379)
    assert gain_factor(0.0) == 1.0


@pytest.mark.parametrize("gap, removed", [(LAG + NEED - 1, False), (LAG + NEED, True), (8_000, True)])
def test_gap_removed_from_0_1_s_of_quiet_rms(gap, removed):
    """A gap goes when its quiet RMS run (gap minus the window lag) reaches 1,600 samples; all of it goes."""
    wav = cat(silence(8_000), square(16_000), silence(gap), square(8_000), silence(4_800))
    first_end, second = 24_000, 24_000 + gap
    end = second + 8_000 + LAG  # the 0.3 s trailing silence goes too, all but the window lag
    expected = [(8_000, first_end + LAG), (second, end)] if removed else [(8_000, end)]
    assert silence_intervals(wav) == expected
    assert trimmed_length(expected) == sum(b - a for a, b in expected)


@pytest.mark.parametrize("blip, kept", [(NEED - LAG - 1, False), (NEED - LAG, True), (NEED, True)])
def test_leading_loud_blip_needs_0_1_s_of_loud_rms(blip, kept):
    """0.1 s of loud RMS, which outlasts the blip by the window lag: 1,281 samples and silence suffice."""
    wav = cat(silence(4_800), square(blip), silence(4_800), square(16_000))
    second = 4_800 + blip + 4_800
    expected = [(4_800, 4_800 + blip + LAG), (second, len(wav))] if kept else [(second, len(wav))]
    assert silence_intervals(wav) == expected


def test_end_of_file():
    """A trailing pause under 0.1 s is flushed; a loud tail under 0.1 s after a removed gap is not kept."""
    assert silence_intervals(cat(square(16_000), silence(1_000))) == [(0, 17_000)]
    assert silence_intervals(cat(square(16_000), silence(4_000), square(NEED - 1))) == [(0, 16_000 + LAG)]
    assert silence_intervals(silence(16_000)) == []
    assert silence_intervals(silence(0)) == []


def test_threshold_is_0_1_percent_after_the_gain():
    """``gain -3.0`` comes first: 0.12 % of full scale is above 0.1 % but falls below it after the gain."""
    assert silence_intervals(square(16_000, 0.0012), gain_db=0.0)[0][1] == 16_000
    assert silence_intervals(square(16_000, 0.0012)) == []
    assert silence_intervals(square(16_000, 0.00138)) == []  # 0.0977 % after the gain
    ((start, end),) = silence_intervals(square(16_000, 0.00145))  # 0.1027 % after the gain
    assert end == 16_000 and 0 < start < WINDOW  # the window starts out as zeros, so it takes a while


def test_cleared_window_delays_the_start():
    """The RMS window starts (and restarts after a removed gap) as zeros: at 2.05 x the threshold a burst
    is loud while at least 77 of the 320 window samples hold it (77 / 320 >= 1 / 2.05**2 > 76 / 320), so
    it turns loud 76 samples in and quiet 243 (= 319 - 76) samples after it ends."""
    amplitude = 2.05 * 0.001 / GAIN
    wav = cat(silence(8_000), square(16_000, amplitude), silence(8_000), square(16_000, amplitude))
    assert silence_intervals(wav) == [(8_076, 24_243), (32_076, 48_000)]


def test_window_cleared_after_a_removed_gap():
    """After 0.1 s of quiet SoX clears the window: a burst just after that point starts from zeros, not
    from the quiet floor (0.09 %) before it. Cleared: loud 74 samples in; not cleared it would be 17."""
    floor, burst = 0.0009 / GAIN, 0.00205 / GAIN
    gap = LAG + NEED + 10  # the window is cleared 10 samples before the burst
    wav = cat(square(16_000), square(gap, floor), square(16_000, burst))
    assert silence_intervals(wav) == [(0, 16_000 + LAG), (16_000 + gap + 74, len(wav))]


def test_noise_floor_below_and_above_threshold():
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(8_000) * 0.0003).astype(np.float32)  # RMS 0.03 % (0.02 % after gain)
    hiss = (rng.standard_normal(8_000) * 0.005).astype(np.float32)  # RMS 0.5 %
    assert silence_intervals(cat(quiet, square(16_000), quiet, square(16_000))) == [
        (8_000, 24_000 + LAG), (32_000, 48_000)]
    assert silence_intervals(cat(quiet, square(16_000), hiss, square(16_000))) == [(8_000, 48_000)]


def test_trim_returns_kept_audio_times_gain():
    wav = cat(silence(8_000), square(16_000), silence(8_000), square(16_000, 0.25))
    out = trim(wav)
    intervals = silence_intervals(wav)
    assert out.dtype == np.float32 and out.shape == (trimmed_length(intervals),)
    expected = np.concatenate([wav[a:b] for a, b in intervals]) * GAIN
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert trim(silence(100)).shape == (0,)


def test_rejects_multichannel():
    with pytest.raises(ValueError, match="mono"):
        silence_intervals(np.zeros((2, 100), dtype=np.float32))


# --- a sample-by-sample reference of SoX's state machine ----------------------------------------------


def reference_intervals(wav: np.ndarray) -> list[tuple[int, int]]:
    """SoX's ``silence 1 0.1 0.1% -1 0.1 0.1%`` after ``gain -3.0``, one sample at a time (slow)."""
    squares = wav.astype(np.float64) ** 2

    def loud(i: int, reset: int) -> bool:
        rms = math.floor(math.sqrt(squares[max(reset, i - WINDOW + 1): i + 1].sum() / WINDOW) * GAIN * 2**31)
        return rms / (2**31 - 1) * 100 > 0.1

    kept: list[int] = []
    held: list[int] = []
    copying, reset = False, 0
    for i in range(len(wav)):
        if not copying:  # discard until 0.1 s in a row is loud
            held = [*held, i] if loud(i, reset) else []
            if len(held) >= NEED:
                kept += held
                held, copying = [], True
        elif loud(i, reset):  # a loud sample releases the held-back quiet ones
            kept += [*held, i]
            held = []
        else:
            held.append(i)
            if len(held) >= NEED:  # 0.1 s of quiet: drop it, clear the window, look for speech again
                held, copying, reset = [], False, i + 1
    if copying:
        kept += held
    intervals: list[tuple[int, int]] = []
    for i in kept:
        if intervals and intervals[-1][1] == i:
            intervals[-1] = (intervals[-1][0], i + 1)
        else:
            intervals.append((i, i + 1))
    return intervals


def level_noise(seed: int, samples: int) -> np.ndarray:
    """Gaussian noise whose level jumps around the threshold every few milliseconds to few hundred."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(100, 5_000, size=samples // 100 + 1)
    levels = np.exp(rng.uniform(np.log(0.0003), np.log(0.01), size=lengths.size))
    envelope = np.repeat(levels, lengths)[:samples]
    wav = rng.standard_normal(samples) * envelope
    wav[rng.integers(0, samples, 20)] = 0.5  # clicks
    return np.round(wav * 32768).clip(-32768, 32767).astype(np.float32) / 32768  # 16-bit values


@pytest.mark.parametrize("seed", range(6))
def test_matches_sample_by_sample_reference(seed):
    wav = level_noise(seed, 24_000)
    assert silence_intervals(wav) == reference_intervals(wav)


# --- parity with the sox program ------------------------------------------------------------------------


def run_sox(wav: np.ndarray, tmp_path: Path) -> np.ndarray:
    """``sox -D in.wav out.wav gain -3.0 silence ...`` on 16-bit input; float output keeps SoX's 32 bits."""
    source, result = tmp_path / "in.wav", tmp_path / "out.wav"
    soundfile.write(str(source), wav, RATE, subtype="PCM_16")
    subprocess.run(["sox", "-D", "-V1", str(source), "-e", "floating-point", "-b", "32", str(result), *SOX],
                   check=True, capture_output=True)
    out, rate = soundfile.read(str(result), dtype="float64")
    assert rate == RATE
    return out


def assert_matches_sox(wav: np.ndarray, tmp_path: Path) -> None:
    wav = np.round(wav * 32768).clip(-32768, 32767).astype(np.float32) / 32768  # what sox reads back
    expected = run_sox(wav, tmp_path)
    ours = trim(wav)
    assert trimmed_length(silence_intervals(wav)) == ours.shape[0]
    assert ours.shape[0] == expected.shape[0]  # measured: equal in every case tried
    if ours.size:  # measured: at most 6e-8 (float32 rounding of the same 32-bit samples)
        assert np.abs(ours - expected).max() < 1e-6


needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


@needs_sox
@pytest.mark.parametrize("case", ["bursts", "blips", "cleared-window", "slow-start", "noise-floor"])
def test_sox_parity_synthetic(case, tmp_path):
    rng = np.random.default_rng(1)
    tone = np.sin(2 * np.pi * 440 * np.arange(16_000) / RATE).astype(np.float32)  # starts on a zero sample
    wav = {
        "bursts": cat(silence(8_000), 0.5 * tone, silence(1_918), 0.5 * tone[:8_000], silence(1_919), tone[:3_000],
                      silence(800), 0.3 * tone, silence(1_000)),
        "blips": cat(silence(3_000), tone[:1_599], silence(3_000), tone[:1_600], silence(5_000), 0.5 * tone,
                     silence(5_000), tone[:1_000]),
        "cleared-window": cat(square(16_000), square(LAG + NEED + 10, 0.0009 / GAIN), square(16_000, 0.00205 / GAIN)),
        "slow-start": cat(silence(5_000), square(8_000, 2.05 * 0.001 / GAIN), silence(5_000),
                          square(8_000, 0.00145)),
        "noise-floor": cat(rng.standard_normal(8_000) * 0.0005, tone, rng.standard_normal(8_000) * 0.002, tone,
                           rng.standard_normal(4_000) * 0.0013),
    }[case]
    assert_matches_sox(wav.astype(np.float32), tmp_path)


@needs_sox
@pytest.mark.parametrize("seed", range(8))
def test_sox_parity_levels_around_threshold(seed, tmp_path):
    assert_matches_sox(level_noise(100 + seed, 48_000), tmp_path)


@needs_sox
@pytest.mark.parametrize("text, voice", [
    ("hello world, this is a test of silence trimming", "en-us"),
    ("the quick brown fox. jumps over the lazy dog", "en-gb"),
    ("one, two, three... four", "en-us+f3"),
])
def test_sox_parity_speech(text, voice, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from superb.testing.speech import synthesize

    speech, _ = soundfile.read(str(synthesize(text, tmp_path / "tts.wav", voice=voice)), dtype="float32")
    rng = np.random.default_rng(2)
    wav = cat(silence(11_000), speech, silence(6_000), 0.3 * speech, rng.standard_normal(5_000) * 0.0008)
    assert_matches_sox(wav, tmp_path)
