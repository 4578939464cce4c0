"""Silence trimming that reproduces SoX's ``gain -3.0 silence 1 0.1 0.1% -1 0.1 0.1%`` (s3prl's ASV front end).

s3prl's ``sv_voxceleb1`` runs every wav through ``torchaudio.sox_effects`` with ``channels 1, rate 16000,
gain -3.0, silence 1 0.1 0.1% -1 0.1 0.1%`` and drops training files that come out at 2 s or less. The
torchaudio builds we depend on no longer ship SoX, so this module re-implements that chain in numpy; it is
checked sample for sample against the ``sox`` program in ``tests/test_trim.py``.

What SoX 14.4's ``silence`` effect does (``src/silence.c``), for mono input:

* Loudness is the RMS over the last ``rate // 50`` samples (20 ms; 320 at 16 kHz), the current one
  included; the window starts out, and is reset to, all zeros, so its first samples are quieter than the
  signal. The RMS, in 32-bit sample units truncated to an integer, is "above" when
  ``rms / (2**31 - 1) * 100 > 0.1`` (strictly). ``silence`` sees the signal after ``gain``, whose output SoX
  marks as 32-bit precision, so no low bits are masked (``sox -V4`` prints the chain's precisions).
* Start (``1 0.1 0.1%``): samples are discarded until 0.1 s (1,600 samples) in a row are above; the
  output starts at the first of them. Any quieter sample restarts the count.
* Stop with a negative count (``-1 0.1 0.1%``): while copying, quiet samples are held back; a loud one
  releases them (gaps shorter than 0.1 s survive whole). When 1,600 quiet samples in a row pile up they
  are discarded, the RMS window is cleared, and the effect goes back to the start state: the rest of the
  gap is discarded too, up to the next 0.1 s of loud samples. So every quiet stretch of 0.1 s or more
  disappears entirely, and speech resumes where the freshly cleared window first stays loud for 0.1 s.
* At the end of the file, held-back quiet samples (a trailing pause under 0.1 s) are written out; a loud
  stretch shorter than 0.1 s at the end is not.
* Both tests read the RMS, which lags the signal: it stays loud for up to 319 samples after speech stops.
  So each removed gap leaves up to its first 319 samples on the end of the speech before it, and a loud
  blip of 1,281 samples followed by silence already counts as 0.1 s of sound.

``gain -3.0`` scales the samples by ``10 ** (-3 / 20)`` before ``silence`` looks at them, which moves the
0.1 % threshold to about 0.141 % of the original full scale; ``silence_intervals`` folds the gain into the
test, and ``trim`` (or the caller, with ``gain_factor``) scales the kept audio the same way.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
GAIN_DB = -3.0  # s3prl: ["gain", "-3.0"]
DURATION = 0.1  # seconds, both for the start and the stop condition
THRESHOLD = 0.001  # 0.1 % of full scale
_SOX_SAMPLE_MAX = 2**31 - 1  # SoX works on 32-bit samples; its 0 dBFS for the percentage
_BLOCK = 1 << 18  # cumulative sums restart every block so that float64 rounding stays far below the threshold


def gain_factor(gain_db: float = GAIN_DB) -> float:
    """The linear factor SoX's ``gain DB`` multiplies samples by (``10 ** (DB / 20)``)."""
    return float(10.0 ** (gain_db / 20.0))


def silence_intervals(
    wav: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    gain_db: float = GAIN_DB,
    above_duration: float = DURATION,
    below_duration: float = DURATION,
    threshold: float = THRESHOLD,
) -> list[tuple[int, int]]:
    """Sample intervals ``[start, end)`` of ``wav`` that SoX's ``gain GAIN_DB silence 1 A T -1 B T`` keeps.

    ``wav`` is mono float in [-1, 1]; ``threshold`` is a fraction of full scale (0.001 = SoX's ``0.1%``)
    and applies to the signal after the gain. Intervals are sorted and disjoint; the trimmed audio is
    ``np.concatenate([wav[a:b] for a, b in intervals]) * gain_factor(gain_db)``.
    """
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"silence_intervals expects mono audio (1-D), got shape {wav.shape}")
    n = wav.shape[0]
    window = max(int(sample_rate / 50), 1)  # SoX: rate / 50 samples per channel
    need_above = _samples(above_duration, sample_rate)
    need_below = _samples(below_duration, sample_rate)
    if n == 0:
        return []
    squares = np.square(wav.astype(np.float64))
    # SoX: floor(rms * 2**31 * gain) / (2**31 - 1) * 100 > percent, i.e. rms * 2**31 * gain >= the least
    # integer passing that test; squared, a bound on the window's sum of squares (one comparison per sample).
    scale = gain_factor(gain_db) * 2.0**31  # float [-1, 1] -> SoX's 32-bit sample units, after the gain
    bound = window * (_least_loud_rms(threshold * 100.0) / scale) ** 2

    def loud(window_sums: np.ndarray) -> np.ndarray:
        return window_sums >= bound

    above = loud(_window_sums(squares, window))  # with the window as it is from the first sample on
    quiet = ~above
    loud_runs = np.flatnonzero(_full_windows(above, need_above))  # starts of need_above loud samples in a row
    quiet_runs = np.flatnonzero(_full_windows(quiet, need_below))

    intervals: list[tuple[int, int]] = []
    reset = 0  # where the RMS window was last cleared
    while reset < n:
        # Until the window has refilled, a cleared window sums only the samples since ``reset``.
        head_end = min(reset + window - 1, n)
        head = loud(np.cumsum(squares[reset:head_end]))
        start = _first_run(loud_runs, above, head, reset, reset, head_end, need_above)
        if start is None:
            break
        stop = _first_run(quiet_runs, quiet, ~head, reset, start + need_above, head_end, need_below)
        if stop is None:  # copies to the end; a short trailing pause is flushed at drain
            intervals.append((start, n))
            break
        intervals.append((start, stop))
        reset = stop + need_below
    return intervals


