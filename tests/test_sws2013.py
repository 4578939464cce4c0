"""Trainable QbE (``sws2013``, s3prl's): pairs, windows, scoring, and the CLI run on tiny SWS 2013 + QUESST 2014."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from superb.extract.corpora.sws2013 import Sws2013
from superb.extract.vad import speech_span
from superb.stores.base import open_store
from superb.testing.cli import alone_and_shared, one_error_line, read_results, run_superb_here
from superb.testing.corpora import make_quesst14, make_sws2013, voice
from superb.train.config import ModelConfig
from superb.train.report import build_table, collect
from superb.train.tasks.qbe.scoring import read_stdlist
from superb.train.tasks.sws2013.task import (
    Pair,
    PairWindows,
    QbeEmbedder,
    _z_scores,
    detections,
    s3prl_misread_lines,
)

# the tiny documents last 2–3 s, so 3 s windows would hold whole documents: 1 s windows, a small head
SMALL = ("config.runner.total_steps=500,,config.runner.eval_step=250,,config.runner.log_step=250,,"
         "config.runner.save_step=250,,config.optimizer.lr=1e-3,,config.optimizer.warmup_steps=0,,"
         "config.model.hidden_size=128,,config.model.projector_dim=64,,config.data.window_seconds=1.0,,"
         "config.data.window_hop_seconds=0.25")


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


@pytest.fixture(scope="module")
def qbe_stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Tiny SWS 2013 and QUESST 2014 copies and their fbank stores side by side (``stores/fbank/{sws2013,
    quesst14}``)."""
    root = tmp_path_factory.mktemp("qbe_corpora")
    make_sws2013(root)
    make_quesst14(root)
    stores = tmp_path_factory.mktemp("std_stores") / "fbank"
    for corpus, folder in (("sws2013", "sws2013Database_dev_eval"), ("quesst14", "quesst14Database")):
        result = superb("extract", "-u", "fbank", "--corpus", corpus, "--root", str(root / folder),
                        "--out", str(stores), "-q")
        assert result.returncode == 0, result.stderr
    return root, stores


def test_vad_is_sox_vad_reverse_vad_reverse(tmp_path):
    """s3prl's ``vad -T 0.25 -p 0.1`` both ends: the sample count the sox program keeps (checked by hand too)."""
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice(0).name, "-w", str(tmp_path / "raw.wav"), "the old man said river"],
                   check=True, capture_output=True)
    subprocess.run(["sox", str(tmp_path / "raw.wav"), "-r", "16000", "-c", "1", str(wav), "pad", "0.4", "0.6", "norm"],
                   check=True, capture_output=True)
    kept = tmp_path / "kept.wav"
    vad = ["vad", "-T", "0.25", "-p", "0.1"]
    subprocess.run(["sox", str(wav), str(kept), *vad, "reverse", *vad, "reverse"], check=True, capture_output=True)
    wave, _ = soundfile.read(str(wav), dtype="float32")
    start, end = speech_span(wave)
    sox_kept, _ = soundfile.read(str(kept), dtype="float32")
    assert end - start == len(sox_kept) and 0 < start < 0.4 * 16000 < 1.0 * 16000 < end < len(wave)
    assert np.abs(wave[start:end] - sox_kept).max() < 1e-3  # the same samples, not only as many


def test_s3prl_front_end_trims_queries_and_documents(qbe_stores):
    root, _ = qbe_stores
    plain = {u.id: u for u in Sws2013(root / "sws2013Database_dev_eval").utterances(["docs", "dev"])}
    trimmed = Sws2013(root / "sws2013Database_dev_eval", level="peak", vad=True).utterances(["docs", "dev"])
    whole = 0
    for u in trimmed:
        edit = u.meta["audio_edit"]
        assert edit["gain_db"] > 0  # synthetic speech below full scale, raised to it (sox norm)
        if "keep" not in edit:  # a query with under 0.5 s of speech keeps its whole audio (s3prl's rule)
            assert u.meta["kind"] == "query" and u.num_samples == plain[u.id].num_samples
            whole += 1
            continue
        (start, end), = edit["keep"]
        assert u.num_samples == end - start < plain[u.id].num_samples and start > 0
        if u.meta["kind"] == "query":
            assert end - start >= 0.5 * 16000
    assert whole < len([u for u in trimmed if u.meta["kind"] == "query"])
    line = one_error_line(superb("extract", "-u", "fbank", "--corpus", "sws2013", "--root", str(root),
                                 "-c", "level=loud", "--out", "/nonexistent"))
    assert "level='loud'" in line


