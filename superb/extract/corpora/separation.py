"""Source separation data: Libri2Mix as s3prl's ``separation_stft`` reads it (Kaldi-style folders).

s3prl's ``separation_stft/scripts/LibriMix/data_prepare.py`` turns a simulated Libri2Mix into
``ROOT/wav16k/min/PART/COND/{wav.scp, utt2spk, spk2utt}``, one folder per condition (``s1``, ``s2``,
``mix_clean``, and where simulated ``mix_both``, ``mix_single``, ``noise``), and ``subsample.py`` draws
``dev_1000`` from ``dev``. ``--root`` is the folder holding ``wav16k/`` (s3prl's ``datasets/Libri2Mix``), the
``wav16k/min`` folder itself, or a folder with one such copy inside. LibriMix's own output (``Libri2Mix/``,
the same folders holding the ``.wav`` files and no lists) is read too, as ``data_prepare.py`` would list it
(the files sorted, each id its file name without ``.wav``), and its ``dev_1000`` drawn from ``dev`` as
``subsample.py`` draws it (``subsample_ids``). Options pick another simulation: ``rate`` (``16k`` or ``8k``,
resampled to 16 kHz here) and ``mode`` (``min`` or ``max``).

One ``Utterance`` per mixture (``mix_clean``, what the upstream hears), its id the ``wav.scp`` key; meta
``sources``: the paths of ``s1`` and ``s2``, which the separation task reads at fit time for its targets. Every
mixture must have both sources, with the same length and rate (Libri2Mix ``min`` cuts all three to the
shorter utterance); ``utt2spk``/``spk2utt`` and the other conditions are not needed and not read. ``wav.scp``
paths are absolute (as ``data_prepare.py`` writes them) or relative to the ``wav16k/min`` folder.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.audio import probe, resampled_length
from superb.extract.corpora.base import Corpus, Utterance, layout_root
from superb.extract.corpora.diarization import read_wav_scp

SPLITS = ("train-100", "train-360", "dev", "dev_1000", "test")
MIXTURE = "mix_clean"  # s3prl's datarc src
SOURCES = ("s1", "s2")  # s3prl's datarc tgt
DEV_SUBSET, DEV_SUBSET_SIZE, DEV_SUBSET_SEED = "dev_1000", 1000, 7  # s3prl's subsample.py defaults


class Separation(Corpus):
    name = "separation"
    version = 1
    splits = SPLITS
    options: dict[str, Any] = {"rate": "16k", "mode": "min"}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / "wav16k" / "min").is_dir() or _holds_splits(folder)

    @property
    def base(self) -> Path:
        """The ``wav{rate}/{mode}`` folder holding the split folders."""
        inner = Path(f"wav{self.opts['rate']}") / str(self.opts["mode"])
        root = layout_root(self.root, lambda p: (p / inner).is_dir() or _holds_splits(p), "Libri2Mix")
        base = root / inner if (root / inner).is_dir() else root
        if not _holds_splits(base):
            raise CorpusError(f"{self.root}: no Libri2Mix folders here; --root is the folder holding "
                              f"{inner}/{{{','.join(SPLITS)}}}/{MIXTURE}/ (wav.scp as s3prl's data_prepare.py "
                              "writes it, or LibriMix's .wav files)")
        return base

    def present(self) -> list[str]:
        """The splits there, ``dev_1000`` included where it can be drawn from ``dev``."""
        found = [s for s in SPLITS if _holds_split(self.base / s)]
        if DEV_SUBSET not in found and "dev" in found:
            found.insert(found.index("dev") + 1, DEV_SUBSET)
        return found

    def default_splits(self) -> list[str]:
        """train-100, dev_1000 and test, as far as they are there (s3prl's loaderrc dirs)."""
        present = self.present()
        return [s for s in ("train-100", DEV_SUBSET, "test") if s in present] or present

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            if split == DEV_SUBSET and not _holds_split(self.base / split):  # drawn from dev, as subsample.py
                dev = read_split(self.base / "dev", "dev", self.base)
                kept = set(subsample_ids([u.id for u in dev], DEV_SUBSET_SIZE, DEV_SUBSET_SEED))
                out.extend(dataclasses.replace(u, split=split) for u in dev if u.id in kept)
            else:
                out.extend(read_split(self.base / split, split, self.base))
        return out


def subsample_ids(ids: Sequence[str], count: int, seed: int = DEV_SUBSET_SEED) -> list[str]:
    """s3prl's ``subsample.py``: the ids sorted, ``random.seed(seed)``, shuffled, the first ``count`` kept, sorted."""
    chosen = sorted(ids)
    rng = random.Random(seed)  # the same draws as random.seed(seed) then random.shuffle
    rng.shuffle(chosen)
    return sorted(chosen[:count])


def _holds_split(folder: Path) -> bool:
    mixtures = folder / MIXTURE
    return (mixtures / "wav.scp").is_file() or (mixtures.is_dir() and any(mixtures.glob("*.wav")))


def _holds_splits(folder: Path) -> bool:
    return any(_holds_split(folder / split) for split in SPLITS)


def _listed(folder: Path, condition: str, base: Path) -> dict[str, tuple[Path, str]]:
    """``{id: (audio path, where it is listed)}`` of a condition: its ``wav.scp``, else its ``.wav`` files."""
    scp = folder / condition / "wav.scp"
    if scp.is_file():
        return {uid: (path, f"{scp}:{lineno}") for uid, (path, lineno) in read_wav_scp(scp, base).items()}
    wavs = sorted((folder / condition).glob("*.wav")) if (folder / condition).is_dir() else []
    if not wavs:
        raise CorpusError(f"{scp}: not found (nor .wav files beside it); a separation split needs {MIXTURE}/, "
                          f"{', '.join(s + '/' for s in SOURCES)} with wav.scp or the .wav files")
    return {path.stem: (path, str(path)) for path in wavs}


def read_split(folder: Path, split: str, base: Path) -> list[Utterance]:
    """The mixtures of one split, sorted by id, each with its two sources (same ids, lengths and rates)."""
    mixtures = _listed(folder, MIXTURE, base)
    sources = {c: _listed(folder, c, base) for c in SOURCES}
    for condition, listed in sources.items():
        for uid, (_, where) in listed.items():
            if uid not in mixtures:
                raise CorpusError(f"{where}: {condition} {uid!r} has no mixture in {folder / MIXTURE}")
    out = []
    for uid in sorted(mixtures):
        mix_path, where = mixtures[uid]
        mix = probe(mix_path)
        paths = []
        for condition, listed in sources.items():
            if uid not in listed:
                raise CorpusError(f"{where}: mixture {uid!r} has no {condition} in {folder / condition}")
            path = listed[uid][0]
            info = probe(path)
            if (info.frames, info.sample_rate) != (mix.frames, mix.sample_rate):
                raise CorpusError(f"{path}: source {condition} of {uid!r} has {info.frames} samples at "
                                  f"{info.sample_rate} Hz, its mixture {mix_path} {mix.frames} at {mix.sample_rate} Hz "
                                  "(the mixture and its sources must line up sample for sample)")
            paths.append(str(Path(path).resolve()))
        out.append(Utterance(id=uid, split=split, path=str(Path(mix_path).resolve()),
                             num_samples=resampled_length(mix.frames, mix.sample_rate), meta={"sources": paths}))
    return out
