"""Checkpoint files that are not what they should be: ``evaluate -e``, ``fit -e/-a/-i`` and ``extract --ckpt``
answer an empty, cut short, foreign or code-carrying file with one line, never with torch's advice to load it
with ``weights_only=False``, and never run what a pickle names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from superb.testing.cli import one_error_line, run_superb_here


class _Code:
    """Pickles as a call of ``os.system``: loading it for real would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """name → (file, what its error line must say)."""
    folder = tmp_path_factory.mktemp("bad")
    whole = folder / "whole.ckpt"
    torch.save({"model": {"w": torch.zeros(64, 64)}, "args": {}, "config": {}, "progress": {}}, whole)
    files = {
        "empty": (b"", "not a readable PyTorch checkpoint: the file is empty (0 bytes)"),
        "cut short": (whole.read_bytes()[:-200], "not a readable PyTorch checkpoint: cut short"),
        "cut short, legacy format": (None, "not a readable PyTorch checkpoint, truncated or corrupt"),
        "foreign dict": (None, "not a checkpoint of superb fit (top level: ['epoch', 'weights']"),
        "a whole module": (None, "pickles 'torch.nn.modules.linear.Linear', which is not on the allow-list"),
        "code": (None, "pickles 'posix.system', which is not on the allow-list"),
    }
    out = {}
    for name, (data, said) in files.items():
        path = folder / (name.replace(" ", "_").replace(",", "") + ".ckpt")
        if name == "cut short, legacy format":
            torch.save({"w": torch.zeros(64, 64)}, path, _use_new_zipfile_serialization=False)
            path.write_bytes(path.read_bytes()[:-200])
        elif name == "foreign dict":
            torch.save({"weights": torch.zeros(3), "epoch": 3}, path)
        elif name == "a whole module":
            torch.save({"model": torch.nn.Linear(2, 2)}, path)
        elif name == "code":
            torch.save({"model": {"w": _Code(folder / "ran")}}, path)
        else:
            path.write_bytes(data)
        out[name] = (path, said)
    return out


CASES = ["empty", "cut short", "cut short, legacy format", "foreign dict", "a whole module", "code"]


def _assert_refused(line: str, path: Path, said: str) -> None:
    assert line.startswith(f"error: {path}: ") and said in line, line
    assert "weights_only" not in line


@pytest.mark.parametrize("case", CASES)
def test_evaluate_and_resume_refuse_in_one_line(case, bad_files, tmp_path):
    path, said = bad_files[case]
    _assert_refused(one_error_line(run_superb_here("evaluate", "-e", str(path))), path, said)
    _assert_refused(one_error_line(run_superb_here("fit", "-d", "example", "-e", str(path))), path, said)
    expdir = tmp_path / "run"
    expdir.mkdir()
    copy = expdir / "states-3.ckpt"
    copy.write_bytes(path.read_bytes())
    _assert_refused(one_error_line(run_superb_here("fit", "-d", "example", "--features", str(tmp_path), "-p",
                                                   str(expdir), "-a")), copy, said)
    assert not (path.parent / "ran").exists()


def test_init_checkpoint_refuses_in_one_line(bad_files, librispeech_fbank_store, tmp_path):
    for case in ("empty", "foreign dict", "code"):
        path, said = bad_files[case]
        line = one_error_line(run_superb_here("fit", "-d", "example", "--features", str(librispeech_fbank_store),
                                              "-p", str(tmp_path / case.replace(" ", "_")), "-i", str(path)))
        _assert_refused(line, path, said)


def test_a_pickle_in_a_hugging_face_folder_is_refused_as_a_fairseq_one(generic_dir, tmp_path):
    marker = tmp_path / "ran"
    fairseq = tmp_path / "model.pt"
    torch.save({"cfg": {}, "model": {"w": _Code(marker)}}, fairseq)
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    torch.save({"wav2vec2.w": _Code(marker)}, folder / "pytorch_model.bin")
    lines = {}
    for ckpt in (fairseq, folder):
        lines[ckpt] = one_error_line(run_superb_here("extract", "-u", "wav2vec2", "--ckpt", str(ckpt), "--corpus",
                                                     "generic", "--root", str(generic_dir), "--out",
                                                     str(tmp_path / "out"), "-q"))
    said = ": the checkpoint pickles 'posix.system', which is not on the allow-list"
    assert lines[fairseq].startswith(f"error: {fairseq}{said}")
    assert lines[folder] == lines[fairseq].replace(str(fairseq), str(folder / "pytorch_model.bin"))
    assert not marker.exists() and not (tmp_path / "out").exists()
