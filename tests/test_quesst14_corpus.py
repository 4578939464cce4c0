"""The QUESST 2014 reader on a tiny espeak-ng copy of the official layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from superb.errors import CorpusError
from superb.extract.corpora.quesst14 import Quesst14
from superb.testing.checks import assert_lengths_decode, assert_ordered
from superb.testing.corpora import QUESST_TERMS, make_quesst14


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
