"""``superb report``: the SUPERB table from finished expdirs, as Markdown, CSV, JSON and plots.

SUPERB's protocol: per task and upstream, the run with the best *dev* metric (over a learning-rate
sweep or seeds) is chosen, and its *test* metric is reported; ER averages that over its 5 session folds.
We never pick on test, except where a run says ``protocol: s3prl`` (s3prl's ASV/SD selection), and the
table marks those cells. Inputs are the files the trainer writes (SPEC §4–5): ``results.json``, and
where present ``layer_weights.json`` and ``confusion-SPLIT.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.errors import ConfigError
from superb.files import write_text

# The SUPERB ten in the paper's order, then the rest; sf has two columns, selected on its first metric.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "pr": ("per",), "ks": ("acc",), "ic": ("acc",), "sid": ("acc",), "er": ("acc",), "asr": ("wer",),
    "asv": ("eer",), "sd": ("der",), "sf": ("slot_type_f1", "slot_value_cer"), "qbe": ("mtwv",),
    "sws2013": ("mtwv", "atwv"),
    "phone_linear": ("acc",), "phone_linear_concat": ("acc",), "phone_1hidden": ("acc",),
    "audio_snips": ("acc",), "atis": ("acc",), "mosei": ("acc", "f1_macro"),
    "separation_stft": ("si_sdri", "stoi", "pesq"),
    "example": ("acc",),
}
HIGHER_IS_BETTER = {"acc": True, "per": False, "wer": False, "wer_lm": False, "uer": False, "cer": False,
                    "eer": False, "min_dcf": False, "der": False, "mtwv": True, "atwv": True, "slot_type_f1": True,
                    "slot_value_cer": False, "si_sdri": True, "stoi": True, "pesq": True,
                    "f1_macro": True}
_RAW = {"mtwv", "atwv", "min_dcf", "stoi", "pesq"}  # printed as is with 4 decimals; si_sdri in dB; the rest in %
_TASK_NAMES = {"qbe": "QbE", "sws2013": "QbE trained", "separation_stft": "SS", "audio_snips": "SNIPS IC",
               "atis": "ATIS IC"}
_METRIC_NAMES = {"acc": "Acc", "slot_type_f1": "F1", "slot_value_cer": "CER", "si_sdri": "SI-SDRi", "stoi": "STOI",
                 "pesq": "PESQ", "f1_macro": "macro F1", "min_dcf": "minDCF", "wer_lm": "WER (LM)"}
PROTOCOLS = ("dev", "s3prl")  # "dev" is the default and carries no mark
LAST_UNDER_S3PRL = {"sws2013"}  # tasks whose s3prl protocol reports the last checkpoint, not one chosen on test
ER_FOLDS = 5
_ANNOTATE_MAX = 15  # write counts into confusion cells up to this many labels


@dataclass(frozen=True)
class Upstream:
    name: str
    ckpt: str | None
    sha256: str | None
    random_init: str | None
    options: tuple[tuple[str, str], ...] = ()  # the upstream's options (e.g. fbank's cmvn), sorted

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Identity: weights and options, not paths, so one checkpoint copied to two places is one row."""
        ident = self.sha256 or (f"RANDOM {self.random_init}" if self.random_init else self.ckpt or "")
        return self.name, ident, self.options

    @property
    def label(self) -> str:
        if self.random_init:
            return f"{self.name} (RANDOM {self.random_init})"
        return f"{self.name} ({Path(self.ckpt).name})" if self.ckpt else self.name


@dataclass(frozen=True)
class LayerWeights:
    layers: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class Confusion:
    path: Path
    split: str  # what follows "confusion-": "test", or "test-action" for an IC head
    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]  # rows = true label, columns = predicted


