"""``superb sweep``: heads trained together equal separate fits; kill and ``-a``; a diverging head; bad grids."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from superb.testing.cli import alone_and_shared, kill_launch, one_error_line, read_results, run_superb_here, torchrun
from superb.train.sweep import SweepArgs, sweep

STEPS = ("config.runner.total_steps=40,,config.runner.eval_step=20,,config.runner.log_step=10,,"
         "config.runner.save_step=20")
LRS = (1e-2, 1e-3, 1e-4)


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


def losses(expdir: Path) -> list[tuple]:
    log = [json.loads(line) for line in (expdir / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["split"], r.get("loss"), r.get("acc"), r.get("lr")) for r in log]


@pytest.fixture(scope="module")
def swept(ks_small, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three learning rates swept together on the tiny Speech Commands store (fbank without CMVN)."""
    _, stores = ks_small
    out = tmp_path_factory.mktemp("sweep") / "ks"
    result = superb("sweep", "-d", "ks", "--features", str(stores / "fbank_plain"), "-p", str(out),
                    "--lr", ",".join(map(str, LRS)), "-o", STEPS)
    assert result.returncode == 0, result.stderr
    return stores / "fbank_plain", out


def figures(expdir: Path) -> list[float]:
    return [x for r in losses(expdir) for x in r[2:] if x is not None]


def test_each_head_is_the_fit_it_stands_for(swept, tmp_path):
    """Per head, its own fit's log (losses, dev accuracy, learning rate at every step) and results: bit for bit
    with ``--exact``; by default (KS's heads train on per-utterance means, see ``mean_pooled``) to float rounding,
    which grows over the steps (this loss of ~80 at lr 1e-2 is chaotic) but stays far below what a learning rate
    changes."""
    store, out = swept
    exact = superb("sweep", "-d", "ks", "--features", str(store), "-p", str(tmp_path / "exact"), "--exact",
                   "--lr", ",".join(map(str, LRS)), "-o", STEPS)
    assert exact.returncode == 0, exact.stderr
    summary = json.loads((out / "sweep.json").read_text())
    assert [h["name"] for h in summary["heads"]] == [f"lr{lr:g}_seed0_layerall" for lr in LRS]
    for lr in LRS:
        alone = superb("fit", "-d", "ks", "--features", str(store), "-p", str(tmp_path / f"{lr:g}"),
                       "-o", f"{STEPS},,config.optimizer.lr={lr}")
        assert alone.returncode == 0, alone.stderr
        name, fitted = f"lr{lr:g}_seed0_layerall", tmp_path / f"{lr:g}"
        assert losses(tmp_path / "exact" / name) == losses(fitted)
        ours, theirs = read_results(tmp_path / "exact" / name), read_results(fitted)
        assert (ours["dev"], ours["test"], ours["best_step"], ours["lr"]) == \
               (theirs["dev"], theirs["test"], theirs["best_step"], theirs["lr"])
        assert [r[:2] for r in losses(out / name)] == [r[:2] for r in losses(fitted)]
        assert figures(out / name)[0] == pytest.approx(figures(fitted)[0], rel=1e-5)  # step 10's loss
        assert figures(out / name) == pytest.approx(figures(fitted), rel=5e-2)  # lr 1e-2 drifts most: 4.4% by 40
        batched = read_results(out / name)
        assert batched["dev"]["acc"] == pytest.approx(theirs["dev"]["acc"], abs=0.05)
    single = superb("sweep", "-d", "ks", "--features", str(store), "-p", str(tmp_path / "k1"), "--lr", "0.001",
                    "-o", STEPS)  # K = 1: no shortcut, its fit bit for bit
    assert single.returncode == 0, single.stderr
    assert losses(tmp_path / "k1" / "lr0.001_seed0_layerall") == losses(tmp_path / "0.001")
    best = max(summary["heads"], key=lambda h: h["dev"]["acc"])
    assert summary["best"] == best["name"] and summary["metric"] == "acc"
    evaluated = superb("evaluate", "-e", str(out / best["name"]), "-t", "test")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["acc"] == pytest.approx(best["test"]["acc"])


