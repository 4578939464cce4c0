"""A ``torchrun`` worker ends when its launcher does.

torchrun's agent starts each worker in a session of its own, so when the agent is killed (``kill -9``, the
OOM killer, a scheduler stopping only the process it started) nothing stops the workers: they keep running
(and holding GPUs) with no one to collect them, and a rerun would work beside them. Each worker therefore
follows its parent, the agent, two ways:

* Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)``; the kernel sends SIGTERM the moment the parent exits.
  Caveat: "the parent" is the *thread* that started the worker, so a launcher that starts workers from a
  thread which then ends would stop them early. torchrun starts them from its main thread.
* Any POSIX system, and wherever the prctl is missing: a daemon thread that checks ``os.getppid()`` every
  second. An orphan is handed to init (or a subreaper), so a changed parent means the launcher is gone;
  the thread says so on stderr and sends the same SIGTERM.

SIGTERM keeps its default action: the process ends at once, even inside a collective or C code, where a
Python handler would wait. That is safe because whatever superb writes is atomic (checkpoints, logs: a
``.partial`` renamed into place) or marked done only after it is written (store blocks), so, as after
``kill -9``, the same command resumes (with ``-a`` for ``fit``).

Armed only in torchrun workers (the agent sets ``TORCHELASTIC_RUN_ID``): a plain run must not end with the
shell that started it (``nohup superb fit … &``). A launcher that died before this runs, while the worker
was still starting, is seen only when the worker was handed to init (parent pid 1), not to a subreaper.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 1.0
GRACE_SECONDS = 5.0  # after its SIGTERM, a worker that is still alive (a handler caught it) exits hard

_following: int | None = None  # the launcher's pid, once armed


def follow_launcher() -> bool:
    """Tie this process's life to its torchrun agent (once; a no-op outside torchrun). True when armed."""
    global _following
    if _following is not None:
        return True
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return False
    parent = os.getppid()
    _set_parent_death_signal()
    if parent == 1 or os.getppid() != parent:  # the launcher died before the prctl took hold
        _stop(parent)
    _following = parent
    threading.Thread(target=_watch, args=(parent,), name="superb-follow-launcher", daemon=True).start()
    return True


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the watch thread alone notices
        pass


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    _stop(parent)


def _stop(parent: int) -> None:
    try:
        print(f"stopped: the torchrun launcher (pid {parent}) is gone; rerun the same command to resume",
              file=sys.stderr, flush=True)
    except (OSError, ValueError):  # its stderr went with it
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_SECONDS)
    os._exit(128 + int(signal.SIGTERM))
