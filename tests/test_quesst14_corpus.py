"""The QUESST 2014 reader on a tiny espeak-ng copy of the official layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from superb.errors import CorpusError
from superb.extract.audio import EDIT_KEY
from superb.extract.corpora.quesst14 import GAIN_DB, Quesst14
from superb.testing.checks import assert_lengths_decode, assert_ordered, checked_ecf, checked_rttm, checked_tlist
from superb.testing.corpora import QUESST_TERMS, make_quesst14


def rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave))))


@pytest.fixture(scope="module")
def quesst_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_quesst14(tmp_path_factory.mktemp("quesst"))


def test_superb_selection_is_nnenglish(quesst_root):
    corpus = Quesst14(quesst_root)  # the folder holding quesst14Database/ is accepted too
    utts = corpus.utterances(corpus.splits)
    by_split = {s: [u for u in utts if u.split == s] for s in corpus.splits}
    assert len(by_split["docs"]) == 2 * len(QUESST_TERMS)
    assert len(by_split["dev"]) == len(by_split["eval"]) == len(QUESST_TERMS)
    assert {u.meta["language"] for u in utts} == {"nnenglish"}
    assert {u.meta["kind"] for u in by_split["docs"]} == {"document"}
    assert by_split["dev"][0].id == "quesst14_dev_0001"
    assert_lengths_decode(utts[:3])  # 8 kHz files, lengths at 16 kHz
    assert_ordered(utts, list(corpus.splits))


def test_every_language_on_request(quesst_root):
    utts = Quesst14(quesst_root, language="all").utterances(["docs", "dev"])
    assert {u.meta["language"] for u in utts} == {"nnenglish", "basque"}


def test_bad_lists_name_the_file_and_line(quesst_root, tmp_path):
    root = tmp_path / "q"
    shutil.copytree(quesst_root, root)
    listing = root / "quesst14Database" / "scoring" / "language_key_dev.lst"
    listing.write_text(listing.read_text() + "quesst14Database/dev_queries/missing.wav nnenglish\n")
    with pytest.raises(CorpusError, match=r"language_key_dev\.lst:8: 'quesst14Database/dev_queries/missing.wav'"):
        Quesst14(root).utterances(["dev"])
    listing.write_text("just-one-field\n")
    with pytest.raises(CorpusError, match=r"language_key_dev\.lst:1: malformed line"):
        Quesst14(root).utterances(["dev"])
    with pytest.raises(CorpusError, match="no 'czech' entries"):
        Quesst14(root, language="czech").utterances(["docs"])


def test_gain_edit_and_groundtruth_dirs(quesst_root):
    corpus = Quesst14(quesst_root, language="all")
    assert corpus.version == 2
    utts = corpus.utterances(corpus.splits)
    assert all(u.meta[EDIT_KEY] == {"gain_db": GAIN_DB} for u in utts) and GAIN_DB == -3.0
    base = quesst_root / "quesst14Database"
    assert corpus.groundtruth_dir("dev") == base / "scoring" / "groundtruth_quesst14_dev"
    assert corpus.groundtruth_dir("eval") == base / "scoring" / "groundtruth_quesst14_eval"


@pytest.mark.parametrize("split", ["dev", "eval"])
def test_groundtruth_is_consistent_with_the_audio(quesst_root, split):
    corpus = Quesst14(quesst_root, language="all")
    docs = {u.id: u for u in corpus.utterances(["docs"])}
    queries = [u.id for u in corpus.utterances([split])]
    folder = corpus.groundtruth_dir(split)
    excerpts = checked_ecf(folder / "quesst14.ecf.xml")
    assert sorted(excerpts) == sorted(docs)  # every document, every language
    for doc, seconds in excerpts.items():
        assert abs(seconds - docs[doc].duration) < 1e-3
    assert checked_tlist(folder / f"quesst14_{split}.tlist.xml", "quesst14.ecf.xml") == queries
    occurrences = checked_rttm(folder / f"quesst14_{split}.rttm")
    assert {term for _, _, _, term in occurrences} == set(queries)
    for q, term in enumerate(queries[: len(QUESST_TERMS)]):  # the nnenglish ones; the last is basque
        holders = sorted(doc for doc, _, _, t in occurrences if t == term)
        assert holders == [f"quesst14_{2 * q + n:05d}" for n in (1, 2)]  # each English term in exactly 2 docs
    for doc, tbeg, dur, _ in occurrences:
        assert 0 < tbeg and tbeg + dur < excerpts[doc]
        wave, rate = soundfile.read(docs[doc].path, dtype="float64")
        term = wave[round(tbeg * rate): round((tbeg + dur) * rate)]
        window = rate // 10  # the document's quietest 100 ms
        quietest = min(rms(wave[i: i + window]) for i in range(0, len(wave) - window + 1, window // 4))
        assert rms(term) > 0.02 and rms(term) > 20 * quietest, (doc, rms(term), quietest)


def test_same_arguments_same_bytes(quesst_root, tmp_path):
    again = make_quesst14(tmp_path)
    for path in sorted((quesst_root / "quesst14Database").rglob("*")):
        if path.is_file():
            twin = again / path.relative_to(quesst_root)
            assert twin.read_bytes() == path.read_bytes(), path.name
