"""Intent classification (audio_snips, atis) on tiny copies of s3prl's layouts: the corpora as s3prl reads them
(mp3 voices, IOB lists), the class lists s3prl builds (and the fix for ATIS's test-only intents), the
transformer + SAP head against Mockingjay's layer written out, learning through the CLI, bad inputs in one line."""

from __future__ import annotations

import math
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from superb.extract.extraction import ExtractRequest, extract
from superb.testing.cli import one_error_line, read_results, run_superb_here
from superb.testing.corpora import make_atis, make_audio_snips
from superb.train.config import ModelConfig
from superb.train.report import build_table, collect
from superb.train.tasks.sap import TransformerSapHead

SMALL = ("config.runner.total_steps=100,,config.runner.eval_step=50,,config.runner.log_step=50,,"
         "config.runner.save_step=100,,config.data.batch_size=8,,config.runner.gradient_accumulate_steps=1,,"
         "config.optimizer.warmup_steps=10,,config.optimizer.lr=1e-3,,config.model.encoder_dim=64,,"
         "config.model.encoder_ffn=128,,config.model.encoder_heads=4")


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


# -- the head against s3prl's Mockingjay layer, written out ---------------------------------------------------


def mockingjay_layer(x: torch.Tensor, layer, heads: int) -> torch.Tensor:
    """s3prl's TransformerLayer (post-LN, exact GELU, TF-style LayerNorm), eval mode, no mask (batch of one)."""
    dim = x.shape[-1]
    q, k, v = F.linear(x, layer.attention.in_proj_weight, layer.attention.in_proj_bias).split(dim, -1)
    split = lambda t: t.view(t.shape[0], t.shape[1], heads, dim // heads).permute(0, 2, 1, 3)  # noqa: E731
    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dim // heads)
    context = (torch.softmax(scores, -1) @ split(v)).permute(0, 2, 1, 3).reshape(x.shape)

    def norm(t, ln):
        u = t.mean(-1, keepdim=True)
        s = (t - u).pow(2).mean(-1, keepdim=True)
        return ln.weight * (t - u) / torch.sqrt(s + 1e-12) + ln.bias

    attended = norm(layer.attention.out_proj(context) + x, layer.attention_norm)
    hidden = layer.intermediate(attended)
    hidden = hidden * 0.5 * (1.0 + torch.erf(hidden / math.sqrt(2.0)))
    return norm(layer.output(hidden) + attended, layer.output_norm)


def test_head_is_s3prls_and_a_padded_batch_changes_nothing():
    torch.manual_seed(0)
    model = ModelConfig(encoder_dim=32, encoder_ffn=64, encoder_heads=4)
    head = TransformerSapHead(10, model, [5]).eval()
    first, second = head.layers  # s3prl deep-copies one layer: both start equal
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    x = torch.randn(1, 7, 10)
    h = head.connector(x)
    for layer in head.layers:
        h = mockingjay_layer(h, layer, 4)
    h = torch.tanh(h)
    pooled = (h * torch.softmax(head.score(h).squeeze(-1), -1).unsqueeze(-1)).sum(1)
    with torch.no_grad():
        torch.testing.assert_close(head(x, torch.tensor([7]))[0], head.classifier(pooled), atol=1e-5, rtol=1e-5)
        batch = torch.zeros(3, 12, 10)
        lengths = torch.tensor([7, 12, 3])
        alone = [torch.randn(1, int(n), 10) for n in lengths]
        for b, u in enumerate(alone):
            batch[b, : u.shape[1]] = u
        together = head(batch, lengths)[0]
        for b, u in enumerate(alone):
            torch.testing.assert_close(together[b], head(u, lengths[b : b + 1])[0][0], atol=1e-5, rtol=1e-5)


# -- through the CLI ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intent_data(tmp_path_factory) -> dict[str, Path]:
    """Audio SNIPS (2 voices as mp3) and ATIS copies, and their fbank stores without CMVN."""
    base = tmp_path_factory.mktemp("intent")
    roots = {"audio_snips": make_audio_snips(base / "audio_slu"), "atis": make_atis(base / "atis")}
    stores = base / "stores" / "fbank_plain"
    for corpus, root in roots.items():
        with warnings.catch_warnings():  # ATIS's rows without audio, said once (test_atis_keeps_the_rows…)
            warnings.simplefilter("ignore", UserWarning)
            extract(ExtractRequest(upstream="fbank", corpus=corpus, root=root, out=stores,
                                   upstream_options={"cmvn": False}, progress=False))
    return {**roots, "stores": stores}


def test_audio_snips_learns_from_s3prls_voices(intent_data, tmp_path):
    result = superb("fit", "-d", "audio_snips", "--features", str(intent_data["stores"]), "-p", str(tmp_path / "run"),
                    "-o", SMALL)
    assert result.returncode == 0, result.stderr
    out = read_results(tmp_path / "run")
    # measured (seeds 0-2, one thread): test accuracy 1.0, 1.0, 0.67 (6 Aditi utterances, 3 intents)
    assert out["test"]["acc"] > 0.5 and out["dev"]["acc"] > 0.5, out
    confusion = (tmp_path / "run" / "confusion-test.json").read_text()
    assert '"labels": ["GetWeather", "PlayMusic", "BookRestaurant"]' in confusion  # first seen in the train file
    assert [c.header for c in build_table(collect([tmp_path / "run"])).columns] == ["SNIPS IC Acc ↑"]


def test_atis_learns_and_its_classes_follow_the_chosen_rule(intent_data, tmp_path):
    result = superb("fit", "-d", "atis", "--features", str(intent_data["stores"]), "-p", str(tmp_path / "run"),
                    "-o", SMALL)
    assert result.returncode == 0, result.stderr
    out = read_results(tmp_path / "run")
    # measured (seeds 0-2, 150 steps): test accuracy 0.85-0.92 of 13 (one intent never trained on)
    assert out["test"]["acc"] > 0.6, out
    assert out["notes"]["classes_from"] == ["train"] and out["notes"]["unseen_labels"] == {"test": 1}
    assert out["notes"]["attention_padding"].startswith("masked")
    labels = '"labels": ["atis_ground_service", "atis_flight", "atis_flight#atis_airfare"]'
    assert labels in (tmp_path / "run" / "confusion-test.json").read_text()
    s3prl = superb("fit", "-d", "atis", "--features", str(intent_data["stores"]), "-p", str(tmp_path / "s3prl"),
                   "-o", SMALL.replace("total_steps=100", "total_steps=2") + ",,config.data.intent_classes=s3prl")
    assert s3prl.returncode == 0, s3prl.stderr
    notes = read_results(tmp_path / "s3prl")["notes"]
    assert notes["classes_from"] == ["train", "dev", "test"] and notes["unseen_labels"] == {}
    text = (tmp_path / "s3prl" / "confusion-test.json").read_text()
    assert '"atis_flight#atis_airfare", "atis_airline"]' in text  # the test-only intent gets an output, as s3prl


def test_atis_keeps_the_rows_s3prl_keeps(intent_data):
    from superb.extract.corpora.atis import Atis

    with pytest.warns(UserWarning, match="1 row.s. without a wav .* and 1 repeated id"):
        test = Atis(intent_data["atis"]).utterances(["test"])
    assert [u.id for u in test] == [f"atis_test_{n:04d}" for n in range(13)]
    assert test[-1].meta["intent"] == "atis_airline" and test[2].meta["intent"] == "atis_flight#atis_airfare"
    assert test[0].meta["words"] == ["BOS", "what", "is", "the", "weather", "in", "madrid", "EOS"]


def test_bad_inputs_fail_in_one_line(intent_data, tmp_path):
    snips = Path(shutil.copytree(intent_data["audio_snips"], tmp_path / "audio_slu"))

    def extract_error(*extra: str) -> str:
        return one_error_line(superb("extract", "-u", "fbank", "--corpus", "audio_snips", "--root", str(snips),
                                     "--out", str(tmp_path / "stores"), *extra))

    line = extract_error("-c", "speakers=Aditi,Nobody")
    assert "speaker 'Nobody'" in line and "audio_Nobody" in line
    mp3 = snips / "audio_Amy" / "snips" / "snips-valid-1.mp3"
    mp3.write_bytes(mp3.read_bytes()[: len(mp3.read_bytes()) // 2])
    assert str(mp3) in (line := extract_error("--splits", "valid")) and "truncated or corrupt" in line
    mp3.unlink()
    assert "'snips-valid-1' has no audio for speaker 'Amy'" in extract_error("--splits", "valid")
    annotation = snips / "data" / "nlu_annotation" / "test"
    annotation.write_text(annotation.read_text().replace("intent", "label", 1))
    assert f"{annotation}:1: no column 'intent'" in extract_error("--splits", "test")
    wrong = one_error_line(superb("fit", "-d", "audio_snips", "--features", str(intent_data["stores"]),
                                  "-p", str(tmp_path / "run"), "-o", "config.data.test_speakers=[Aditi, Joey]"))
    assert "config data.test_speakers: speaker 'Joey' is not in split 'test'" in wrong
    atis = Path(shutil.copytree(intent_data["atis"], tmp_path / "atis"))
    (atis / "nlu_iob" / "iob.dev").write_text("atis_dev_0000 BOS hello EOS O O O atis_flight\n")
    line = one_error_line(superb("extract", "-u", "fbank", "--corpus", "atis", "--root", str(atis), "--splits", "dev",
                                 "--out", str(tmp_path / "stores")))
    assert f"{atis / 'nlu_iob' / 'iob.dev'}:1: malformed line" in line
