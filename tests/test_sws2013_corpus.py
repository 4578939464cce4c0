"""The SWS 2013 reader on a tiny espeak-ng copy of the official layout, and its ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from superb.errors import ConfigError, CorpusError
from superb.extract.audio import EDIT_KEY
from superb.extract.corpora.quesst14 import GAIN_DB
from superb.extract.corpora.sws2013 import Sws2013, term_of
from superb.registry import CORPORA
from superb.testing.checks import assert_lengths_decode, assert_ordered, checked_ecf, checked_rttm, checked_tlist
from superb.testing.corpora import SWS_TERMS, make_sws2013

DOCS = 2 * len(SWS_TERMS) + 3  # two documents per term, three distractors
EXTRA = ("sws2013_dev_001_01", "sws2013_dev_002_01")


@pytest.fixture(scope="module")
def sws_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sws2013(tmp_path_factory.mktemp("sws"))


@pytest.fixture(scope="module")
def utts(sws_root):
    corpus = Sws2013(sws_root)  # the folder holding sws2013Database_dev_eval/ is accepted too
    return corpus.utterances(corpus.splits)


def by_split(utts, split):
    return [u for u in utts if u.split == split]


def test_splits_counts_and_terms(utts):
    assert CORPORA.get("sws2013") is Sws2013
    assert_ordered(utts, ["docs", "dev", "eval"])
    docs, dev, evals = (by_split(utts, s) for s in ("docs", "dev", "eval"))
    assert [u.id for u in docs] == [f"sws2013_{n:05d}" for n in range(1, DOCS + 1)]
    assert {u.meta["kind"] for u in docs} == {"document"} and all("term" not in u.meta for u in docs)
    assert len(dev) == len(SWS_TERMS) + len(EXTRA) and len(evals) == len(SWS_TERMS)
    assert {u.meta["kind"] for u in dev + evals} == {"query"}
    terms = {u.id: u.meta["term"] for u in dev}
    assert terms["sws2013_dev_001_01"] == terms["sws2013_dev_001"] == "sws2013_dev_001"
    assert terms["sws2013_dev_002_01"] == "sws2013_dev_002"
    assert sorted(set(terms.values())) == [f"sws2013_dev_{t:03d}" for t in range(1, len(SWS_TERMS) + 1)]
    assert all(u.meta["term"] == u.id for u in evals)
    assert term_of("sws2013_dev_012_01") == term_of("sws2013_dev_012") == "sws2013_dev_012"


def test_every_file_gets_the_gain_edit(utts):
    assert GAIN_DB == -3.0
    assert all(u.meta[EDIT_KEY] == {"gain_db": GAIN_DB} for u in utts)
    assert utts[0].meta[EDIT_KEY] is not utts[1].meta[EDIT_KEY]  # no shared, mutable edit


def test_audio_decodes_to_the_listed_lengths(utts):
    assert_lengths_decode([by_split(utts, "docs")[0], by_split(utts, "dev")[1], by_split(utts, "eval")[-1]])


def test_examples_first_keeps_one_per_term(sws_root, tmp_path):
    dev = Sws2013(sws_root, examples="first").utterances(["dev"])
    assert [u.id for u in dev] == [f"sws2013_dev_{t:03d}" for t in range(1, len(SWS_TERMS) + 1)]
    root = tmp_path / "sws"
    shutil.copytree(sws_root, root)
    queries = root / "sws2013Database_dev_eval" / "dev_queries"
    (queries / "sws2013_dev_001.wav").unlink()
    shutil.copyfile(queries / "sws2013_dev_001_01.wav", queries / "sws2013_dev_001_02.WAV")
    (queries / "notes.txt").write_text("not audio\n")
    ids = [u.id for u in Sws2013(root, examples="first").utterances(["dev"])]
    assert ids[0] == "sws2013_dev_001_01" and len(ids) == len(SWS_TERMS)  # the lowest suffix stands in
    every = Sws2013(root).utterances(["dev"])
    assert [u.id for u in every][:2] == ["sws2013_dev_001_01", "sws2013_dev_001_02"]
    assert {u.meta["term"] for u in every[:2]} == {"sws2013_dev_001"}
    with pytest.raises(ConfigError, match="examples"):
        Sws2013(sws_root, examples="some")


def test_missing_or_empty_folders_name_the_path(sws_root, tmp_path):
    root = tmp_path / "sws"
    shutil.copytree(sws_root, root)
    base = root / "sws2013Database_dev_eval"
    for wav in (base / "eval_queries").iterdir():
        wav.unlink()
    with pytest.raises(CorpusError, match=r"eval_queries: no \.wav files") as empty:
        Sws2013(base).utterances(["eval"])
    assert "\n" not in str(empty.value)
    shutil.rmtree(base / "dev_queries")
    with pytest.raises(CorpusError, match=r"sws2013Database_dev_eval/dev_queries: SWS 2013 folder not found") as gone:
        Sws2013(base).utterances(["docs", "dev"])
    assert "\n" not in str(gone.value)


def test_groundtruth_dirs(sws_root, tmp_path):
    corpus = Sws2013(sws_root)
    scoring = sws_root / "sws2013Database_dev_eval" / "scoring_atwv_sws2013"
    assert corpus.groundtruth_dir("dev") == scoring / "sws2013_dev"
    assert corpus.groundtruth_dir("eval") == scoring / "sws2013_eval"
    assert Sws2013(sws_root, scoring_root=str(tmp_path)).groundtruth_dir("eval") == tmp_path / "sws2013_eval"


@pytest.mark.parametrize("split", ["dev", "eval"])
def test_groundtruth_files_agree_with_the_corpus(sws_root, utts, split):
    folder = Sws2013(sws_root).groundtruth_dir(split)
    assert folder.is_dir()
    docs = {u.id: u for u in by_split(utts, "docs")}
    terms = sorted({u.meta["term"] for u in by_split(utts, split)})

    durations = checked_ecf(folder / "sws2013.ecf.xml")
    assert sorted(durations) == sorted(docs)
    assert all(abs(durations[d] - docs[d].duration) < 1e-3 for d in docs)
    assert checked_tlist(folder / f"sws2013_{split}.tlist.xml", "sws2013.ecf.xml") == terms
    lexemes = checked_rttm(folder / f"sws2013_{split}.rttm")
    assert len(lexemes) == 2 * len(SWS_TERMS)
    for doc, tbeg, dur, term in lexemes:
        assert doc in docs and term in terms
        assert 0 < tbeg and tbeg + dur < durations[doc]
    holders = {term: sorted(doc for doc, _, _, t in lexemes if t == term) for term in terms}
    assert all(len(h) == 2 for h in holders.values())
    distractors = set(docs) - {doc for h in holders.values() for doc in h}
    assert len(distractors) == 3


def test_the_term_is_spoken_where_the_rttm_says(sws_root, utts):
    docs = {u.id: u for u in by_split(utts, "docs")}
    rttm = Sws2013(sws_root).groundtruth_dir("dev") / "sws2013_dev.rttm"
    for line in rttm.read_text().splitlines():
        kind, doc, _, tbeg, dur, *_ = line.split()
        if kind != "LEXEME":
            continue
        wave, rate = soundfile.read(docs[doc].path, dtype="float64")
        inside = wave[round(float(tbeg) * rate): round((float(tbeg) + float(dur)) * rate)]
        before = wave[: round(0.1 * rate)]  # the documents open with silence
        assert np.sqrt(np.mean(inside**2)) > 0.02 > np.sqrt(np.mean(before**2)) * 10, doc
