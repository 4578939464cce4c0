"""QbE scoring without the corpus's tools: ATWV, MTWV and Cnxe from the ground-truth files.

QUESST 2014 (and SWS 2013) ship their ground truth as an ECF (``*.ecf.xml``: the documents searched, one
``excerpt`` each), a term list (``*.tlist.xml``: one ``term termid=…`` per query) and an RTTM (``*.rttm``:
one ``LEXEME DOC CHANNEL TBEG DUR TERM …`` line per occurrence). The official ``score-TWV-Cnxe.sh`` is the
reference; this module computes the same quantities from their published definitions so that users
without the tools (perl, java) still get the number:

* Trials are every (term, document) pair of the term list × the ECF, scored per document (QUESST 2014:
  a detection says whether the term occurs in the document, not where). A trial missing from the system
  output gets ``default_score`` (the scorer's third argument, ``-10`` in s3prl's recipe) and decision NO.
* TWV(θ) = 1 − mean over terms with at least one occurrence of [P_miss(θ) + β·P_fa(θ)], with
  P_miss = 1 − hits/N_true, P_fa = false alarms/(documents − N_true), β = (C_fa/C_miss)·(1 − P_t)/P_t.
  ATWV uses the system's YES decisions; MTWV is the maximum over one global threshold θ (and no
  detection at all, TWV 0). Defaults P_t = 0.0008, C_miss = 100, C_fa = 1 (MediaEval QUESST 2014).
* Cnxe (QUESST 2014's primary metric) reads the scores as log-likelihood ratios: the cross entropy
  C_xe = −(1/log 2)·[P/N_tar·Σ_tar log σ(s + logit P) + (1 − P)/N_non·Σ_non log σ(−s − logit P)], divided
  by that of a system that only knows the prior. min Cnxe is the same after the best monotonic
  calibration of the scores (pool-adjacent-violators). Our scores are z-normalised DTW scores, not
  LLRs, so actual Cnxe is poor by construction; min Cnxe is the informative one.

Scope "official" counts every term and document of the ground truth, as the corpus's scorer does when
a run searched only some of them (SUPERB searches the English subset of QUESST 2014). Scope "searched"
counts only the terms and documents the run scored, which is what a subset run can be judged on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from sklearn.isotonic import IsotonicRegression

from superb.errors import CorpusError
from superb.files import numbered_lines

DEFAULT_SCORE = -10.0  # the score a trial absent from the output gets (s3prl's `score-TWV-Cnxe.sh … -10`)


@dataclass(frozen=True)
class TwvCosts:
    """The detection cost parameters of TWV (MediaEval QUESST 2014 / SWS 2013)."""

    p_target: float = 0.0008
    c_miss: float = 100.0
    c_fa: float = 1.0

    @property
    def beta(self) -> float:
        return self.c_fa / self.c_miss * (1.0 - self.p_target) / self.p_target


@dataclass
class GroundTruth:
    """Documents (id → seconds), terms in list order, and the documents each term occurs in."""

    folder: Path
    documents: dict[str, float]
    terms: list[str]
    occurrences: dict[str, set[str]]
    rttm: Path | None = None  # the RTTM read (a trainable task reads its occurrence times too)


@dataclass
class Detections:
    """A system's output: per term, per document, a score and a YES/NO decision."""

    scores: dict[str, dict[str, float]]
    decisions: dict[str, dict[str, bool]]


def _one(folder: Path, pattern: str, what: str, prefer: str) -> Path:
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if len(found) > 1:
        named = [p for p in found if prefer in p.name]
        found = named if len(named) == 1 else found
    if not found:
        raise CorpusError(f"{folder}: no {what} file ({pattern}) in the ground-truth folder")
    if len(found) > 1:
        raise CorpusError(f"{folder}: several {what} files ({', '.join(p.name for p in found)}); keep one")
    return found[0]


def _xml(path: Path):
    try:
        return ElementTree.parse(path).getroot()
    except ElementTree.ParseError as err:
        raise CorpusError(f"{path}: not valid XML ({err})") from None


def _stem(audio_filename: str) -> str:
    name = audio_filename.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.lower().endswith(".wav") else name


