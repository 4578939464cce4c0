"""Diarization scoring: RTTM files, frame activity → speaker turns, and the diarization error rate.

DER is computed with ``pyannote.metrics`` (the scorer most diarization papers use, md-eval compatible), per
recording with the optimal speaker mapping, and summed over recordings: DER = (missed + false alarm +
confusion) / total reference speech, overlapped speech counted once per speaker. ``collar`` follows md-eval
(``-c 0.25`` = 0.25 s unscored on *each* side of every reference boundary); pyannote's ``collar`` is the
collar's whole width, so it gets twice ours. ``der_frames`` is a small frame-level implementation of the
same definition that the tests check pyannote against. SUPERB reports DER with collar 0, overlap scored.

Turns are ``(start, end, speaker)`` in seconds; a recording's turns are a list of them, and a corpus is
``{recording: turns}``. Torch-free.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from superb.extract.corpora.diarization import rttm_turns
from superb.files import write_text

Turn = tuple[float, float, str]
COMPONENTS = ("missed", "false_alarm", "confusion", "total")


def read_rttm(path: str | os.PathLike[str]) -> dict[str, list[Turn]]:
    """``{recording: [(start, end, speaker), …]}`` from the ``SPEAKER`` lines of an RTTM file, turns sorted.

    Raises ``CorpusError`` naming file:line for a malformed line or a non-positive duration.
    """
    out: dict[str, list[Turn]] = {}
    for turn in rttm_turns(path):
        out.setdefault(turn.rec, []).append((turn.start, turn.end, turn.speaker))
    return {rec: sorted(turns) for rec, turns in sorted(out.items())}


def write_rttm(path: str | os.PathLike[str], rec_segments: Mapping[str, Iterable[Turn]]) -> Path:
    """Write NIST RTTM lines ``SPEAKER REC 1 START DUR <NA> <NA> SPK <NA> <NA>`` (3 decimals), sorted.

    Written to ``PATH.partial`` and renamed, so a kill never leaves half a file. Raises ``ValueError`` for a
    recording or speaker name that is empty or holds whitespace (it would shift the columns) and for a turn
    that does not end after it starts.
    """
    path = Path(path)
    lines = []
    for rec in sorted(rec_segments):
        for start, end, speaker in sorted(rec_segments[rec]):
            for name in (rec, speaker):
                if not name or len(str(name).split()) != 1 or str(name) != str(name).strip():
                    raise ValueError(f"{path}: RTTM names must be non-empty without whitespace, got {name!r}")
            if not end > start:
                raise ValueError(f"{path}: turn of {speaker!r} in {rec!r} ends at {end} s, not after {start} s")
            lines.append(f"SPEAKER {rec} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n")
    return write_text(path, "".join(lines))


def activity_to_segments(probs: np.ndarray, frame_shift_s: float, threshold: float = 0.5, median: int = 1,
                         speakers: Sequence[str] | None = None) -> list[Turn]:
    """Speaker turns from frame posteriors ``probs`` ``(T, S)``, as s3prl's ``diarization/make_rttm.py`` does.

    A speaker is active where its probability is above ``threshold``; with ``median`` > 1 each speaker's 0/1
    track is median-filtered over ``median`` frames (zero-padded at the ends, as ``scipy.signal.medfilt``),
    which removes blips and fills holes shorter than half the window; every run of active frames is a turn
    from its first frame's start to its last frame's end, frame k starting at ``k * frame_shift_s``.
    ``speakers`` names the columns (Default: ``"0"``, ``"1"``, …). Turns sorted by start, end, speaker.
    """
    from scipy.ndimage import median_filter

    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (frames, speakers), got shape {probs.shape}")
    if median < 1 or median % 2 == 0:
        raise ValueError(f"median must be an odd width >= 1 (1 = no filter), got {median}")
    names = [str(s) for s in range(probs.shape[1])] if speakers is None else [str(s) for s in speakers]
    if len(names) != probs.shape[1]:
        raise ValueError(f"{len(names)} speaker names for {probs.shape[1]} columns of probs")
    active = (probs > threshold).astype(np.int8)
    if median > 1 and active.size:
        active = median_filter(active, size=(median, 1), mode="constant", cval=0)
    turns = []
    for column, name in zip(active.T, names, strict=True):
        edges = np.flatnonzero(np.diff(np.pad(column, 1)))  # run starts and ends, alternating
        turns.extend((float(s * frame_shift_s), float(e * frame_shift_s), name) for s, e in zip(edges[::2],
                                                                                              edges[1::2]))
    return sorted(turns)


def _recordings(reference: Mapping[str, Sequence[Turn]], hypothesis: Mapping[str, Sequence[Turn]]) -> list[str]:
    """The reference's recordings; a hypothesis recording the reference lacks is an id mismatch, not speech."""
    stray = sorted(set(hypothesis) - set(reference))
    if stray:
        raise ValueError(f"hypothesis recording {stray[0]!r} is not in the reference "
                         f"({len(stray)} such); score the same recordings on both sides")
    return sorted(reference)


