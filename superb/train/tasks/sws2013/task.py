"""Trainable query-by-example spoken term detection as s3prl's ``sws2013`` (MORE-TASKS.md §2).

Splits cross corpora, as s3prl's: train on SWS 2013 *dev* (its queries, the documents and the dev RTTM), score
dev on SWS 2013 *eval* (s3prl's "valid" set, scored here as its ``-t sws2013_eval`` test), and test on QUESST
2014 *eval* queries (``data.test``: ``eval`` or ``dev``) against its documents. The QUESST store is the sibling
``quesst14`` of the SWS 2013 store (``--features stores/UPSTREAM`` finds both), or ``data.test_store``.

Training pairs (``sws2013_dataset.py``): for every query example and every RTTM occurrence of its term a
positive pair, and per query example one negative whose document is drawn, each time the pair is read, from the
ECF documents without the term. Each side is a 3 s window (``data.window_seconds``) of stored frames, cut as
s3prl cuts audio padded with 3 s of silence: a positive document window at ``tbeg + U(dur - 3, 0)`` (the whole
occurrence inside it), a negative one at ``U(0, doc - 3)``, a query's at ``U(0, query - 3)`` (short queries sit
at a random place in zeros). Outside the stored frames the window holds zeros. Positives and negatives are drawn
equally often (``data.balanced``: s3prl's WeightedRandomSampler), 16 pairs a batch; a batch holds the 16
document windows, then the 16 query windows.

Head (``model.py``): ``Linear(D → 256)`` + ReLU → ``Linear(256 → 1024)`` + tanh → attention pooling, for
documents and queries alike; ``CosineEmbeddingLoss(margin=-1)``.

Scoring (``expert.py``, ``sws2013_testset.py``): documents cut into 3 s windows every 0.75 s (the last ones
running into 3 s of zeros), each window embedded; a query is its first window only; a document's score is the
largest cosine over its windows; scores z-normalised per query over the documents (unbiased std + 1e-6);
``decision="YES"`` above 0. Written as the official ``ROLE/benchmark.stdlist.xml`` and scored with the ATWV /
MTWV / Cnxe code of ``superb qbe`` (``superb.train.tasks.qbe.scoring``). A dev query is, as s3prl's, the file
named by the term list (``sws2013_eval_NNN``; the lowest ``_NN`` example where that file is missing).

Where the store path differs from s3prl (results.json ``notes``): windows are cut from features of the whole
file (s3prl runs the upstream on each 3 s cut of audio), and padding is zero features, not features of
silence; the audio front end is the store's (s3prl's: ``-c level=peak -c vad=true`` at extraction, see
``superb.extract.corpora.qbe_audio``). s3prl's RTTM regex misreads onsets of 10 s or more and drops durations
of 10 s or more: every LEXEME line is read here (``notes.rttm_lines_s3prl_misreads`` counts them).
Selection: s3prl keeps no best checkpoint and reports the last (``runner.protocol: s3prl``, the default here);
``protocol: dev`` keeps the checkpoint with the best dev MTWV.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import CorpusError, StoreError
from superb.extract import audio
from superb.extract.audio import SAMPLE_RATE
from superb.stores.base import FeatureStore, find_stores, open_store
from superb.train.config import Config, ModelConfig
from superb.train.data import Item, StoreItems, pad_targets
from superb.train.tasks.qbe import scoring
from superb.train.tasks.utterance import Prepared, check_corpus

QUERY, DOCUMENT = 0, 1  # an eval item's target: what it is
NEGATIVE, POSITIVE = 0, 1  # a training pair's target (class indices, so the sampler can balance them)
Z_EPS = 1e-6  # s3prl: (s - mean) / (std + 1e-6)
_S3PRL_RTTM = re.compile(r"LEXEME\s+(sws2013_[0-9]+).*?([0-9]\.[0-9]+)\s+([0-9]\.[0-9]+)\s+(sws2013_(dev|eval)_[0-9]+)")


# -- the head ---------------------------------------------------------------------------------------------


class WindowEmbeddings(NamedTuple):
    """What the head gives: in training, one embedding per window of the batch ``(2B, hidden)``; in evaluation
    one ``(windows, hidden)`` tensor per item (a query has one window), L2-normalised."""

    training: bool
    values: Any


class QbeEmbedder(nn.Module):
    """s3prl's sws2013 ``Model`` (shared by documents and queries), and its windowing for scoring."""

    reads_batch = True  # evaluation needs to know which items are queries

    def __init__(self, dim: int, model: ModelConfig, window: int, hop: float):
        super().__init__()
        self.connector = nn.Linear(dim, model.projector_dim)
        self.fc1 = nn.Linear(model.projector_dim, model.hidden_size)
        self.attention_linear = nn.Linear(model.hidden_size, 1)
        self.window, self.hop = window, hop  # frames; hop may be fractional (0.75 s at 50 frames/s)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc1(F.relu(self.connector(x))))

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """Attention pooling over the window axis (-2): ``softmax(Linear(h))``-weighted sum."""
        weights = F.softmax(self.attention_linear(hidden), dim=-2)
        return (hidden * weights).sum(-2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, batch: dict) -> tuple[WindowEmbeddings, torch.Tensor]:
        if self.training:
            return WindowEmbeddings(True, self.pool(self.hidden(x))), lengths
        if "window_counts" in batch:  # on the fly: each row is one window of audio, the item's rows in turn
            pooled = F.normalize(self.pool(self.hidden(x)), dim=-1)
            return WindowEmbeddings(False, list(pooled.split(batch["window_counts"].tolist()))), lengths
        kinds = batch["targets"][:, 0].tolist()
        out = [self.windows(x[b, : int(n)], kinds[b] == QUERY) for b, n in enumerate(lengths.tolist())]
        return WindowEmbeddings(False, out), lengths

    def starts(self, frames: int) -> list[int]:
        """s3prl's ``unfold(48000, 12000)`` of the audio padded with 3 s: a window every hop from 0, the last
        one starting at or before the end."""
        count = int(frames / self.hop + 1e-9) + 1
        return [int(k * self.hop + 0.5) for k in range(count)]

    def windows(self, x: torch.Tensor, query: bool, chunk: int = 256) -> torch.Tensor:
        """Embeddings ``(windows, hidden)`` of one item's frames ``x (T, D)`` (a query: the first window only),
        zero frames past the end, normalised."""
        starts = [0] if query else self.starts(len(x))
        need = starts[-1] + self.window
        if need > len(x):
            x = torch.cat([x, x.new_zeros(need - len(x), x.shape[-1])])
        hidden = self.hidden(x)
        index = torch.arange(self.window, device=x.device)
        out = []
        for k in range(0, len(starts), chunk):
            first = torch.tensor(starts[k : k + chunk], device=x.device)
            out.append(self.pool(hidden[first[:, None] + index]))
        return F.normalize(torch.cat(out), dim=-1)


