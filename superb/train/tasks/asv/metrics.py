"""Speaker-verification scoring: EER and minDCF as s3prl and Kaldi compute them, and s3prl's score file.

EER follows s3prl's ``sv_voxceleb1`` (``utils.EER``) exactly: sklearn's ROC curve, linearly interpolated,
and the false-positive rate ``x`` where ``1 - x = TPR(x)`` found with ``brentq``, so numbers compare with
published SUPERB results. minDCF is the Kaldi/NIST normalised detection cost (``compute_min_dcf.py``):
the least ``c_miss * P_miss * p_target + c_fa * P_fa * (1 - p_target)`` over all thresholds, divided by
the cost of the better trivial system, ``min(c_miss * p_target, c_fa * (1 - p_target))``.

Both take ``labels`` (1 = same speaker, 0 = different) and ``scores`` (higher = more alike) and return
fractions, not percent. Torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from superb.files import write_text


def eer(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Equal error rate, s3prl's convention: ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)``.

    ``fpr, tpr`` come from ``sklearn.metrics.roc_curve`` (defaults, ``pos_label=1``); the EER is the
    false-acceptance rate on the linearly interpolated ROC where it equals the false-rejection rate
    (``xtol`` 2e-12). Perfectly separated scores give 0, perfectly reversed ones 1. Raises ``ValueError``
    unless both classes are present.
    """
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    fpr, tpr = _roc(labels, scores, drop_intermediate=True)
    curve = interp1d(fpr, tpr)
    return float(brentq(lambda x: 1.0 - x - curve(x), 0.0, 1.0))


def min_dcf(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, p_target: float = 0.01,
            c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised minimum detection cost (Kaldi's ``compute_min_dcf.py``; SUPERB reports p_target 0.01).

    Every threshold is tried, accepting trials whose score is at or above it, from "accept all" to
    "reject all"; so the result is at most 1 (the better trivial system). Tied scores share one threshold;
    Kaldi's per-trial sweep can split a tie, which only matters when tied trials differ in label.
    Raises ``ValueError`` unless both classes are present.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"min_dcf: p_target must lie strictly between 0 and 1, got {p_target}")
    fpr, tpr = _roc(labels, scores, drop_intermediate=False)
    costs = c_miss * (1.0 - tpr) * p_target + c_fa * fpr * (1.0 - p_target)
    return float(costs.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))


def _roc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray,
         drop_intermediate: bool) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's ROC ``(fpr, tpr)`` after checking that the inputs describe a verification experiment."""
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-D and of equal length")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (different speakers) or 1 (same speaker)")
    if labels.all() or not labels.any():
        raise ValueError(f"need both target (1) and non-target (0) trials; got {labels.size} trials of one label")
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or infinite values")
    fpr, tpr, _ = roc_curve(labels, scores, pos_label=1, drop_intermediate=drop_intermediate)
    return fpr, tpr


def trial_name(utterance1: str, utterance2: str) -> str:
    """s3prl's name for a trial: each id's ``/`` turned into ``-``, joined by ``_``.

    ``id10270/x6uYqmx31kE/00001`` and ``id10300/ize_eiCFEg0/00003`` give
    ``id10270-x6uYqmx31kE-00001_id10300-ize_eiCFEg0-00003``.
    """
    return f"{utterance1.replace('/', '-')}_{utterance2.replace('/', '-')}"


def write_scores(path: str | os.PathLike[str], pairs: Iterable[tuple[str, str]],
                 scores: Iterable[float]) -> Path:
    """Write s3prl's ``test_predict.txt``: one ``TRIALNAME SCORE`` line per pair, in the given order.

    ``TRIALNAME`` is ``trial_name(utt1, utt2)``; ``SCORE`` is Python's ``repr`` of the float, which is what
    s3prl's ``f"{score}"`` prints for its float32 cosine scores (a float32 value widened to float64, e.g.
    ``0.7216796875``). ``pairs`` may also be ``read_trials`` rows ``(label, utt1, utt2)``. Written to
    ``PATH.partial`` and renamed, so a kill never leaves half a file. Raises ``ValueError`` when the counts
    differ or a score is not finite.
    """
    path = Path(path)
    lines = []
    for pair, score in zip(pairs, scores, strict=True):
        utterance1, utterance2 = pair[-2:]
        value = float(score)
        if not np.isfinite(value):
            raise ValueError(f"write_scores {path}: score of {utterance1} vs {utterance2} is {value}")
        lines.append(f"{trial_name(utterance1, utterance2)} {value!r}\n")
    return write_text(path, "".join(lines))
