"""A full or read-only disk under ``superb extract`` and ``superb fit``: one line naming the path and the fix,
no partial file left behind, and a rerun once there is space carries on to the same bytes.

Disk full is real where it can be: a ``*.partial`` file made a link to ``/dev/full`` refuses every write with
ENOSPC from the kernel (the checkpoint, the HDF5 file). Zarr writes each shard under a random temporary name,
so there the error is raised inside zarr's own writer, half-way through a shard. Tests run as root, which
``chmod`` does not stop, so a read-only folder is a ``mkdir`` that fails as the kernel would.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from superb.errors import disk_error
from superb.extract.extraction import ExtractRequest, extract
from superb.stores.base import open_store
from superb.testing.cli import one_error_line, read_results, run_superb_here

SMALL_LAYOUT = ["--chunk-frames", "16", "--shard-frames", "64", "--block-shards", "1"]
needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


def features(store: Path) -> dict[str, bytes]:
    with open_store(store) as opened:
        assert all(done == total for done, total in opened.completeness().values())
        return {f"{name}/{view.ids[i]}": view.features(i).tobytes()
                for name in opened.splits for view in [opened.split(name)] for i in range(len(view))}


def partial_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial" in p.name]


@pytest.fixture(scope="module")
def reference(generic_dir, tmp_path_factory) -> Path:
    """The generic corpus's fbank store, extracted without trouble."""
    out = tmp_path_factory.mktemp("reference")
    result = run_superb_here("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir),
                             "--out", str(out), "-q", *SMALL_LAYOUT)
    assert result.returncode == 0, result.stderr
    return out / "generic"


@pytest.mark.parametrize(("code", "fix"), [
    (errno.ENOSPC, "no space left on device; free space and rerun the same command to carry on where it stopped, "
                   "or start again elsewhere with another --out"),
    (errno.EDQUOT, "disk quota exceeded; free space and rerun the same command to carry on where it stopped, "
                   "or start again elsewhere with another --out"),
    (errno.EROFS, "read-only file system; choose another --out that you can write to"),
    (errno.EACCES, "permission denied; choose another --out that you can write to"),
])
def test_disk_errors_name_the_file_and_the_fix(code, fix):
    named = disk_error(OSError(code, os.strerror(code), "/data/stores/fbank/x/zarr.json"), "/data/stores", "--out")
    assert str(named) == f"/data/stores/fbank/x/zarr.json: {fix}"
    unnamed = disk_error(OSError(code, os.strerror(code)), "/data/stores", "--out")  # a write or close: no name
    assert str(unnamed) == f"/data/stores: {fix}"


def test_other_errors_are_left_alone():
    assert disk_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "x")) is None
    assert disk_error(ValueError("x")) is None
    unreadable_input = PermissionError(errno.EACCES, "Permission denied", "/corpus/a.wav")
    assert str(disk_error(unreadable_input, "/data/stores", "--out")) == "/corpus/a.wav: permission denied"


