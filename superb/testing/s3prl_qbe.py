"""s3prl 0.4.18's ``quesst14_dtw`` scoring written out literally (``downstream/quesst14_dtw/expert.py``), the
reference the QbE tests and ``benchmarks/dtw.py`` compare superb against: scipy ``cdist``, dtw-python, numpy.

Kept as close to s3prl's text as a function allows (its ``ProcessPoolExecutor`` runs the pairs in turn here);
needs the test extras (``dtw-python``, scipy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch

#: s3prl's ``dtwrc`` for ``step_pattern: asymmetric``, ``subsequence: True`` (its config's defaults).
SUBSEQUENCE_DTWRC = {"step_pattern": "asymmetric", "keep_internals": False, "distance_only": False,
                     "open_begin": True, "open_end": True}


def cosine_exp(query, doc):
    from scipy.spatial import distance

    dist = distance.cdist(query, doc, "cosine")
    dist = np.exp(dist) - 1
    return dist


def cosine_neg_log(query, doc):
    from scipy.spatial import distance

    dist = distance.cdist(query, doc, "cosine")
    dist = -1 * np.log(1 - dist)
    return dist


def dist_fn(dist_method: str) -> Callable:
    """The distance function s3prl's ``log_records`` picks for ``dtwrc.dist_method``."""
    from scipy.spatial import distance

    if dist_method == "cosine_exp":
        return cosine_exp
    if dist_method == "cosine_neg_log":
        return cosine_neg_log
    return partial(distance.cdist, metric=dist_method)


def match(query, doc, query_name, doc_name, dist_fn, minmax_norm, dtwrc):
    """Match between a query and a doc."""
    from dtw import dtw

    dist = dist_fn(query, doc)

    if minmax_norm:
        dist_min = dist.min(1)[:, np.newaxis]
        dist_max = dist.max(1)[:, np.newaxis]
        dist = (dist - dist_min) / np.clip(dist_max - dist_min, 1e-9, np.inf)

    dtw_result = dtw(x=dist, **dtwrc)
    cost = dtw_result.normalizedDistance
    return query_name, doc_name, -1 * cost


def log_records_scores(queries: Sequence[torch.Tensor], docs: Sequence[torch.Tensor], query_names: Sequence[str],
                       doc_names: Sequence[str], dist_method: str = "cosine_exp", minmax_norm: bool = True,
                       feature_normalization: bool = True) -> dict[str, dict[str, float]]:
    """``{query: {doc: score}}`` as s3prl's ``log_records`` writes them into ``benchmark.stdlist.xml`` (before
    formatting to 4 decimals): feature normalisation, ``match`` per pair, short queries 0, z-score per query."""
    feature_mean, feature_std = 0.0, 1.0
    if feature_normalization:
        feats = torch.cat([*queries, *docs])
        feature_mean = feats.mean(0)
        feature_std = torch.clamp(feats.std(0), 1e-9)
    queries = [((query - feature_mean) / feature_std).numpy() for query in queries]
    docs = [((doc - feature_mean) / feature_std).numpy() for doc in docs]

    results = defaultdict(list)
    for query, query_name in zip(queries, query_names):
        if len(query) < 5:  # Do not consider too short queries
            results[query_name] = [(doc_name, 0) for doc_name in doc_names]
            continue
        for doc, doc_name in zip(docs, doc_names):
            query_name, doc_name, score = match(query, doc, query_name, doc_name, dist_fn(dist_method), minmax_norm,
                                                SUBSEQUENCE_DTWRC)
            results[query_name].append((doc_name, score))

    # Normalize scores with regard to each query
    for query_name, doc_scores in results.items():
        names, scores = zip(*doc_scores)
        scores = np.array(scores)
        scores = (scores - scores.mean()) / np.clip(scores.std(), 1e-9, np.inf)
        results[query_name] = list(zip(names, scores))
    return {query: {doc: float(score) for doc, score in doc_scores} for query, doc_scores in results.items()}
