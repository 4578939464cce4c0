"""SF end to end: a tiny espeak-ng Audio SNIPS store, CTC over characters + slot tags through the CLI.

Four voices per split read the same eight commands, so 600 steps of a small head lift the test slot-type
F1 well above its untrained value and bring the slot-value CER down; the metrics themselves are checked
against hand-made cases in test_snips.py.
"""

from __future__ import annotations

import json
import subprocess

from superb.extract.extraction import ExtractRequest, extract
from superb.testing.cli import run_superb_here
from superb.testing.corpora import make_snips


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


def test_sf_trains_and_scores(tmp_path):
    root = make_snips(tmp_path / "snips", per_speaker=8, speakers_per_split=4)
    stores = tmp_path / "stores" / "fbank_plain"
    extract(ExtractRequest(upstream="fbank", corpus="snips", root=root, out=stores,
                           upstream_options={"cmvn": False}, progress=False))
    # s3prl's head, made small; no SpecAugment: 80 fbank dims cannot spare four 50-wide frequency masks
    common = ("config.runner.save_step=1000,,config.runner.log_step=100,,config.optimizer.lr=3e-3,,"
              "config.data.batch_size=8,,config.model.rnn_dim=64,,config.model.rnn_layers=1,,"
              "config.model.projector_dim=64,,config.specaug.enabled=false,,config.runner.eval_dataloaders=[dev, test]")
    # step1: s3prl's windows (the default); trained: superb's pools, as measured below (on 32 utterances
    # s3prl's last window of 8 is a quarter of all batches; see test_pr)
    runs = {}
    for name, steps, batching in (("step1", 1, "s3prl_ctc"), ("trained", 600, "pools")):
        result = superb("fit", "-d", "sf", "--features", str(stores), "-p", str(tmp_path / name), "-o",
                        f"{common},,config.runner.total_steps={steps},,config.runner.eval_step={steps},,"
                        f"config.data.batching={batching}")
        assert result.returncode == 0, result.stderr
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    before, after = runs["step1"]["test"], runs["trained"]["test"]
    assert runs["step1"]["batching"] == {"plan": "s3prl_ctc", "batch_size": 8, "half_batch_samples": 300_000}
    assert runs["trained"]["task"] == "sf" and set(after) == {"slot_type_f1", "slot_value_cer"}
    # measured (seeds 0-2, OMP_NUM_THREADS=1): after one step F1 0.125 (the slot-less command) and CER 1.0;
    # after 600 steps test F1 0.38-0.44, CER 0.70-0.80
    assert before["slot_type_f1"] <= 0.13 and before["slot_value_cer"] >= 0.99
    assert after["slot_type_f1"] > 0.3 and after["slot_value_cer"] < 0.9
    ref = (tmp_path / "trained" / "test-ref.ark").read_text()
    assert "B-" in ref and "E-" in ref  # the references carry slot tags, rendered as s3prl does