def read_ecf(path: Path) -> dict[str, float]:
    documents = {}
    for k, excerpt in enumerate(_xml(path).iter("excerpt"), start=1):
        name, dur = excerpt.get("audio_filename"), excerpt.get("dur")
        try:
            documents[_stem(name)] = float(dur)
        except (TypeError, ValueError):
            raise CorpusError(f"{path}: excerpt {k} needs audio_filename and a numeric dur "
                              f"(got {name!r}, {dur!r})") from None
    if not documents:
        raise CorpusError(f"{path}: no <excerpt> elements")
    return documents


def read_tlist(path: Path) -> list[str]:
    terms = [term.get("termid") for term in _xml(path).iter("term")]
    if not terms or any(not t for t in terms):
        raise CorpusError(f"{path}: expected <term termid=…> elements")
    return terms


def read_lexemes(path: Path) -> list[tuple[str, float, float, str]]:
    """``(document, tbeg, dur, term)`` of each ``LEXEME`` line; other RTTM types are skipped."""
    out = []
    for lineno, raw in numbered_lines(path):
        fields = raw.split()
        if not fields or fields[0] != "LEXEME":
            continue
        try:
            out.append((fields[1], float(fields[3]), float(fields[4]), fields[5]))
        except (IndexError, ValueError):
            raise CorpusError(f"{path}:{lineno}: malformed LEXEME line {raw.strip()[:80]!r} "
                              "(expected 'LEXEME DOC CHANNEL TBEG DUR TERM …')") from None
    return out


