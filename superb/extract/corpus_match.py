"""A store knows its corpus: a rerun must list the very utterances the store was laid out for.

A store's offsets follow from each utterance's sample count, fixed when its split was added; so a rerun
whose corpus lists other utterances (another root, files added or removed, another length) would resume
or report ``store complete`` over the wrong list. Such a run is refused. A corpus that only moved (another
root or other audio paths, the same ids, sample counts and segments) is the same corpus: the run says so
and the store records where it is now, so a resume reads the audio there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from superb.errors import StoreError

KEY = ("num_samples", "start", "frames")  # with the id: what a split's layout was computed from


def check_same_utterances(path: Path, root: str, held: dict[str, list[dict[str, Any]]],
                          fresh: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse, in one line, a corpus that lists other utterances than a split of the store holds."""
    for split, stored in held.items():
        difference = _difference(stored, fresh.get(split, []))
        if difference:
            raise StoreError(f"{path}: split {split!r} of the store holds other utterances than the corpus at "
                             f"{root} ({difference}); extract to another --out, or delete the store")


def moved(existing: dict[str, Any], now: dict[str, Any], held: dict[str, list[dict[str, Any]]],
          fresh: dict[str, list[dict[str, Any]]]) -> str | None:
    """How the corpus moved since the store was made (its root, options naming folders, audio paths), or None.

    Called once ``check_same_utterances`` passed: the utterances are the same."""
    changes = [f"{key} {existing.get(key)} -> {now.get(key)}" for key in ("root", "options")
               if existing.get(key) != now.get(key)]
    paths = sum(a["path"] != b["path"] for split in held for a, b in zip(held[split], fresh[split], strict=True))
    if paths:
        changes.append(f"{paths} audio paths changed")
    return "; ".join(changes) or None


def _difference(stored: list[dict[str, Any]], listed: list[dict[str, Any]]) -> str | None:
    """The first way ``listed`` (the corpus now) differs from ``stored`` (the store's rows), in words."""
    old = {r["id"]: r for r in stored}
    new = {r["id"]: r for r in listed}
    if old.keys() != new.keys():
        added, gone = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
        words = [f"store {len(stored)} utterances, corpus {len(listed)}"]
        if added:
            words.append(f"{len(added)} not in the store, e.g. {added[0]!r}")
        if gone:
            words.append(f"{len(gone)} not in the corpus, e.g. {gone[0]!r}")
        return "; ".join(words)
    for uid, record in old.items():
        for key in KEY:
            if record.get(key) != new[uid].get(key):
                return f"utterance {uid!r}: {key} {record.get(key)} in the store, {new[uid].get(key)} in the corpus"
    if [r["id"] for r in stored] != [r["id"] for r in listed]:
        return "the same utterances in another order"
    return None
