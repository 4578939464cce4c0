"""Finding corpora under a data root by their official layouts.

Each corpus reader says whether a folder is the root of its layout (``Corpus.signature``: files only that corpus
has); a task that needs more than a corpus (the CPC phone labels) says how to know that folder (``needs``). The
walk goes breadth first, follows links, and does not look inside a folder once a layout claimed it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from superb.registry import CORPORA

MAX_DEPTH = 4  # DIR/group/corpus/inner: deep enough for an archive's top folder, shallow enough to stay fast


def find_folders(data_root: Path, signatures: dict[str, Callable[[Path], bool]],
                 max_depth: int = MAX_DEPTH) -> dict[str, list[Path]]:
    """``{name: [folders]}``: every folder under ``data_root`` (itself included) that a signature claims."""
    found: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    level = [data_root]
    for _ in range(max_depth + 1):
        deeper = []
        for folder in level:
            real = folder.resolve()
            if real in seen:
                continue
            seen.add(real)
            claimed = [name for name, holds in signatures.items() if holds(folder)]
            for name in claimed:
                found.setdefault(name, []).append(folder)
            if not claimed:
                try:
                    deeper += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
                except OSError:  # unreadable: not ours to judge
                    continue
        level = deeper
    return found


def corpus_signatures() -> dict[str, Callable[[Path], bool]]:
    """Every registered corpus reader's ``signature`` (``generic`` claims nothing)."""
    return {entry.name: CORPORA.get(entry.name).signature for entry in CORPORA.entries()}
