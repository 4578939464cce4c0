"""MediaEval 2013 Spoken Web Search (SWS 2013) for query-by-example: documents, dev queries and eval queries.

Layout, as s3prl's ``sws2013`` datasets read it (``sws2013Database_dev_eval/``; the folder holding it is accepted
too): ``Audio/sws2013_NNNNN.wav`` (the documents), ``dev_queries/*.wav`` and ``eval_queries/*.wav`` (8 kHz;
resampled to 16 kHz like every corpus), and the ground truth in ``scoring_atwv_sws2013/sws2013_{dev,eval}/``:
``sws2013.ecf.xml`` (the documents), ``sws2013_{dev,eval}.tlist.xml`` (the terms) and ``sws2013_{dev,eval}.rttm``
(where each term is spoken). Option ``scoring_root`` points elsewhere for that folder (s3prl's
``sws2013_scoring_root``): ``groundtruth_dir(split)`` is then ``SCORING_ROOT/sws2013_{split}``.

Splits: ``docs``, ``dev`` (queries), ``eval`` (queries); ids are the wav stems (any case of ``.wav``; other files
are ignored), meta ``kind`` (``document`` or ``query``) and for queries ``term``. A query file is
``sws2013_dev_NNN.wav``; a term with several spoken examples also has ``sws2013_dev_NNN_01.wav``, ``_02`` …, all
of the term ``sws2013_dev_NNN`` (s3prl's rule: drop a trailing ``_NN``, the regex ``(_[0-9]{2})?\\.wav``).
``examples=all`` (the default) keeps every example, ``examples=first`` one per term: the un-suffixed file if
there is one, else the lowest suffix.

As with QUESST 2014 (the same DTW recipe), every file carries s3prl's sox ``gain -3.0`` as the audio edit
``meta["audio_edit"] = {"gain_db": -3.0}``, applied before the upstream; ``-c level=peak -c vad=true`` gives the
front end of s3prl's trainable ``sws2013`` task instead (``superb.extract.corpora.qbe_audio``).

SWS 2013's own scoring is time-aligned (ATWV over the RTTM's term occurrences), while superb's DTW mode scores
one detection per query and document (``tbeg`` 0, no duration); the corpus's official scorer may still be run on
the stdlist it writes, with the ground truth of ``groundtruth_dir``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import ConfigError, CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.extract.corpora import qbe_audio

FOLDERS = {"docs": "Audio", "dev": "dev_queries", "eval": "eval_queries"}
EXAMPLES = ("all", "first")
_EXAMPLE_SUFFIX = re.compile(r"_[0-9]{2}$")


def term_of(stem: str) -> str:
    """The term a query file speaks: its stem without a trailing ``_NN`` (``sws2013_dev_012_01`` → ``…_012``)."""
    return _EXAMPLE_SUFFIX.sub("", stem)


class Sws2013(Corpus):
    name = "sws2013"
    version = 1
    splits = ("docs", "dev", "eval")
    options: dict[str, Any] = {"examples": "all", "scoring_root": "", **qbe_audio.OPTIONS}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / FOLDERS["docs"]).is_dir() and (folder / "scoring_atwv_sws2013").is_dir()

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        if self.opts["examples"] not in EXAMPLES:
            raise ConfigError(f"corpus 'sws2013': examples={self.opts['examples']!r} is not one of "
                              f"{', '.join(EXAMPLES)} (every example of a term, or one per term)")
        qbe_audio.check_options(self.name, self.opts)

    @property
    def base(self) -> Path:
        return layout_root(self.root, lambda p: (p / "Audio").is_dir() and (p / "dev_queries").is_dir(), "SWS 2013")

    def groundtruth_dir(self, split: str) -> Path:
        """The official ground truth of ``split`` (``dev``; anything else is ``eval``): ``sws2013.ecf.xml``,
        ``sws2013_{split}.tlist.xml`` and ``sws2013_{split}.rttm``."""
        scoring = str(self.opts["scoring_root"] or "")
        folder = Path(scoring).expanduser() if scoring else self.base / "scoring_atwv_sws2013"
        return folder / f"sws2013_{'dev' if split == 'dev' else 'eval'}"

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        wanted = self.check_splits(splits)
        out: list[Utterance] = []
        for split in wanted:
            folder = self.base / FOLDERS[split]
            if not folder.is_dir():
                raise CorpusError(f"{folder}: SWS 2013 folder not found (expected sws2013Database_dev_eval/ with "
                                  f"{', '.join(f + '/' for f in FOLDERS.values())})")
            paths = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file()),
                           key=lambda p: p.stem)
            if not paths:
                raise CorpusError(f"{folder}: no .wav files in this SWS 2013 folder")
            if split != "docs" and self.opts["examples"] == "first":
                paths = _first_examples(paths)
            for path in paths:
                meta: dict[str, Any] = {"kind": "document"} if split == "docs" else \
                    {"kind": "query", "term": term_of(path.stem)}
                out.append(utterance_from_file(path.stem, split, path, meta))
        return qbe_audio.with_front_end(self.base, out, self.opts["level"], self.opts["vad"])


def _first_examples(paths: list[Path]) -> list[Path]:
    """One file per term: the un-suffixed one if present, else the lowest ``_NN`` (``paths`` sorted by stem)."""
    chosen: dict[str, Path] = {}
    for path in paths:
        term = term_of(path.stem)
        if term not in chosen or path.stem == term:
            chosen[term] = path
    return sorted(chosen.values(), key=lambda p: p.stem)