def test_a_sweep_killed_between_heads_resumes_to_the_same_heads(swept, tmp_path):
    """Stopped right after the second head's step-20 checkpoint (the first has it too, the third not): ``-a``
    resumes the first two from step 20 and the third from the start, and all end as the uninterrupted sweep."""
    store, out = swept
    args = SweepArgs(task="ks", expdir=str(tmp_path / "ks"), features=str(store), lrs=list(LRS), override=STEPS)

    class Killed(Exception):
        pass

    def kill(name: str, step: int) -> None:
        if name.startswith("lr0.001") and step == 20:
            raise Killed

    with pytest.raises(Killed):
        sweep(args, on_step=kill)
    heads = [f"lr{lr:g}_seed0_layerall" for lr in LRS]
    saved = {h: sorted(c.name for c in (tmp_path / "ks" / h).glob("states-*")) for h in heads}
    assert list(saved.values()) == [["states-20.ckpt"], ["states-20.ckpt"], []]  # the third had not reached 20
    refused = superb("sweep", "-d", "ks", "--features", str(store), "-p", str(tmp_path / "ks"), "--lr", "0.01,0.001")
    assert "already holds a run" in one_error_line(refused)
    sweep(args, auto_resume=True)
    for name in heads:
        assert losses(tmp_path / "ks" / name) == losses(out / name)
        assert read_results(tmp_path / "ks" / name)["test"] == read_results(out / name)["test"]


def test_a_diverging_head_stops_and_the_others_go_on(swept, tmp_path):
    store, out = swept
    result = superb("sweep", "-d", "ks", "--features", str(store), "-p", str(tmp_path / "ks"), "--lr", "1e-3,1e30",
                    "-o", STEPS)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ks" / "sweep.json").read_text())
    sane, wild = summary["heads"]
    assert wild["diverged_at_step"] is not None and sane["diverged_at_step"] is None
    assert summary["best"] == sane["name"] and "diverged" in result.stdout
    assert losses(tmp_path / "ks" / sane["name"]) == losses(out / sane["name"])
    assert read_results(tmp_path / "ks" / wild["name"])["diverged_at_step"] == wild["diverged_at_step"]
    from superb.train.report import build_table, collect

    runs = collect([tmp_path / "ks"])
    (row,) = build_table(runs).rows
    (cell,) = row.cells.values()
    assert [r.name for r in cell.selected] == [sane["name"]]  # never the diverged head, whatever its dev figure


def test_bad_grids_fail_in_one_line(ks_small, tmp_path):
    _, stores = ks_small
    base = ("sweep", "-d", "ks", "--features", str(stores / "fbank_plain"), "-p", str(tmp_path / "s"))
    assert "--lr 'abc': 'abc' is not a number" in one_error_line(superb(*base, "--lr", "abc"))
    assert "--seed '0,x'" in one_error_line(superb(*base, "--seed", "0,x"))
    assert "--lr '1e-3,1e-3': a value is repeated" in one_error_line(superb(*base, "--lr", "1e-3,1e-3"))
    assert "layer 7 is not in the store" in one_error_line(superb(*base, "--layer", "all,7", "-o", STEPS))
    assert not (tmp_path / "s" / "sweep.json").exists()
    shutil.rmtree(tmp_path / "s", ignore_errors=True)


def test_without_lr_the_config_grid_is_swept(ks_small, tmp_path):
    """``optimizer.sweep_lrs`` in the task config (here by ``-o``) is the grid when ``--lr`` is not given; an
    empty one (every shipped config) leaves the config's one rate."""
    _, stores = ks_small
    short = ("config.runner.total_steps=2,,config.runner.eval_step=2,,config.runner.save_step=2,,"
             "config.runner.log_step=2")
    base = ("sweep", "-d", "ks", "--features", str(stores / "fbank_plain"))
    result = superb(*base, "-p", str(tmp_path / "grid"), "-o", f"{short},,config.optimizer.sweep_lrs=[1.0e-2, 1.0e-3]")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "grid" / "sweep.json").read_text())
    assert [h["name"] for h in summary["heads"]] == ["lr0.01_seed0_layerall", "lr0.001_seed0_layerall"]
    assert summary["grid"]["lr"] == [1e-2, 1e-3] and [h["lr"] for h in summary["heads"]] == [1e-2, 1e-3]
    bad = superb(*base, "-p", str(tmp_path / "bad"), "-o", f"{short},,config.optimizer.sweep_lrs=[-1.0]")
    assert "config optimizer.sweep_lrs '-1.0': '-1.0' is not a finite learning rate >= 0" in one_error_line(bad)


