"""Running the ``superb`` command as a user would, for end-to-end tests: a subprocess, its exit and stderr."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any


def torchrun(*args: str, processes: int = 2, **popen: Any) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node N -m superb ARGS`` (one torch thread per process), started."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "superb", *args]
    return subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finished(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """A started command's exit status and stderr, once it ends."""
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def kill_launch(launcher: subprocess.Popen, ready: Any, timeout: float = 120) -> None:
    """Once ``ready()`` holds, SIGKILL a torchrun launch: its workers (each in its own session, so killing the
    launcher's group misses them) and the launcher, as a preemption would."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.02)
    for pid in [*_children(launcher.pid), launcher.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    launcher.communicate()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alone_and_shared(run_here: Any, args: tuple[str, ...], alone: Path, shared: Path, processes: int = 2) -> None:
    """``superb ARGS -p ALONE`` in this process (``run_here``) while ``torchrun`` runs ``ARGS -p SHARED`` on
    ``processes`` processes beside it; both must succeed."""
    started = torchrun(*args, "-p", str(shared), processes=processes)
    result = run_here(*args, "-p", str(alone))
    assert result.returncode == 0, result.stderr
    code, err = finished(started)
    assert code == 0, err


def run_superb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m superb ARGS`` with this interpreter; ``env`` adds to the current environment."""
    return subprocess.run([sys.executable, "-m", "superb", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def run_superb_here(*args: str, threads: int | None = None) -> subprocess.CompletedProcess:
    """``superb ARGS`` in this process: the same CLI without a new interpreter, torch and its compiler to
    import (7 s a training run here), and a test can make something inside fail (a write refused by a full
    disk). Exit status and output as ``run_superb`` returns them; an uncaught exception propagates.
    ``threads``: torch's intra-op threads for the run (``OMP_NUM_THREADS`` of a subprocess), then restored."""
    import torch

    from superb.cli import main

    out, err = io.StringIO(), io.StringIO()
    code, previous = 0, torch.get_num_threads()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        _warn_as_a_new_interpreter_does()
        try:
            torch.set_num_threads(threads or previous)
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            torch.set_num_threads(previous)
    return subprocess.CompletedProcess(["superb", *args], code, out.getvalue(), err.getvalue())


def _warn_as_a_new_interpreter_does() -> None:
    """Python's default warning filters, each warning printed to (the redirected) stderr: a test runner's
    own filters and recorders would swallow the warnings the command prints."""
    warnings.resetwarnings()
    for action, category in (("ignore", ResourceWarning), ("ignore", ImportWarning),
                             ("ignore", PendingDeprecationWarning), ("ignore", DeprecationWarning)):
        warnings.simplefilter(action, category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


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
