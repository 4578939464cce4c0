"""The corpus contract: a reader turns an official directory layout into a list of ``Utterance``s.

A reader never decodes audio: it reads list files and audio headers (``superb.extract.audio.probe``) so
the store's layout is known up front. It checks the layout and raises ``CorpusError`` naming the missing
or malformed file. Harmless variants (extra files, other file-name case) are accepted.

To add a corpus: subclass ``Corpus``, set ``name``, ``version``, ``splits`` and ``options``, implement
``utterances``, and register it in ``superb/registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from superb.errors import ConfigError, CorpusError
from superb.extract.audio import SAMPLE_RATE, probe, resampled_length


@dataclass(frozen=True)
class Utterance:
    """One item to extract. ``meta`` holds what tasks need (speaker, transcript, label …), JSON-safe."""

    id: str
    split: str
    path: str  # absolute path of the source audio file
    num_samples: int  # length at 16 kHz, after cutting [start, start + frames)
    meta: dict[str, Any] = field(default_factory=dict)
    start: int = 0  # first sample of the segment, at the file's own rate
    frames: int = -1  # segment length at the file's own rate; -1 = to the end of the file

    @property
    def duration(self) -> float:
        """Seconds at 16 kHz."""
        return self.num_samples / SAMPLE_RATE

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def utterance_from_file(uid: str, split: str, path: Path, meta: dict[str, Any] | None = None) -> Utterance:
    """An ``Utterance`` covering a whole file, its 16 kHz length read from the header."""
    info = probe(path)
    return Utterance(
        id=uid,
        split=split,
        path=str(Path(path).resolve()),
        num_samples=resampled_length(info.frames, info.sample_rate),
        meta=dict(meta or {}),
    )


def layout_root(root: Path, holds_layout: Callable[[Path], bool], what: str) -> Path:
    """``root`` if it holds the layout, else its one sub-folder that does (an archive's top folder)."""
    if holds_layout(root):
        return root
    inner = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".") and holds_layout(p)]
    if len(inner) > 1:
        raise CorpusError(f"{root}: several {what} copies inside ({', '.join(p.name for p in inner)}); "
                          "pass one of them as --root")
    return inner[0] if inner else root


class Corpus:
    """Base class of corpus readers.

    Class attributes:
        name: registry name.
        version: reader version, stored in the store's attrs; bump it when the utterance list changes.
        splits: the corpus's split names, in their usual order (the default of ``--splits``).
        options: the keyword options the reader accepts (e.g. ``test_root``), with defaults.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    splits: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Any]] = {}
    #: options that make ``utterances`` cheap where only the audio is counted (``superb bench``'s plan), e.g. no
    #: trimming that decodes every file; the counts may then be an upper bound
    counting_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, root: str | Path, **options: Any):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"corpus {self.name!r} takes no option {unknown[0]!r} (options: {allowed})")
        self.root = Path(root).expanduser().resolve()
        self.opts: dict[str, Any] = {**self.options, **{k: v for k, v in options.items() if v is not None}}
        if not self.root.exists():
            raise CorpusError(f"{self.root}: corpus root of {self.name!r} not found")

    @property
    def store_name(self) -> str:
        """The store's folder under ``--out``: the corpus name, unless options make another store of it
        (VoxCeleb1 for verification: ``voxceleb1_sv``)."""
        return self.name

    def describe(self) -> dict[str, Any]:
        """Identity recorded in the store: name, root, reader version and options."""
        opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.opts.items()}
        return {"name": self.name, "root": str(self.root), "version": self.version, "options": opts}

    def check_splits(self, splits: Sequence[str]) -> list[str]:
        unknown = [s for s in splits if s not in self.splits]
        if unknown:
            raise ConfigError(
                f"corpus {self.name!r} has no split {unknown[0]!r} (splits: {', '.join(self.splits)})"
            )
        return list(splits)

    @classmethod
    def signature(cls, folder: Path) -> bool:
        """Whether ``folder`` is the root of this corpus's official layout, told by files only it has (``superb
        bench`` finds corpora under a data root with it). Readers that cannot tell (``generic``) say no."""
        return False

    def default_splits(self) -> list[str]:
        """The splits to extract when ``--splits`` is not given: all of them (readers may narrow this)."""
        return list(self.splits)

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        """Every utterance of ``splits``, in a deterministic order (split by split, then sorted ids)."""
        raise NotImplementedError