@dataclass(frozen=True)
class Run:
    path: Path  # the expdir
    task: str
    protocol: str
    best_step: int | None
    dev: dict[str, float]
    test: dict[str, float]
    upstream: Upstream
    corpus: str | None
    fold: int | None
    layer: int | None
    lr: float | None
    seed: int | None
    layer_weights: LayerWeights | None
    confusions: tuple[Confusion, ...]
    diverged_at: int | None = None  # a sweep head whose loss stopped being finite (never selected)
    halted_at: int | None = None  # a sweep head stopped by successive halving

    @property
    def name(self) -> str:
        return self.path.name


# ---------------------------------------------------------------- reading


def _field(data: dict, key: str, kinds: tuple[type, ...], where: Path, *, required: bool = False,
           within: str = "") -> Any:
    """``data[key]`` checked against ``kinds`` (bool is never a number); ConfigError names file and field."""
    value, field = data.get(key), f"'{within}{key}'"
    if value is None:
        if required:
            raise ConfigError(f"{where}: field {field} is missing")
        return None
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        want = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"{where}: field {field} must be {want}, got {value!r}")
    return value


def _metrics(data: dict, key: str, where: Path) -> dict[str, float]:
    block = _field(data, key, (dict,), where, required=True)
    for metric, value in block.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: field '{key}.{metric}' must be a finite number, got {value!r}")
    return {metric: float(value) for metric, value in block.items()}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _upstream(data: dict, where: Path) -> Upstream:
    block = _field(data, "upstream", (dict,), where, required=True)
    name = _field(block, "name", (str,), where, required=True, within="upstream.")
    ckpt, sha256, random_init = (_field(block, k, (str,), where, within="upstream.")
                                 for k in ("ckpt", "ckpt_sha256", "random_init"))
    options = _field(block, "options", (dict,), where, within="upstream.") or {}
    return Upstream(name, ckpt, sha256, random_init, tuple(sorted((str(k), str(v)) for k, v in options.items())))


def _list(data: dict, key: str, kinds: tuple[type, ...], where: Path) -> list:
    """A required list whose items are all of ``kinds`` (bool never counts as a number)."""
    items = _field(data, key, (list,), where, required=True)
    if not all(isinstance(v, kinds) and not isinstance(v, bool) for v in items):
        raise ConfigError(f"{where}: field {key!r} must hold {' or '.join(k.__name__ for k in kinds)} only")
    return items


def _layer_weights(path: Path) -> LayerWeights | None:
    if not path.is_file():
        return None
    data = _read_json(path)
    layers, weights = _list(data, "layers", (int,), path), _list(data, "weights", (int, float), path)
    if len(layers) != len(weights) or not layers:
        raise ConfigError(f"{path}: fields 'layers' and 'weights' must be non-empty and of equal length")
    return LayerWeights(tuple(layers), tuple(float(w) for w in weights))


def _confusion(path: Path) -> Confusion:
    data = _read_json(path)
    labels, matrix = _list(data, "labels", (str,), path), _field(data, "matrix", (list,), path, required=True)
    square = len(matrix) == len(labels) and all(isinstance(r, list) and len(r) == len(labels) for r in matrix)
    if not square or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for r in matrix for c in r):
        raise ConfigError(f"{path}: field 'matrix' must be {len(labels)}×{len(labels)} non-negative integers "
                          "(one row and one column per label)")
    split = path.stem.removeprefix("confusion-")
    return Confusion(path, split, tuple(labels), tuple(tuple(r) for r in matrix))


