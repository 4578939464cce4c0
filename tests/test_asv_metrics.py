"""ASV scoring: EER (s3prl's brentq convention), minDCF (Kaldi's normalised cost), trial lists, score files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from superb.errors import CorpusError
from superb.extract.corpora.voxceleb1 import read_trials
from superb.train.tasks.asv.metrics import eer, min_dcf, trial_name, write_scores


def sklearn_eer(labels, scores):
    """s3prl ``sv_voxceleb1/utils.py``'s EER, written out directly."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def sweep_min_dcf(labels, scores, p_target, c_miss=1.0, c_fa=1.0):
    """Every threshold by brute force: accept ``score >= t`` for t in the scores and +inf (reject all)."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=float)
    best = math.inf
    for t in [*np.unique(scores), math.inf]:
        accept = scores >= t
        p_miss = np.mean(~accept[labels == 1])
        p_fa = np.mean(accept[labels == 0])
        best = min(best, c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target))
    return best / min(c_miss * p_target, c_fa * (1 - p_target))


def kaldi_min_dcf(labels, scores, p_target, c_miss=1.0, c_fa=1.0):
    """Kaldi's ``compute_min_dcf.py`` recipe: sort by score, reject everything up to each trial in turn."""
    order = np.argsort(scores, kind="stable")
    sorted_labels = np.asarray(labels)[order]
    fnr = np.cumsum(sorted_labels) / sorted_labels.sum()
    fpr = 1 - np.cumsum(1 - sorted_labels) / (1 - sorted_labels).sum()
    costs = c_miss * fnr * p_target + c_fa * fpr * (1 - p_target)
    return costs.min() / min(c_miss * p_target, c_fa * (1 - p_target))


