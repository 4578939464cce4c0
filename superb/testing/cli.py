"""Running the ``superb`` command as a user would, for end-to-end tests: a subprocess, its exit and stderr."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_superb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m superb ARGS`` with this interpreter; ``env`` adds to the current environment."""
    return subprocess.run([sys.executable, "-m", "superb", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def run_superb_here(*args: str) -> subprocess.CompletedProcess:
    """``superb ARGS`` in this process, so that a test can make something inside fail (a write refused by a
    full disk); exit status and output as ``run_superb`` returns them. An uncaught exception propagates."""
    from superb.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["superb", *args], code, out.getvalue(), err.getvalue())


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one ``error:`` line, its last, and no traceback; returns that line."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def process_alive(pid: int) -> bool:
    """``pid`` still runs (Linux ``/proc``); a zombie, ended but not yet collected by its parent, is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_results(expdir: Path) -> dict[str, Any]:
    """An expdir's ``results.json``."""
    return json.loads((Path(expdir) / "results.json").read_text())