def test_rttm_times_are_read_whole_where_s3prls_regex_cuts_them(tmp_path):
    rttm = tmp_path / "sws2013_dev.rttm"
    rttm.write_text("SPEAKER sws2013_00001 1 0.000 5.000 <NA> <NA> spk <NA>\n"
                    "LEXEME sws2013_00001 1 3.250 0.410 sws2013_dev_001 lex <NA> <NA>\n"  # read right by s3prl
                    "LEXEME sws2013_00002 1 12.340 0.500 sws2013_dev_002 lex <NA> <NA>\n"  # s3prl: onset 2.34
                    "LEXEME sws2013_00003 1 1.000 10.500 sws2013_dev_003 lex <NA> <NA>\n")  # s3prl: dropped
    assert s3prl_misread_lines(rttm) == 2


def _store_view(frames: list[int], dim: int = 2):
    """A minimal in-memory split: utterance k's frame t holds ``[k, t]`` in every layer."""

    class View:
        def __init__(self):
            self.offsets = np.concatenate([[0], np.cumsum(frames)])
            self.data = np.concatenate([np.stack([np.full(n, k), np.arange(n)], 1) for k, n in enumerate(frames)])

        def num_frames(self, i):
            return int(self.offsets[i + 1] - self.offsets[i])

        def read_frames(self, a, b, out=None):
            out[:] = self.data[a:b, None, :dim]
            return out

    return View()


def test_pair_windows_cut_as_s3prl_pads_and_trims(monkeypatch):
    """Positives hold the whole occurrence; a short query sits somewhere in zeros; negatives come from the
    documents without the term; every draw follows the key's seed."""
    docs, queries = _store_view([500, 80, 400]), _store_view([30, 250])
    windows = PairWindows.__new__(PairWindows)
    windows.docs, windows.queries, windows.rate, windows.window = docs, queries, 100.0, 100
    windows.seconds, windows.frame_shape, windows.dtype = 1.0, (1, 2), np.dtype("float32")
    pairs = [Pair(0, 0, 2.5, 0.4), Pair(0, -1, 0.0, 0.0, (1, 2)), Pair(1, 2, 0.2, 0.3)]
    windows.pairs = pairs
    windows.items = [type("I", (), {"target": (t,)})() for t in (1, 0, 1)]
    for seed in range(20):
        batch = windows.batch([(0, seed), (1, seed), (2, seed)])
        x = batch["features"][:, :, 0].numpy()
        real = x[0][x[0, :, 1] + x[0, :, 0] > 0] if x[0].any() else x[0]
        frames = set(x[0, :, 1][x[0, :, 0] == 0].astype(int))  # doc 0's frames inside the window
        assert set(range(250, 290)) <= frames and len(real) > 0
        assert set(x[1, :, 0]) - {0} <= {1, 2}  # the negative's document
        assert set(range(20, 50)) <= set(x[2, :, 1][x[2, :, 0] == 2].astype(int))  # onset 0.2 s + 0.3 s
        query = x[3]
        held = np.flatnonzero(np.abs(query).sum(1) > 0)
        assert len(held) <= 30 and (len(held) == 0 or held[-1] - held[0] == len(held) - 1)  # in one piece
        again = windows.batch([(0, seed), (1, seed), (2, seed)])
        assert torch.equal(again["features"], batch["features"])
    assert batch["features"].shape == (6, 100, 1, 2) and batch["targets"][:, 0].tolist() == [1, 0, 1]


def test_scoring_windows_equal_pooling_each_window_alone():
    """The windows of a document (every 0.75 s, zeros past its end: s3prl's unfold of audio padded with 3 s)
    embed as the training path embeds one window."""
    torch.manual_seed(0)
    head = QbeEmbedder(6, ModelConfig(projector_dim=8, hidden_size=12), window=30, hop=7.5).eval()
    x = torch.randn(100, 6)
    got = head.windows(x, query=False)
    starts = head.starts(100)  # a window every 7.5 frames from 0 while it starts inside the 100 frames
    assert starts == [int(k * 7.5 + 0.5) for k in range(14)]
    padded = torch.cat([x, torch.zeros(30, 6)])
    with torch.no_grad():
        alone = torch.stack([head.pool(head.hidden(padded[s : s + 30])) for s in starts])
        assert torch.allclose(got, torch.nn.functional.normalize(alone, dim=-1), atol=1e-6)
        query = head.pool(head.hidden(torch.cat([x[:10], torch.zeros(20, 6)])))
        assert torch.allclose(head.windows(x[:10], query=True)[0], torch.nn.functional.normalize(query, dim=0),
                              atol=1e-6)


