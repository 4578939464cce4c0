"""Exceptions that the CLI turns into one line and a non-zero exit.

Library code raises these (never ``assert``, never ``exit``); only ``superb.cli`` catches them.
Every message names the file, field or value at fault and, where there is one, the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """A ``ConfigError`` for an unknown registry name, with close matches and the full list."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Available: {', '.join(choices)}.")
