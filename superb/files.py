"""Reading the text files superb is given; writing its own files whole or not at all.

``numbered_lines`` reads every list, TSV and CSV (corpus readers, trial lists, lexicons, word lists): UTF-8,
a leading byte-order mark dropped (Windows editors write one), LF or CRLF line ends. A byte that is not
UTF-8 is one ``file:line`` error, never a traceback and never a silently replaced character.

``replaced`` writes a file whole or not at all: into ``PATH.partial``, renamed over ``PATH`` when complete.
A kill leaves the old file; a failed write (a full disk) removes the partial file, so nothing half-written
stays behind to take the space that ran out.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from superb.errors import CorpusError, SuperbError


def numbered_lines(path: str | os.PathLike[str], what: str = "list", error: type[SuperbError] = CorpusError,
                   keep: Callable[[bytes], bool] | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a UTF-8 text file, its line end (LF or CRLF) removed.

    Args:
        path: the file.
        what: what the file is, for the error when it cannot be opened (``"lexicon"``).
        error: the ``SuperbError`` raised when it cannot be opened or a line is not UTF-8 (``CorpusError``
            for corpus lists, ``ConfigError`` for files named in a config).
        keep: if given, only lines whose bytes it accepts are decoded and yielded (IEMOCAP's free-text
            annotator comments may hold stray bytes that do not matter).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    return lines_of(data, path, what, error, keep)


def lines_of(data: bytes, path: str | os.PathLike[str], what: str = "list", error: type[SuperbError] = CorpusError,
             keep: Callable[[bytes], bool] | None = None) -> Iterator[tuple[int, str]]:
    """The numbered lines of ``data``, the bytes of ``path``, as :func:`numbered_lines` gives them: for a
    caller that also needs the bytes (a lexicon's SHA-256)."""
    lines = data.removeprefix(codecs.BOM_UTF8).split(b"\n")
    if lines[-1] == b"":  # the end of the last line, or an empty file
        lines.pop()
    for lineno, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        if keep is not None and not keep(raw):
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                        f"{exc.start + 1}); save the {what} as UTF-8") from None
        yield lineno, text


@contextmanager
def replaced(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield ``PATH.partial`` to write; on success it replaces ``path``, on any failure it is removed.

    An ``OSError`` that names no file (a write or close refused for lack of space) is given ``path``'s
    name, so the error the user sees says which file could not be written.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        os.replace(partial, path)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            exc.filename = str(path)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (see ``replaced``); returns ``path``."""
    path = Path(path)
    with replaced(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return path