def test_the_report_shows_the_grid_and_plots_it(swept, tmp_path):
    from superb.train.report import build_table, collect, lr_grids, plot_lr_grid, render_markdown

    _, out = swept
    runs = collect([out])
    table = build_table(runs)
    grid = render_markdown(table, runs).split("## Learning-rate grids", 1)[1]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in grid.splitlines()
            if line.startswith("| 0.")}
    heads = {h["lr"]: h for h in json.loads((out / "sweep.json").read_text())["heads"]}
    assert rows == {f"{lr:g}": f"{100 * heads[lr]['dev']['acc']:.2f}" for lr in LRS}
    (key, group), = lr_grids(table, runs).items()  # write_report writes it as plots/lr-grid-ks-fbank.png
    assert key == ("ks", "fbank") and len(group) == len(LRS)
    plot = plot_lr_grid("ks", group, "ks · fbank", tmp_path / "grid.png")
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_halving_stops_the_worse_half_and_resumes_its_decisions(swept, tmp_path):
    """``--halving 20``: at step 20 the worst of three heads by dev accuracy stops (its log and best checkpoint
    end there); killed at step 30 and resumed with ``-a``, the kept heads end as in the sweep without halving."""
    store, out = swept
    args = SweepArgs(task="ks", expdir=str(tmp_path / "ks"), features=str(store), lrs=list(LRS), override=STEPS,
                     halving=20)

    class Killed(Exception):
        pass

    def kill(name: str, step: int) -> None:
        if step == 30:
            raise Killed

    with pytest.raises(Killed):
        sweep(args, on_step=kill)
    summary = sweep(args, auto_resume=True)
    (round_,) = summary["halving"]["rounds"]
    dev20 = {name: [r["acc"] for r in map(json.loads, (out / name / "log.jsonl").read_text().splitlines())
                    if r["step"] == 20 and r["split"] == "dev"][0] for name in round_["scores"]}
    assert round_["step"] == 20 and round_["scores"] == pytest.approx(dev20)
    (stopped,) = round_["stopped"]
    assert dev20[stopped] == min(dev20.values())
    for head in summary["heads"]:
        mine, plain = losses(tmp_path / "ks" / head["name"]), losses(out / head["name"])
        if head["name"] == stopped:
            assert head["halted_at_step"] == 20 and mine == [r for r in plain if r[0] <= 20]
            assert read_results(tmp_path / "ks" / stopped)["halted_at_step"] == 20
        else:
            assert head["halted_at_step"] is None and mine == plain
    from superb.train.report import build_table, collect, render_markdown

    runs = collect([tmp_path / "ks"])
    assert "(halved at 20)" in render_markdown(build_table(runs), runs).split("## Learning-rate grids")[1]


def test_on_the_fly_the_upstream_runs_once_for_every_head(ks_small, tmp_path):
    """``-u``: one frozen upstream, its features fed to each head; every head still equals its own fit (bit for
    bit with ``--exact``)."""
    root, _ = ks_small
    plain = tmp_path / "fbank.yaml"
    plain.write_text("cmvn: false\n")
    short = STEPS.replace("total_steps=40", "total_steps=20").replace("eval_step=20", "eval_step=10")
    source = ("-u", "fbank", "-g", str(plain), "--root", str(root))
    result = superb("sweep", "-d", "ks", *source, "-p", str(tmp_path / "sweep"), "--lr", "1e-2,1e-3", "-o", short,
                    "--exact")
    assert result.returncode == 0, result.stderr
    for lr in ("0.01", "0.001"):
        alone = superb("fit", "-d", "ks", *source, "-p", str(tmp_path / lr), "-o", f"{short},,config.optimizer.lr={lr}")
        assert alone.returncode == 0, alone.stderr
        head = tmp_path / "sweep" / f"lr{lr}_seed0_layerall"
        assert losses(head) == losses(tmp_path / lr)
        assert read_results(head)["source"] == "on-the-fly" and read_results(head)["test"] == \
               read_results(tmp_path / lr)["test"]


