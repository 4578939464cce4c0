"""One extraction run writes a store at a time: an ``flock`` on ``STORE.lock``, beside the store.

Two runs writing one store at once can each add splits and leave the attrs listing a split whose arrays
the other one replaced. So ``superb extract`` holds this lock for its whole run, and a second run refuses
with one line naming the holder's PID (the lock file lists the processes holding it). The operating
system drops the lock of a process that dies, ``kill -9`` included, so nothing stale blocks a rerun.

Under ``torchrun`` every process of a run writes the store. Rank 0 takes the lock exclusively, which
proves that no process of another run holds it, then turns it into a shared lock that its peers join;
each process holds its share until it exits. Another run needs the lock exclusively, so it is refused
while any process of the first run is still at work (rank 0 may finish before the others). The file is
never deleted: deleting a lock file while another process has it open would let two runs lock two files.
On network file systems the lock is as good as their ``flock`` (NFS: yes; Lustre: mount with ``flock``).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from superb.errors import StoreError


class WriterLock:
    """The lock of the store at ``store``; ``claim`` (rank 0, or the only process) or ``join`` (a peer)."""

    def __init__(self, store: Path):
        self.store = Path(store)
        self.path = self.store.with_name(self.store.name + ".lock")
        self._fd: int | None = None

    def claim(self) -> None:
        """Take the lock for a new run, or raise ``StoreError`` naming the process that holds it."""
        fd = self._open()
        if not _flock(fd, fcntl.LOCK_EX):
            os.close(fd)
            raise self._busy()
        os.ftruncate(fd, 0)  # the holders of an earlier run are gone: list this run's only
        self._fd = fd
        self._share()

    def join(self) -> None:
        """Hold the lock rank 0 has claimed for this run (the other processes of a ``torchrun`` launch)."""
        self._fd = self._open()
        self._share()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the lock
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)

    def _share(self) -> None:
        """Hold the lock shared and add this process to the holders. Turning rank 0's exclusive lock into
        a shared one is not atomic in ``flock``: should another run take it in between, this run refuses."""
        if not _flock(self._fd, fcntl.LOCK_SH):
            self.release()
            raise self._busy()
        os.write(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode())

    def _busy(self) -> StoreError:
        holders = _live(_holders(self.path))
        who = ", ".join(f"PID {pid} on {host}" for pid, host in holders) or "a process that did not say its PID"
        return StoreError(f"{self.store}: another superb extract is writing this store ({who}); wait for it to "
                          f"finish or stop it, then rerun (the lock is {self.path})")


def _flock(fd: int, mode: int) -> bool:
    """Whether ``fd`` now holds the lock in ``mode``; False, at once, if another process's lock is in the way."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holders(path: Path) -> list[tuple[int, str]]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        pid, _, host = line.partition(" ")
        if pid.isdigit():
            out.append((int(pid), host or "?"))
    return out


def _live(holders: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The holders still running, where this machine can tell (a rank 0 may have finished before its peers)."""
    here = socket.gethostname()

    def alive(pid: int, host: str) -> bool:
        if host != here:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    running = [(pid, host) for pid, host in holders if alive(pid, host)]
    return running or holders