def test_scores_are_s3prls_max_cosine_z_normalised_per_query():
    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    predictions = [unit(rng.normal(size=(1, 4))) for _ in range(2)] + [unit(rng.normal(size=(n, 4))) for n in (3, 1, 5)]
    info = {"terms": ["q1", "q2"], "documents": ["d1", "d2", "d3"]}
    got = _z_scores(info, predictions)
    for q in range(2):
        raw = torch.tensor([float((torch.tensor(predictions[q][0:1]) @ torch.tensor(d).T).max())
                            for d in predictions[2:]])
        assert got[q] == pytest.approx(((raw - raw.mean()) / (raw.std() + 1e-6)).numpy(), abs=1e-6)  # s3prl: float32
    found = detections(info, predictions)
    assert all(found.decisions["q1"][d] == (found.scores["q1"][d] > 0) for d in info["documents"])


def test_trains_and_scores_through_the_cli_beside_the_dtw_baseline(qbe_stores, tmp_path):
    """Trained on SWS 2013 dev pairs, scored on those queries (dev = ``dev``: with fbank and 13 documents the
    head does not generalise to the eval queries' voice), tested on QUESST 2014; the last model is reported
    (s3prl), its stdlists are the official format, ``evaluate`` gives the same figures."""
    root, stores = qbe_stores
    exp = tmp_path / "std"
    result = superb("fit", "-d", "sws2013", "--features", str(stores), "-p", str(exp), "-o",
                    SMALL + ",,config.data.dev=dev")
    assert result.returncode == 0, result.stderr
    out = read_results(exp)
    log = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    dev = [r for r in log if r["split"] == "dev"]
    assert out["protocol"] == "s3prl" and out["selected"] == "last step (s3prl)" and out["scored_step"] == 500
    # 3 seeds: MTWV 0.4–1.0, min Cnxe 0.0–0.34 (untrained: MTWV 0, min Cnxe ~0.9)
    assert out["dev"]["mtwv"] > 0.2 and out["dev"]["min_cnxe"] < 0.5
    assert out["dev"] == pytest.approx({k: dev[-1][k] for k in out["dev"]})
    assert set(out["test"]) == {"mtwv", "atwv", "cnxe", "min_cnxe"}
    assert out["notes"]["pairs"] == {"positive": 14, "negative": 7} and out["notes"]["test"]["split"] == "eval"
    for role, terms, docs in (("dev", 5, 13), ("test", 6, 12)):
        written = read_stdlist(exp / role / "benchmark.stdlist.xml")
        assert len(written.scores) == terms and all(len(s) == docs for s in written.scores.values())
    assert sorted(p.name for p in exp.glob("states-*.ckpt")) == ["states-250.ckpt", "states-500.ckpt"]
    again = superb("evaluate", "-e", str(exp), "-t", "test")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["mtwv"] == pytest.approx(out["test"]["mtwv"])


    for split in ("dev", "test"):  # the DTW baseline on the same QUESST store, beside it in the report
        base = superb("qbe", "--features", str(stores / "quesst14"), "-t", split, "-p", str(tmp_path / f"dtw_{split}"))
        assert base.returncode == 0, base.stderr
    table = build_table(collect([exp, tmp_path / "dtw_test"]))
    (row,) = table.rows
    shown = {(c.task, c.metric): row.cells[c.key].text(c) for c in table.columns}
    assert set(shown) == {("qbe", "mtwv"), ("sws2013", "mtwv"), ("sws2013", "atwv")}
    assert shown["sws2013", "mtwv"].endswith("§") and not shown["qbe", "mtwv"].endswith("§")  # the last model


def test_bad_stores_fail_in_one_line(qbe_stores, tmp_path):
    root, stores = qbe_stores
    line = one_error_line(superb("fit", "-d", "sws2013", "--features", str(stores / "quesst14"), "-p",
                                 str(tmp_path / "a")))
    assert "holds corpus 'quesst14'" in line and "sws2013" in line
    other = tmp_path / "mixed"
    shutil.copytree(stores / "sws2013", other / "sws2013")
    result = superb("extract", "-u", "mfcc", "--corpus", "quesst14", "--root", str(root / "quesst14Database"),
                    "--out", str(tmp_path / "mfcc"), "-q")
    assert result.returncode == 0, result.stderr
    shutil.copytree(tmp_path / "mfcc" / "quesst14", other / "quesst14")
    line = one_error_line(superb("fit", "-d", "sws2013", "--features", str(other), "-p", str(tmp_path / "b")))
    assert "quesst14" in line and "differs from the SWS 2013 store's" in line
    moved = tmp_path / "moved"
    shutil.copytree(stores / "sws2013", moved / "sws2013")
    store = open_store(moved / "sws2013")
    assert store.attrs["corpus"]["root"]  # the ground truth is read from the corpus folder the store names
    shutil.move(str(root / "sws2013Database_dev_eval"), str(tmp_path / "elsewhere"))
    try:
        line = one_error_line(superb("fit", "-d", "sws2013", "--features", str(moved), "-p", str(tmp_path / "c")))
        assert "corpus folder" in line and "sws2013Database_dev_eval" in line
    finally:
        shutil.move(str(tmp_path / "elsewhere"), str(root / "sws2013Database_dev_eval"))


