"""ATWV, MTWV and Cnxe from QUESST-style ground truth: hand-computed cases and a brute-force threshold sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest

from superb.errors import CorpusError
from superb.train.tasks.qbe.scoring import (
    Detections,
    GroundTruth,
    TwvCosts,
    cnxe,
    read_groundtruth,
    read_stdlist,
    trials,
    twv,
)


def truth(occurrences: dict[str, set[str]], documents: int = 4) -> GroundTruth:
    docs = {f"d{k}": 10.0 for k in range(1, documents + 1)}
    return GroundTruth(None, docs, list(occurrences), occurrences)


HAND = Detections(
    scores={"A": {"d1": 3.0, "d2": 1.0, "d3": 0.0, "d4": -1.0}, "B": {"d1": 0.5, "d2": 2.0, "d3": -0.5, "d4": 1.5}},
    decisions={"A": {"d1": True, "d2": True}, "B": {"d2": True, "d4": True}},
)
EVEN = TwvCosts(p_target=0.5, c_miss=1.0, c_fa=1.0)  # β = 1


def brute_force_mtwv(t, costs: TwvCosts) -> float:
    """TWV at every threshold, term by term, straight from the definition."""
    best = 0.0
    for theta in np.unique(t.scores):
        losses = []
        for i in range(len(t.terms)):
            detected = t.scores[i] >= theta
            n_true = t.target[i].sum()
            p_miss = 1 - (detected & t.target[i]).sum() / n_true
            p_fa = (detected & ~t.target[i]).sum() / (len(t.documents) - n_true)
            losses.append(p_miss + costs.beta * p_fa)
        best = max(best, 1 - float(np.mean(losses)))
    return best


def test_hand_computed_twv():
    t = trials(truth({"A": {"d1"}, "B": {"d2", "d3"}}), HAND)
    result = twv(t, EVEN)
    # A: every hit, 1 false alarm in 3 → loss 1/3; B: half the hits, 1 false alarm in 2 → loss 1
    assert result.atwv == pytest.approx(1 - (1 / 3 + 1) / 2)
    # θ = 2 detects A:d1 (hit) and B:d2 (hit): losses 0 and 1/2 → 0.75; θ = 0 adds too many false alarms
    assert result.mtwv == pytest.approx(0.75) and result.threshold == 2.0
    assert result.mtwv == pytest.approx(brute_force_mtwv(t, EVEN))


@pytest.mark.parametrize("seed", range(5))
def test_mtwv_equals_the_definition_on_random_trials(seed):
    rng = np.random.default_rng(seed)
    occurrences = {f"t{k}": {f"d{j}" for j in rng.choice(np.arange(1, 21), rng.integers(1, 4), replace=False)}
                   for k in range(6)}
    scores = {t: {f"d{j}": float(np.round(rng.standard_normal() + 1.5 * (f"d{j}" in docs), 1))  # with ties
                  for j in range(1, 21)} for t, docs in occurrences.items()}
    t = trials(truth(occurrences, 20), Detections(scores, {}))
    for costs in (EVEN, TwvCosts(), TwvCosts(p_target=0.05)):
        assert twv(t, costs).mtwv == pytest.approx(brute_force_mtwv(t, costs), abs=1e-12)


def test_scopes_and_missing_trials():
    gt = truth({"A": {"d1"}, "B": {"d2", "d3"}, "C": {"d4"}, "never": set()})
    official = trials(gt, HAND)  # C was not searched: all its trials at -10, NO
    assert official.terms == ["A", "B", "C"] and official.scores[2].tolist() == [-10.0] * 4
    searched = trials(gt, HAND, "searched")
    assert searched.terms == ["A", "B"]
    # official ATWV averages C's loss of 1 (every occurrence missed) in
    assert twv(official, EVEN).atwv == pytest.approx((1 - 1 / 3 + 0 + 0) / 3)
    assert twv(searched, EVEN).atwv == pytest.approx(twv(trials(truth({"A": {"d1"}, "B": {"d2", "d3"}}), HAND),
                                                         EVEN).atwv)


def test_beta_of_the_quesst_costs():
    assert TwvCosts().beta == pytest.approx((1 / 100) * (1 - 0.0008) / 0.0008)  # 12.49


def test_cnxe_of_uninformative_and_separating_scores():
    rng = np.random.default_rng(0)
    occurrences = {f"t{k}": {f"d{k}"} for k in range(1, 11)}
    zeros = {t: {f"d{j}": 0.0 for j in range(1, 11)} for t in occurrences}
    flat = cnxe(trials(truth(occurrences, 10), Detections(zeros, {})))
    assert flat.cnxe == pytest.approx(1.0) and flat.min_cnxe == pytest.approx(1.0) and flat.prior == 0.1
    perfect = {t: {f"d{j}": (5.0 if f"d{j}" in docs else -5.0) for j in range(1, 11)}
               for t, docs in occurrences.items()}
    sharp = cnxe(trials(truth(occurrences, 10), Detections(perfect, {})))
    assert sharp.min_cnxe == pytest.approx(0.0, abs=1e-9) and sharp.cnxe < 0.1
    noise = {t: {f"d{j}": float(rng.standard_normal()) for j in range(1, 11)} for t in occurrences}
    random = cnxe(trials(truth(occurrences, 10), Detections(noise, {})))
    assert 0.5 < random.min_cnxe <= 1.0 + 1e-12 and random.min_cnxe <= random.cnxe
    # the definition by hand for the perfect scores: LLR ±5 under prior 0.1
    offset = math.log(0.1 / 0.9)
    expected = (0.1 * math.log1p(math.exp(-(5 + offset))) + 0.9 * math.log1p(math.exp(-5 + offset))) / math.log(2)
    entropy = -(0.1 * math.log2(0.1) + 0.9 * math.log2(0.9))
    assert sharp.cnxe == pytest.approx(expected / entropy)


def write_groundtruth(folder, lexemes: str, extra_term: str = ""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quesst14.ecf.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<ecf source_signal_duration="20" language="multiple" version="x">'
        '<excerpt audio_filename="Audio/d1.wav" channel="1" tbeg="0.000" dur="10.000" source_type="splitcts"/>'
        '<excerpt audio_filename="Audio/d2.wav" channel="1" tbeg="0.000" dur="10.000" source_type="splitcts"/>'
        "</ecf>\n")
    (folder / "quesst14_dev.tlist.xml").write_text(
        '<termlist ecf_filename="quesst14.ecf.xml" language="multiple" encoding="UTF-8" version="x">'
        f'<term termid="A"><termtext>A</termtext></term>{extra_term}</termlist>\n')
    (folder / "quesst14_dev.rttm").write_text(lexemes)


def test_ground_truth_files_and_their_errors(tmp_path):
    write_groundtruth(tmp_path / "gt", "SPEAKER d1 1 0.0 10.0 <NA> <NA> s <NA>\n"
                                       "LEXEME d2 1 1.20 0.40 A lex <NA> <NA>\n")
    gt = read_groundtruth(tmp_path / "gt", "dev")
    assert gt.documents == {"d1": 10.0, "d2": 10.0} and gt.terms == ["A"] and gt.occurrences == {"A": {"d2"}}
    write_groundtruth(tmp_path / "bad", "LEXEME d2 1 x 0.40 A\n")
    with pytest.raises(CorpusError, match=r"quesst14_dev\.rttm:1: malformed LEXEME line"):
        read_groundtruth(tmp_path / "bad")
    write_groundtruth(tmp_path / "unknown", "LEXEME d9 1 1.0 0.40 A lex\n")
    with pytest.raises(CorpusError, match=r"document 'd9' is not in the ECF"):
        read_groundtruth(tmp_path / "unknown")
    with pytest.raises(CorpusError, match="ground-truth folder not found"):
        read_groundtruth(tmp_path / "nowhere")
    (tmp_path / "gt" / "quesst14_dev.rttm").rename(tmp_path / "gt" / "other.txt")
    with pytest.raises(CorpusError, match=r"no RTTM file \(\*\.rttm\)"):
        read_groundtruth(tmp_path / "gt")


def test_stdlist_reading_keeps_each_documents_best(tmp_path):
    path = tmp_path / "benchmark.stdlist.xml"
    path.write_text('<stdlist><detected_termlist termid="A">'
                    '<term file="d1" channel="1" tbeg="0" dur="0" score="0.5" decision="NO"/>'
                    '<term file="d1" channel="1" tbeg="3" dur="1" score="2.5" decision="YES"/>'
                    "</detected_termlist></stdlist>")
    found = read_stdlist(path)
    assert found.scores == {"A": {"d1": 2.5}} and found.decisions == {"A": {"d1": True}}
