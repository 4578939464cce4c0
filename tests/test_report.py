"""``superb report`` on synthetic expdirs: selection on dev, ER folds, footnotes, files and bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from superb.errors import ConfigError
from superb.train.report import build_table, collect, main_report, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WAVLM = {"name": "wavlm", "ckpt": "/p/WavLM-Base+.pt", "ckpt_sha256": "a" * 64, "random_init": None}
RANDOM = {"name": "hubert", "ckpt": None, "ckpt_sha256": None, "random_init": "tiny"}
WAVLM_ROW, RANDOM_ROW = "wavlm (WavLM-Base+.pt)", "hubert (RANDOM tiny)"


def expdir(root: Path, name: str, task: str, dev: dict, test: dict, *, upstream: dict = WAVLM,
           protocol: str = "dev", fold: int | None = None, layer: int | None = None, lr: float = 1e-4,
           weights: list[float] | None = None, confusions: dict[str, tuple[list, list]] | None = None) -> Path:
    """One expdir as the trainer writes it (SPEC §5)."""
    path = root / name
    path.mkdir(parents=True)
    results = {"task": task, "protocol": protocol, "best_step": 1200, "dev": dev, "test": test,
               "upstream": upstream, "corpus": "c", "fold": fold, "layer": layer, "lr": lr, "seed": 0}
    (path / "results.json").write_text(json.dumps(results))
    if weights is not None:
        layer_weights = {"layers": list(range(len(weights))), "weights": weights}
        (path / "layer_weights.json").write_text(json.dumps(layer_weights))
    for split, (labels, matrix) in (confusions or {}).items():
        (path / f"confusion-{split}.json").write_text(json.dumps({"labels": labels, "matrix": matrix}))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Two upstreams, several tasks; every number chosen so a wrong rule gives a different cell."""
    root = tmp_path / "result" / "downstream"
    # KS lr sweep: the best *test* run (lr 1e-3) is not the best *dev* run (lr 1e-4)
    expdir(root, "ks_lr1e-3", "ks", {"acc": 0.90}, {"acc": 0.99}, lr=1e-3, weights=[0.1, 0.2, 0.7])
    expdir(root, "ks_lr1e-4", "ks", {"acc": 0.95}, {"acc": 0.91}, lr=1e-4, weights=[0.5, 0.3, 0.2],
           confusions={"test": (["yes", "no"], [[8, 2], [1, 9]])})
    expdir(root, "ks_lr1e-5", "ks", {"acc": 0.80}, {"acc": 0.97}, lr=1e-5)
    # PR is lower-is-better: the lowest dev PER wins, though its test PER is not the lowest
    expdir(root, "pr_a", "pr", {"per": 0.20}, {"per": 0.25})
    expdir(root, "pr_b", "pr", {"per": 0.10}, {"per": 0.30})
    expdir(root, "asr", "asr", {"wer": 0.061}, {"wer": 0.0612345})
    # ER: 5 folds for wavlm (fold 2 swept), 3 for the random model
    for fold, acc in enumerate([0.60, 0.62, 0.64, 0.66, 0.68], start=1):
        expdir(root, f"er_f{fold}", "er", {"acc": 0.5}, {"acc": acc}, fold=fold)
    expdir(root, "er_f2_worse", "er", {"acc": 0.4}, {"acc": 0.99}, fold=2)
    for fold, acc in zip([1, 3, 5], [0.50, 0.55, 0.57], strict=True):
        expdir(root, f"er_rand_f{fold}", "er", {"acc": 0.5}, {"acc": acc}, fold=fold, upstream=RANDOM)
    # a single-layer run (no layer_weights.json) and an s3prl-protocol ASV run
    expdir(root, "ks_rand_l1", "ks", {"acc": 0.5}, {"acc": 0.4}, upstream=RANDOM, layer=1)
    expdir(root, "asv", "asv", {}, {"eer": 0.05, "min_dcf": 0.321}, protocol="s3prl")
    # IC: three heads, one confusion file each
    heads = {f"test-{head}": (labels, [[3, 1], [0, 4]]) for head, labels in
             [("action", ["activate", "deactivate"]), ("object", ["lights", "music"]),
              ("location", ["kitchen", "bedroom"])]}
    expdir(root, "ic", "ic", {"acc": 0.99}, {"acc": 0.987}, confusions=heads, weights=[0.25] * 4)
    # SF: two columns from one run; QbE reported raw
    expdir(root, "sf", "sf", {"slot_type_f1": 0.88, "slot_value_cer": 0.3},
           {"slot_type_f1": 0.8812, "slot_value_cer": 0.2345})
    expdir(root, "qbe", "qbe", {"mtwv": 0.07}, {"mtwv": 0.071234}, upstream=RANDOM, layer=6)
    return root


