"""``superb bench``: corpora found under a data root by their layouts, the plan (``--dry-run`` writes nothing), the
stages run and recorded, a rerun that redoes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from superb.testing.cli import one_error_line, run_superb_here


def superb(*args: str):
    return run_superb_here(*args, threads=1)


def data_root(speech_commands_root: Path, where: Path) -> Path:
    """A data root holding the Speech Commands copy (train folder and test set) one level down, and a folder
    of other files no layout claims."""
    root = where / "data"
    (root / "downloads" / "notes").mkdir(parents=True)
    (root / "downloads" / "notes" / "README.txt").write_text("not a corpus\n")
    (root / "speech_commands").symlink_to(speech_commands_root.parent, target_is_directory=True)
    return root


def test_dry_run_plans_what_is_there_and_names_what_is_missing(speech_commands_root, tmp_path):
    root = data_root(speech_commands_root, tmp_path)
    out = tmp_path / "bench"
    plan = ("bench", "-u", "fbank", "--data-root", str(root), "-p", str(out), "--tasks", "ks")
    result = superb(*plan[:-1], "ks,er,sid,phone_linear,qbe", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["speech_commands", str(root / "speech_commands" / speech_commands_root.name)]
               for line in lines), result.stdout
    stages = lines[lines.index("stages:") + 1:]
    stages = [line.split()[1:3] for line in stages[:stages.index("")]]
    assert stages == [["extract", "speech_commands"], ["sweep", "ks"], ["report"]]
    missing = {line.split()[0]: line.split(None, 1)[1] for line in lines[lines.index("tasks that cannot run:") + 1:]}
    assert missing == {"er": "iemocap: not found", "sid": "voxceleb1: not found",
                       "phone_linear": "librispeech: not found; labels: not found", "qbe": "quesst14: not found"}
    assert "fits" in result.stdout and not out.exists()  # a dry run writes nothing

    (root / "again").symlink_to(speech_commands_root.parent, target_is_directory=True)  # the same folder: one copy
    linked = superb(*plan, "--dry-run").stdout
    assert "several copies" not in linked and "sweep ks" in linked
    shutil.copytree(speech_commands_root.parent, root / "copy")
    twice = superb(*plan, "--dry-run")
    assert "ks                   speech_commands: several copies" in twice.stdout
    assert "--root speech_commands=PATH" in twice.stdout
    chosen = superb(*plan, "--dry-run", "--root", f"speech_commands={root / 'copy' / speech_commands_root.name}")
    assert "sweep ks" in chosen.stdout and "cannot run" not in chosen.stdout
    assert "--dtype 'int8': choose float16 or float32" in one_error_line(superb(*plan, "--dry-run", "--dtype", "int8"))
    assert "unknown task or evaluation 'qbee'. Did you mean 'qbe'?" in one_error_line(
        superb(*plan[:-1], "ks,qbee", "--dry-run"))
    lost = superb(*plan, "--dry-run", "--root", f"speech_commands={tmp_path / 'nowhere'}")
    assert "--root speech_commands=" in one_error_line(lost) and "not a folder" in one_error_line(lost)


def test_killed_it_resumes_and_a_rerun_redoes_nothing(speech_commands_root, tmp_path):
    """``kill -9`` once the extraction is recorded (the sweep under way): the same command skips the extraction,
    finishes the sweep and the report; run again, it redoes nothing."""
    root = data_root(speech_commands_root, tmp_path)
    out = tmp_path / "bench"
    args = ("bench", "-u", "fbank", "--data-root", str(root), "-p", str(out), "--tasks", "ks", "--max-steps", "2",
            "--lr", "1e-3,1e-4")
    victim = subprocess.Popen([sys.executable, "-m", "superb", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while victim.poll() is None and time.monotonic() < deadline and \
                not _recorded(out / "bench.json", "extract speech_commands"):
            time.sleep(0.02)
    finally:
        victim.kill()
        victim.wait()
    assert not (out / "report.md").exists(), "the bench ended before it could be killed"

    first = superb(*args)
    assert first.returncode == 0, first.stderr
    assert "[1/3] extract speech_commands: done already" in first.stderr and "[2/3] sweep ks: done" in first.stderr
    state = json.loads((out / "bench.json").read_text())
    assert state["settings"]["max_steps"] == 2
    assert {name: stage["status"] for name, stage in state["stages"].items()} == \
           {"extract speech_commands": "done", "sweep ks": "done"}
    sweep = json.loads((out / "runs" / "ks" / "sweep.json").read_text())
    assert [h["name"] for h in sweep["heads"]] == ["lr0.001_seed0_layerall", "lr0.0001_seed0_layerall"]
    report = (out / "report.md").read_text()
    assert report.startswith("**Smoke run**: every task stopped after 2 steps") and "| fbank |" in report
    assert (out / "report.csv").is_file() and (out / "report.json").is_file()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["stores"]["speech_commands"]["corpus"]["name"] == "speech_commands"
    assert provenance["settings"]["max_steps"] == 2 and provenance["versions"]["torch"]

    log = (out / "runs" / "ks" / "lr0.001_seed0_layerall" / "log.jsonl").read_text()
    published = tmp_path / "published.csv"
    published.write_text("upstream,ks acc (%)\na published row,12.34\n")
    again = superb(*args, "--reference", str(published))
    assert again.returncode == 0, again.stderr
    assert "[1/3] extract speech_commands: done already" in again.stderr
    assert "[2/3] sweep ks: done already" in again.stderr
    assert (out / "runs" / "ks" / "lr0.001_seed0_layerall" / "log.jsonl").read_text() == log
    assert "| a published row | 12.34 |" in (out / "report.md").read_text().split("## Reference rows")[1]
    published.write_text("upstream,ks acc (%)\na row,12.34,extra\n")
    refused = superb(*args, "--reference", str(published))
    assert "--reference" in refused.stderr.strip().splitlines()[-1] and refused.returncode != 0
    other = superb(*args[:-4], "--max-steps", "3")
    assert "max_steps 2 (now 3)" in other.stderr.strip().splitlines()[-1]


def _recorded(path: Path, stage: str) -> bool:
    try:
        return json.loads(path.read_text())["stages"][stage]["status"] == "done"
    except (OSError, ValueError, KeyError):  # not written yet (written whole: never half)
        return False