def read_run(results: Path) -> Run:
    """One expdir from its ``results.json`` and the optional files beside it."""
    data, expdir = _read_json(results), results.parent
    task = _field(data, "task", (str,), results, required=True)
    protocol = _field(data, "protocol", (str,), results, required=True)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{results}: field 'protocol' must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    fold = _field(data, "fold", (int,), results)
    if task == "er" and (fold is None or not 1 <= fold <= ER_FOLDS):
        raise ConfigError(f"{results}: field 'fold' must be the IEMOCAP session fold 1..{ER_FOLDS} for er, "
                          f"got {fold!r}")
    lr = _field(data, "lr", (int, float), results)
    return Run(
        path=expdir, task=task, protocol=protocol, best_step=_field(data, "best_step", (int,), results),
        dev=_metrics(data, "dev", results), test=_metrics(data, "test", results),
        upstream=_upstream(data, results), corpus=_field(data, "corpus", (str,), results), fold=fold,
        layer=_field(data, "layer", (int,), results), lr=None if lr is None else float(lr),
        seed=_field(data, "seed", (int,), results),
        layer_weights=_layer_weights(expdir / "layer_weights.json"),
        confusions=tuple(_confusion(p) for p in sorted(expdir.glob("confusion-*.json"))),
        diverged_at=_field(data, "diverged_at_step", (int,), results),
        halted_at=_field(data, "halted_at_step", (int,), results),
    )


def collect(result_dirs: list[Path]) -> list[Run]:
    """Every run under the given expdirs or folders of expdirs, each once, in path order."""
    found: dict[Path, Path] = {}
    for given in map(Path, result_dirs):
        if given.is_file() and given.name == "results.json":
            hits = [given]
        elif given.is_dir():
            hits = sorted(given.rglob("results.json"))
        else:
            raise ConfigError(f"{given}: no such directory")
        if not hits:
            raise ConfigError(f"{given}: no results.json here or below (is it a `superb fit` expdir?)")
        found.update((hit.resolve(), hit) for hit in hits)
    return [read_run(found[key]) for key in sorted(found)]


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Column:
    task: str
    metric: str

    @property
    def key(self) -> str:
        return f"{self.task}/{self.metric}"

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]

    @property
    def unit(self) -> str:
        return "raw" if self.metric in _RAW else "dB" if self.metric == "si_sdri" else "%"

    @property
    def header(self) -> str:
        task = _TASK_NAMES.get(self.task, self.task.upper() if self.task in TASK_METRICS else self.task)
        arrow = "↑" if self.higher_is_better else "↓"
        unit = " (dB)" if self.unit == "dB" else ""
        return f"{task} {_METRIC_NAMES.get(self.metric, self.metric.upper())}{unit} {arrow}"

    def format(self, value: float) -> str:
        if self.unit == "%":
            return f"{100 * value:.2f}"
        return f"{value:.4f}" if self.unit == "raw" else f"{value:.2f}"


@dataclass(frozen=True)
class Cell:
    value: float | None  # raw units (fraction, dB, MTWV); ER: mean over folds; None: nothing to show
    selected: tuple[Run, ...]  # the best-dev run, or one per fold for ER
    compared: int  # runs whose selection metric was compared
    folds: int | None  # ER: folds with a test value

    @property
    def s3prl(self) -> bool:
        return any(run.protocol == "s3prl" for run in self.selected)

    def text(self, column: Column) -> str:
        notes = [f"{self.folds}/{ER_FOLDS} folds"] if self.folds is not None and self.folds < ER_FOLDS else []
        if self.compared > len(self.selected):
            notes.append(f"{self.compared} runs")
        text = "–‡" if self.value is None else column.format(self.value)
        text += f" ({', '.join(notes)})" if notes else ""
        layers = sorted({r.layer for r in self.selected if r.layer is not None}) if column.task != "qbe" else []
        text += "".join(f" [L{layer}]" for layer in layers)
        return text + (("§" if column.task in LAST_UNDER_S3PRL else "†") if self.s3prl else "")


@dataclass(frozen=True)
class Row:
    upstream: Upstream
    label: str
    cells: dict[str, Cell]  # by Column.key; absent: no run of that task


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    def label(self, run: Run) -> str:
        return next(row.label for row in self.rows if row.upstream.key == run.upstream.key)

    def selected(self) -> set[Path]:
        return {run.path for row in self.rows for cell in row.cells.values() for run in cell.selected}


