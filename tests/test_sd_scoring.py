"""Diarization scoring: DER on hand-made turns with known answers, pyannote against a frame-level reference,
RTTM files, and frame posteriors → turns as s3prl's make_rttm.py makes them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from superb.errors import CorpusError
from superb.train.tasks.sd.scoring import activity_to_segments, der, der_frames, read_rttm, write_rttm

SCORERS = [der, der_frames]
TWO_TURNS = {"rec": [(0.0, 10.0, "A"), (10.0, 20.0, "B")]}


def rounded(turns: list) -> list:
    """Turn times to 1 µs, so frame arithmetic (``k * 0.02``) compares exactly."""
    return [(round(start, 6), round(end, 6), speaker) for start, end, speaker in turns]


def check(result: dict[str, float], **expected: float) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-6), (key, result)


# -- DER with known answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("score", SCORERS)
def test_perfect_hypothesis_scores_zero_whatever_its_labels(score):
    check(score(TWO_TURNS, TWO_TURNS), der=0, missed=0, false_alarm=0, confusion=0, total=20)
    swapped = {"rec": [(0.0, 10.0, "spk1"), (10.0, 20.0, "spk0")]}
    check(score(TWO_TURNS, swapped), der=0, confusion=0, total=20)


@pytest.mark.parametrize("score", SCORERS)
def test_half_of_one_speaker_missing(score):
    hyp = {"rec": [(0.0, 10.0, "x"), (10.0, 15.0, "y")]}
    check(score(TWO_TURNS, hyp), der=0.25, missed=5, false_alarm=0, confusion=0, total=20)
    check(score(TWO_TURNS, {}), der=1.0, missed=20, total=20)  # no hypothesis at all: all missed


@pytest.mark.parametrize("score", SCORERS)
def test_false_alarms_in_silence_and_from_an_extra_speaker(score):
    ref = {"rec": [(0.0, 10.0, "A")]}
    check(score(ref, {"rec": [(0.0, 10.0, "x"), (12.0, 14.0, "x")]}), der=0.2, false_alarm=2, missed=0, total=10)
    check(score(ref, {"rec": [(0.0, 10.0, "x"), (0.0, 3.0, "y")]}), der=0.3, false_alarm=3, confusion=0)


@pytest.mark.parametrize("score", SCORERS)
def test_confusion_after_the_best_mapping(score):
    # x covers A's 10 s and 5 s of B: x -> A, y -> B, and 10-15 s (B spoken, x said) is confused
    hyp = {"rec": [(0.0, 15.0, "x"), (15.0, 20.0, "y")]}
    check(score(TWO_TURNS, hyp), der=0.25, confusion=5, missed=0, false_alarm=0)
    # one label for everything: the best mapping takes 10 s right, the other 10 s are confused
    check(score(TWO_TURNS, {"rec": [(0.0, 20.0, "x")]}), der=0.5, confusion=10, missed=0)


@pytest.mark.parametrize("score", SCORERS)
def test_overlapped_speech_is_scored_unless_skipped(score):
    ref = {"rec": [(0.0, 10.0, "A"), (5.0, 15.0, "B")]}
    hyp = {"rec": [(0.0, 15.0, "x")]}  # one speaker everywhere: 5 s of the overlap missed, B's 5 s confused
    check(score(ref, hyp), total=20, missed=5, confusion=5, der=0.5)
    check(score(ref, hyp, skip_overlap=True), total=10, missed=0, confusion=5, der=0.5)
    both = {"rec": [(0.0, 10.0, "x"), (5.0, 15.0, "y")]}
    check(score(ref, both), der=0, total=20)


@pytest.mark.parametrize("score", SCORERS)
def test_collar_is_seconds_on_each_side_as_in_md_eval(score):
    ref = {"rec": [(1.0, 10.0, "A")]}
    hyp = {"rec": [(1.0, 10.2, "x")]}  # ends 0.2 s late
    check(score(ref, hyp), false_alarm=0.2, total=9)
    # 0.25 s each side of 1.0 and 10.0 is unscored: the late end vanishes, and 0.25 s of speech per boundary
    check(score(ref, hyp, collar=0.25), der=0, false_alarm=0, total=8.5)
    # 0.1 s each side leaves 0.1 s of the error (a collar 0.1 s wide in all would leave 0.15 s)
    check(score(ref, hyp, collar=0.1), false_alarm=0.1, total=8.8)


@pytest.mark.parametrize("score", SCORERS)
def test_corpus_der_sums_components_over_recordings(score):
    ref = {"a": [(0.0, 10.0, "A")], "b": [(0.0, 30.0, "B")]}
    hyp = {"a": [(0.0, 5.0, "x")], "b": [(0.0, 30.0, "y")]}
    check(score(ref, hyp), der=5 / 40, missed=5, total=40)  # not the mean of 0.5 and 0
    with pytest.raises(ValueError, match="'c'"):
        score(ref, {**hyp, "c": [(0.0, 1.0, "x")]})


def random_turns(rng: np.random.Generator, speakers: int, seconds: float, grid: float | None) -> list:
    """Alternating on/off runs per speaker (a speaker never overlaps itself), times on ``grid`` or free."""
    turns = []
    for s in range(speakers):
        cuts = np.sort(rng.uniform(0, seconds, size=2 * int(rng.integers(1, 6))))
        if grid:
            cuts = np.round(cuts / grid) * grid
        for start, end in zip(cuts[::2], cuts[1::2]):
            if end - start > 1e-6:
                turns.append((float(start), float(end), f"s{s}"))
    return turns


def random_corpus(seed: int, grid: float | None) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    ref = {f"r{i}": random_turns(rng, int(rng.integers(1, 4)), 30.0, grid) for i in range(4)}
    hyp = {rec: random_turns(rng, int(rng.integers(1, 5)), 30.0, grid) for rec in ref}
    return ref, hyp


@pytest.mark.parametrize("seed", range(6))
def test_pyannote_agrees_with_the_frame_level_reference(seed):
    ref, hyp = random_corpus(seed, grid=0.001)
    for kwargs in ({}, {"skip_overlap": True}, {"collar": 0.25}):
        ours, theirs = der_frames(ref, hyp, **kwargs), der(ref, hyp, **kwargs)
        for key, value in ours.items():
            assert theirs[key] == pytest.approx(value, abs=1e-6), (kwargs, key)
        assert 0 < theirs["der"] < 3
    free_ref, free_hyp = random_corpus(100 + seed, grid=None)  # off-grid: 1 ms frames round the boundaries
    assert der(free_ref, free_hyp)["der"] == pytest.approx(der_frames(free_ref, free_hyp)["der"], abs=1e-3)


# -- RTTM files ------------------------------------------------------------------------------------------


def test_rttm_round_trip_and_nist_extras(tmp_path):
    turns = {"mix2": [(1.5, 2.25, "B")], "mix1": [(0.5, 1.0, "A"), (0.0, 0.75, "B")]}
    path = write_rttm(tmp_path / "hyp.rttm", turns)
    lines = path.read_text().splitlines()
    assert lines[0] == "SPEAKER mix1 1 0.000 0.750 <NA> <NA> B <NA> <NA>"
    assert [line.split()[1] for line in lines] == ["mix1", "mix1", "mix2"]
    assert read_rttm(path) == {"mix1": [(0.0, 0.75, "B"), (0.5, 1.0, "A")], "mix2": [(1.5, 2.25, "B")]}
    assert not (tmp_path / "hyp.rttm.partial").exists()
    nist = tmp_path / "nist.rttm"
    nist.write_text(";; a comment\nSPKR-INFO mix1 1 <NA> <NA> <NA> unknown A <NA>\n\n"
                    "SPEAKER mix1 1 0.5 0.25 <NA> <NA> A <NA>\n")  # s3prl's 9-field line
    assert read_rttm(nist) == {"mix1": [(0.5, 0.75, "A")]}


@pytest.mark.parametrize("line", ["SPEAKER mix1 1 0.5", "SPEAKER mix1 1 zero 0.2 <NA> <NA> A <NA>",
                                  "SPEAKER mix1 1 0.5 0 <NA> <NA> A <NA>", "mix1 0.5 0.2 A"])
def test_malformed_rttm_names_file_and_line(tmp_path, line):
    path = tmp_path / "bad.rttm"
    path.write_text(f"SPEAKER mix1 1 0.0 1.0 <NA> <NA> A <NA>\n{line}\n")
    with pytest.raises(CorpusError, match=r"bad\.rttm:2"):
        read_rttm(path)


@pytest.mark.parametrize("turns", [{"mix 1": [(0.0, 1.0, "A")]}, {"mix1": [(0.0, 1.0, "")]},
                                   {"mix1": [(1.0, 1.0, "A")]}])
def test_write_rttm_refuses_what_would_not_read_back(tmp_path, turns):
    with pytest.raises(ValueError):
        write_rttm(tmp_path / "x.rttm", turns)


# -- posteriors to turns ---------------------------------------------------------------------------------


def test_threshold_is_strict_and_runs_become_turns():
    probs = np.array([[0.9, 0.1], [0.5, 0.6], [0.51, 0.7], [0.2, 0.7], [0.8, 0.2]])
    assert rounded(activity_to_segments(probs, 0.02, threshold=0.5)) == [
        (0.0, 0.02, "0"), (0.02, 0.08, "1"), (0.04, 0.06, "0"), (0.08, 0.1, "0")]
    assert rounded(activity_to_segments(probs, 0.02, threshold=0.65, speakers=["a", "b"])) == [
        (0.0, 0.02, "a"), (0.04, 0.08, "b"), (0.08, 0.1, "a")]
    assert activity_to_segments(np.zeros((0, 2)), 0.02) == []


def test_median_filter_drops_blips_and_fills_holes():
    track = np.zeros(40)
    track[5] = 1  # a 1-frame blip
    track[10:30] = 1
    track[20:22] = 0  # a 2-frame hole
    probs = track[:, None]
    kept = [(0.05, 0.06, "0"), (0.1, 0.2, "0"), (0.22, 0.3, "0")]
    assert rounded(activity_to_segments(probs, 0.01, median=1)) == kept
    assert rounded(activity_to_segments(probs, 0.01, median=5)) == [(0.1, 0.3, "0")]
    with pytest.raises(ValueError, match="odd"):
        activity_to_segments(probs, 0.01, median=4)


def test_median_filter_matches_scipy_medfilt_as_s3prl_uses_it():
    from scipy.signal import medfilt

    rng = np.random.default_rng(0)
    probs = rng.uniform(size=(300, 2))
    for median in (3, 11):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filtered = medfilt(np.where(probs > 0.4, 1, 0), (median, 1))
        expected = []
        for s, column in enumerate(filtered.T):
            changes = np.flatnonzero(np.diff(np.pad(column, 1)))
            expected += [(a * 0.02, b * 0.02, str(s)) for a, b in zip(changes[::2], changes[1::2])]
        got = activity_to_segments(probs, 0.02, threshold=0.4, median=median)
        assert rounded(got) == rounded(sorted(expected)) and len(got) > 10


def test_turns_written_and_scored_against_themselves(tmp_path):
    probs = np.zeros((100, 2))
    probs[10:60, 0] = 0.9
    probs[50:90, 1] = 0.8
    hyp = {"mix": activity_to_segments(probs, 0.02, median=11)}
    back = read_rttm(write_rttm(tmp_path / "h.rttm", hyp))
    ref = {"mix": [(0.2, 1.2, "A"), (1.0, 1.8, "B")]}
    check(der(ref, back), der=0, total=1.8)
