"""``torchrun -m superb extract``: processes share a store by done groups and leave the bytes of one process;
they stop with their launcher, and a rerun resumes.

Two CPU processes (gloo) on a tiny Speech Commands copy, through the CLI as a user runs it. The upstream is
``slow_upstream:SlowWavLM`` (tiny random WavLM that sleeps per batch) so a run can be killed mid-way. The
layout gives 112 one-shard blocks per split, so done groups hold two blocks (``ceil(112 / 64)``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from superb.extract import extraction
from superb.extract.extraction import ExtractRequest, extract
from superb.stores.base import open_store
from superb.stores.layout import SplitLayout
from superb.testing.cli import process_alive

TESTS = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}
LAYOUT = ["--chunk-frames", "16", "--shard-frames", "16", "--block-shards", "1"]


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["extract", "-u", "slow_upstream:SlowWavLM", "--random-init", "tiny", "--corpus", "speech_commands",
            "--root", str(root), "--splits", "train", "--out", str(out), "-q", *LAYOUT, *extra]


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _torchrun(nproc: int, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_port", _free_port(), "-m", "superb", *args]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    """A run no test kills: the upstream need not sleep (the bytes do not depend on it)."""
    return subprocess.run(command, capture_output=True, text=True, env={**ENV, "SLOW_UPSTREAM_SECONDS": "0"},
                          timeout=120)


def _files(store: Path) -> dict[str, bytes]:
    """Every file's bytes by relative path; the root attrs without ``created`` (a timestamp)."""
    out = {p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}
    root = json.loads(out.pop("zarr.json"))
    root["attributes"].pop("created")
    out["zarr.json (no created)"] = json.dumps(root, sort_keys=True).encode()
    return out


def assert_same_store(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []


def _flags(store: Path) -> np.ndarray:
    return np.asarray(zarr.open_array(str(store / "train" / "shard_done"), mode="r")[:], dtype=bool)


def _pending(stderr: str) -> tuple[int, int]:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("distributed extraction: 2 processes; train: "))
    pending, _, total = line.split("train: ")[1].split(" blocks")[0].partition(" of ")
    return int(pending), int(total)


@pytest.fixture(scope="module")
def reference(speech_commands_root, tmp_path_factory) -> Path:
    """One process, plain ``superb extract``."""
    out = tmp_path_factory.mktemp("ref")
    result = _run([sys.executable, "-m", "superb", *_args(speech_commands_root, out)])
    assert result.returncode == 0, result.stderr
    store = out / "speech_commands"
    group = zarr.open_group(str(store), mode="r")
    assert group.attrs["layout"]["done_groups"] == 64
    assert group["train"]["shard_done"].shape == (112,) and group["train"]["shard_done"].chunks == (2,)
    return store


def test_one_and_two_processes_write_the_same_bytes(reference, speech_commands_root, tmp_path):
    one = _run(_torchrun(1, _args(speech_commands_root, tmp_path / "one")))
    assert one.returncode == 0, one.stderr
    assert_same_store(reference, tmp_path / "one" / "speech_commands")
    two = _run(_torchrun(2, _args(speech_commands_root, tmp_path / "two")))
    assert two.returncode == 0, two.stderr
    assert _pending(two.stderr) == (112, 112) and "rank 0 takes blocks 0-55" in two.stderr
    assert two.stderr.count("RANDOM WEIGHTS") == 1  # said by rank 0 only
    assert_same_store(reference, tmp_path / "two" / "speech_commands")
    holders = (tmp_path / "two" / "speech_commands.lock").read_text().splitlines()
    assert len({line.split()[0] for line in holders}) == 2  # both processes held the writer lock (shared)
    with open_store(tmp_path / "two" / "speech_commands") as store:
        assert store.completeness() == {"train": (40, 40)}


def _workers(agent: int) -> dict[str, int]:
    """torchrun's worker pids by rank (workers run in sessions of their own: kill them by pid)."""
    found = {}
    for pid in Path(f"/proc/{agent}/task/{agent}/children").read_text().split():
        env = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
        if b"RANK" in env:
            found[env[b"RANK"].decode()] = int(pid)
    return found