def test_two_processes_sweep_as_one_and_resume_after_kill_9(ks_small, tmp_path):
    """torchrun: 2 processes × batch 16 give one process's 16 × 2 accumulated, head by head, also when every
    process is killed with ``kill -9`` after the first checkpoint and the sweep resumed with ``-a``."""
    _, stores = ks_small
    override = ("config.runner.total_steps=20,,config.runner.eval_step=5,,config.runner.log_step=5,,"
                "config.runner.save_step=5,,config.data.batch_size=16,,config.runner.gradient_accumulate_steps=2")
    args = ("sweep", "-d", "ks", "--features", str(stores / "fbank_plain"), "--lr", "1e-2,1e-3", "-o", override,
            "--exact")  # several processes sum each head's layers on its own (DDP steps each head's model)
    kill_launch(torchrun(*args, "-p", str(tmp_path / "two")), lambda: any((tmp_path / "two").rglob("states-*.ckpt")))
    assert not (tmp_path / "two" / "sweep.json").exists(), "the sweep ended before it could be killed"
    alone_and_shared(superb, (*args, "-a"), tmp_path / "one", tmp_path / "two")
    for name in ("lr0.01_seed0_layerall", "lr0.001_seed0_layerall"):
        one, two = losses(tmp_path / "one" / name), losses(tmp_path / "two" / name)
        assert [r[:2] for r in one] == [r[:2] for r in two]
        assert [x for r in one for x in r[2:] if x is not None] == \
               pytest.approx([x for r in two for x in r[2:] if x is not None], rel=1e-5)
    assert json.loads((tmp_path / "two" / "sweep.json").read_text())["best"] == \
           json.loads((tmp_path / "one" / "sweep.json").read_text())["best"]


def test_per_utterance_means_and_the_batched_sums_give_each_heads_own_step():
    """The two shared shortcuts against the featurizer and head they stand for, on a padded float16 batch:
    ``mean_pooled`` (utterance heads that pool an affine map) and ``batched_weighted_sums`` (every other head
    behind a plain weighted sum) give each head's own logits and gradients to float rounding."""
    from superb.train.featurizer import Featurizer
    from superb.train.sweep import batched_weighted_sums, mean_pooled
    from superb.train.tasks.utterance import UtteranceHead

    torch.manual_seed(0)
    hidden = torch.randn(3, 7, 4, 5).to(torch.float16)
    lengths = torch.tensor([7, 4, 1])
    hidden[1, 4:] = 0  # padding, as the collate writes it
    hidden[2, 1:] = 0
    batch = {"features": hidden, "lengths": lengths}
    featurizers = [Featurizer([0, 1, 2, 3]) for _ in range(2)]
    with torch.no_grad():
        featurizers[1].weights.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    head = UtteranceHead(5, 6, [3, 2])
    assert head.pools_affine and not UtteranceHead(5, 6, [3], "s3prl_padded_mean").pools_affine
    pooled = mean_pooled(batch)
    assert pooled["features"].shape == (3, 1, 4, 5) and pooled["lengths"].tolist() == [1, 1, 1]
    for featurizer in featurizers:
        frame_wise = head(featurizer(hidden), lengths)
        grads = torch.autograd.grad(sum(x.sum() for x in frame_wise), [featurizer.weights, head.projector.weight])
        on_means = head(featurizer(pooled["features"]), pooled["lengths"])
        mine = torch.autograd.grad(sum(x.sum() for x in on_means), [featurizer.weights, head.projector.weight])
        for a, b in zip([*frame_wise, *grads], [*on_means, *mine], strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    sums = batched_weighted_sums(hidden, [f.weights for f in featurizers])
    for featurizer, summed in zip(featurizers, sums, strict=True):
        torch.testing.assert_close(summed, featurizer(hidden), rtol=1e-6, atol=1e-6)
