"""Exceptions that the CLI turns into one line and a non-zero exit.

Library code raises these (never ``assert``, never ``exit``); only ``superb.cli`` catches them.
Every message names the file, field or value at fault and, where there is one, the fix.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class SuperbError(Exception):
    """Base of every error a user can cause with bad input; printed as ``error: MESSAGE``."""

    exit_code = 2


class AudioError(SuperbError):
    """A file that cannot be decoded: missing, empty, corrupt or of an unsupported format."""


class CorpusError(SuperbError):
    """A corpus root that does not follow its official layout, or a malformed list file."""


class ConfigError(SuperbError):
    """An unknown name or key, or a value of the wrong type, in flags, YAML or overrides."""


class StoreError(SuperbError):
    """A feature store that is missing, incomplete, corrupt, or belongs to another upstream/corpus."""


class CheckpointError(SuperbError):
    """A model checkpoint that cannot be read or does not match the architecture asked for."""


class DiskError(SuperbError):
    """A write the file system refused: the disk (or the quota) is full, or the folder is not writable."""


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def disk_error(exc: BaseException, out: str | os.PathLike[str] | None = None, flag: str | None = None,
               resume: str = "rerun the same command") -> DiskError | None:
    """The one-line ``DiskError`` for an ``OSError`` a full or unwritable file system raised; None for others.

    Args:
        exc: the exception.
        out: the output folder being written; named when the OS did not say which file failed (a full disk
            refuses a write or a close, which carry no file name).
        flag: the option that chose ``out`` (``--out``, ``-p``), for the fix.
        resume: how to carry on once there is space (``rerun it with -a``).
    """
    if not isinstance(exc, OSError) or exc.errno not in _FULL | _NOT_WRITABLE:
        return None
    where = exc.filename or out
    said = f"{where}: " if where else ""
    reason = os.strerror(exc.errno).lower()
    if exc.errno in _FULL:
        elsewhere = f", or start again elsewhere with another {flag}" if flag else ""
        return DiskError(f"{said}{reason}; free space and {resume} to carry on where it stopped{elsewhere}")
    writing = exc.errno == errno.EROFS or exc.filename is None or (out is not None and _nested(exc.filename, out))
    if not writing:  # e.g. a corpus file this user may not read: no advice about the output
        return DiskError(f"{said}{reason}")
    return DiskError(f"{said}{reason}; choose {f'another {flag}' if flag else 'a folder'} that you can write to")


def _nested(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """One of the two paths lies inside the other (a file of the output folder, or a folder made for it)."""
    a, b = Path(a).resolve(), Path(b).resolve()
    return a.is_relative_to(b) or b.is_relative_to(a)


@contextmanager
def disk_errors(out: str | os.PathLike[str], flag: str, resume: str = "rerun the same command") -> Iterator[None]:
    """Within it, a full or unwritable file system becomes a ``DiskError`` that names ``out`` and ``flag``."""
    try:
        yield
    except OSError as exc:
        error = disk_error(exc, out, flag, resume)
        if error is None:
            raise
        raise error from None


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """A ``ConfigError`` for an unknown registry name, with close matches and the full list."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Available: {', '.join(choices)}.")
