"""Source separation data: Libri2Mix as s3prl's ``separation_stft`` reads it (Kaldi-style folders).

s3prl's ``separation_stft/scripts/LibriMix/data_prepare.py`` turns a simulated Libri2Mix into
``ROOT/wav16k/min/PART/COND/{wav.scp, utt2spk, spk2utt}``, one folder per condition (``s1``, ``s2``,
``mix_clean``, and where simulated ``mix_both``, ``mix_single``, ``noise``), and ``subsample.py`` draws
``dev_1000`` from ``dev``. ``--root`` is the folder holding ``wav16k/`` (s3prl's ``datasets/Libri2Mix``), the
``wav16k/min`` folder itself, or a folder with one such copy inside. Options pick another simulation:
``rate`` (``16k`` or ``8k``, resampled to 16 kHz here) and ``mode`` (``min`` or ``max``).

One ``Utterance`` per mixture (``mix_clean``, what the upstream hears), its id the ``wav.scp`` key; meta
``sources``: the paths of ``s1`` and ``s2``, which the separation task reads at fit time for its targets. Every
mixture must have both sources, with the same length and rate (Libri2Mix ``min`` cuts all three to the
shorter utterance); ``utt2spk``/``spk2utt`` and the other conditions are not needed and not read. ``wav.scp``
paths are absolute (as ``data_prepare.py`` writes them) or relative to the ``wav16k/min`` folder.
"""

from __future__ import annotations

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


class Separation(Corpus):
    name = "separation"
    version = 1
    splits = SPLITS
    options: dict[str, Any] = {"rate": "16k", "mode": "min"}

    @property
    def base(self) -> Path:
        """The ``wav{rate}/{mode}`` folder holding the split folders."""
        inner = Path(f"wav{self.opts['rate']}") / str(self.opts["mode"])
        root = layout_root(self.root, lambda p: (p / inner).is_dir() or _holds_splits(p), "Libri2Mix")
        base = root / inner if (root / inner).is_dir() else root
        if not _holds_splits(base):
            raise CorpusError(f"{self.root}: no Libri2Mix folders here; --root is the folder holding "
                              f"{inner}/{{{','.join(SPLITS)}}}/{MIXTURE}/wav.scp (s3prl's data_prepare.py output)")
        return base

    def default_splits(self) -> list[str]:
        """train-100, dev_1000 (else dev) and test, as far as they are there (s3prl's loaderrc dirs)."""
        present = [s for s in SPLITS if (self.base / s / MIXTURE / "wav.scp").is_file()]
        wanted = ["train-100", "dev_1000" if "dev_1000" in present else "dev", "test"]
        return [s for s in wanted if s in present] or present

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            out.extend(read_split(self.base / split, split, self.base))
        return out


def _holds_splits(folder: Path) -> bool:
    return any((folder / split / MIXTURE / "wav.scp").is_file() for split in SPLITS)


def _scp(folder: Path, condition: str) -> Path:
    scp = folder / condition / "wav.scp"
    if not scp.is_file():
        raise CorpusError(f"{scp}: not found; a separation split needs {MIXTURE}/, s1/ and s2/ with wav.scp")
    return scp


def read_split(folder: Path, split: str, base: Path) -> list[Utterance]:
    """The mixtures of one split, sorted by id, each with its two sources (same ids, lengths and rates)."""
    mixtures = read_wav_scp(_scp(folder, MIXTURE), base)
    sources = {c: read_wav_scp(_scp(folder, c), base) for c in SOURCES}
    for condition, listed in sources.items():
        for uid, (_, lineno) in listed.items():
            if uid not in mixtures:
                raise CorpusError(f"{folder / condition / 'wav.scp'}:{lineno}: {uid!r} has no mixture in "
                                  f"{folder / MIXTURE / 'wav.scp'}")
    out = []
    for uid in sorted(mixtures):
        mix_path, lineno = mixtures[uid]
        mix = probe(mix_path)
        paths = []
        for condition, listed in sources.items():
            if uid not in listed:
                raise CorpusError(f"{folder / MIXTURE / 'wav.scp'}:{lineno}: mixture {uid!r} has no line in "
                                  f"{folder / condition / 'wav.scp'}")
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
