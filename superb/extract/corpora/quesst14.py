"""QUESST 2014 for query-by-example: documents, dev queries and eval queries, as s3prl's ``quesst14_dtw``.

Layout (``quesst14Database/``): ``Audio/*.wav`` (the documents), ``dev_queries/*.wav``, ``eval_queries/*.wav``
(8 kHz; resampled to 16 kHz like every corpus), and in ``scoring/`` the lists ``language_key_utterances.lst``,
``language_key_dev.lst``, ``language_key_eval.lst`` (``PATH LANGUAGE`` per line) plus the ground truth
``groundtruth_quesst14_{dev,eval}/`` read by the corpus's ``score-TWV-Cnxe.sh``.

SUPERB's selection (s3prl's dataset): only the ``nnenglish`` (non-native English) entries of each list —
set ``language=all`` for every language, or another language name. List paths are taken relative to the
root; as s3prl does, a path whose first folder is the archive's own name (``quesst14Database/Audio/…``)
is accepted by dropping that folder. Splits: ``docs``, ``dev`` (queries), ``eval`` (queries); meta
``language`` and ``kind`` (``document`` or ``query``). Ids are the wav stems, which the scoring files use.

Every query and document carries s3prl's sox ``gain -3.0`` (after ``channels 1, rate 16000``) as the audio edit
``meta["audio_edit"] = {"gain_db": -3.0}`` (``GAIN_DB``), applied before the upstream (reader version 2; version
1 fed the audio unscaled). Options ``level=peak`` and ``vad=true`` give the front end of s3prl's trainable
``sws2013`` task instead, which tests on QUESST 2014 (``superb.extract.corpora.qbe_audio``); that task also
reads every language (``language=all``). ``groundtruth_dir(split)`` is the scorer's ground-truth folder of
``dev`` or ``eval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.extract.corpora import qbe_audio
from superb.files import numbered_lines

LISTS = {"docs": "language_key_utterances.lst", "dev": "language_key_dev.lst", "eval": "language_key_eval.lst"}
SUPERB_LANGUAGE = "nnenglish"
GAIN_DB = qbe_audio.GAIN_DB


class Quesst14(Corpus):
    name = "quesst14"
    version = 2
    splits = ("docs", "dev", "eval")
    options: dict[str, Any] = {"language": SUPERB_LANGUAGE, **qbe_audio.OPTIONS}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / "scoring" / LISTS["docs"]).is_file()

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        qbe_audio.check_options(self.name, self.opts)

    @property
    def base(self) -> Path:
        return layout_root(self.root, lambda p: (p / "scoring" / LISTS["docs"]).is_file(), "QUESST14")

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        wanted = self.check_splits(splits)
        language = str(self.opts["language"])
        out: list[Utterance] = []
        for split in wanted:
            listing = self.base / "scoring" / LISTS[split]
            if not listing.is_file():
                raise CorpusError(f"{listing}: QUESST14 list file not found")
            found = []
            for lineno, (rel, lang) in enumerate_list(listing):
                if language != "all" and lang != language:
                    continue
                path = self._locate(rel, listing, lineno)
                kind = "document" if split == "docs" else "query"
                found.append(utterance_from_file(path.stem, split, path, {"language": lang, "kind": kind}))
            if not found:
                raise CorpusError(f"{listing}: no {language!r} entries (languages are the second column; "
                                  "pass -c language=all for every language)")
            out.extend(sorted(found, key=lambda u: u.id))
        return qbe_audio.with_front_end(self.base, out, self.opts["level"], self.opts["vad"])

    def groundtruth_dir(self, split: str) -> Path:
        """The official ground truth of ``split`` (``dev``; anything else is ``eval``): ``quesst14.ecf.xml``,
        ``quesst14_{dev,eval}.tlist.xml`` and ``quesst14_{dev,eval}.rttm``, as the corpus's scorer reads them."""
        return self.base / "scoring" / f"groundtruth_quesst14_{'dev' if split == 'dev' else 'eval'}"

    def _locate(self, rel: str, listing: Path, lineno: int) -> Path:
        candidates = [self.base / rel]
        if "/" in rel:
            candidates.append(self.base / rel.split("/", 1)[1])  # s3prl: drop the archive's folder name
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise CorpusError(f"{listing}:{lineno}: {rel!r} not found under {self.base}")


def enumerate_list(path: Path) -> list[tuple[int, tuple[str, str]]]:
    """``(line number, (path, language))`` per non-blank line; anything else names the file and line."""
    out = []
    for lineno, raw in numbered_lines(path):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].lower().endswith(".wav"):
            raise CorpusError(f"{path}:{lineno}: malformed line {raw.strip()[:80]!r} (expected 'PATH.wav LANGUAGE')")
        out.append((lineno, (fields[0], fields[1])))
    return out
