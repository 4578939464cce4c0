"""VoxCeleb1 for speaker identification: ``{dev,test}/wav/idNNNNN/VIDEO/NNNNN.wav`` and ``iden_split.txt``.

``iden_split.txt`` lines are ``1|2|3 idNNNNN/VIDEO/NNNNN.wav`` (train, dev, test). Its paths do not say which
archive holds the file: the identification split draws on all 1,251 speakers, the 40 ``test`` speakers
included, so each path is looked up in every audio tree. Accepted variants: a folder in between
(``ROOT/VoxCeleb1/...``), the list files in ``ROOT/meta/``, one merged ``ROOT/wav/`` tree, and the archives'
own folder names (``vox1_dev_wav/wav``, ``vox1_test_wav/wav``). ``veri_test.txt`` belongs to verification;
``meta_file`` finds it for that task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file

SPLIT_CODES = {"1": "train", "2": "dev", "3": "test"}
IDEN_SPLIT = "iden_split.txt"
VERI_TEST = "veri_test.txt"
AUDIO_TREES = ("dev/wav", "test/wav", "wav", "vox1_dev_wav/wav", "vox1_test_wav/wav")
_PATH = re.compile(r"^(?P<speaker>[^/\s]+)/(?P<video>[^/\s]+)/(?P<name>[^/\s]+)\.wav$")


class VoxCeleb1(Corpus):
    """VoxCeleb1 identification reader; meta: ``label`` (= ``speaker``, e.g. ``id10001``), ``speaker``, ``video``.

    Utterance ids are the list's paths without ``.wav`` (``id10001/1zcIwhmdeo4/00001``).
    """

    name = "voxceleb1"
    version = 1
    splits = ("train", "dev", "test")
    options: dict[str, Any] = {}

    @property
    def base(self) -> Path:
        """The folder holding the layout: the root, or its one sub-folder that does (``ROOT/VoxCeleb1``)."""
        return layout_root(self.root, _holds_layout, "VoxCeleb1")

    def meta_file(self, name: str) -> Path:
        """``BASE/NAME`` or ``BASE/meta/NAME`` (e.g. ``iden_split.txt``, ``veri_test.txt``)."""
        base = self.base
        tried = [base / name, base / "meta" / name]
        for candidate in tried:
            if candidate.is_file():
                return candidate
        raise CorpusError(f"{tried[0]}: VoxCeleb1 list file not found (also tried {tried[1]}); download "
                          f"{name} from the VoxCeleb1 page into the corpus root")

    def audio_trees(self) -> list[Path]:
        """The ``wav`` folders present, in lookup order (dev archive first)."""
        trees = [self.base / tree for tree in AUDIO_TREES if (self.base / tree).is_dir()]
        if not trees:
            raise CorpusError(f"{self.base / AUDIO_TREES[0]}: VoxCeleb1 audio folder not found (looked for "
                              f"{', '.join(AUDIO_TREES)} under {self.base}); unpack vox1_dev_wav.zip into dev/ "
                              "and vox1_test_wav.zip into test/")
        return trees

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        wanted = self.check_splits(splits)
        listing = self.meta_file(IDEN_SPLIT)
        entries = read_iden_split(listing)
        trees = self.audio_trees()
        out: list[Utterance] = []
        for split in wanted:
            found = []
            for rel, (code_split, lineno) in entries.items():
                if code_split != split:
                    continue
                found.append(_utterance(rel, split, _locate(rel, trees, listing, lineno)))
            out.extend(sorted(found, key=lambda u: u.id))
        return out


def _holds_layout(folder: Path) -> bool:
    return (folder / IDEN_SPLIT).is_file() or (folder / "meta" / IDEN_SPLIT).is_file()


def read_iden_split(path: Path) -> dict[str, tuple[str, int]]:
    """``{relative wav path: (split, line number)}``; blank lines are skipped, anything else must parse."""
    entries: dict[str, tuple[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 2 or fields[0] not in SPLIT_CODES or not _PATH.match(fields[1]):
                raise CorpusError(f"{path}:{lineno}: malformed line {line[:80]!r} "
                                  "(expected '1|2|3 idNNNNN/VIDEO/NNNNN.wav')")
            code, rel = fields
            if rel in entries:
                raise CorpusError(f"{path}:{lineno}: {rel!r} already listed on line {entries[rel][1]}")
            entries[rel] = (SPLIT_CODES[code], lineno)
    return entries


def _locate(rel: str, trees: list[Path], listing: Path, lineno: int) -> Path:
    for tree in trees:
        candidate = tree / rel
        if candidate.is_file():
            return candidate
    raise CorpusError(f"{listing}:{lineno}: {rel!r} is in none of the audio folders "
                      f"({', '.join(str(t) for t in trees)})")


def _utterance(rel: str, split: str, path: Path) -> Utterance:
    match = _PATH.match(rel)
    speaker, video = match.group("speaker"), match.group("video")
    meta = {"label": speaker, "speaker": speaker, "video": video}
    return utterance_from_file(rel.removesuffix(".wav"), split, path, meta)
