"""``superb.launcher``: a torchrun worker stops when its launcher is gone; a plain run never does.

The torchrun case itself (``prctl`` death signal, through a real launch) is in test_distributed_extract.py;
here the parent-watch thread, the fallback where the prctl is missing, with no torch at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from superb import launcher
from superb.testing.cli import process_alive

WORKER = """
import time
from superb import launcher
launcher._set_parent_death_signal = lambda: None  # as where there is no prctl: the watch thread alone
assert launcher.follow_launcher()
print("armed", flush=True)
time.sleep(60)
"""
LAUNCHER = f"""
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", {WORKER!r}], start_new_session=True)  # as torchrun does
print(worker.pid, flush=True)
time.sleep(60)
"""


def test_a_worker_whose_launcher_is_killed_stops():
    env = {**os.environ, "TORCHELASTIC_RUN_ID": "test", "PYTHONPATH": str(Path(launcher.__file__).parents[1])}
    parent = subprocess.Popen([sys.executable, "-c", LAUNCHER], env=env, stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    try:
        assert parent.stdout.readline() == "armed\n"  # the worker shares its launcher's stdout
        assert process_alive(worker)
        parent.kill()
        parent.wait()
        deadline = time.time() + 15  # a liveness bound, not a timing
        while process_alive(worker) and time.time() < deadline:
            time.sleep(0.05)
        assert not process_alive(worker)
    finally:
        if process_alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_outside_torchrun_nothing_is_armed(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert not launcher.follow_launcher()
