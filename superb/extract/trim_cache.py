"""A cache of silence-trim intervals, so a rerun of ``superb extract`` (a resume) does not decode a corpus
twice just to list it.

One JSON line per file: ``{"path", "size", "mtime_ns", "keep"}`` (``keep``: the intervals, or whatever JSON a
reader measured of the file, e.g. the QbE front end's gain and speech span), appended as files are trimmed, so a
killed listing keeps what it had done (a torn last line is ignored). An entry counts only while the
file's size and modification time match. The cache lives in ``$SUPERB_CACHE`` (default
``~/.cache/superb``), one file per corpus root and trim settings, never in the corpus folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

Intervals = list[list[int]]


def cache_dir() -> Path:
    return Path(os.environ.get("SUPERB_CACHE") or Path.home() / ".cache" / "superb")


class TrimCache:
    def __init__(self, root: Path, settings: dict[str, Any]):
        key = hashlib.sha256(json.dumps([str(root), settings], sort_keys=True).encode()).hexdigest()[:16]
        self.path = cache_dir() / f"trim-{key}.jsonl"
        self._lock = threading.Lock()
        self._known: dict[str, tuple[int, int, Any]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._known[entry["path"]] = (int(entry["size"]), int(entry["mtime_ns"]), entry["keep"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a kill, or not ours

    @staticmethod
    def _stamp(path: str) -> tuple[int, int]:
        stat = os.stat(path)
        return stat.st_size, stat.st_mtime_ns

    def get(self, path: str) -> Any:
        entry = self._known.get(path)
        if entry is None or entry[:2] != self._stamp(path):
            return None
        return entry[2]

    def put(self, path: str, keep: Any) -> None:
        size, mtime = self._stamp(path)
        line = json.dumps({"path": path, "size": size, "mtime_ns": mtime, "keep": keep}) + "\n"
        with self._lock:
            self._known[path] = (size, mtime, keep)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(line)
            except OSError:
                pass  # an unwritable cache only costs time