# -- training pairs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    query: int  # index in the query split
    document: int  # index in the docs split (-1: drawn from ``negatives`` each time)
    onset: float  # seconds into the stored document (positives)
    duration: float
    negatives: tuple[int, ...] = ()  # documents without the term (negatives)


class PairWindows:
    """Training windows of (document, query) pairs from a store; ``batch(keys)`` gives the document windows,
    then the query windows, every random choice a function of the key's seed."""

    def __init__(self, store: FeatureStore, query_split: str, pairs: list[Pair], items: list[Item], window: int):
        self.items, self.pairs, self.window = items, pairs, window
        self.docs, self.queries = store.split("docs"), store.split(query_split)
        self.rate = float(store.attrs["frame_rate"])
        self.seconds = window / self.rate
        self.lengths = [window] * len(items)
        self.frame_shape = (len(store.layers), int(store.attrs["dim"]))
        self.dtype = np.dtype(store.attrs["dtype"])

    def __len__(self) -> int:
        return len(self.items)

    def _cut(self, view: Any, index: int, start_s: float, out: np.ndarray) -> None:
        """``out`` = the window of utterance ``index`` from ``start_s`` seconds on, zeros outside its frames."""
        frames = view.num_frames(index)
        start = int(round(start_s * self.rate))
        lo, hi = max(start, 0), min(start + self.window, frames)
        out[:] = 0
        if hi > lo:
            first = int(view.offsets[index])
            view.read_frames(first + lo, first + hi, out=out[lo - start : hi - start])

    def num_frames(self, view: Any, index: int) -> int:
        return view.num_frames(index)

    def fill(self, keys: list[tuple[int, int]], out: np.ndarray) -> dict[str, torch.Tensor]:
        """Document windows into ``out[:B]``, query windows into ``out[B:]``; the batch's targets."""
        size = len(keys)
        for b, (k, seed) in enumerate(keys):
            pair, rng = self.pairs[k], np.random.default_rng(seed)
            if pair.document >= 0:  # positive: the whole occurrence inside the window
                doc, start = pair.document, pair.onset + _uniform(rng, pair.duration - self.seconds, 0.0)
            else:
                doc = pair.negatives[int(rng.integers(len(pair.negatives)))]
                start = _uniform(rng, 0.0, self.num_frames(self.docs, doc) / self.rate - self.seconds)
            self._cut(self.docs, doc, start, out[b])
            query_seconds = self.num_frames(self.queries, pair.query) / self.rate
            self._cut(self.queries, pair.query, _uniform(rng, 0.0, query_seconds - self.seconds), out[size + b])
        return pad_targets([(None, self.items[k].target, k) for k, _ in keys])

    def batch(self, keys: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        features = np.empty((2 * len(keys), self.window, *self.frame_shape), dtype=self.dtype)
        rows = self.fill(keys, features)
        return {"features": torch.from_numpy(features),
                "lengths": torch.full((len(features),), self.window, dtype=torch.long), **rows}


class AudioPairWindows(PairWindows):
    """``PairWindows`` on the fly, as s3prl cuts them: 3 s of audio (zeros outside the file) for the upstream."""

    def __init__(self, source: Any, query_split: str, pairs: list[Pair], items: list[Item], seconds: float):
        self.items, self.pairs = items, pairs
        self.docs, self.queries = source.split("docs"), source.split(query_split)
        self.rate, self.seconds = float(SAMPLE_RATE), seconds
        self.window = int(round(seconds * SAMPLE_RATE))
        self.lengths = [self.window] * len(items)

    def _cut(self, view: Any, index: int, start_s: float, out: np.ndarray) -> None:
        wave = audio.read_record(view.records[index])
        start = int(round(start_s * self.rate))
        lo, hi = max(start, 0), min(start + self.window, len(wave))
        out[:] = 0
        if hi > lo:
            out[lo - start : hi - start] = wave[lo:hi]

    def num_frames(self, view: Any, index: int) -> int:
        return int(view.records[index]["num_samples"])

    def batch(self, keys: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        wavs = np.empty((2 * len(keys), self.window), dtype=np.float32)
        rows = self.fill(keys, wavs)
        return {"wavs": torch.from_numpy(wavs), "wav_lengths": torch.full((len(wavs),), self.window), **rows}


class AudioWindows:
    """Scored items on the fly, as s3prl's test sets: a query's first 3 s of audio; a document padded with 3 s
    of zeros and cut every 0.75 s (``unfold``), each window its own upstream input."""

    def __init__(self, source: Any, items: list[Item], seconds: float, hop_seconds: float):
        self.items = items
        self.records = [source.split(item.split).records[item.index] for item in items]
        self.window, self.hop = int(round(seconds * SAMPLE_RATE)), int(round(hop_seconds * SAMPLE_RATE))
        self.lengths = [int(r["num_samples"]) for r in self.records]

    def __len__(self) -> int:
        return len(self.items)

    def windows(self, k: int) -> np.ndarray:
        wave = audio.read_record(self.records[k])
        padded = np.concatenate([wave, np.zeros(self.window, dtype=np.float32)])
        if self.items[k].target[0] == QUERY:
            return padded[None, : self.window]
        count = (len(padded) - self.window) // self.hop + 1
        return np.stack([padded[i * self.hop : i * self.hop + self.window] for i in range(count)])

    def batch(self, keys: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        parts = [self.windows(k) for k, _ in keys]
        wavs = torch.from_numpy(np.concatenate(parts))
        rows = [(None, self.items[k].target, k) for k, _ in keys]
        return {"wavs": wavs, "wav_lengths": torch.full((len(wavs),), self.window),
                "window_counts": torch.tensor([len(p) for p in parts]), **pad_targets(rows)}


def _uniform(rng: np.random.Generator, a: float, b: float) -> float:
    """Python's ``random.uniform(a, b)`` (s3prl's draw): ``a + (b - a)·U[0, 1)``, also when ``b < a``."""
    return a + (b - a) * float(rng.random())


def training_pairs(store: FeatureStore, split: str, truth: scoring.GroundTruth, lexemes: list[tuple]) -> list[Pair]:
    """s3prl's pairs: per query example, one positive per RTTM occurrence of its term and one negative."""
    docs = store.split("docs")
    position = {str(d): i for i, d in enumerate(docs.ids)}
    missing = [d for d in truth.documents if d not in position]
    if missing:
        raise StoreError(f"{store.path}: {len(missing)} documents of {truth.folder} are not in the store's docs "
                         f"split (first: {missing[0]}); extract the whole corpus")
    shift = [_trim_start(record) for record in docs.records]
    occurrences: dict[str, list[tuple[int, float, float]]] = {}
    for doc, tbeg, dur, term in lexemes:
        i = position[doc]
        occurrences.setdefault(term, []).append((i, tbeg - shift[i], dur))
    everything = tuple(sorted(position[d] for d in truth.documents))
    queries = store.split(split)
    pairs: list[Pair] = []
    for q in range(len(queries)):
        term = str((queries.records[q].get("meta") or {}).get("term", queries.ids[q]))
        found = occurrences.get(term, [])
        holding = {i for i, _, _ in found}
        pairs += [Pair(q, i, onset, dur) for i, onset, dur in found]
        pairs.append(Pair(q, -1, 0.0, 0.0, tuple(i for i in everything if i not in holding) or everything))
    return pairs


def _trim_start(record: dict[str, Any]) -> float:
    """Seconds the corpus's audio edit cut from the file's start (``vad``): RTTM times are the file's."""
    keep = ((record.get("meta") or {}).get("audio_edit") or {}).get("keep")
    return float(keep[0][0]) / 16000.0 if keep else 0.0


def s3prl_misread_lines(rttm: Path) -> int:
    """LEXEME lines s3prl's ``parse_rttm`` regex drops or reads with other times than the file's."""
    count = 0
    for line in rttm.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if not fields or fields[0] != "LEXEME" or len(fields) < 6:
            continue
        match = _S3PRL_RTTM.match(line)
        try:
            right = match is not None and (float(match.group(2)), float(match.group(3))) == (float(fields[3]),
                                                                                           float(fields[4]))
        except ValueError:
            right = False
        count += not right
    return count


# -- the task ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpokenTermDetection:
    name: str = "sws2013"
    corpus: str = "sws2013"
    # on the fly: s3prl's front end (sox norm, vad) for both corpora; QUESST 2014 (--test-root) in every language
    corpus_options: tuple[tuple[str, Any], ...] = (("level", "peak"), ("vad", True))
    test_corpus: str = "quesst14"
    test_corpus_options: tuple[tuple[str, Any], ...] = (("language", "all"), ("level", "peak"), ("vad", True))
    heads: tuple[str, ...] = ("kind",)
    metric: str = "mtwv"
    higher_is_better: bool = True
    s3prl_selects_last: bool = True  # protocol s3prl: the last checkpoint (s3prl logs valid, keeps no best)
    description: str = "trainable QbE, SWS 2013 dev → SWS 2013 eval → QUESST 2014, s3prl's sws2013, MTWV"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        data = config.data
        reader = _reader(store)
        truth = {split: _groundtruth(reader, split) for split in {data.train, data.dev}}
        rttm = truth[data.train].rttm
        pairs = training_pairs(store, data.train, truth[data.train], scoring.read_lexemes(rttm))
        if not any(p.document >= 0 for p in pairs):
            raise CorpusError(f"{rttm}: no occurrence of any {data.train!r} query's term; nothing to train on")
        items: dict[str, list[Item]] = {
            "train": [Item(data.train, p.query, (POSITIVE if p.document >= 0 else NEGATIVE,)) for p in pairs]}
        ids: dict[str, list[str]] = {"train": [str(store.split(data.train).ids[p.query]) for p in pairs]}
        scored: dict[str, Any] = {"dev": _scored_split(store, data.dev, truth[data.dev], one_per_term=True)}
        stores = {"train": store, "dev": store}
        test_store = _test_store(store, config)
        if test_store is not None:
            test_truth = _groundtruth(_reader(test_store), data.test)
            scored["test"] = _scored_split(test_store, data.test, test_truth, one_per_term=False)
            stores["test"] = test_store
        for role, info in scored.items():
            items[role], ids[role] = info.pop("items"), info.pop("ids")
        front = store.attrs["corpus"].get("options", {})
        on_the_fly = not isinstance(store, FeatureStore)
        notes = {
            "pairs": {"positive": sum(p.document >= 0 for p in pairs), "negative": sum(p.document < 0 for p in pairs)},
            "rttm_lines_s3prl_misreads": s3prl_misread_lines(rttm),
            "windows": "3 s cuts of audio, zeros outside, each its own upstream input (as s3prl)" if on_the_fly else
                       "cut from stored features of whole files, zero features outside them (s3prl: upstream on "
                       "each 3 s cut of audio, silence outside)",
            "front_end": {"level": front.get("level", "gain"), "vad": bool(front.get("vad", False)),
                          "s3prl": {"level": "peak", "vad": True}},
            "test": None if test_store is None else {
                "store": str(test_store.path), "split": data.test,
                "languages": test_store.attrs["corpus"].get("options", {}).get("language", "nnenglish"),
                "s3prl_languages": "all"},
        }
        rate = float(store.attrs["frame_rate"])
        extras = {"pairs": pairs, "scored": scored, "stores": stores, "hop": data.window_hop_seconds * rate,
                  "window": max(1, int(round(data.window_seconds * rate)))}
        return Prepared(items=items, classes=[["query", "document"]], heads=self.heads, notes=notes, ids=ids,
                        extras=extras)

    def dataset(self, role: str, items: list[Item], prepared: Prepared, config: Config) -> Any:
        source, data = prepared.extras["stores"][role], config.data
        if not isinstance(source, FeatureStore):  # on the fly: windows of audio, as s3prl cuts them
            if role == "train":
                return AudioPairWindows(source, data.train, prepared.extras["pairs"], items, data.window_seconds)
            return AudioWindows(source, items, data.window_seconds, data.window_hop_seconds)
        if role == "train":
            return PairWindows(source, data.train, prepared.extras["pairs"], items, prepared.extras["window"])
        return StoreItems(source, items, None, data.preload)

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> QbeEmbedder:
        return QbeEmbedder(dim, model, prepared.extras["window"], prepared.extras["hop"])

    def loss(self, out: WindowEmbeddings, lengths: torch.Tensor, batch: dict) -> torch.Tensor | None:
        """s3prl's ``CosineEmbeddingLoss(margin=-1)``: 1 − cos for positives, cos + 1 for negatives."""
        if not out.training:
            return None
        size = len(batch["targets"])
        label = torch.where(batch["targets"][:, 0] == POSITIVE, 1.0, -1.0).to(out.values.dtype)
        return F.cosine_embedding_loss(out.values[:size], out.values[size:], label, margin=-1.0)

    def predict(self, out: WindowEmbeddings, lengths: torch.Tensor, prepared: Prepared) -> list:
        if out.training:
            return [None] * len(lengths)
        return [w.float().cpu().numpy() for w in out.values]

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        info = prepared.extras["scored"].get(role)
        if info is None or any(p is None for p in predictions):
            return {"mtwv": float("nan")}
        found = detections(info, predictions)
        result = scoring.score(info["truth"], found, scopes=("official",))["official"]
        return {k: result[k] for k in ("mtwv", "atwv", "cnxe", "min_cnxe")}

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """``ROLE/benchmark.stdlist.xml``, the file the corpus's ``score-TWV-Cnxe.sh`` reads from a folder."""
        info = prepared.extras["scored"].get(role)
        if info is not None and predictions and predictions[0] is not None:
            write_detections(expdir / role / "benchmark.stdlist.xml", info, _z_scores(info, predictions))


def _reader(store: FeatureStore) -> Any:
    from superb.registry import corpus_reader

    corpus = store.attrs["corpus"]
    try:
        return corpus_reader(corpus)
    except Exception as err:
        raise CorpusError(f"{store.path}: the store's corpus folder {corpus['root']} (its ground truth) is not "
                          f"readable: {err}") from None


def _groundtruth(reader: Any, split: str) -> scoring.GroundTruth:
    return scoring.read_groundtruth(reader.groundtruth_dir(split), split)


def _test_store(store: FeatureStore, config: Config) -> FeatureStore | None:
    """QUESST 2014's store: ``data.test_store``, else the ``quesst14`` store beside the SWS 2013 one (None when
    there is none: the run trains and scores dev only, and says so)."""
    if not isinstance(store, FeatureStore):  # on the fly: --test-root
        if store.test_source is None:
            warnings.warn("no --test-root (the QUESST 2014 folder): the run is not tested", stacklevel=1)
        return store.test_source
    if config.data.test_store:
        found = find_stores(config.data.test_store)
        if len(found) != 1:
            raise StoreError(f"config data.test_store {config.data.test_store}: not one feature store")
        path = found[0]
    else:
        path = next((p for p in find_stores(store.path.parent) if p.name in ("quesst14", "quesst14.h5")), None)
        if path is None:
            warnings.warn(f"no quesst14 store beside {store.path}: the run is not tested (extract it with "
                          "`superb extract --corpus quesst14`, or set config.data.test_store)", stacklevel=1)
            return None
    test = open_store(path)
    check_corpus(test, "sws2013 (test)", "quesst14")
    for key in ("upstream", "layers", "dim", "frame_rate"):
        if test.attrs.get(key) != store.attrs.get(key):
            raise StoreError(f"{path}: its {key} differs from the SWS 2013 store's ({store.path}); extract both with "
                             "the same upstream and layers")
    return test


def _scored_split(store: FeatureStore, split: str, truth: scoring.GroundTruth, one_per_term: bool) -> dict[str, Any]:
    """The items a role scores: its queries (per term of the term list, or every query), then every document
    of the ECF; with the names the stdlist needs."""
    queries, docs = store.split(split), store.split("docs")
    if one_per_term:
        by_term: dict[str, list[int]] = {}
        for i in range(len(queries)):
            by_term.setdefault(str((queries.records[i].get("meta") or {}).get("term", queries.ids[i])), []).append(i)
        chosen = []
        for term in truth.terms:
            examples = sorted(by_term.get(term, []), key=lambda i: (str(queries.ids[i]) != term, str(queries.ids[i])))
            if examples:
                chosen.append((term, examples[0]))
    else:
        chosen = [(str(queries.ids[i]), i) for i in range(len(queries))]
    position = {str(d): i for i, d in enumerate(docs.ids)}
    documents = [d for d in truth.documents if d in position]
    if not chosen or not documents:
        raise StoreError(f"{store.path}: split {split!r} has no query of {truth.folder}'s term list, or the store "
                         "has none of its documents")
    items = [Item(split, i, (QUERY,)) for _, i in chosen] + [Item("docs", position[d], (DOCUMENT,)) for d in documents]
    return {"items": items, "ids": [t for t, _ in chosen] + documents, "terms": [t for t, _ in chosen],
            "documents": documents, "truth": truth}


def _z_scores(info: dict[str, Any], predictions: list) -> np.ndarray:
    """``(queries, documents)``: max cosine over each document's windows, z-normalised per query (s3prl)."""
    n = len(info["terms"])
    queries = np.stack([p[0] for p in predictions[:n]]).astype(np.float64)
    scores = np.stack([(queries @ d.astype(np.float64).T).max(axis=1) for d in predictions[n:]], axis=1)
    return (scores - scores.mean(1, keepdims=True)) / (scores.std(1, ddof=1, keepdims=True) + Z_EPS)


def _matches(info: dict[str, Any], scores: np.ndarray) -> dict[str, Any]:
    from superb.train.tasks.qbe.dtw import Matches

    return {term: Matches(torch.from_numpy(row)) for term, row in zip(info["terms"], scores, strict=True)}


def detections(info: dict[str, Any], predictions: list) -> scoring.Detections:
    """What the stdlist says (``superb qbe``'s rule: scores to 4 decimals), YES above 0 (s3prl's threshold)."""
    from superb.train.tasks.qbe.run import as_written

    return as_written(_matches(info, _z_scores(info, predictions)), info["documents"], threshold=0.0)


def write_detections(path: Path, info: dict[str, Any], scores: np.ndarray) -> None:
    from superb.train.tasks.qbe.run import write_stdlist

    write_stdlist(path, _matches(info, scores), info["documents"], threshold=0.0)


TASK = SpokenTermDetection()
