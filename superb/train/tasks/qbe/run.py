"""``superb qbe``: every query of a QUESST14 split against every document, per stored layer, by subsequence
DTW, written in the official ``benchmark.stdlist.xml`` format (s3prl's ``quesst14_dtw`` recipe).

Per layer: features z-normalised per dimension over all queries and documents of the run (s3prl's
``feature_normalization``), the queries' normalised DTW costs against every document
(``superb.train.tasks.qbe.dtw``), score = −cost, z-normalised per query over the documents, queries under
5 frames scored 0, ``decision="YES"`` above 2 standard deviations (s3prl's threshold). The store is read in
two passes whatever the number of layers: one for the normalisation statistics, one for the documents,
in chunks, each chunk scored for every layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import torch

from superb.errors import ConfigError, StoreError
from superb.stores.base import FeatureStore, SplitView
from superb.train.tasks.qbe.dtw import (
    MIN_QUERY_FRAMES,
    Documents,
    distance_names,
    many_query_costs,
    normalise_features,
    zscore,
)

SPLITS = {"dev": "dev", "test": "eval", "eval": "eval"}  # -t → the store's query split
DECISION_THRESHOLD = 2.0  # s3prl: scores above 2 standard deviations are detections


@dataclass
class QbeRequest:
    store: FeatureStore
    split: str  # dev | test (eval)
    expdir: Path
    layers: list[int] | None = None  # stored layer indices; None: all
    distance: str = "cosine_exp"
    normalize: bool = True
    chunk_frames: int = 200_000  # document frames scored at once (memory: frames × dim × 4 bytes per layer)


def _features(view: SplitView, indices: Iterable[int]) -> Iterator[np.ndarray]:
    """``[frames, layers, dim]`` of each utterance in turn; an unfinished one names the rerun to do."""
    for i in indices:
        if not view.done[i]:
            raise StoreError(f"utterance {view.ids[i]!r} of split {view.name!r} is not extracted yet; rerun "
                             "`superb extract` to complete the store")
        yield view.features(i)


def _chunks(view: SplitView, budget: int) -> Iterator[list[int]]:
    """Consecutive utterance indices holding at most ``budget`` frames (at least one utterance each)."""
    chunk, frames = [], 0
    for i in range(len(view)):
        if chunk and frames + view.num_frames(i) > budget:
            yield chunk
            chunk, frames = [], 0
        chunk.append(i)
        frames += view.num_frames(i)
    if chunk:
        yield chunk


def run_qbe(req: QbeRequest) -> dict[str, Any]:
    """Scores per stored layer; writes ``EXPDIR/layer-L/benchmark.stdlist.xml`` and ``EXPDIR/qbe.json``."""
    store = req.store
    if store.attrs["corpus"]["name"] not in ("quesst14", "sws2013"):
        raise StoreError(f"{store.path}: qbe needs a quesst14 store, this one holds {store.attrs['corpus']['name']!r}")
    if req.split not in SPLITS:
        raise ConfigError(f"-t {req.split!r}: choose dev or test")
    if req.distance not in distance_names():
        raise ConfigError(f"--dist {req.distance!r}: choose one of {', '.join(distance_names())}")
    stored = store.layers
    layers = stored if req.layers is None else req.layers
    missing = [k for k in layers if k not in stored]
    if missing:
        raise ConfigError(f"--layers: layer {missing[0]} is not in the store (it holds {stored})")
    slots = [stored.index(k) for k in layers]
    docs, queries = store.split("docs"), store.split(SPLITS[req.split])
    if req.normalize:
        everything = (x[:, slots] for view in (queries, docs) for x in _features(view, range(len(view))))
        mean, std = (t.numpy() for t in normalise_features(everything))

    def layer_of(x: np.ndarray, n: int) -> torch.Tensor:
        x = x[:, slots[n]].astype(np.float32)
        return torch.from_numpy((x - mean[n]) / std[n] if req.normalize else x)

    query_feats = list(_features(queries, range(len(queries))))
    short = [len(q) < MIN_QUERY_FRAMES for q in query_feats]
    scored = [q for q, s in zip(query_feats, short, strict=True) if not s]
    per_layer = [[layer_of(q, n) for q in scored] for n in range(len(layers))]  # prepared once, used per chunk
    costs: dict[int, list[list[torch.Tensor]]] = {k: [[] for _ in scored] for k in layers}
    for chunk in _chunks(docs, req.chunk_frames):
        doc_feats = list(_features(docs, chunk))
        for n, layer in enumerate(layers):
            packed = Documents([layer_of(d, n) for d in doc_feats])
            for q, found in enumerate(many_query_costs(per_layer[n], packed, req.distance)):
                costs[layer][q].append(found)
    results = {}
    req.expdir.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        found = iter(costs[layer])
        scores = {str(queries.ids[q]): torch.zeros(len(docs)) if s else zscore(-torch.cat(next(found)).double()).float()
                  for q, s in enumerate(short)}
        path = write_stdlist(req.expdir / f"layer-{layer}" / "benchmark.stdlist.xml", scores,
                             [str(d) for d in docs.ids])
        results[str(layer)] = {"stdlist": str(path), "queries": len(short), "short_queries": int(sum(short))}
    summary = {"split": req.split, "distance": req.distance, "normalize": req.normalize,
               "documents": len(docs), "layers": results}
    (req.expdir / "qbe.json").write_text(json.dumps(summary, indent=2))
    return summary


def write_stdlist(path: Path, scores: dict[str, torch.Tensor], doc_ids: list[str]) -> Path:
    """The official ``stdlist`` XML: one ``detected_termlist`` per query, one ``term`` per document."""
    root = ElementTree.Element("stdlist", termlist_filename="benchmark.stdlist.xml", indexing_time="1.00",
                               language="english", index_size="1", system_id="benchmark")
    for query, values in scores.items():
        terms = ElementTree.SubElement(root, "detected_termlist", termid=query, term_search_time="1.0",
                                       oov_term_count="1")
        for doc, score in zip(doc_ids, values.tolist(), strict=True):
            ElementTree.SubElement(terms, "term", file=doc, channel="1", tbeg="0.000", dur="0.00",
                                   score=f"{score:.4f}", decision="YES" if score > DECISION_THRESHOLD else "NO")
    ElementTree.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".xml.partial")
    ElementTree.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    tmp.replace(path)
    return path