def _totals(parts: Mapping[str, float]) -> dict[str, float]:
    """Add ``der``; with no reference speech it is 0 when nothing was said either, else infinite."""
    errors = parts["missed"] + parts["false_alarm"] + parts["confusion"]
    if parts["total"] > 0:
        rate = float(errors / parts["total"])
    else:
        rate = 0.0 if errors == 0 else math.inf
    return {"der": rate, **{k: float(parts[k]) for k in COMPONENTS}}


def der(reference: Mapping[str, Sequence[Turn]], hypothesis: Mapping[str, Sequence[Turn]], collar: float = 0.0,
        skip_overlap: bool = False) -> dict[str, float]:
    """Corpus DER with pyannote.metrics: ``{"der", "missed", "false_alarm", "confusion", "total"}`` (seconds).

    ``collar``: seconds left unscored on each side of every reference boundary (md-eval's ``-c``; pyannote is
    given twice this, its collar being the whole width). ``skip_overlap``: leave out regions where the
    reference has overlapping speakers (md-eval's ``-1``). A reference recording missing from ``hypothesis``
    is all missed; a hypothesis recording missing from ``reference`` raises ``ValueError``. The scored region
    of a recording spans the reference and hypothesis turns (pyannote's default, made explicit).
    """
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(rec: str, turns: Sequence[Turn]) -> Annotation:
        out = Annotation(uri=rec)
        for track, (start, end, speaker) in enumerate(turns):
            out[Segment(float(start), float(end)), track] = str(speaker)
        return out

    if collar < 0:
        raise ValueError(f"collar must be >= 0 seconds, got {collar}")
    metric = DiarizationErrorRate(collar=2 * collar, skip_overlap=skip_overlap)
    sums = dict.fromkeys(COMPONENTS, 0.0)
    for rec in _recordings(reference, hypothesis):
        ref, hyp = reference[rec], hypothesis.get(rec, [])
        bounds = [t for start, end, _ in (*ref, *hyp) for t in (start, end)]
        if not bounds:
            continue
        uem = Timeline([Segment(float(min(bounds)), float(max(bounds)))], uri=rec)
        parts = metric(annotation(rec, ref), annotation(rec, hyp), uem=uem, detailed=True)
        for ours, theirs in zip(COMPONENTS, ("missed detection", "false alarm", "confusion", "total"), strict=True):
            sums[ours] += parts[theirs]
    return _totals(sums)


def der_frames(reference: Mapping[str, Sequence[Turn]], hypothesis: Mapping[str, Sequence[Turn]],
               collar: float = 0.0, skip_overlap: bool = False, resolution: float = 0.001) -> dict[str, float]:
    """The same DER on a grid of ``resolution`` seconds, in numpy: an independent check of ``der``.

    Per recording: 0/1 activity per speaker and frame; the speaker mapping maximises the reference-hypothesis
    overlap (``scipy.optimize.linear_sum_assignment``); per scored frame with ``r`` reference and ``h``
    hypothesis speakers of which ``c`` are mapped pairs, missed += max(0, r - h), false alarm += max(0, h - r),
    confusion += min(r, h) - c, total += r (md-eval's definition). Boundaries are rounded to the grid.
    """
    from scipy.optimize import linear_sum_assignment

    sums = dict.fromkeys(COMPONENTS, 0.0)
    for rec in _recordings(reference, hypothesis):
        ref, hyp = reference[rec], hypothesis.get(rec, [])
        if not ref and not hyp:
            continue
        frames = int(round(max(end for _, end, _ in (*ref, *hyp)) / resolution)) + 1
        r, h = _activity(ref, frames, resolution), _activity(hyp, frames, resolution)
        scored = np.ones(frames, dtype=bool)
        if collar > 0:
            for start, end, _ in ref:
                for t in (start, end):
                    scored[max(0, int(round((t - collar) / resolution))):int(round((t + collar) / resolution))] = False
        if skip_overlap:
            scored &= r.sum(axis=1) <= 1
        r, h = r[scored], h[scored]
        correct = np.zeros(r.shape[0])
        if r.shape[1] and h.shape[1]:
            rows, cols = linear_sum_assignment(r.T.astype(np.int64) @ h.astype(np.int64), maximize=True)
            correct = (r[:, rows] & h[:, cols]).sum(axis=1)
        n_ref, n_hyp = r.sum(axis=1), h.sum(axis=1)
        sums["missed"] += np.maximum(0, n_ref - n_hyp).sum() * resolution
        sums["false_alarm"] += np.maximum(0, n_hyp - n_ref).sum() * resolution
        sums["confusion"] += (np.minimum(n_ref, n_hyp) - correct).sum() * resolution
        sums["total"] += n_ref.sum() * resolution
    return _totals(sums)


def _activity(turns: Sequence[Turn], frames: int, resolution: float) -> np.ndarray:
    """``(frames, speakers)`` bool: frame k covers [k, k+1) × resolution; a speaker's own overlaps merge."""
    speakers = sorted({speaker for _, _, speaker in turns})
    out = np.zeros((frames, len(speakers)), dtype=bool)
    for start, end, speaker in turns:
        out[int(round(start / resolution)):int(round(end / resolution)), speakers.index(speaker)] = True
    return out
