"""Batched subsequence DTW in torch, as s3prl's ``quesst14_dtw`` runs it with dtw-python, much faster.

s3prl aligns every (query, document) pair with ``dtw(dist, step_pattern="asymmetric", open_begin=True,
open_end=True)`` and scores ``-normalizedDistance``. With the asymmetric pattern each step consumes one
query frame and advances the document by 0, 1 or 2 frames, each step costing the local distance of the
cell it reaches:

    g[0, j] = d[0, j]                                       (open begin: start on any document frame)
    g[i, j] = d[i, j] + min(g[i-1, j], g[i-1, j-1], g[i-1, j-2])
    cost    = min_j g[n-1, j] / n                           (open end; "N" normalisation)

With ``minmax_norm`` (s3prl's default) each row of ``d`` is first scaled to [0, 1] within its document.

Here all documents are concatenated along the frame axis, so one matrix product gives a query's
distances to every document frame at once, and the recursion runs one row per query frame over all of
them, with the moves that would cross a document boundary masked. Per document the cost is the minimum
of the last row over its frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {}
MIN_QUERY_FRAMES = 5  # s3prl: shorter queries are not aligned (their scores are 0)


def _distance(name: str) -> Callable:
    def register(fn: Callable) -> Callable:
        DISTANCES[name] = fn
        return fn

    return register


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


@_distance("cosine")
def cosine(query: torch.Tensor, docs: Documents) -> torch.Tensor:
    """scipy's ``cdist(..., "cosine")``: 1 − u·v / (|u| |v|)."""
    one = torch.ones((), dtype=query.dtype, device=query.device)
    return torch.addmm(one, _unit(query), docs.unit.T, alpha=-1.0)  # 1 − product in the GEMM's own pass


@_distance("cosine_exp")
def cosine_exp(query: torch.Tensor, docs: Documents) -> torch.Tensor:
    """s3prl's default: exp(cosine distance) − 1."""
    return cosine(query, docs).expm1_()


@_distance("cosine_neg_log")
def cosine_neg_log(query: torch.Tensor, docs: Documents) -> torch.Tensor:
    """s3prl's −log(1 − cosine distance) = −log(cosine similarity) (NaN where the similarity is negative)."""
    return (_unit(query) @ docs.unit.T).log_().neg_()


@_distance("euclidean")
def euclidean(query: torch.Tensor, docs: Documents) -> torch.Tensor:
    squared = (query * query).sum(1)[:, None] + docs.squared_norms[None, :] - 2.0 * query @ docs.frames.T
    return squared.clamp(min=0).sqrt()


@_distance("cityblock")
def cityblock(query: torch.Tensor, docs: Documents) -> torch.Tensor:
    return torch.cdist(query[None], docs.frames[None], p=1)[0]


def distance_names() -> list[str]:
    return sorted(DISTANCES)