def cells(markdown: str) -> dict[str, dict[str, str]]:
    """The SUPERB table of a report.md as {upstream: {header: cell}}."""
    lines = [line for line in markdown.split("## Runs")[0].splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_table_selects_on_dev_and_averages_er_folds(results: Path, tmp_path: Path) -> None:
    text = main_report([results], tmp_path / "out")
    table = cells(text)
    assert list(table) == [RANDOM_ROW, WAVLM_ROW]  # rows sorted by label
    assert list(table[WAVLM_ROW]) == ["upstream", "PR PER ↓", "KS Acc ↑", "IC Acc ↑", "ER Acc ↑", "ASR WER ↓",
                                      "ASV EER ↓", "SF F1 ↑", "SF CER ↓", "QbE MTWV ↑"]
    wavlm, rand = table[WAVLM_ROW], table[RANDOM_ROW]
    assert wavlm["KS Acc ↑"] == "91.00 (3 runs)"  # best dev (0.95), not best test (0.99)
    assert wavlm["PR PER ↓"] == "30.00 (2 runs)"  # lowest dev PER
    assert wavlm["ASR WER ↓"] == "6.12"
    assert wavlm["ER Acc ↑"] == "64.00 (6 runs)"  # fold 2's best-dev run gives 0.62, not 0.99
    assert rand["ER Acc ↑"] == "54.00 (3/5 folds)"
    assert wavlm["ASV EER ↓"] == "5.00†"
    assert (wavlm["SF F1 ↑"], wavlm["SF CER ↓"]) == ("88.12", "23.45")
    assert wavlm["IC Acc ↑"] == "98.70"
    assert rand["KS Acc ↑"] == "40.00 [L1]"
    assert rand["QbE MTWV ↑"] == "0.0712"  # raw, 4 decimals, no layer mark (QbE always picks one layer)
    assert rand["PR PER ↓"] == "–"
    assert "† `protocol: s3prl`" in text and "[Ln]: the selected run used hidden layer n" in text
    assert "‡" not in text
    assert text == (tmp_path / "out" / "report.md").read_text()


def test_detail_rows(results: Path, tmp_path: Path) -> None:
    text = main_report([results], tmp_path / "out")
    detail = [line for line in text.split("## Runs")[1].splitlines() if line.startswith("| ks")]
    w = "wavlm (WavLM-Base+.pt)"
    assert detail == [
        "| ks | hubert (RANDOM tiny) | ks_rand_l1 | ✓ | 1200 | acc 50.00 | acc 40.00 | 0.0001 | 0 | layer 1 | dev |",
        f"| ks | {w} | ks_lr1e-3 |  | 1200 | acc 90.00 | acc 99.00 | 0.001 | 0 | weighted | dev |",
        f"| ks | {w} | ks_lr1e-4 | ✓ | 1200 | acc 95.00 | acc 91.00 | 0.0001 | 0 | weighted | dev |",
        f"| ks | {w} | ks_lr1e-5 |  | 1200 | acc 80.00 | acc 97.00 | 1e-05 | 0 | weighted | dev |",
    ]  # sorted by task (SUPERB order), upstream, path; ✓ marks the runs the table uses
    assert ("| er | hubert (RANDOM tiny) | er_rand_f3 | ✓ | 1200 | acc 50.00 | acc 55.00 | 0.0001 | 0 "
            "| weighted, fold 3 | dev |") in text
    assert "| asv | wavlm (WavLM-Base+.pt) | asv | ✓ | 1200 |  | eer 5.00, min_dcf 0.3210 |" in text


def test_csv_and_json(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    main_report([results], out)
    rows = list(csv.reader(io.StringIO((out / "report.csv").read_text())))
    assert rows[0] == ["upstream", "pr per (%)", "ks acc (%)", "ic acc (%)", "er acc (%)", "asr wer (%)",
                       "asv eer (%)", "sf slot_type_f1 (%)", "sf slot_value_cer (%)", "qbe mtwv"]
    assert rows[1] == [RANDOM_ROW, "", "40.00", "", "54.00", "", "", "", "", "0.0712"]
    assert rows[2] == [WAVLM_ROW, "30.00", "91.00", "98.70", "64.00", "6.12", "5.00", "88.12", "23.45", ""]
    data = json.loads((out / "report.json").read_text())
    wavlm = next(row for row in data["rows"] if row["upstream"] == WAVLM_ROW)
    assert wavlm["ckpt_sha256"] == "a" * 64
    assert wavlm["cells"]["ks/acc"]["value"] == 0.91  # raw fraction, not percent
    assert wavlm["cells"]["ks/acc"]["compared"] == 3
    assert wavlm["cells"]["ks/acc"]["selected"] == [str(results / "ks_lr1e-4")]
    assert wavlm["cells"]["er/acc"]["value"] == pytest.approx(0.64)
    assert wavlm["cells"]["er/acc"]["folds"] == 5
    assert wavlm["cells"]["asv/eer"]["s3prl_protocol"] is True
    assert {c["key"]: c["higher_is_better"] for c in data["columns"]}["pr/per"] is False
    assert len(data["runs"]) == 20
    assert sum(run["selected"] for run in data["runs"]) == 16  # all but 3 ks, pr, er sweep losers


def is_png(path: Path) -> bool:
    from matplotlib.image import imread

    return path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 2000 and imread(path).ndim == 3


def test_plots(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = write_report(build_table(runs := collect([results])), runs, out)
    plots = sorted(key for key in written if key.startswith("plots/"))
    assert plots == ["plots/ic/confusion-test-action.png", "plots/ic/confusion-test-location.png",
                     "plots/ic/confusion-test-object.png", "plots/ic/layer-weights.png",
                     "plots/ks_lr1e-3/layer-weights.png", "plots/ks_lr1e-4/confusion-test.png",
                     "plots/ks_lr1e-4/layer-weights.png",  # none for the single-layer run
                     "plots/lr-grid-ks-wavlm__WavLM-Base_.pt_.png"]  # KS tried at two learning rates
    assert all(written[key] == out / key and is_png(out / key) for key in plots)
    assert {"report.md", "report.csv", "report.json"} <= set(written)
    assert "- [plots/ic/confusion-test-action.png](plots/ic/confusion-test-action.png)" in (
        out / "report.md").read_text()


def test_run_keys_keep_nested_paths_apart(tmp_path: Path) -> None:
    for group in ("a", "b"):
        expdir(tmp_path / group, "ks", "ks", {"acc": 0.9}, {"acc": 0.9}, weights=[0.5, 0.5])
    written = write_report(build_table(runs := collect([tmp_path])), runs, tmp_path / "out")
    assert sorted(k for k in written if k.startswith("plots/")) == ["plots/a__ks/layer-weights.png",
                                                                    "plots/b__ks/layer-weights.png"]


def test_default_out_is_common_parent(results: Path) -> None:
    main_report([results / "ks_lr1e-4", results / "pr_a"], None)
    assert (results / "report" / "report.md").is_file()
    assert "KS Acc ↑" in (results / "report" / "report.md").read_text()


def test_no_test_result_and_dev_tie(tmp_path: Path) -> None:
    expdir(tmp_path, "pr_only_dev", "pr", {"per": 0.1}, {})
    expdir(tmp_path, "ks_b", "ks", {"acc": 0.9}, {"acc": 0.2})
    expdir(tmp_path, "ks_a", "ks", {"acc": 0.9}, {"acc": 0.1})  # tie on dev: the first path wins
    text = main_report([tmp_path], tmp_path / "out")
    row = cells(text)[WAVLM_ROW]
    assert row["PR PER ↓"] == "–‡" and "‡ no test metric to show" in text
    assert row["KS Acc ↑"] == "10.00 (2 runs)"


def test_same_checkpoint_name_different_weights(tmp_path: Path) -> None:
    expdir(tmp_path, "one", "ks", {"acc": 0.9}, {"acc": 0.9})
    expdir(tmp_path, "two", "ks", {"acc": 0.9}, {"acc": 0.8}, upstream={**WAVLM, "ckpt_sha256": "b" * 64})
    assert list(cells(main_report([tmp_path], tmp_path / "out"))) == [f"{WAVLM_ROW} @aaaaaaaa",
                                                                      f"{WAVLM_ROW} @bbbbbbbb"]


def test_missing_or_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere: no such directory"):
        collect([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty: no results.json"):
        collect([tmp_path / "empty"])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("task"), "field 'task' is missing"),
    (lambda d: d.update(protocol="best"), "field 'protocol' must be one of dev, s3prl"),
    (lambda d: d.update(dev={"acc": "high"}), r"field 'dev.acc' must be a finite number"),
    (lambda d: d.update(test={"acc": True}), r"field 'test.acc' must be a finite number"),
    (lambda d: d.update(test=[0.9]), r"field 'test' must be dict"),
    (lambda d: d["upstream"].pop("name"), "field 'upstream.name' is missing"),
    (lambda d: d["upstream"].update(ckpt_sha256=3), "field 'upstream.ckpt_sha256' must be str, got 3"),
    (lambda d: d.update(task="er", fold=None), r"field 'fold' must be the IEMOCAP session fold 1..5"),
    (lambda d: d.update(task="er", fold=6), r"field 'fold' must be the IEMOCAP session fold"),
    (lambda d: d.update(lr="fast"), "field 'lr' must be int or float"),
    (lambda d: d.update(best_step=True), "field 'best_step' must be int, got True"),
])
def test_malformed_results_json(tmp_path: Path, edit, message: str) -> None:
    path = expdir(tmp_path, "bad", "ks", {"acc": 0.9}, {"acc": 0.9}) / "results.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"{path}: {message}"):
        collect([tmp_path])


def test_malformed_json_and_side_files(tmp_path: Path) -> None:
    path = expdir(tmp_path, "bad", "ks", {"acc": 0.9}, {"acc": 0.9})
    (path / "results.json").write_text("{not json")
    with pytest.raises(ConfigError, match=f"{path / 'results.json'}: not valid JSON"):
        collect([tmp_path])
    path = expdir(tmp_path, "conf", "ks", {"acc": 0.9}, {"acc": 0.9}, confusions={"test": (["a", "b"], [[1, 2]])})
    with pytest.raises(ConfigError, match=f"{path / 'confusion-test.json'}: field 'matrix' must be 2×2"):
        collect([path])
    path = expdir(tmp_path, "lw", "ks", {"acc": 0.9}, {"acc": 0.9})
    (path / "layer_weights.json").write_text(json.dumps({"layers": [0, 1], "weights": [1.0]}))
    with pytest.raises(ConfigError, match=f"{path / 'layer_weights.json'}: fields 'layers' and 'weights'"):
        collect([path])


def test_default_out_for_one_folder_with_one_run(tmp_path: Path) -> None:
    expdir(tmp_path / "downstream", "ks", "ks", {"acc": 0.9}, {"acc": 0.9})
    main_report([tmp_path / "downstream"], None)
    assert (tmp_path / "downstream" / "report" / "report.csv").is_file()


def test_unknown_task_gets_columns_for_its_metrics(tmp_path: Path) -> None:
    expdir(tmp_path, "new", "lid", {"acc": 0.5, "loss": 1.0}, {"acc": 0.75, "loss": 2.0})
    expdir(tmp_path, "ks", "ks", {"acc": 0.9}, {"acc": 0.9})
    row = cells(main_report([tmp_path], tmp_path / "out"))[WAVLM_ROW]
    assert list(row) == ["upstream", "KS Acc ↑", "lid Acc ↑"]  # after the known tasks; no column for loss
    assert row["lid Acc ↑"] == "75.00"


def test_asr_runs_list_every_error_rate(tmp_path: Path) -> None:
    """WER is the ASR column; the run's row lists s3prl's UER, the CER and the LM's WER too."""
    metrics = {"wer": 0.0612, "uer": 0.0194, "cer": 0.0237, "wer_lm": 0.05, "loss": 1.5}
    expdir(tmp_path, "asr", "asr", metrics, metrics)
    text = main_report([tmp_path], tmp_path / "out")
    assert list(cells(text)[WAVLM_ROW]) == ["upstream", "ASR WER ↓"]
    listed = "wer 6.12, cer 2.37, uer 1.94, wer_lm 5.00"
    assert f"| asr | {WAVLM_ROW} | asr | ✓ | 1200 | {listed} | {listed} |" in text


def test_default_protocol_runs_win_over_s3prl_ones(tmp_path: Path) -> None:
    expdir(tmp_path, "asv_s3prl", "asv", {"eer": 0.01}, {"eer": 0.01}, protocol="s3prl")
    expdir(tmp_path, "asv_dev", "asv", {"eer": 0.09}, {"eer": 0.08})
    expdir(tmp_path, "sd_s3prl_a", "sd", {}, {"der": 0.07}, protocol="s3prl")  # s3prl ranks on test
    expdir(tmp_path, "sd_s3prl_b", "sd", {}, {"der": 0.06}, protocol="s3prl")
    text = main_report([tmp_path], tmp_path / "out")
    row = cells(text)[WAVLM_ROW]
    assert row["ASV EER ↓"] == "8.00"
    assert row["SD DER ↓"] == "6.00 (2 runs)†"


def test_confusion_counts_written_only_for_small_matrices(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.figure import Figure

    texts: list[int] = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (texts.append(len(fig.axes[0].texts)),
                                                                  save(fig, *a, **k)))
    big = [f"w{i}" for i in range(20)]
    expdir(tmp_path, "small", "ks", {"acc": 0.9}, {"acc": 0.9}, confusions={"test": (["a", "b"], [[1, 0], [0, 1]])})
    expdir(tmp_path, "big", "ks", {"acc": 0.9}, {"acc": 0.9},
           confusions={"test": (big, [[int(i == j) for j in range(20)] for i in range(20)])})
    written = write_report(build_table(runs := collect([tmp_path])), runs, tmp_path / "out")
    assert texts == [0, 4]  # big (sorted first): no numbers; small: one per cell
    assert is_png(written["plots/big/confusion-test.png"])
