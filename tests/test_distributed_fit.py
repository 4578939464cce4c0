"""``torchrun -m superb fit`` on CPU (gloo, 2 processes): the same training as one process with the same effective
batch, resumable after ``kill -9``, checkpoints that evaluate in one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from superb.errors import ConfigError
from superb.testing.cli import finished, kill_launch, read_results, run_superb_here, torchrun
from superb.train.runner import split_batch

STEPS = ("config.runner.log_step=10,,config.runner.eval_step=50,,config.runner.save_step=50,,"
         "config.optimizer.lr=1e-3,,config.data.batch_size=8,,config.runner.gradient_accumulate_steps=2")

def train_log(expdir: Path) -> list[dict]:
    return [json.loads(line) for line in (expdir / "log.jsonl").read_text().splitlines()]


def figures(log: list[dict]) -> list[float]:
    """Each record's step and its loss (train) or accuracy (dev, test); timings left out."""
    return [x for r in log for x in (r["step"], r["loss"] if r["split"] == "train" else r["acc"])]


@pytest.fixture(scope="module")
def ks(ks_small) -> tuple[Path, Path]:
    """The Speech Commands copy and its fbank store without CMVN (shared with test_fit)."""
    root, stores = ks_small
    return root, stores / "fbank_plain"


def test_the_effective_batch_is_kept():
    assert split_batch(8, 2, 2) == (8, 1)  # processes replace accumulation steps first
    assert split_batch(32, 1, 2) == (16, 1)  # then split the batch
    assert split_batch(8, 4, 8) == (4, 1)  # SID's 8 × 4 on 8 GPUs
    assert split_batch(16, 2, 1) == (16, 2)
    with pytest.raises(ConfigError, match="3 processes cannot keep the effective batch 8 × 2"):
        split_batch(8, 2, 3)


OVERRIDE = f"config.runner.total_steps=200,,{STEPS}"


@pytest.fixture(scope="module")
def runs(ks, tmp_path_factory) -> Path:
    """The same KS run in one process (``one/``) and in two (``two/``), the two killed with ``kill -9`` (every
    process of the launch, as a preemption would) after their first checkpoint and resumed with ``-a``."""
    _, store = ks
    out = tmp_path_factory.mktemp("runs")
    one = run_superb_here("fit", "-d", "ks", "--features", str(store), "-p", str(out / "one"), "-o", OVERRIDE,
                          threads=1)
    assert one.returncode == 0, one.stderr
    args = ("fit", "-d", "ks", "--features", str(store), "-o", OVERRIDE, "-p", str(out / "two"))
    kill_launch(torchrun(*args), lambda: any((out / "two").glob("states-*.ckpt")))
    assert not (out / "two" / "results.json").exists(), "the run ended before it could be killed"
    code, err = finished(torchrun(*args, "-a"))
    assert code == 0, err
    assert "2 processes × batch 8 × accumulation 1 = effective batch 16 (the config's 8 × 2)" in err
    return out


def test_two_processes_killed_and_resumed_train_as_one_with_the_same_effective_batch(runs):
    # Process r takes batches r, r + 2, … of the one-process stream, and DDP averages the two gradients as
    # accumulation did: measured identical train losses and metrics (KS's class-balanced draws included), also
    # when the two were killed and resumed where they stood.
    alone, shared = train_log(runs / "one"), train_log(runs / "two")
    assert [r["split"] for r in alone] == [r["split"] for r in shared]
    assert figures(shared) == pytest.approx(figures(alone), rel=1e-5)
    assert read_results(runs / "two")["test"] == pytest.approx(read_results(runs / "one")["test"], abs=1e-6)
    # the checkpoint holds the plain model: it evaluates in one process, to the reported figure
    evaluated = run_superb_here("evaluate", "-e", str(runs / "two" / "dev-best.ckpt"), "-t", "test")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["acc"] == pytest.approx(read_results(runs / "two")["test"]["acc"])


def test_finetuning_on_the_fly_runs_under_torchrun(ks, tmp_path):
    """-u … -f: the upstream trains inside DDP (its CNN frozen, as s3prl), the checkpoint evaluates alone."""
    root, _ = ks
    code, err = finished(torchrun("fit", "-d", "ks", "-u", "wavlm", "--random-init", "tiny", "--root", str(root),
                                  "-f", "-p", str(tmp_path / "ft"), "-o",
                                  "config.runner.total_steps=6,,config.runner.log_step=3,,config.runner.eval_step=6,,"
                                  "config.runner.save_step=6,,config.data.batch_size=4"))
    assert code == 0, err
    assert "2 processes × batch 2 × accumulation 1 = effective batch 4" in err
    evaluated = run_superb_here("evaluate", "-e", str(tmp_path / "ft"), "-t", "test")
    assert evaluated.returncode == 0, evaluated.stderr