class Documents:
    """Documents concatenated along frames, with what the recursion needs to respect their boundaries."""

    def __init__(self, docs: Sequence[torch.Tensor], dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu"):
        if not docs:
            raise ValueError("no documents to search")
        self.sizes = [len(d) for d in docs]  # frames per document
        lengths = torch.tensor(self.sizes)
        if int(lengths.min()) < 1:
            raise ValueError("a document has no frames")
        self.frames = torch.cat([torch.as_tensor(d) for d in docs]).to(device=device, dtype=dtype)
        self.lengths = lengths.to(device)
        self.offsets = (torch.cumsum(lengths, 0) - lengths).to(device)  # each document's first frame
        position = torch.arange(len(self.frames), device=device) - torch.repeat_interleave(self.offsets,
                                                                                               self.lengths)
        self.owner = torch.repeat_interleave(torch.arange(len(docs), device=device), self.lengths)
        self.first = position == 0  # a column with no left neighbour in its document
        self.second = position == 1  # a column with no neighbour two to the left
        self.count = len(docs)
        self._unit: torch.Tensor | None = None
        self._squared_norms: torch.Tensor | None = None

    @property
    def unit(self) -> torch.Tensor:
        """The frames scaled to unit length, computed once for every query."""
        if self._unit is None:
            self._unit = _unit(self.frames)
        return self._unit

    @property
    def squared_norms(self) -> torch.Tensor:
        if self._squared_norms is None:
            self._squared_norms = (self.frames * self.frames).sum(1)
        return self._squared_norms


def subsequence_costs(dist: torch.Tensor, docs: Documents) -> torch.Tensor:
    """``(documents,)`` normalised alignment costs of one query from its distances ``(n, frames)``."""
    return subsequence_matches(dist, docs).costs


@dataclass
class Matches:
    """One query's best match in each document: normalised cost, and with ``locate`` the first and last
    document frame of that alignment (frames within the document)."""

    costs: torch.Tensor
    starts: torch.Tensor | None = None
    ends: torch.Tensor | None = None


def subsequence_matches(dist: torch.Tensor, docs: Documents, locate: bool = False) -> Matches:
    """The recursion of the module docstring over all documents at once; ``locate`` also carries each cell's
    path start along (the move taken is the first minimum of stay, one left, two left)."""
    inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
    no_left = docs.first
    no_left2 = docs.first | docs.second
    row = dist[0]
    start = torch.arange(dist.shape[1], device=dist.device) if locate else None
    for i in range(1, dist.shape[0]):
        left = torch.where(no_left, inf, torch.roll(row, 1))
        left2 = torch.where(no_left2, inf, torch.roll(row, 2))
        if start is None:
            row = dist[i] + torch.minimum(row, torch.minimum(left, left2))
            continue
        best, origin = row, start
        for shift, moved in ((1, left), (2, left2)):
            better = moved < best
            best, origin = torch.where(better, moved, best), torch.where(better, torch.roll(start, shift), origin)
        row, start = dist[i] + best, origin
    costs = torch.full((docs.count,), float("inf"), dtype=dist.dtype, device=dist.device)
    costs = costs.scatter_reduce(0, docs.owner, row, reduce="amin")
    if start is None:
        return Matches(costs / dist.shape[0])
    columns = torch.arange(len(row), device=row.device)
    at_best = torch.where(row == costs[docs.owner], columns, len(row))  # the first end reaching the minimum
    ends = torch.full((docs.count,), len(row), device=row.device).scatter_reduce(0, docs.owner, at_best, "amin")
    ends = ends.clamp(max=len(row) - 1)  # a document whose costs are all NaN keeps its last frame
    return Matches(costs / dist.shape[0], start[ends] - docs.offsets, ends - docs.offsets)


def query_costs(query: torch.Tensor, docs: Documents, distance: str = "cosine_exp",
                minmax_norm: bool = False) -> torch.Tensor:
    """A query's normalised subsequence-DTW cost against every document (s3prl's ``match``)."""
    return many_query_costs([query], docs, distance, minmax_norm)[0]


def many_query_costs(queries: Sequence[torch.Tensor], docs: Documents, distance: str = "cosine_exp",
                     minmax_norm: bool = False, memory_bytes: int = 1 << 30) -> list[torch.Tensor]:
    """Each query's costs against every document (see ``many_query_matches``)."""
    return [m.costs for m in many_query_matches(queries, docs, distance, minmax_norm, memory_bytes)]


def many_query_matches(queries: Sequence[torch.Tensor], docs: Documents, distance: str = "cosine_exp",
                       minmax_norm: bool = False, memory_bytes: int = 1 << 30, locate: bool = False) -> list[Matches]:
    """Each query's best match in every document. Queries are stacked into one distance product as far as
    ``memory_bytes`` of distances allows (one large product runs faster than many thin ones)."""
    if distance not in DISTANCES:
        raise ValueError(f"distance {distance!r} is not one of {', '.join(distance_names())}")
    rows_per_group = max(1, memory_bytes // (docs.frames.element_size() * len(docs.frames)))
    out: list[Matches] = []
    group: list[torch.Tensor] = []
    for k, query in enumerate(queries):
        group.append(torch.as_tensor(query).to(device=docs.frames.device, dtype=docs.frames.dtype))
        if k == len(queries) - 1 or sum(len(q) for q in group) + len(queries[k + 1]) > rows_per_group:
            dists = DISTANCES[distance](torch.cat(group), docs)
            if minmax_norm:  # row by row, so the stacked queries are normalised at once
                dists = _minmax(dists, docs)
            for dist in torch.split(dists, [len(q) for q in group]):
                out.append(subsequence_matches(dist, docs, locate))
            group = []
    return out


def _minmax(dist: torch.Tensor, docs: Documents) -> torch.Tensor:
    """s3prl's ``minmax_norm`` (``quesst14_dtw``'s default), in place: each row of a query × document distance
    matrix, i.e. one query frame against that document's frames, becomes ``(d − min) / max(max − min, 1e-9)``
    (a one-frame document's rows become 0; NaN in a row spreads over that row, as with numpy). The rows are cut
    at document boundaries, the documents lying side by side in ``dist``; each document is a view, so no
    full-size index or copy is made (5–8× faster on CPU than a scatter and gather over all frames)."""
    for piece in torch.split(dist, docs.sizes, dim=1):
        low, high = torch.aminmax(piece, dim=1, keepdim=True)
        piece.sub_(low).div_((high - low).clamp_(min=1e-9))
    return dist


def normalise_features(arrays: Iterable[torch.Tensor | np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """s3prl's feature normalisation: the mean and (unbiased) std over every frame (axis 0) of every query and
    document, per feature (any trailing shape, e.g. ``(layers, dim)``), std clamped at 1e-9. ``arrays`` may
    be a generator, so a store is streamed, not loaded. Returns float32 ``(mean, std)``."""
    total, acc, acc2 = 0, 0.0, 0.0
    for a in arrays:
        a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=torch.float64)
        acc, acc2, total = acc + a.sum(0), acc2 + (a * a).sum(0), total + len(a)
    if not total:
        raise ValueError("no frames to normalise over")
    mean = acc / total
    var = (acc2 - total * mean * mean) / max(total - 1, 1)
    return mean.float(), var.clamp(min=0).sqrt().clamp(min=1e-9).float()


def zscore(scores: torch.Tensor) -> torch.Tensor:
    """Per-query score normalisation over documents (numpy's population std, clamped at 1e-9), as s3prl."""
    return (scores - scores.mean()) / scores.std(unbiased=False).clamp(min=1e-9)
