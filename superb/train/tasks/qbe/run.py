"""``superb qbe``: every query of a QUESST 2014 (or SWS 2013) split against every document, per stored layer,
by subsequence DTW, written in the official ``benchmark.stdlist.xml`` format and scored from the corpus's
ground truth (s3prl's ``quesst14_dtw`` recipe, then its scorer's numbers).

Per layer: features z-normalised per dimension over all queries and documents of the run (s3prl's
``feature_normalization``), each row (query frame) of every query × document distance matrix min-max
normalised (s3prl's ``dtwrc.minmax_norm: True``; ``minmax_norm=False`` keeps the raw distances), the
queries' normalised DTW costs against every document (``superb.train.tasks.qbe.dtw``), score = −cost,
z-normalised per term over the documents, terms whose queries are all under 5 frames scored 0,
``decision="YES"`` above 2 standard deviations (s3prl's threshold). A term with several example queries
(SWS 2013's ``_01``, ``_02`` files) takes each document's best example. The store is read in two passes
whatever the number of layers: one for the normalisation statistics, one for the documents, in chunks,
each chunk scored for every layer.

Scoring (``superb.train.tasks.qbe.scoring``): each layer is scored on exactly what its file says (the
scores as written, to 4 decimals), without parsing the file again. The best dev layer (MTWV) is SUPERB's
choice; a test run reads it from the dev run (``select_from``) and writes ``results.json`` with that
layer's dev and test figures.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import torch

from superb.errors import ConfigError, StoreError
from superb.extract.extraction import resolve_device
from superb.files import replaced, write_text
from superb.stores.base import FeatureStore, SplitView
from superb.train.tasks.qbe import scoring
from superb.train.tasks.qbe.dtw import (
    MIN_QUERY_FRAMES,
    Documents,
    Matches,
    distance_names,
    many_query_matches,
    normalise_features,
    zscore,
)

SPLITS = {"dev": "dev", "test": "eval", "eval": "eval"}  # -t → the store's query split
DECISION_THRESHOLD = 2.0  # s3prl: scores above 2 standard deviations are detections
QBE_CORPORA = {"quesst14": "qbe", "sws2013": "qbe_sws2013"}  # corpus → the task name results.json carries
LOCATED = {"sws2013"}  # corpora scored in time: the stdlist carries where each match lies


@dataclass
class QbeRequest:
    store: FeatureStore
    split: str  # dev | test (eval)
    expdir: Path
    layers: list[int] | str | None = None  # stored layer indices; None: all; "best": the dev run's best layer
    distance: str = "cosine_exp"
    normalize: bool = True
    minmax_norm: bool = True  # s3prl's default: each distance row scaled to [0, 1] per document before the DTW
    chunk_frames: int = 200_000  # document frames scored at once (memory: frames × dim × 4 bytes per layer)
    groundtruth: Path | None = None  # None: the corpus's own folder for the split
    select_from: Path | None = None  # the dev run whose best layer a test run reports
    device: str = "auto"  # where the DTW runs: auto (CUDA when there is one), cpu or cuda
    costs: scoring.TwvCosts = field(default_factory=scoring.TwvCosts)


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


def _terms(view: SplitView) -> dict[str, list[int]]:
    """Term id → the indices of its example queries (one each in QUESST 2014)."""
    terms: dict[str, list[int]] = {}
    for i in range(len(view)):
        meta = view.record(i).get("meta") or {}
        terms.setdefault(str(meta.get("term", view.ids[i])), []).append(i)
    return terms


def _check(req: QbeRequest) -> str:
    corpus = req.store.attrs["corpus"]["name"]
    if corpus not in QBE_CORPORA:
        raise StoreError(f"{req.store.path}: qbe needs a {' or '.join(QBE_CORPORA)} store, this one holds {corpus!r}")
    if req.split not in SPLITS:
        raise ConfigError(f"-t {req.split!r}: choose dev or test")
    if req.distance not in distance_names():
        raise ConfigError(f"--dist {req.distance!r}: choose one of {', '.join(distance_names())}")
    return corpus


def _layers(req: QbeRequest, dev: dict[str, Any] | None) -> list[int]:
    stored = req.store.layers
    if req.layers == "best":
        if dev is None or dev.get("best_layer") is None:
            raise ConfigError("--layers best: no scored dev run to take the best layer from (run -t dev first, "
                              "or pass --select-from DEV_EXPDIR)")
        return [int(dev["best_layer"])]
    layers = stored if req.layers is None else list(req.layers)
    missing = [k for k in layers if k not in stored]
    if missing:
        raise ConfigError(f"--layers: layer {missing[0]} is not in the store (it holds {stored})")
    return layers


def dev_run(req: QbeRequest) -> dict[str, Any] | None:
    """The dev run's ``qbe.json`` a test run selects its layer from: ``select_from``, or else the sibling
    expdir named ``…_dev`` of a ``…_test`` one (the CLI's default names)."""
    if req.split == "dev":
        return None
    where = req.select_from
    if where is None and req.expdir.name.endswith("_test"):
        where = req.expdir.with_name(req.expdir.name.removesuffix("_test") + "_dev")
        if not (where / "qbe.json").is_file():
            return None
    if where is None:
        return None
    path = where / "qbe.json" if where.is_dir() else where
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--select-from {where}: no readable qbe.json of a dev run ({err})") from None
    if found.get("split") != "dev":
        raise ConfigError(f"--select-from {where}: that run scored split {found.get('split')!r}, not dev")
    return found


def search(req: QbeRequest, layers: list[int], located: bool) -> tuple[dict[int, dict[str, Matches]], dict]:
    """Per layer, per term: each document's best match over the term's examples (``Matches`` of −cost
    scores, z-normalised; zero for terms with no example of 5 frames or more)."""
    store = req.store
    slots = [store.layers.index(k) for k in layers]
    docs, queries = store.split("docs"), store.split(SPLITS[req.split])
    if req.normalize:
        everything = (x[:, slots] for view in (queries, docs) for x in _features(view, range(len(view))))
        mean, std = (t.numpy() for t in normalise_features(everything))

    def layer_of(x: np.ndarray, n: int) -> torch.Tensor:
        x = x[:, slots[n]].astype(np.float32)
        return torch.from_numpy((x - mean[n]) / std[n] if req.normalize else x)

    query_feats = list(_features(queries, range(len(queries))))
    scored = [i for i, q in enumerate(query_feats) if len(q) >= MIN_QUERY_FRAMES]
    per_layer = [[layer_of(query_feats[i], n) for i in scored] for n in range(len(layers))]  # prepared once
    found: dict[int, list[list[Matches]]] = {k: [[] for _ in scored] for k in layers}
    device = resolve_device(req.device)
    for chunk in _chunks(docs, req.chunk_frames):
        doc_feats = list(_features(docs, chunk))
        for n, layer in enumerate(layers):
            packed = Documents([layer_of(d, n) for d in doc_feats], device=device)
            for q, match in enumerate(many_query_matches(per_layer[n], packed, req.distance, req.minmax_norm,
                                                           locate=located)):
                found[layer][q].append(_on_cpu(match))
    position = {i: q for q, i in enumerate(scored)}
    terms = _terms(queries)
    out: dict[int, dict[str, Matches]] = {}
    for layer in layers:
        joined = [_join(parts) for parts in found[layer]]
        out[layer] = {term: _best_example([joined[position[i]] for i in examples if i in position], len(docs))
                      for term, examples in terms.items()}
    info = {"queries": len(queries), "short_queries": len(queries) - len(scored), "terms": len(terms)}
    return out, info


def _on_cpu(match: Matches) -> Matches:
    return Matches(*(None if t is None else t.cpu() for t in (match.costs, match.starts, match.ends)))


def _join(parts: list[Matches]) -> Matches:
    located = parts[0].starts is not None
    return Matches(torch.cat([p.costs for p in parts]), torch.cat([p.starts for p in parts]) if located else None,
                   torch.cat([p.ends for p in parts]) if located else None)


def _best_example(examples: list[Matches], documents: int) -> Matches:
    """Per document the example with the lowest cost; its score −cost, z-normalised over the documents."""
    if not examples:  # s3prl scores a query under 5 frames 0 against every document
        return Matches(torch.zeros(documents))
    costs = torch.stack([m.costs for m in examples]).double()
    pick = costs.argmin(0)
    score = zscore(-costs.gather(0, pick[None])[0]).float()
    if examples[0].starts is None:
        return Matches(score)
    columns = torch.arange(documents)
    starts, ends = (torch.stack([getattr(m, k) for m in examples])[pick, columns] for k in ("starts", "ends"))
    return Matches(score, starts, ends)


def groundtruth_folder(req: QbeRequest) -> Path | None:
    """``req.groundtruth``, else the corpus's folder for the split (None if the corpus has none there)."""
    if req.groundtruth is not None:
        return req.groundtruth
    from superb.registry import corpus_reader

    try:
        folder = corpus_reader(req.store.attrs["corpus"]).groundtruth_dir(SPLITS[req.split])
    except Exception:  # a moved corpus: the stdlist is still written, scoring asks for --groundtruth
        return None
    return folder if folder.is_dir() else None


def run_qbe(req: QbeRequest) -> dict[str, Any]:
    """Search, write ``EXPDIR/layer-L/benchmark.stdlist.xml`` per layer, score them when the ground truth is
    found, and write ``EXPDIR/qbe.json`` (and ``results.json`` for a test run that knows the best dev layer)."""
    corpus = _check(req)
    dev = dev_run(req)
    layers = _layers(req, dev)
    folder = groundtruth_folder(req)
    truth = scoring.read_groundtruth(folder, SPLITS[req.split]) if folder is not None else None
    if truth is None:
        warnings.warn(f"no ground truth found for split {req.split!r}: the stdlist files are written but not "
                      "scored (pass --groundtruth DIR)", stacklevel=1)
    located = corpus in LOCATED
    matches, info = search(req, layers, located)
    docs = [str(d) for d in req.store.split("docs").ids]
    frame_rate = float(req.store.attrs["frame_rate"])
    results: dict[str, Any] = {}
    req.expdir.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        path = req.expdir / f"layer-{layer}" / "benchmark.stdlist.xml"
        written = write_stdlist(path, matches[layer], docs, frame_rate if located else None)
        results[str(layer)] = {"stdlist": str(path)}
        if truth is not None:
            results[str(layer)].update(scoring.score(truth, written, req.costs))
    summary = {"split": req.split, "corpus": corpus, "distance": req.distance, "normalize": req.normalize,
               "minmax_norm": req.minmax_norm,
               "documents": len(docs), **info, "groundtruth": str(folder) if truth else None,
               "costs": asdict(req.costs), "default_score": scoring.DEFAULT_SCORE, "trials": "per document",
               "best_layer": _best(results), "layers": results}
    write_text(req.expdir / "qbe.json", json.dumps(summary, indent=2))
    (req.expdir / "results.json").unlink(missing_ok=True)  # never leave an earlier run's figures beside these
    summary["results"] = write_results(req, summary, dev) if dev is not None and truth is not None else None
    return summary


def _best(results: dict[str, Any]) -> int | None:
    scored = {int(k): v["official"]["mtwv"] for k, v in results.items() if "official" in v}
    return max(scored, key=lambda k: (scored[k], -k)) if scored else None  # ties: the lower layer


def _metrics(layer: dict[str, Any]) -> dict[str, float]:
    return {k: layer["official"][k] for k in ("mtwv", "atwv", "cnxe", "min_cnxe")}


def write_results(req: QbeRequest, test: dict[str, Any], dev: dict[str, Any]) -> dict[str, Any] | None:
    """SUPERB's QbE number: the best dev layer's test figures, in the trainer's results.json shape."""
    from superb.train.runner import results_upstream

    layer = dev.get("best_layer")
    if layer is None or str(layer) not in test["layers"]:
        warnings.warn(f"the best dev layer ({layer}) is not among the scored test layers: no results.json "
                      "(score it with --layers best)", stacklevel=1)
        return None
    dev_settings = {"distance": dev.get("distance"), "normalize": dev.get("normalize"),
                    "minmax_norm": dev.get("minmax_norm", False)}  # a dev run from before the option: raw distances
    if any(value != test[key] for key, value in dev_settings.items()):
        raise ConfigError("the dev run used another --dist, normalisation or min-max normalisation than this test "
                          "run; rerun one of them")
    results = {
        "task": QBE_CORPORA[test["corpus"]], "protocol": "dev", "best_step": None, "layer": int(layer),
        "dev": _metrics(dev["layers"][str(layer)]), "test": _metrics(test["layers"][str(layer)]),
        "upstream": results_upstream(req.store.attrs.get("upstream") or {}), "corpus": test["corpus"],
        "source": "store", "distance": test["distance"], "minmax_norm": test["minmax_norm"], "scoring": {
            "scope": "official", "trials": "per document", "costs": test["costs"],
            "default_score": test["default_score"],
            "searched": {"dev": dev["layers"][str(layer)]["searched"], "test": test["layers"][str(layer)]["searched"]},
        },
    }
    write_text(req.expdir / "results.json", json.dumps(results, indent=2))
    return results


def as_written(matches: dict[str, Matches], doc_ids: list[str],
               threshold: float = DECISION_THRESHOLD) -> scoring.Detections:
    """What a stdlist of these matches says: each score to its 4 written decimals, ``YES`` where the score is
    above ``threshold``; scored as is, so a run's figures are those of its file."""
    written = scoring.Detections({}, {})
    for term, match in matches.items():
        costs = match.costs.tolist()
        written.scores[term] = {doc: float(f"{score:.4f}") for doc, score in zip(doc_ids, costs, strict=True)}
        written.decisions[term] = {doc: score > threshold for doc, score in zip(doc_ids, costs, strict=True)}
    return written


def write_stdlist(path: Path, matches: dict[str, Matches], doc_ids: list[str],
                  frame_rate: float | None = None, threshold: float = DECISION_THRESHOLD) -> scoring.Detections:
    """The official ``stdlist`` XML: one ``detected_termlist`` per term, one ``term`` per document, ``YES`` above
    ``threshold``. Times are s3prl's ``tbeg="0.000" dur="0.00"`` unless ``frame_rate`` is given and the matches
    are located. Returns what the file says (scores as written, to 4 decimals), so it is scored without parsing
    it again."""
    written = as_written(matches, doc_ids, threshold)
    root = ElementTree.Element("stdlist", termlist_filename="benchmark.stdlist.xml", indexing_time="1.00",
                               language="english", index_size="1", system_id="benchmark")
    for term, match in matches.items():
        terms = ElementTree.SubElement(root, "detected_termlist", termid=term, term_search_time="1.0",
                                       oov_term_count="1")
        times = [("0.000", "0.00")] * len(doc_ids)
        if frame_rate and match.starts is not None:
            times = [(f"{s / frame_rate:.3f}", f"{(e - s + 1) / frame_rate:.2f}")
                     for s, e in zip(match.starts.tolist(), match.ends.tolist(), strict=True)]
        scores, yes = written.scores[term], written.decisions[term]
        for doc, (tbeg, dur) in zip(doc_ids, times, strict=True):
            ElementTree.SubElement(terms, "term", file=doc, channel="1", tbeg=tbeg, dur=dur,
                                   score=f"{scores[doc]:.4f}", decision="YES" if yes[doc] else "NO")
    ElementTree.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced(path) as partial:
        ElementTree.ElementTree(root).write(partial, encoding="UTF-8", xml_declaration=True)
    return written