def test_store_write_on_a_full_disk_then_rerun(generic_dir, reference, tmp_path, monkeypatch):
    from zarr.storage import _local

    real_put, shards = _local._put, []

    def filling_up(path: Path, value, exclusive: bool = False) -> int:
        if "/features/c/" in Path(path).as_posix():
            shards.append(path)
            if len(shards) == 4:  # the fourth of eight shards: the disk is full half-way through it
                path.parent.mkdir(parents=True, exist_ok=True)
                with _local._atomic_write(path, "wb") as handle:
                    data = value.as_buffer_like()
                    handle.write(data[: len(data) // 2])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_put(path, value, exclusive)

    out = tmp_path / "stores"
    args = ["extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out", str(out), "-q",
            *SMALL_LAYOUT]
    with monkeypatch.context() as patch:
        patch.setattr(_local, "_put", filling_up)
        line = one_error_line(run_superb_here(*args))
    assert line == (f"error: {out}: no space left on device; free space and rerun the same command to carry on "
                    "where it stopped, or start again elsewhere with another --out")
    assert len(shards) == 4 and not partial_files(out)
    with open_store(out / "generic") as store:
        done, total = store.completeness()["all"]
        assert 0 < done < total  # the first shard's utterances are kept
    assert run_superb_here(*args).returncode == 0
    assert features(out / "generic") == features(reference)


@needs_dev_full
def test_hdf5_file_on_a_full_disk_then_rerun(generic_dir, reference, tmp_path):
    out = tmp_path / "stores"
    out.mkdir()
    (out / "generic.h5.partial").symlink_to("/dev/full")  # every write to the new HDF5 file: ENOSPC
    args = ["extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out", str(out), "-q",
            "--format", "hdf5", *SMALL_LAYOUT]
    line = one_error_line(run_superb_here(*args))
    assert line.startswith(f"error: {out / 'generic.h5'}: no space left on device; free space and rerun")
    assert not partial_files(out) and (out / "generic.h5.staging").is_dir() and not (out / "generic.h5").exists()
    assert run_superb_here(*args).returncode == 0
    assert not (out / "generic.h5.staging").exists()
    assert features(out / "generic.h5") == features(reference)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_output_folders(code, generic_dir, reference, tmp_path, monkeypatch):
    """``--out``/``-p`` in a folder this user cannot write: one line, and nothing made."""
    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args, **kwargs) -> None:
        if self.resolve().is_relative_to(locked):
            raise OSError(code, os.strerror(code), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    reason = os.strerror(code).lower()
    line = one_error_line(run_superb_here("extract", "-u", "fbank", "--corpus", "generic", "--root",
                                          str(generic_dir), "--out", str(locked / "stores"), "-q"))
    assert line == f"error: {locked / 'stores'}: {reason}; choose another --out that you can write to"
    line = one_error_line(run_superb_here("fit", "-d", "example", "--features", str(reference.parent), "-p",
                                          str(locked / "run"), "-o", "config.runner.total_steps=2"))
    assert line == f"error: {locked / 'run'}: {reason}; choose another -p that you can write to"
    assert not locked.exists()


@pytest.fixture(scope="module")
def ks_store(speech_commands_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "fbank_plain"
    extract(ExtractRequest(upstream="fbank", corpus="speech_commands", root=speech_commands_root, out=out,
                           upstream_options={"cmvn": False}, progress=False))
    return out


@needs_dev_full
def test_checkpoint_on_a_full_disk_then_resume(ks_store, tmp_path):
    args = ["fit", "-d", "ks", "--features", str(ks_store), "-o",
            "config.runner.total_steps=4,,config.runner.save_step=2,,config.runner.eval_step=2,,"
            "config.runner.log_step=2,,config.data.num_workers=0"]
    reference = tmp_path / "reference"
    assert run_superb_here(*args, "-p", str(reference)).returncode == 0
    run = tmp_path / "run"
    run.mkdir()
    (run / "states-4.ckpt.partial").symlink_to("/dev/full")  # the second checkpoint meets a full disk
    line = one_error_line(run_superb_here(*args, "-p", str(run)))
    assert line == (f"error: {run / 'states-4.ckpt'}: no space left on device; free space and rerun it with -a "
                    "to carry on where it stopped, or start again elsewhere with another -p")
    assert not partial_files(run) and (run / "states-2.ckpt").is_file() and not (run / "results.json").exists()
    resumed = run_superb_here(*args, "-p", str(run), "-a")
    assert resumed.returncode == 0, resumed.stderr
    assert read_results(run) == read_results(reference)
    strip = lambda folder: [{k: v for k, v in json.loads(x).items() if k != "steps_per_s"}  # noqa: E731
                            for x in (folder / "log.jsonl").read_text().splitlines()]
    assert strip(run) == strip(reference)
    a, b = (torch.load(folder / "states-4.ckpt", weights_only=True)["model"] for folder in (reference, run))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