def _columns(runs: list[Run]) -> tuple[Column, ...]:
    """Known tasks in SUPERB order; an unknown task gets a column per known metric it reports."""
    tasks = {run.task for run in runs}
    known = [Column(t, m) for t, metrics in TASK_METRICS.items() if t in tasks for m in metrics]
    extra = sorted({(r.task, m) for r in runs if r.task not in TASK_METRICS
                    for m in (*r.dev, *r.test) if m in HIGHER_IS_BETTER})
    return tuple(known + [Column(t, m) for t, m in extra])


def _select(runs: list[Run], metric: str) -> tuple[Run | None, int]:
    """The best-dev run and how many were compared.

    Default-protocol runs win over ``protocol: s3prl`` ones; an s3prl run without the dev metric is
    ranked on test, which is what that protocol means. Ties go to the first run in path order.
    """
    runs = [r for r in runs if r.diverged_at is None]  # a diverged sweep head is never the pick
    pool = [r for r in runs if r.protocol == "dev"] or runs
    scored = [(r.dev.get(metric, r.test.get(metric) if r.protocol == "s3prl" else None), r) for r in pool]
    scored = [(score, run) for score, run in scored if score is not None]
    if not scored:
        return None, 0
    pick = max if HIGHER_IS_BETTER[metric] else min
    return pick(scored, key=lambda pair: pair[0])[1], len(scored)


def _cell(runs: list[Run], column: Column, select_on: str) -> Cell:
    if column.task != "er":
        best, compared = _select(runs, select_on)
        value = best.test.get(column.metric) if best else None
        return Cell(value, (best,) if best else (), compared, None)
    picks = [_select([r for r in runs if r.fold == fold], select_on) for fold in range(1, ER_FOLDS + 1)]
    chosen = tuple(best for best, _ in picks if best is not None)
    values = [r.test[column.metric] for r in chosen if column.metric in r.test]
    mean = sum(values) / len(values) if values else None
    return Cell(mean, chosen, sum(n for _, n in picks), len(values))


def _labels(upstreams: list[Upstream]) -> dict[tuple, str]:
    """Readable row names; where two rows share a name, the options that differ, else a checksum prefix."""
    groups: dict[str, list[Upstream]] = {}
    for u in upstreams:
        groups.setdefault(u.label, []).append(u)
    out = {}
    for label, group in groups.items():
        for u in group:
            if len(group) == 1:
                out[u.key] = label
                continue
            differing = [f"{k}={v}" for k, v in u.options
                         if any(dict(o.options).get(k) != v for o in group if o is not u)]
            out[u.key] = f"{label} [{', '.join(differing)}]" if differing else \
                f"{label} @{(u.sha256 or '')[:8] or u.ckpt}"
    return out


def build_table(runs: list[Run]) -> Table:
    """One row per upstream (by weights), one column per task metric, each cell from the best-dev run."""
    columns = _columns(runs)
    upstreams = list({run.upstream.key: run.upstream for run in runs}.values())
    labels = _labels(upstreams)
    rows = []
    for upstream in sorted(upstreams, key=lambda u: labels[u.key]):
        mine = [run for run in runs if run.upstream.key == upstream.key]
        cells = {}
        for column in columns:
            group = sorted((r for r in mine if r.task == column.task), key=lambda r: r.path)
            if group:
                select_on = TASK_METRICS.get(column.task, (column.metric,))[0]
                cells[column.key] = _cell(group, column, select_on)
        rows.append(Row(upstream, labels[upstream.key], cells))
    return Table(columns, tuple(rows))


# ---------------------------------------------------------------- writing

_FOOTNOTES = {
    "†": "† `protocol: s3prl`: s3prl's selection on *test* (ASV: the checkpoint; SD: the threshold and median "
         "filter); not comparable with unmarked cells.",
    "§": "§ `protocol: s3prl` (sws2013's default): the last checkpoint, as s3prl keeps no best one; not chosen on "
         "test.",
    "‡": "‡ no test metric to show: the best-dev run was not evaluated on test (`superb evaluate -e EXPDIR "
         "-t test`), or no run reports the dev metric to select on.",
    "[L": "[Ln]: the selected run used hidden layer n only, not the learned weighted sum.",
}


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _num(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}"