def test_kill_one_rank_then_rerun_resumes(reference, speech_commands_root, tmp_path):
    """SIGKILL rank 1 mid-way (torchrun then stops rank 0); the same command finishes the same bytes."""
    command = _torchrun(2, _args(speech_commands_root, tmp_path))
    store = tmp_path / "speech_commands"
    proc = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    killed, deadline = False, time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None and not killed:
            try:
                flags = _flags(store)
            except Exception:  # not created yet
                flags = np.zeros(2, dtype=bool)
            half = len(flags) // 2  # rank 0 writes the first half, rank 1 the second
            if flags[:half].any() and flags[half:].any() and not flags[half:].all():
                pid = _workers(proc.pid).get("1")
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
            time.sleep(0.02)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed and proc.returncode != 0, "the run ended before rank 1 could be killed"
    flags = _flags(store)
    assert 0 < flags.sum() < len(flags)
    with open_store(store) as opened:  # processes leave done alone until the split is complete
        assert not opened.split("train").done.any()

    rerun = _run(command)
    assert rerun.returncode == 0, rerun.stderr
    pending, total = _pending(rerun.stderr)
    assert pending == total - int(flags.sum()) and 0 < pending < total  # finished blocks were skipped
    assert_same_store(reference, store)


def test_workers_end_with_a_killed_launcher_and_the_rerun_resumes(reference, speech_commands_root, tmp_path):
    """SIGKILL torchrun's agent mid-way: its workers stop within seconds (they ran on as orphans before
    ``superb.launcher``); the same command then finishes the same bytes."""
    command = _torchrun(2, _args(speech_commands_root, tmp_path))
    store = tmp_path / "speech_commands"
    slowed = {**ENV, "SLOW_UPSTREAM_SECONDS": "1"}  # 56 batches a rank: a minute, were they left to finish
    agent = subprocess.Popen(command, env=slowed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    workers: dict[str, int] = {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline and agent.poll() is None and not workers:
            try:
                if _flags(store).any():  # the workers are writing
                    workers = _workers(agent.pid)
            except Exception:  # no store yet
                pass
            time.sleep(0.05)
        assert sorted(workers) == ["0", "1"] and agent.poll() is None, "the run ended before it could be killed"
        agent.kill()
        agent.wait()
        deadline = time.time() + 15  # a liveness bound, not a timing
        while any(map(process_alive, workers.values())) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(map(process_alive, workers.values()))
    finally:
        for pid in workers.values():
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    flags = _flags(store)
    assert 0 < flags.sum() < len(flags)  # stopped mid-way, not finished

    rerun = _run(command)
    assert rerun.returncode == 0, rerun.stderr
    assert _pending(rerun.stderr)[0] == len(flags) - int(flags.sum())  # finished blocks were skipped
    assert_same_store(reference, store)


def test_hdf5_is_refused_under_torchrun(speech_commands_root, tmp_path):
    result = _run(_torchrun(2, _args(speech_commands_root, tmp_path, "--format", "hdf5")))
    assert result.returncode != 0
    assert f"error: {extraction.HDF5_REFUSED}" in result.stderr.splitlines()
    assert extraction.__file__ not in result.stderr  # one line from each process, no traceback of ours
    assert list(tmp_path.iterdir()) == []


def test_older_store_resumes_alone_and_is_refused_under_torchrun(generic_dir, tmp_path, monkeypatch):
    """A store without ``layout.done_groups`` (one ``shard_done`` chunk) keeps resuming in one process."""
    made = extraction.default_layout
    monkeypatch.setattr(extraction, "default_layout",
                        lambda *a: {k: v for k, v in made(*a).items() if k != "done_groups"})
    req = ExtractRequest(upstream="fbank", corpus="generic", root=generic_dir, out=tmp_path, chunk_frames=16,
                         shard_frames=16, block_shards=1, progress=False)
    store = extract(req)
    group = zarr.open_group(str(store), mode="a")
    flags = group["all"]["shard_done"]
    assert flags.chunks == flags.shape and flags.shape[0] > 4
    before = {p: p.read_bytes() for p in (store / "all" / "features").rglob("*") if p.is_file()}
    flags[2:] = False  # as if killed after two blocks
    layout = SplitLayout(np.asarray(group["all"]["offsets"][:]), shard_frames=16, block_shards=1)
    group["all"]["done"][:] = layout.done_from_shards(np.asarray(flags[:]))
    assert not open_store(store).split("all").done.all()
    extract(req)
    assert np.asarray(flags[:]).all() and open_store(store).split("all").done.all()
    assert {p: p.read_bytes() for p in before} == before

    result = _run(_torchrun(2, ["extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir),
                                "--out", str(tmp_path), "-q"]))
    assert result.returncode != 0
    assert any("predates distributed extraction" in line and "without torchrun" in line
               for line in result.stderr.splitlines() if line.startswith("error: "))
