"""The audio front ends of the QbE corpora (QUESST 2014, SWS 2013), as corpus options.

``level``: ``gain`` (s3prl's ``quesst14_dtw``: SoX ``gain -3.0``, the default) or ``peak`` (s3prl's trainable
``sws2013`` task: SoX ``norm``, each file scaled so that its peak is full scale). ``vad``: ``true`` cuts leading
and trailing non-speech as the ``sws2013`` task does (``superb.extract.vad``); a query whose speech lasts under
0.5 s keeps its whole audio (s3prl's rule for its training queries), and a file with no speech found is kept
whole. s3prl's ``sws2013`` front end is therefore ``-c level=peak -c vad=true``.

Either way the edit is recorded as the utterance's ``meta["audio_edit"]`` (``gain_db``, and ``keep`` with
``vad``) and applied before the upstream, so a task can tell where stored frames sit in the file (the RTTM's
times are the file's). ``peak`` and ``vad`` decode every file once when the corpus is listed; the results are
cached, so a resumed extraction lists it without decoding again.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from superb.errors import ConfigError
from superb.extract import audio
from superb.extract.corpora.base import Utterance

GAIN_DB = -3.0  # s3prl's quesst14_dtw loads every file with sox "gain -3.0"
LEVELS = ("gain", "peak")
MIN_QUERY_SECONDS = 0.5  # s3prl (sws2013_dataset.find_queries): a shorter trimmed query keeps its whole audio
OPTIONS: dict[str, Any] = {"level": "gain", "vad": False}


def check_options(corpus: str, opts: dict[str, Any]) -> None:
    if opts["level"] not in LEVELS:
        raise ConfigError(f"corpus {corpus!r}: level={opts['level']!r} is not one of {', '.join(LEVELS)} "
                          "(gain: sox gain -3 as quesst14_dtw; peak: sox norm as the sws2013 task)")
    if not isinstance(opts["vad"], bool):
        raise ConfigError(f"corpus {corpus!r}: vad takes true or false, got {opts['vad']!r}")


def with_front_end(base: Path, found: list[Utterance], level: str, vad: bool) -> list[Utterance]:
    """``found`` with each file's audio edit recorded (and, with ``vad``, its length after trimming)."""
    if level == "gain" and not vad:
        return [_edited(u, {"gain_db": GAIN_DB}) for u in found]
    from superb.extract.trim_cache import TrimCache

    cache = TrimCache(base, {"front_end": "qbe", "level": level, "vad": vad, "v": 1})

    def edit(u: Utterance) -> Utterance:
        measured = cache.get(u.path)
        if measured is None:
            measured = _measure(audio.read(u.path, expected=u.num_samples), level, vad)
            cache.put(u.path, measured)
        change: dict[str, Any] = {"gain_db": measured["gain_db"]}
        start, end = measured.get("span") or (0, u.num_samples)
        short = u.meta.get("kind") == "query" and end - start < MIN_QUERY_SECONDS * audio.SAMPLE_RATE
        if vad and end > start and not short:
            change["keep"] = [[int(start), int(end)]]
            return _edited(u, change, int(end - start))
        return _edited(u, change)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(edit, found))


def _measure(wave: np.ndarray, level: str, vad: bool) -> dict[str, Any]:
    """The gain (dB) the level asks for and, with ``vad``, the speech span of the scaled audio."""
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    gain_db = GAIN_DB if level == "gain" else (-20.0 * math.log10(peak) if peak > 0 else 0.0)
    out: dict[str, Any] = {"gain_db": gain_db}
    if vad:
        from superb.extract.vad import speech_span

        out["span"] = list(speech_span(wave * np.float32(10.0 ** (gain_db / 20.0))))
    return out


def _edited(u: Utterance, change: dict[str, Any], num_samples: int | None = None) -> Utterance:
    meta = {**u.meta, audio.EDIT_KEY: change}
    return Utterance(u.id, u.split, u.path, u.num_samples if num_samples is None else num_samples, meta)