def trimmed_length(intervals: list[tuple[int, int]]) -> int:
    """Samples left after trimming: the summed lengths of ``intervals``."""
    return int(sum(end - start for start, end in intervals))


def trim(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, *, gain_db: float = GAIN_DB, **options: float) -> np.ndarray:
    """The audio s3prl's effect chain returns: the kept intervals, concatenated, times the gain (float32)."""
    intervals = silence_intervals(wav, sample_rate, gain_db=gain_db, **options)
    if not intervals:
        return np.zeros(0, dtype=np.float32)
    kept = np.concatenate([np.asarray(wav[a:b], dtype=np.float64) for a, b in intervals])
    return (kept * gain_factor(gain_db)).astype(np.float32)


def _least_loud_rms(percent: float) -> int:
    """The smallest integer RMS (32-bit units) that SoX's ``rms / (2**31 - 1) * 100 > percent`` calls loud."""
    k = int(percent / 100.0 * _SOX_SAMPLE_MAX)
    while k / _SOX_SAMPLE_MAX * 100.0 > percent and k > 0:
        k -= 1
    while not k / _SOX_SAMPLE_MAX * 100.0 > percent:
        k += 1
    return k


def _first_run(runs: np.ndarray, flags: np.ndarray, head: np.ndarray, reset: int, begin: int, head_end: int,
               length: int) -> int | None:
    """First ``i >= begin`` with ``length`` flagged samples in a row, or None.

    ``runs`` lists where such runs start in ``flags``; ``head`` replaces ``flags[reset:head_end]`` (the
    samples a cleared window judges differently).
    """
    if begin < head_end:
        merged = np.concatenate([head[begin - reset:], flags[head_end:head_end + length]])
        starts = np.flatnonzero(_full_windows(merged, length)[: head_end - begin])
        if starts.size:
            return begin + int(starts[0])
        begin = head_end
    k = int(np.searchsorted(runs, begin))
    return int(runs[k]) if k < runs.size else None


def _samples(seconds: float, sample_rate: int) -> int:
    """SoX's time-to-samples rule (round to nearest), at least 1."""
    return max(int(seconds * sample_rate + 0.5), 1)


def _window_sums(squares: np.ndarray, window: int) -> np.ndarray:
    """``out[i] = squares[max(0, i - window + 1) : i + 1].sum()``: zeros stand in before the first sample."""
    n = squares.shape[0]
    out = np.empty(n, dtype=np.float64)
    for begin in range(0, n, _BLOCK):
        end = min(begin + _BLOCK, n)
        low = max(begin - window + 1, 0)
        sums = np.concatenate([[0.0], np.cumsum(squares[low:end])])  # sums[k] = squares[low : low + k].sum()
        lead = begin - low  # samples of history before this block (window - 1, or fewer at the start)
        out[begin:end] = sums[lead + 1:]
        past = end - begin - max(window - 1 - lead, 0)  # outputs whose window starts inside ``squares``
        if past > 0:
            out[end - past:end] -= sums[: past]
    return out


def _full_windows(flags: np.ndarray, length: int) -> np.ndarray:
    """``out[i]`` is True when ``flags[i : i + length]`` exists and is all True (``len(flags) - length + 1``)."""
    if flags.shape[0] < length:
        return np.zeros(0, dtype=bool)
    counts = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return (counts[length:] - counts[:-length]) == length