def test_two_processes_train_as_one_and_the_fly_path_cuts_audio(qbe_stores, tmp_path):
    """torchrun: 2 processes × 8 pairs = one process's 8 × 2 accumulated, the same log, and ``-e states-10.ckpt``
    ends the one-process run as it was (the pairs' random draws resume too); on the fly the windows are
    cut from audio with s3prl's front end (sox norm, vad) and QUESST 2014 is read in every language, as s3prl."""
    root, stores = qbe_stores
    override = ("config.runner.total_steps=20,,config.runner.eval_step=10,,config.runner.log_step=10,,"
                "config.runner.save_step=10,,config.optimizer.lr=1e-3,,config.optimizer.warmup_steps=0,,"
                "config.model.hidden_size=64,,config.model.projector_dim=32,,config.data.window_seconds=1.0,,"
                "config.data.window_hop_seconds=0.25,,config.data.batch_size=8,,"
                "config.runner.gradient_accumulate_steps=2")
    args = ("fit", "-d", "sws2013", "--features", str(stores), "-o", override)
    alone_and_shared(superb, args, tmp_path / "one", tmp_path / "two")

    def figures(expdir: Path) -> list[float]:
        log = [json.loads(line) for line in (expdir / "log.jsonl").read_text().splitlines()]
        return [r[k] for r in log for k in ("step", "loss", "mtwv", "min_cnxe") if k in r]

    one = figures(tmp_path / "one")
    assert figures(tmp_path / "two") == pytest.approx(one, rel=1e-5) and len(one) == 10
    whole = read_results(tmp_path / "one")
    resumed = superb("fit", "-d", "sws2013", "-e", str(tmp_path / "one" / "states-10.ckpt"))  # the pairs' draws too
    assert resumed.returncode == 0, resumed.stderr
    assert figures(tmp_path / "one") == pytest.approx(one, rel=1e-6)
    assert read_results(tmp_path / "one")["dev"] == pytest.approx(whole["dev"], abs=1e-6)

    result = superb("fit", "-d", "sws2013", "-u", "fbank", "--root", str(root / "sws2013Database_dev_eval"),
                    "--test-root", str(root / "quesst14Database"), "-p", str(tmp_path / "otf"), "-o",
                    override.replace("total_steps=20", "total_steps=10"))
    assert result.returncode == 0, result.stderr
    out = read_results(tmp_path / "otf")
    assert out["source"] == "on-the-fly" and out["notes"]["front_end"]["level"] == "peak"
    assert out["notes"]["test"]["languages"] == "all" and "each its own upstream input" in out["notes"]["windows"]
    assert len(read_stdlist(tmp_path / "otf" / "test" / "benchmark.stdlist.xml").scores) == 7  # basque query too


def test_training_pairs_are_s3prls_with_times_in_the_stored_audio():
    """Per query example: a positive per occurrence of its term (onset moved by what the vad front end cut from
    the document's start) and one negative over the documents without the term (all of them for a term that
    never occurs); the store's extra documents, not in the ECF, are never drawn."""
    from superb.train.tasks.qbe.scoring import GroundTruth
    from superb.train.tasks.sws2013.task import training_pairs

    class Split:
        def __init__(self, ids, records):
            self.ids, self.records = np.array(ids, dtype=object), records

        def __len__(self):
            return len(self.ids)

    cut = {"audio_edit": {"gain_db": 0.0, "keep": [[8000, 40000]]}}  # 0.5 s cut from d2's start
    docs = Split(["d1", "d2", "d3", "extra"], [{"meta": {}}, {"meta": cut}, {"meta": {}}, {"meta": {}}])
    queries = Split(["t1", "t1_01", "t2"], [{"meta": {"term": t}} for t in ("t1", "t1", "t2")])
    store = type("Store", (), {"split": lambda self, name: {"docs": docs, "dev": queries}[name], "path": "s"})()
    truth = GroundTruth(Path("gt"), {"d1": 5.0, "d2": 5.0, "d3": 5.0}, ["t1", "t2"], {"t1": {"d1", "d2"}, "t2": set()})
    pairs = training_pairs(store, "dev", truth, [("d1", 1.0, 0.4, "t1"), ("d2", 2.0, 0.3, "t1")])
    assert pairs == [Pair(0, 0, 1.0, 0.4), Pair(0, 1, 1.5, 0.3), Pair(0, -1, 0.0, 0.0, (2,)),
                     Pair(1, 0, 1.0, 0.4), Pair(1, 1, 1.5, 0.3), Pair(1, -1, 0.0, 0.0, (2,)),
                     Pair(2, -1, 0.0, 0.0, (0, 1, 2))]
