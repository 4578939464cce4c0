"""ASR end to end on a tiny espeak-ng LibriSpeech store: CTC training, greedy and KenLM beam decoding.

The same eight sentences are read by other voices in every split, so 400 steps of a small head bring the
test CER far below its untrained value; the KenLM beam search with a bigram model of the training
transcripts must do no worse than greedy decoding.
"""

from __future__ import annotations

import collections
import json
import math
import subprocess
from pathlib import Path

from superb.stores import open_store
from superb.testing.cli import run_superb_here


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


def write_bigram_arpa(sentences: list[list[str]], path: Path) -> Path:
    """A maximum-likelihood bigram model in ARPA format (enough for a decoder test)."""
    unigrams, bigrams = collections.Counter(), collections.Counter()
    for words in sentences:
        tokens = ["<s>", *words, "</s>"]
        unigrams.update(tokens)
        bigrams.update(zip(tokens, tokens[1:], strict=False))
    total = sum(unigrams.values())
    lines = ["\\data\\", f"ngram 1={len(unigrams) + 1}", f"ngram 2={len(bigrams)}", "", "\\1-grams:",
             "-99\t<unk>\t0"]
    lines += [f"{math.log10(c / total):.4f}\t{w}\t-0.3" for w, c in sorted(unigrams.items())]
    lines += ["", "\\2-grams:"]
    lines += [f"{math.log10(c / unigrams[a]):.4f}\t{a} {b}" for (a, b), c in sorted(bigrams.items())]
    path.write_text("\n".join([*lines, "", "\\end\\", ""]))
    return path


def test_asr_trains_and_the_lm_helps(librispeech_fbank_store, tmp_path):
    with open_store(librispeech_fbank_store / "librispeech") as store:
        sentences = [r["meta"]["transcript"].split() for r in store.split("train-clean-100").records]
    lm = write_bigram_arpa(sentences, tmp_path / "lm.arpa")
    # a small head and no SpecAugment: 80 fbank dims cannot spare s3prl's four 50-wide frequency masks
    common = ("config.runner.save_step=1000,,config.runner.log_step=50,,config.data.batch_size=8,,"
              "config.optimizer.lr=3e-3,,config.model.rnn_dim=64,,config.model.rnn_layers=1,,"
              "config.model.projector_dim=64,,config.specaug.enabled=false,,"
              f"config.runner.eval_dataloaders=[dev, test],,config.decode.lm={lm}")
    # step1: s3prl's buckets (the default; 8 halved to 4 here); trained: superb's pools, as measured below.
    # s3prl's buckets of 16 (halved: 8) are the pools' 3 batches here in another order, and seed 0 leaves
    # the CTC plateau late with them: test CER 0.64 after 400 steps (seeds 1, 2: 0.26, 0.25)
    runs, results = {}, {}
    for name, steps, batching in (("step1", 1, "s3prl_asr"), ("trained", 400, "pools")):
        result = superb("fit", "-d", "asr", "--features", str(librispeech_fbank_store), "-p", str(tmp_path / name),
                        "-o", f"{common},,config.runner.total_steps={steps},,config.runner.eval_step={steps},,"
                        f"config.data.batching={batching}")
        assert result.returncode == 0, result.stderr
        results[name] = json.loads((tmp_path / name / "results.json").read_text())
        runs[name] = results[name]["test"]
    before, after = runs["step1"], runs["trained"]
    assert results["step1"]["batching"] == {"plan": "s3prl_asr", "batch_size": 8, "half_batch_samples": 2000}
    assert set(after) == {"wer", "uer", "cer", "wer_lm"}
    # measured (seeds 0-2, OMP_NUM_THREADS=1): after one step test CER 0.85 (seed 0), WER 1.0; after 400
    # steps CER 0.24-0.28, WER 0.47-0.57 greedy, lower with the bigram LM
    assert before["cer"] >= 0.7 and before["wer"] >= 0.95
    assert after["cer"] < 0.45 and after["cer"] < before["cer"] - 0.35 and after["wer"] < 0.8
    assert after["wer_lm"] <= after["wer"]
    for name in ("test-hyp.ark", "test-hyp-lm.ark", "test-ref.ark"):
        assert (tmp_path / "trained" / name).is_file(), name
