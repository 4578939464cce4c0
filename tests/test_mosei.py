"""MOSEI on a tiny copy of CMU-MOSEI's audio with s3prl's label CSV: segments cut as s3prl's pydub script cuts them,
the four class schemes as s3prl's expert derives them, learning through the CLI, bad label files in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from superb.extract.audio import AudioInfo
from superb.extract.corpora.mosei import Mosei, pydub_samples
from superb.extract.extraction import ExtractRequest, extract
from superb.testing.cli import one_error_line, read_results, run_superb_here
from superb.testing.corpora import make_mosei, mosei_label7
from superb.train.report import build_table, collect
from superb.train.tasks.mosei import SCHEMES


def superb(*args: str) -> subprocess.CompletedProcess:
    return run_superb_here(*args, threads=1)


def test_label7_is_s3prls_rule_not_rounding():
    scores = [-3.0, -2.5, -2.0, -1.2, -1.0, -0.33, 0.0, 0.33, 1.0, 1.5, 2.0, 2.7, 3.0]
    assert [mosei_label7(a) for a in scores] == [-3, -3, -2, -2, -1, -1, 0, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize(("num_class", "column", "value", "name"), [
    (2, "label2a", 0, "negative"), (2, "label2a", 1, "non-negative"), (3, "label2b", -1, "negative"),
    (3, "label2b", 0, "neutral"), (3, "label2b", 1, "positive"), (6, "label6", 0, "happy"), (6, "label6", 5, "fear"),
    (7, "label7", -3, "-3"), (7, "label7", 0, "0"), (7, "label7", 3, "3")])
def test_class_schemes_are_s3prls(num_class, column, value, name):
    scheme_column, offset, names = SCHEMES[num_class]
    assert scheme_column == column and names[value + offset] == name  # s3prl: label2b + 1, label7 + 3


def test_segments_are_the_samples_pydub_keeps():
    info = AudioInfo(sample_rate=16_000, frames=16_000 * 100 + 7, channels=1)
    # pydub: int(min(ms, len_ms) * rate / 1000), ms = max(0, start)·1000
    assert pydub_samples(23.199, 30.325, info) == (int(23.199 * 1000 * 16.0), int(30.325 * 1000 * 16.0))
    assert pydub_samples(-0.04, 1.0, info) == (0, 16_000)
    assert pydub_samples(99.0, 120.0, info) == (1_584_000, 1_600_000)  # clamped to the length in whole ms


@pytest.fixture(scope="module")
def mosei(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("mosei")
    root = make_mosei(base / "mosei")
    stores = base / "stores" / "fbank_plain"
    extract(ExtractRequest(upstream="fbank", corpus="mosei", root=root, out=stores,
                           upstream_options={"cmvn": False}, progress=False))
    return root, stores


def test_reader_takes_s3prls_splits_and_cuts(mosei):
    root, _ = mosei
    corpus = Mosei(root)
    utterances = corpus.utterances(["train", "dev", "test"])
    assert [sum(u.split == s for u in utterances) for s in ("train", "dev", "test")] == [48, 12, 20]  # split 3 left out
    first = utterances[0]
    assert first.id.endswith("_0") and first.start == 0 and first.meta["label2a"] in (0, 1)  # -0.04 s clipped to 0


def test_mosei_learns_sentiment_and_reports_macro_f1(mosei, tmp_path):
    _, stores = mosei
    result = superb("fit", "-d", "mosei", "--features", str(stores), "-p", str(tmp_path / "run"), "-o",
                    "config.runner.total_steps=200,,config.runner.eval_step=50,,config.runner.log_step=50,,"
                    "config.runner.save_step=200,,config.optimizer.warmup_steps=10,,config.optimizer.lr=1e-2,,"
                    "config.runner.gradient_accumulate_steps=1,,config.data.batch_size=8")
    assert result.returncode == 0, result.stderr
    out = read_results(tmp_path / "run")
    # measured (seeds 0-2, one thread): test accuracy 0.85 of 20 segments (macro F1 0.85); two classes, chance 0.5
    assert out["test"]["acc"] > 0.7 and 0.6 < out["test"]["f1_macro"] <= 1, out["test"]
    table = build_table(collect([tmp_path / "run"]))
    assert [c.header for c in table.columns] == ["MOSEI Acc ↑", "MOSEI macro F1 ↑"]
    seven = superb("fit", "-d", "mosei", "--features", str(stores), "-p", str(tmp_path / "seven"), "-o",
                   "config.runner.total_steps=2,,config.runner.eval_step=2,,config.data.num_class=7,,"
                   "config.model.pooling=s3prl_padded_mean")
    assert seven.returncode == 0, seven.stderr
    assert read_results(tmp_path / "seven")["notes"] == {"num_class": 7, "pooling": "s3prl_padded_mean"}
    assert read_results(tmp_path / "run")["notes"]["pooling"].startswith("mean over valid frames")
    confusion = (tmp_path / "seven" / "confusion-test.json").read_text()
    assert '"labels": ["-3", "-2", "-1", "0", "1", "2", "3"]' in confusion


def test_bad_label_files_fail_in_one_line(mosei, tmp_path):
    root, stores = mosei

    def extract_error(labels: Path) -> str:
        return one_error_line(superb("extract", "-u", "fbank", "--corpus", "mosei", "--root", str(root),
                                     "-c", f"labels={labels}", "--out", str(tmp_path / "stores")))

    csv = (root / "CMU_MOSEI_Labels.csv").read_text(encoding="latin-1").splitlines()
    broken = tmp_path / "missing_end.csv"
    broken.write_text("\n".join([csv[0], csv[1], ",".join(csv[2].split(",")[:4]) + ",,1,1,0,1,0"]) + "\n")
    assert f"{broken}:3: malformed row" in extract_error(broken)
    gone = tmp_path / "gone.csv"
    gone.write_text("\n".join([csv[0], csv[1].replace(csv[1].split(",")[1], "novideo", 1)]) + "\n")
    assert f"{gone}:2: recording 'novideo' not found" in extract_error(gone)
    assert "no column 'label7'" in extract_error(_write(tmp_path / "cols.csv", csv[0].replace("label7", "l7")))
    assert "not one of 2, 3, 6, 7" in one_error_line(superb("fit", "-d", "mosei", "--features", str(stores), "-p",
                                                            str(tmp_path / "r"), "-o", "config.data.num_class=5"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path
