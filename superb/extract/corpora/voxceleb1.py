"""VoxCeleb1 for speaker identification: ``{dev,test}/wav/idNNNNN/VIDEO/NNNNN.wav`` and ``iden_split.txt``.

``iden_split.txt`` lines are ``1|2|3 idNNNNN/VIDEO/NNNNN.wav`` (train, dev, test). Its paths do not say which
archive holds the file: the identification split draws on all 1,251 speakers, the 40 ``test`` speakers
included, so each path is looked up in every audio tree. Accepted variants: a folder in between
(``ROOT/VoxCeleb1/...``), the list files in ``ROOT/meta/``, one merged ``ROOT/wav/`` tree, and the archives'
own folder names (``vox1_dev_wav/wav``, ``vox1_test_wav/wav``). ``veri_test.txt`` belongs to verification;
``meta_file`` finds it for that task.

With ``verification=true`` (``superb extract -c verification=true``; store ``voxceleb1_sv``) the reader
serves ASV as s3prl's ``sv_voxceleb1`` does: split ``train`` is every wav of the dev archive, ``test`` every
wav of the test archive (with one merged ``wav/`` tree: the speakers of ``veri_test.txt`` are test). With
``trim=true`` (the default there) each file is decoded once to find what s3prl's sox chain keeps
(``gain -3``, ``silence 1 0.1 0.1% -1 0.1 0.1%``; ``superb.extract.trim``); that edit is recorded in each
utterance's ``meta["audio_edit"]`` and applied before the upstream, and train files whose trimmed audio is
not longer than ``min_seconds`` (2 s) are dropped, with a warning that counts them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract import audio
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file
from superb.files import numbered_lines

SPLIT_CODES = {"1": "train", "2": "dev", "3": "test"}
IDEN_SPLIT = "iden_split.txt"
VERI_TEST = "veri_test.txt"
AUDIO_TREES = ("dev/wav", "test/wav", "wav", "vox1_dev_wav/wav", "vox1_test_wav/wav")
DEV_TREES = ("dev/wav", "vox1_dev_wav/wav")
TEST_TREES = ("test/wav", "vox1_test_wav/wav")
MERGED_TREE = "wav"
_PATH = re.compile(r"^(?P<speaker>[^/\s]+)/(?P<video>[^/\s]+)/(?P<name>[^/\s]+)\.wav$")


class VoxCeleb1(Corpus):
    """VoxCeleb1 identification reader; meta: ``label`` (= ``speaker``, e.g. ``id10001``), ``speaker``, ``video``.

    Utterance ids are the list's paths without ``.wav`` (``id10001/1zcIwhmdeo4/00001``).
    """

    name = "voxceleb1"
    version = 1
    splits = ("train", "dev", "test")
    options: dict[str, Any] = {"verification": False, "trim": True, "min_seconds": 2.0}
    counting_options = {"trim": False}  # untrimmed audio: an upper bound, without decoding every file

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / IDEN_SPLIT).is_file() or (folder / "meta" / IDEN_SPLIT).is_file()

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        if not isinstance(self.opts["verification"], bool) or not isinstance(self.opts["trim"], bool):
            raise CorpusError("corpus 'voxceleb1': options verification and trim take true or false")
        if self.verification:
            self.splits = ("train", "test")

    @property
    def verification(self) -> bool:
        return bool(self.opts["verification"])

    @property
    def store_name(self) -> str:
        return "voxceleb1_sv" if self.verification else self.name

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
        if self.verification:
            return self._verification_utterances(wanted)
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


    # -- verification (ASV) --------------------------------------------------------------------------
    def _verification_utterances(self, wanted: list[str]) -> list[Utterance]:
        files = self._verification_files()
        out: list[Utterance] = []
        for split in wanted:
            found = [_utterance(rel, split, path) for rel, path in sorted(files[split].items())]
            if self.opts["trim"]:
                found = self._trimmed(found, drop_short=split == "train")
            out.extend(found)
        return out

    def _verification_files(self) -> dict[str, dict[str, Path]]:
        """``{split: {relative path: file}}``: the dev archive is train, the test archive test."""
        base = self.base
        dev = [base / t for t in DEV_TREES if (base / t).is_dir()]
        test = [base / t for t in TEST_TREES if (base / t).is_dir()]
        if not dev and not test and (base / MERGED_TREE).is_dir():
            trials = read_trials(self.meta_file(VERI_TEST))
            test_speakers = {uid.split("/")[0] for _, a, b in trials for uid in (a, b)}
            files = _wavs([base / MERGED_TREE])
            return {"train": {r: p for r, p in files.items() if r.split("/")[0] not in test_speakers},
                    "test": {r: p for r, p in files.items() if r.split("/")[0] in test_speakers}}
        if not dev or not test:
            missing = DEV_TREES[0] if not dev else TEST_TREES[0]
            raise CorpusError(f"{base / missing}: VoxCeleb1 audio folder not found; verification needs the dev "
                              "archive in dev/wav and the test archive in test/wav")
        return {"train": _wavs(dev), "test": _wavs(test)}

    def _trimmed(self, found: list[Utterance], drop_short: bool) -> list[Utterance]:
        """Each utterance with s3prl's sox edit recorded (decoding every file once, on threads; the intervals
        are cached, so a resumed extraction lists the corpus without decoding it again)."""
        from superb.extract.trim import DURATION, GAIN_DB, THRESHOLD, silence_intervals
        from superb.extract.trim_cache import TrimCache

        cache = TrimCache(self.base, {"gain_db": GAIN_DB, "duration": DURATION, "threshold": THRESHOLD, "v": 1})

        def edit(u: Utterance) -> Utterance:
            keep = cache.get(u.path)
            if keep is None:
                keep = [[int(a), int(b)] for a, b in silence_intervals(audio.read(u.path, expected=u.num_samples))]
                cache.put(u.path, keep)
            kept = sum(b - a for a, b in keep)
            if kept == 0:  # all "silence" (sox would return nothing): keep the file whole rather than nothing
                keep, kept = [[0, u.num_samples]], u.num_samples
            meta = {**u.meta, audio.EDIT_KEY: {"gain_db": GAIN_DB, "keep": keep}}
            return Utterance(u.id, u.split, u.path, kept, meta)

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            edited = list(pool.map(edit, found))
        least = int(float(self.opts["min_seconds"]) * audio.SAMPLE_RATE)
        kept = [u for u in edited if not drop_short or u.num_samples > least]
        if len(kept) < len(edited):
            warnings.warn(f"voxceleb1: {len(edited) - len(kept)} of {len(edited)} train utterances are "
                          f"{self.opts['min_seconds']} s or shorter after silence trimming and are left out "
                          "(as s3prl does)")
        return kept


def _holds_layout(folder: Path) -> bool:
    if (folder / IDEN_SPLIT).is_file() or (folder / "meta" / IDEN_SPLIT).is_file():
        return True
    return any((folder / tree).is_dir() for tree in AUDIO_TREES)


def _wavs(trees: list[Path]) -> dict[str, Path]:
    """``{idNNNNN/VIDEO/NNNNN.wav: file}`` of every wav under ``trees`` (the first tree wins a clash)."""
    out: dict[str, Path] = {}
    for tree in trees:
        for path in sorted(tree.glob("*/*/*.wav")):
            out.setdefault(path.relative_to(tree).as_posix(), path)
    if not out:
        raise CorpusError(f"{trees[0]}: no idNNNNN/VIDEO/NNNNN.wav files found")
    return out


def read_trials(path: str | os.PathLike[str]) -> list[tuple[int, str, str]]:
    """``(label, utterance1, utterance2)`` per line of ``LABEL PATH1 PATH2`` (``veri_test.txt`` and kin).

    Utterance ids are the paths without ``.wav`` (``id10270/x6uYqmx31kE/00001``), as the VoxCeleb1 reader
    names utterances. Blank lines are skipped; any other line that does not parse raises ``CorpusError``
    naming ``path:line``.
    """
    path = Path(path)
    trials: list[tuple[int, str, str]] = []
    if not path.is_file():
        raise CorpusError(f"{path}: trial list not found")
    for lineno, raw in numbered_lines(path, "trial list"):
        line = raw.strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3 or fields[0] not in ("0", "1") or not all(map(_PATH.match, fields[1:])):
            raise CorpusError(f"{path}:{lineno}: malformed trial {line[:100]!r} "
                              "(expected 'LABEL idNNNNN/VIDEO/NNNNN.wav idNNNNN/VIDEO/NNNNN.wav', LABEL 0 or 1)")
        trials.append((int(fields[0]), fields[1].removesuffix(".wav"), fields[2].removesuffix(".wav")))
    return trials


def read_iden_split(path: Path) -> dict[str, tuple[str, int]]:
    """``{relative wav path: (split, line number)}``; blank lines are skipped, anything else must parse."""
    entries: dict[str, tuple[str, int]] = {}
    for lineno, raw in numbered_lines(path):
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