def read_groundtruth(folder: Path, split: str = "") -> GroundTruth:
    """The ECF, term list and RTTM of one ground-truth folder (other file names accepted, one of each)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"{folder}: ground-truth folder not found (pass --groundtruth DIR)")
    documents = read_ecf(_one(folder, "*.ecf.xml", "ECF", split))
    terms = read_tlist(_one(folder, "*.tlist.xml", "term list", split))
    rttm = _one(folder, "*.rttm", "RTTM", split)
    occurrences: dict[str, set[str]] = {t: set() for t in terms}
    known = set(terms)
    for doc, _, _, term in read_lexemes(rttm):
        if term not in known:
            raise CorpusError(f"{rttm}: term {term!r} is not in the term list")
        if doc not in documents:
            raise CorpusError(f"{rttm}: document {doc!r} is not in the ECF")
        occurrences[term].add(doc)
    return GroundTruth(folder, documents, terms, occurrences, rttm)


def read_stdlist(path: Path) -> Detections:
    """A ``benchmark.stdlist.xml``: per term, the best score (and any YES) over its detections per document."""
    scores: dict[str, dict[str, float]] = {}
    decisions: dict[str, dict[str, bool]] = {}
    for termlist in _xml(path).iter("detected_termlist"):
        term = termlist.get("termid")
        per_doc, yes = scores.setdefault(term, {}), decisions.setdefault(term, {})
        for hit in termlist.iter("term"):
            doc, score = hit.get("file"), float(hit.get("score"))
            per_doc[doc] = max(score, per_doc.get(doc, -math.inf))
            yes[doc] = yes.get(doc, False) or hit.get("decision") == "YES"
    return Detections(scores, decisions)


@dataclass
class Trials:
    """The trial matrix of one scope: scores, decisions and targets, ``(terms, documents)``."""

    terms: list[str]
    documents: list[str]
    scores: np.ndarray
    yes: np.ndarray
    target: np.ndarray


def trials(gt: GroundTruth, found: Detections, scope: str = "official",
           default_score: float = DEFAULT_SCORE) -> Trials:
    """Every scored trial of ``scope`` ("official": the ground truth's terms × documents; "searched": only
    those the output has), missing ones at ``default_score`` and NO; terms that never occur are dropped."""
    if scope == "official":
        terms, documents = list(gt.terms), list(gt.documents)
    elif scope == "searched":
        searched_docs = set().union(*(set(d) for d in found.scores.values())) if found.scores else set()
        terms = [t for t in gt.terms if t in found.scores]
        documents = [d for d in gt.documents if d in searched_docs]
    else:
        raise ValueError(f"scope {scope!r}: official or searched")
    col = {d: j for j, d in enumerate(documents)}
    terms = [t for t in terms if any(d in col for d in gt.occurrences[t])]
    scores = np.full((len(terms), len(documents)), default_score, dtype=np.float64)
    yes = np.zeros(scores.shape, dtype=bool)
    target = np.zeros(scores.shape, dtype=bool)
    for i, term in enumerate(terms):
        for doc, score in found.scores.get(term, {}).items():
            if doc in col:
                scores[i, col[doc]] = score
                yes[i, col[doc]] = found.decisions.get(term, {}).get(doc, False)
        target[i, [col[d] for d in gt.occurrences[term] if d in col]] = True
    return Trials(terms, documents, scores, yes, target)


@dataclass
class TwvResult:
    atwv: float
    mtwv: float
    threshold: float  # the θ reaching MTWV (detections are scores ≥ θ); inf when no detection is best
    terms: int
    documents: int


def twv(t: Trials, costs: TwvCosts = TwvCosts()) -> TwvResult:
    """ATWV from the decisions and MTWV over one global threshold, per-document trials."""
    if not t.terms:
        raise CorpusError("no scored term occurs in any scored document: TWV is undefined")
    n_true = t.target.sum(1, keepdims=True).astype(np.float64)
    n_non = len(t.documents) - n_true
    # what a detection adds to TWV: a hit 1/(T·N_true), a false alarm −β/(T·N_non)
    gain = np.where(t.target, 1.0 / n_true, -costs.beta / np.maximum(n_non, 1.0)) / len(t.terms)
    atwv = float(gain[t.yes].sum())
    order = np.argsort(-t.scores, axis=None, kind="stable")
    ranked, curve = t.scores.ravel()[order], np.cumsum(gain.ravel()[order])
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)  # θ can only sit between distinct scores
    values, thresholds = curve[last_of_tie], ranked[last_of_tie]
    best = int(np.argmax(values))
    mtwv, threshold = (float(values[best]), float(thresholds[best])) if values[best] > 0 else (0.0, math.inf)
    return TwvResult(atwv, mtwv, threshold, len(t.terms), len(t.documents))


def _cross_entropy(llr: np.ndarray, target: np.ndarray, prior: float) -> float:
    """C_xe in bits of LLR scores under ``prior``, targets and non-targets weighted as the prior says."""
    offset = math.log(prior / (1.0 - prior))
    tar = np.logaddexp(0.0, -(llr[target] + offset)).mean()  # −log σ(s + logit P)
    non = np.logaddexp(0.0, llr[~target] + offset).mean()
    return float((prior * tar + (1.0 - prior) * non) / math.log(2.0))


@dataclass
class CnxeResult:
    cnxe: float
    min_cnxe: float
    prior: float


def cnxe(t: Trials, prior: float | None = None) -> CnxeResult:
    """Normalised cross entropy of the scores read as LLRs, and its minimum after PAV calibration.
    ``prior`` defaults to the proportion of target trials."""
    target, scores = t.target.ravel(), t.scores.ravel()
    n_tar = int(target.sum())
    if n_tar == 0 or n_tar == len(target):
        raise CorpusError("Cnxe needs both target and non-target trials")
    p = n_tar / len(target) if prior is None else float(prior)
    reference = -(p * math.log2(p) + (1.0 - p) * math.log2(1.0 - p))  # a system that knows only the prior
    actual = _cross_entropy(scores, target, p) / reference
    weights = np.where(target, p / n_tar, (1.0 - p) / (len(target) - n_tar))
    posterior = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True).fit_transform(
        scores, target.astype(np.float64), sample_weight=weights)
    eps = 1e-300  # PAV gives 0 or 1 only where every trial is of the one class, whose log term is then 0
    tar = -np.log(np.maximum(posterior[target], eps)).sum() * p / n_tar
    non = -np.log(np.maximum(1.0 - posterior[~target], eps)).sum() * (1.0 - p) / (len(target) - n_tar)
    minimum = max(0.0, float((tar + non) / math.log(2.0)) / reference)  # no −0.0 from rounding
    return CnxeResult(actual, minimum, p)


def score(gt: GroundTruth, found: Detections, costs: TwvCosts = TwvCosts(),
          scopes: Iterable[str] = ("official", "searched"), default_score: float = DEFAULT_SCORE) -> dict:
    """``{scope: {"mtwv", "atwv", "threshold", "terms", "documents", "cnxe", "min_cnxe", "prior"}}``."""
    out = {}
    for scope in scopes:
        t = trials(gt, found, scope, default_score)
        out[scope] = {**asdict(twv(t, costs)), **asdict(cnxe(t))}
    return out