def _run_metrics(run: Run, split: dict[str, float]) -> str:
    order = [*TASK_METRICS.get(run.task, ()), *sorted(split)]
    columns = [Column(run.task, m) for m in dict.fromkeys(order) if m in split and m in HIGHER_IS_BETTER]
    return ", ".join(f"{c.metric} {c.format(split[c.metric])}" for c in columns)


def _detail_rows(table: Table, runs: list[Run]) -> list[list[str]]:
    order = {task: i for i, task in enumerate(TASK_METRICS)}
    chosen = table.selected()
    rows = []
    for run in sorted(runs, key=lambda r: (order.get(r.task, len(order)), r.task, table.label(r), str(r.path))):
        where = [f"layer {run.layer}" if run.layer is not None else "weighted"]
        where += [f"fold {run.fold}"] if run.fold is not None else []
        rows.append([run.task, table.label(run), run.name, "✓" if run.path in chosen else "",
                     _num(run.best_step), _run_metrics(run, run.dev), _run_metrics(run, run.test),
                     _num(run.lr), _num(run.seed), ", ".join(where), run.protocol])
    return rows


def lr_grids(table: Table, runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs of one task and upstream tried at two or more learning rates (a sweep, or fits by hand), keyed
    ``(task, upstream label)``: what the report shows as a grid and plots against the learning rate."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if run.lr is not None:
            groups.setdefault((run.task, table.label(run)), []).append(run)
    return {key: group for key, group in sorted(groups.items()) if len({r.lr for r in group}) > 1}


def _grid_metric(task: str) -> str:
    return TASK_METRICS.get(task, ("acc",))[0]


def _grid_line(run: Run) -> str:
    layer = "weighted" if run.layer is None else f"layer {run.layer}"
    fold = f" · fold {run.fold}" if run.fold is not None else ""
    return f"seed {run.seed} · {layer}{fold}"


def _grid_markdown(task: str, label: str, group: list[Run]) -> list[str]:
    """Dev metric per learning rate (rows) and seed × layer (columns)."""
    metric = _grid_metric(task)
    column = Column(task, metric)
    lines = sorted({_grid_line(r) for r in group})
    lrs = sorted({r.lr for r in group}, reverse=True)
    cell = {(r.lr, _grid_line(r)): r for r in group}
    rows = []
    for lr in lrs:
        values = []
        for line in lines:
            run = cell.get((lr, line))
            value = None if run is None else run.dev.get(metric)
            text = "–" if value is None or value != value else column.format(value)
            if run is not None and run.diverged_at is not None:
                text += f" (diverged at {run.diverged_at})"
            elif run is not None and run.halted_at is not None:
                text += f" (halved at {run.halted_at})"
            values.append(text)
        rows.append(md_row([f"{lr:g}", *values]))
    return [f"\n### {_TASK_NAMES.get(task, task.upper())} · {label} (dev {column.header.split(' ', 1)[-1]})\n",
            md_row(["lr", *lines]), "|---" + "|---:" * len(lines) + "|", *rows]


def plot_lr_grid(task: str, group: list[Run], title: str, path: Path) -> Path:
    """Dev metric against the learning rate (log scale), a line per seed × layer."""
    from matplotlib.figure import Figure

    metric = _grid_metric(task)
    column = Column(task, metric)
    fig = Figure(figsize=(5.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for line in sorted({_grid_line(r) for r in group}):
        points = sorted((r.lr, r.dev.get(metric)) for r in group if _grid_line(r) == line)
        points = [(lr, v) for lr, v in points if v is not None and v == v]
        if points:
            scale = 100.0 if column.unit == "%" else 1.0
            ax.plot([lr for lr, _ in points], [v * scale for _, v in points], marker="o", label=line)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel=f"dev {metric}" + (" (%)" if column.unit == "%" else ""))
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.savefig(path, format="png", dpi=100)
    return path


def render_markdown(table: Table, runs: list[Run], plots: dict[str, Path] | None = None) -> str:
    """The report as Markdown: the SUPERB table, its footnotes, then every run."""
    cells = [[row.label] + [row.cells[c.key].text(c) if c.key in row.cells else "–" for c in table.columns]
             for row in table.rows]
    lines = ["# SUPERB report", "", md_row(["upstream"] + [c.header for c in table.columns]),
             "|---" + "|---:" * len(table.columns) + "|", *map(md_row, cells), "",
             "Test metric of the best-dev run per task and upstream (SUPERB's protocol); percent, except "
             "SI-SDRi (dB) and MTWV/ATWV. ER: mean over the IEMOCAP session folds, each fold's best-dev run. "
             "(N runs): how many runs were compared on dev. –: not run."]
    used = "".join(text for row in cells for text in row[1:])
    lines += [f"\n{note}" for mark, note in _FOOTNOTES.items() if mark in used]
    lines += ["", "## Runs", "", md_row(["task", "upstream", "name", "selected", "best_step", "dev", "test",
                                          "lr", "seed", "layer/fold", "protocol"]),
              "|---" * 11 + "|", *map(md_row, _detail_rows(table, runs))]
    grids = lr_grids(table, runs)
    if grids:
        lines += ["", "## Learning-rate grids", "", "Each run's dev metric (the task's selection metric); the "
                  "SUPERB table above takes the best of each task and upstream."]
        for (task, label), group in grids.items():
            lines += _grid_markdown(task, label, group)
    if plots:
        lines += ["", "## Plots", ""] + [f"- [{key}]({key})" for key in sorted(plots)]
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    """The table as numbers in the Markdown's units (no marks), one row per upstream."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    units = {"%": " (%)", "dB": " (dB)", "raw": ""}
    writer.writerow(["upstream"] + [f"{c.task} {c.metric}{units[c.unit]}" for c in table.columns])
    for row in table.rows:
        values = [row.cells.get(c.key) for c in table.columns]
        writer.writerow([row.label] + ["" if cell is None or cell.value is None else c.format(cell.value)
                                       for c, cell in zip(table.columns, values, strict=True)])
    return out.getvalue()


def report_data(table: Table, runs: list[Run]) -> dict[str, Any]:
    """Plain data (raw fractions, not percent) for report.json."""
    columns = [{"key": c.key, "task": c.task, "metric": c.metric, "higher_is_better": c.higher_is_better,
                "unit": c.unit} for c in table.columns]
    by_key = {c.key: c for c in table.columns}
    rows = [{"upstream": row.label, "name": row.upstream.name, "ckpt": row.upstream.ckpt,
             "ckpt_sha256": row.upstream.sha256, "random_init": row.upstream.random_init,
             "cells": {key: {"value": cell.value, "text": cell.text(by_key[key]),
                             "compared": cell.compared, "folds": cell.folds, "s3prl_protocol": cell.s3prl,
                             "selected": [str(r.path) for r in cell.selected]}
                       for key, cell in row.cells.items()}}
            for row in table.rows]
    chosen = table.selected()
    runs_data = [{"path": str(r.path), "name": r.name, "task": r.task, "protocol": r.protocol,
                  "upstream": table.label(r), "best_step": r.best_step, "dev": r.dev, "test": r.test,
                  "corpus": r.corpus, "fold": r.fold, "layer": r.layer, "lr": r.lr, "seed": r.seed,
                  "selected": r.path in chosen} for r in runs]
    return {"columns": columns, "rows": rows, "runs": runs_data}


def _run_keys(runs: list[Run]) -> dict[Path, str]:
    """A short unique folder name per run: its path below the runs' common parent, ``/`` → ``__``."""
    if not runs:
        return {}
    base = Path(os.path.commonpath([run.path.resolve().parent for run in runs]))
    return {run.path: run.path.resolve().relative_to(base).as_posix().replace("/", "__") for run in runs}


def plot_layer_weights(weights: LayerWeights, title: str, path: Path) -> Path:
    """A bar per layer: which layers the head learned to use."""
    from matplotlib.figure import Figure  # lazily, and without pyplot: Agg, no display, no global state

    fig = Figure(figsize=(max(4.0, 0.35 * len(weights.layers) + 1.5), 3.0), layout="constrained")
    ax = fig.add_subplot()
    ax.bar([str(layer) for layer in weights.layers], weights.weights, color="tab:blue")
    ax.axhline(1 / len(weights.layers), color="grey", linestyle="--", linewidth=1, label="uniform")
    ax.legend(loc="upper right", fontsize=8)
    ax.set(xlabel="layer", ylabel="softmax weight")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, format="png", dpi=100)
    return path


def plot_confusion(confusion: Confusion, title: str, path: Path) -> Path:
    """Row-normalised confusion (recall per true label), with counts written in when there are few labels."""
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(confusion.matrix, dtype=np.int64).reshape(len(confusion.labels), -1)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    n = len(confusion.labels)
    side = min(14.0, max(4.0, 0.45 * n + 2.5))
    fig = Figure(figsize=(side, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(rates, vmin=0.0, vmax=1.0, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true label")
    if n <= 60:
        ax.set_xticks(range(n), confusion.labels, rotation=90)
        ax.set_yticks(range(n), confusion.labels)
    if n <= _ANNOTATE_MAX:
        for (i, j), count in np.ndenumerate(counts):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=9,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, format="png", dpi=100)
    return path


def write_plots(table: Table, runs: list[Run], out_dir: Path) -> dict[str, Path]:
    """Layer-weight and confusion PNGs under ``out_dir/plots/RUN/``, keyed by path relative to out_dir."""
    written, keys = {}, _run_keys(runs)
    for run in runs:
        jobs = [("layer-weights", plot_layer_weights, run.layer_weights)] if run.layer_weights else []
        jobs += [(f"confusion-{c.split}", plot_confusion, c) for c in run.confusions]
        for what, plot, data in jobs:
            rel = f"plots/{keys[run.path]}/{what}.png"
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            title = textwrap.fill(f"{run.task} · {run.name} · {what}", 50) + "\n" + table.label(run)
            written[rel] = plot(data, title, out_dir / rel)
    for (task, label), group in lr_grids(table, runs).items():
        rel = f"plots/lr-grid-{task}-{_safe(label)}.png"
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        written[rel] = plot_lr_grid(task, group, f"{task} · {label}", out_dir / rel)
    return written


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]


def write_report(table: Table, runs: list[Run], out_dir: Path) -> dict[str, Path]:
    """report.md, report.csv, report.json and the plots in ``out_dir``; returns them by relative name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(table, runs, out_dir)
    texts = {"report.md": render_markdown(table, runs, plots), "report.csv": render_csv(table),
             "report.json": json.dumps(report_data(table, runs), indent=2, ensure_ascii=False) + "\n"}
    for name, text in texts.items():
        write_text(out_dir / name, text)
    return {**{name: out_dir / name for name in texts}, **plots}


def main_report(result_dirs: list[Path], out: Path | None = None) -> str:
    """What ``superb report`` runs: collect, tabulate, write everything; returns the Markdown to print.

    ``out`` defaults to ``COMMON/report`` below the arguments' common folder, or ``./report`` when they
    share nothing but the filesystem root.
    """
    runs = collect(result_dirs)
    if out is None:
        given = [Path(d).resolve() for d in result_dirs]
        common = Path(os.path.commonpath([d.parent if d.is_file() else d for d in given]))
        out = Path("report") if common == Path(common.anchor) else common / "report"
    written = write_report(build_table(runs), runs, out)
    return written["report.md"].read_text(encoding="utf-8")
