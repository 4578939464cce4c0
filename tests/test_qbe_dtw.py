"""Our batched subsequence DTW against dtw-python, the library s3prl's QbE uses, pair by pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from superb.train.tasks.qbe.dtw import (
    DISTANCES,
    Documents,
    normalise_features,
    query_costs,
    subsequence_costs,
    zscore,
)

dtw = pytest.importorskip("dtw", reason="dtw-python is the reference implementation")
distance = pytest.importorskip("scipy.spatial.distance")
from superb.testing import s3prl_qbe  # noqa: E402  (after the skips: it needs dtw-python and scipy)


def reference_cost(query: np.ndarray, doc: np.ndarray, method: str, minmax: bool = False) -> float:
    """s3prl's ``match`` (scipy cdist or its two variants, optional min-max rows, dtw-python asymmetric, open
    begin and end): its cost, the score negated."""
    dtwrc = s3prl_qbe.SUBSEQUENCE_DTWRC
    return -s3prl_qbe.match(query, doc, "query", "doc", s3prl_qbe.dist_fn(method), minmax, dtwrc)[2]


def random_pairs(seed: int, dim: int = 16, positive: bool = False):
    rng = np.random.default_rng(seed)
    queries = [rng.standard_normal((int(rng.integers(5, 30)), dim)) for _ in range(3)]
    docs = [rng.standard_normal((int(rng.integers(1, 80)), dim)) for _ in range(7)]
    docs += [rng.standard_normal((1, dim)), rng.standard_normal((2, dim))]  # the smallest documents
    if positive:  # cosine_neg_log needs non-negative similarities
        queries, docs = [np.abs(q) for q in queries], [np.abs(d) for d in docs]
    return queries, docs


@pytest.mark.parametrize("minmax", [False, True])
@pytest.mark.parametrize("method", sorted(DISTANCES))
@pytest.mark.parametrize("seed", [0, 1])
def test_costs_equal_dtw_python(method, seed, minmax):
    """Every distance, raw and min-max normalised (per query frame within each document of the concatenation;
    the 1- and 2-frame documents take s3prl's 1e-9 floor), against s3prl's ``match`` pair by pair."""
    queries, docs = random_pairs(seed, positive=method == "cosine_neg_log")
    packed = Documents([torch.from_numpy(d) for d in docs], dtype=torch.float64)
    for query in queries:
        ours = query_costs(torch.from_numpy(query), packed, method, minmax_norm=minmax).numpy()
        theirs = np.array([reference_cost(query, doc, method, minmax) for doc in docs])
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_float32_matches_to_1e5_and_minmax_is_per_document():
    queries, docs = random_pairs(2)
    packed = Documents([torch.from_numpy(d) for d in docs], dtype=torch.float32)
    for query in queries:
        ours = query_costs(torch.from_numpy(query), packed, "cosine_exp").numpy()
        theirs = np.array([reference_cost(query, doc, "cosine_exp") for doc in docs])
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
        ours = query_costs(torch.from_numpy(query), packed, "cosine", minmax_norm=True).numpy()
        theirs = np.array([reference_cost(query, doc, "cosine", minmax=True) for doc in docs])
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_minmax_floor_is_s3prls():
    """A document whose distances to a query frame differ by ~1e-7 is stretched to [0, 1] (s3prl's floor of
    1e-9 on max − min), not flattened as a larger floor would."""
    rng = np.random.default_rng(6)
    query = rng.standard_normal((6, 4))
    frame = rng.standard_normal(4)
    near = np.stack([frame, frame + 1e-7 * rng.standard_normal(4), frame - 1e-7 * rng.standard_normal(4)])
    docs = [near, rng.standard_normal((5, 4))]
    ours = query_costs(torch.from_numpy(query), Documents([torch.from_numpy(d) for d in docs], dtype=torch.float64),
                       "cosine", minmax_norm=True).numpy()
    theirs = np.array([reference_cost(query, doc, "cosine", minmax=True) for doc in docs])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert ours[0] > 0.05  # the near-identical frames still differ by a whole unit somewhere along the path


def test_boundaries_are_respected():
    """A document's cost does not change with its neighbours in the concatenation."""
    rng = np.random.default_rng(3)
    query = torch.from_numpy(rng.standard_normal((8, 4)))
    docs = [torch.from_numpy(rng.standard_normal((n, 4))) for n in (3, 1, 12, 2)]
    together = query_costs(query, Documents(docs, dtype=torch.float64), "euclidean")
    alone = torch.cat([query_costs(query, Documents([d], dtype=torch.float64), "euclidean") for d in docs])
    torch.testing.assert_close(together, alone)


def test_recursion_on_a_hand_worked_matrix():
    # query of 3 frames, one document of 4: the path 0,1,1 (0+0+0) is free; normalised by 3 query frames
    dist = torch.tensor([[5.0, 0.0, 9.0, 9.0], [9.0, 0.0, 9.0, 9.0], [9.0, 0.0, 9.0, 1.0]])
    assert subsequence_costs(dist, Documents([torch.zeros(4, 1)])).item() == 0.0
    dist[1, 1] = 3.0  # the cheapest path is now (0,1) → (1,1) → (2,1): 0 + 3 + 0, normalised: 1
    assert subsequence_costs(dist, Documents([torch.zeros(4, 1)])).item() == pytest.approx(1.0)


def test_feature_normalisation_and_zscore_match_s3prl():
    rng = np.random.default_rng(4)
    arrays = [torch.from_numpy(rng.standard_normal((int(n), 6)).astype(np.float32) * 3 + 1) for n in (5, 9, 2)]
    mean, std = normalise_features(arrays)
    frames = torch.cat(arrays)
    torch.testing.assert_close(mean, frames.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std, frames.std(0), rtol=1e-5, atol=1e-5)
    scores = torch.tensor([1.0, 2.0, 4.0])
    expected = (scores.numpy() - scores.numpy().mean()) / scores.numpy().std()
    np.testing.assert_allclose(zscore(scores).numpy(), expected, rtol=1e-6)


def test_unknown_distance_is_named():
    with pytest.raises(ValueError, match="cityblock, cosine, cosine_exp"):
        query_costs(torch.zeros(5, 2), Documents([torch.ones(3, 2)]), "manhattan")


def test_stacked_queries_give_the_same_costs_as_one_at_a_time():
    from superb.train.tasks.qbe.dtw import many_query_costs

    queries, docs = random_pairs(5)
    packed = Documents([torch.from_numpy(d) for d in docs], dtype=torch.float64)
    frames = len(packed.frames) * packed.frames.element_size()
    for minmax in (False, True):
        one_by_one = [query_costs(torch.from_numpy(q), packed, "cosine_exp", minmax) for q in queries]
        for budget in (1, 30 * frames, 1 << 30):  # one query per product, a few, all at once
            stacked = many_query_costs([torch.from_numpy(q) for q in queries], packed, "cosine_exp", minmax, budget)
            for a, b in zip(stacked, one_by_one, strict=True):
                torch.testing.assert_close(a, b)


def test_located_matches_are_dtw_python_paths():
    """With ``locate`` each document's match spans the first and last document frame of dtw-python's path."""
    from superb.train.tasks.qbe.dtw import many_query_matches

    queries, docs = random_pairs(3)
    packed = Documents([torch.from_numpy(d) for d in docs], dtype=torch.float64)
    found = many_query_matches([torch.from_numpy(q) for q in queries], packed, "cosine", locate=True)
    plain = many_query_matches([torch.from_numpy(q) for q in queries], packed, "cosine")
    for query, match, costs in zip(queries, found, plain, strict=True):
        assert torch.equal(match.costs, costs.costs) and costs.starts is None
        for k, doc in enumerate(docs):
            path = dtw.dtw(x=distance.cdist(query, doc, "cosine"), step_pattern="asymmetric", open_begin=True,
                           open_end=True)
            assert (int(match.starts[k]), int(match.ends[k])) == (path.index2[0], path.index2[-1]), k
