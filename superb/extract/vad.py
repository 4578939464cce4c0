"""s3prl's speech trimming for trainable QbE (``sws2013``): SoX's ``vad -T 0.25 -p 0.1``, ``reverse``, the same
``vad`` again, ``reverse``: leading and trailing non-speech cut away, the inside kept whole.

SoX's ``vad`` effect is torchaudio's ``functional.vad`` (a port of SoX's code that trims the front only, which is
why s3prl reverses); the trigger time (``-T``) and pre-trigger time (``-p``) are s3prl's, the rest SoX's defaults.
"""

from __future__ import annotations

import numpy as np

TRIGGER_TIME = 0.25  # -T
PRE_TRIGGER_TIME = 0.1  # -p


def speech_span(wave: np.ndarray, sample_rate: int = 16_000) -> tuple[int, int]:
    """``[start, end)`` in samples of what s3prl's vad–reverse–vad–reverse chain keeps of ``wave`` (``end`` may
    equal ``start``: no speech found)."""
    import torch
    import torchaudio.functional as F

    def front(x: torch.Tensor) -> int:
        kept = F.vad(x, sample_rate, trigger_time=TRIGGER_TIME, pre_trigger_time=PRE_TRIGGER_TIME)
        return int(x.shape[-1] - kept.shape[-1])

    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    start = front(x)
    if start >= x.shape[-1]:
        return start, start
    end = x.shape[-1] - front(x[start:].flip(0))
    return start, max(start, end)