def random_trials(seed, n=400, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.normal(labels * 1.5, 1.0)
    return labels, (np.round(scores, 1) if ties else scores)


# --- EER ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_eer_equals_s3prl_sklearn_computation(seed):
    labels, scores = random_trials(seed, ties=seed % 2 == 1)
    assert eer(labels, scores) == sklearn_eer(labels, scores)


def test_eer_known_cases():
    assert eer([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(0.0, abs=1e-9)  # perfect separation
    assert eer([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0, abs=1e-9)  # perfectly reversed
    # Accepting scores >= 0.45 wrongly accepts 0.6 (1 of 2 non-targets) and rejects 0.3 (1 of 2 targets).
    assert eer([1, 1, 0, 0], [0.9, 0.3, 0.6, 0.1]) == pytest.approx(0.5, abs=1e-9)
    # One non-target: FAR jumps 0 -> 1 while the miss rate stays 1/3; the interpolated ROC crosses at 1/3.
    assert eer([1, 1, 1, 0], [0.9, 0.8, 0.2, 0.5]) == pytest.approx(1 / 3, abs=1e-9)


def test_eer_gaussian_scores_near_theory():
    """Targets N(1, 1) vs non-targets N(-1, 1): EER = Phi(-1) = 0.1587."""
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 20_000)
    scores = np.concatenate([rng.normal(1, 1, 20_000), rng.normal(-1, 1, 20_000)])
    assert eer(labels, scores) == pytest.approx(0.158655, abs=0.006)


def test_metrics_reject_bad_input():
    for metric in (eer, min_dcf):
        with pytest.raises(ValueError, match="both"):
            metric([1, 1], [0.2, 0.3])
        with pytest.raises(ValueError, match="0 .* or 1"):
            metric([2, 0], [0.2, 0.3])
        with pytest.raises(ValueError, match="equal length"):
            metric([1, 0, 1], [0.2, 0.3])
        with pytest.raises(ValueError, match="NaN"):
            metric([1, 0], [0.2, float("nan")])
    with pytest.raises(ValueError, match="p_target"):
        min_dcf([1, 0], [0.2, 0.3], p_target=0)


# --- minDCF ---------------------------------------------------------------------------------------------


def test_min_dcf_hand_worked():
    labels, scores = [1, 1, 1, 0, 0], [0.9, 0.7, 0.2, 0.5, 0.1]
    # Operating points (P_fa, P_miss): (0, 1), (0, 2/3), (0, 1/3), (1/2, 1/3), (1/2, 0), (1, 0).
    # p 0.01: best is (0, 1/3) at 0.01 / 3, over min(0.01, 0.99) -> 1/3.
    assert min_dcf(labels, scores) == pytest.approx(1 / 3)
    # p 0.8: 0.8 P_miss + 0.2 P_fa is least at (1/2, 0): 0.1, over min(0.8, 0.2) -> 1/2.
    assert min_dcf(labels, scores, p_target=0.8) == pytest.approx(0.5)
    # c_miss 10, p 0.05: 0.5 P_miss + 0.95 P_fa; (0, 1/3) costs 1/6, (1/2, 0) 0.475; over min(0.5, 0.95).
    assert min_dcf(labels, scores, p_target=0.05, c_miss=10) == pytest.approx(1 / 3)
    assert min_dcf([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert min_dcf([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)  # no better than rejecting all


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p_target, c_miss, c_fa", [(0.01, 1, 1), (0.05, 1, 1), (0.5, 2, 1), (0.3, 1, 3)])
def test_min_dcf_matches_threshold_sweep(seed, p_target, c_miss, c_fa):
    labels, scores = random_trials(seed, ties=seed % 2 == 1)
    got = min_dcf(labels, scores, p_target=p_target, c_miss=c_miss, c_fa=c_fa)
    assert got == pytest.approx(sweep_min_dcf(labels, scores, p_target, c_miss, c_fa), rel=1e-12)
    if seed % 2 == 0:  # without ties Kaldi's per-trial sweep sees the same operating points
        assert got == pytest.approx(kaldi_min_dcf(labels, scores, p_target, c_miss, c_fa), rel=1e-12)


# --- trial lists and score files -------------------------------------------------------------------------


def test_read_trials(tmp_path):
    listing = tmp_path / "veri_test.txt"
    listing.write_text("1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav\n\n"
                       "0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav\r\n", encoding="utf-8")
    assert read_trials(listing) == [
        (1, "id10270/x6uYqmx31kE/00001", "id10270/8jEAjG6SegY/00008"),
        (0, "id10270/x6uYqmx31kE/00001", "id10300/ize_eiCFEg0/00003"),
    ]


@pytest.mark.parametrize("bad", [
    "1 id10270/x6uYqmx31kE/00001.wav",  # a path missing
    "2 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav",  # label not 0/1
    "yes id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav",
    "1 id10270/00001.wav id10300/ize_eiCFEg0/00003.wav",  # not speaker/video/segment
    "1 id10270/x6uYqmx31kE/00001.flac id10300/ize_eiCFEg0/00003.wav",
    "1 a b c d",
])
def test_read_trials_malformed_line_names_path_and_line(tmp_path, bad):
    listing = tmp_path / "veri_test2.txt"
    listing.write_text("0 id10270/x6uYqmx31kE/00001.wav id10300/ize_eiCFEg0/00003.wav\n\n" + bad + "\n")
    with pytest.raises(CorpusError, match=r"veri_test2\.txt:3: malformed trial"):
        read_trials(listing)


def test_read_trials_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="trial list not found"):
        read_trials(tmp_path / "veri_test.txt")


def test_write_scores_s3prl_format(tmp_path):
    """s3prl writes ``f"{name1}_{name2} {score}"`` with float32 cosine scores, which print as float64."""
    trials = [(1, "id10270/x6uYqmx31kE/00001", "id10270/8jEAjG6SegY/00008"),
              (0, "id10270/x6uYqmx31kE/00001", "id10300/ize_eiCFEg0/00003")]
    scores = np.array([0.72167969, -0.1454309], dtype=np.float32)
    assert f"{np.array(scores[1])}" == "-0.14543089270591736"  # s3prl formats a 0-d float32 array
    out = write_scores(tmp_path / "test_predict.txt", [t[1:] for t in trials], scores)
    assert out.read_text() == (
        f"id10270-x6uYqmx31kE-00001_id10270-8jEAjG6SegY-00008 {float(scores[0])!r}\n"
        f"id10270-x6uYqmx31kE-00001_id10300-ize_eiCFEg0-00003 {float(scores[1])!r}\n"
    )
    assert out.read_text().splitlines()[1].endswith(" -0.14543089270591736")
    assert write_scores(tmp_path / "again.txt", trials, scores).read_text() == out.read_text()  # trial rows
    assert not (tmp_path / "test_predict.txt.partial").exists()
    assert trial_name("a/b/c", "d/e/f") == "a-b-c_d-e-f"


def test_write_scores_rejects_mismatch(tmp_path):
    with pytest.raises(ValueError):
        write_scores(tmp_path / "p.txt", [("a/b/c", "d/e/f")], [0.1, 0.2])
    with pytest.raises(ValueError, match="nan"):
        write_scores(tmp_path / "p.txt", [("a/b/c", "d/e/f")], [float("nan")])
