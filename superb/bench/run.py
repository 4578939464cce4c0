"""Running a bench plan as stages that a rerun resumes.

Stages run in the plan's order: each extraction (``EXPDIR/stores/UPSTREAM/STORE``), each task's sweep
(``EXPDIR/runs/TASK[_foldN]``) or evaluation (QbE: ``EXPDIR/runs/qbe_{dev,test}``), then the report
(``EXPDIR/report.md``, ``.csv``, ``.json`` and plots). Each stage's outcome is written to ``EXPDIR/bench.json``
as soon as it ends; a rerun skips the stages recorded done and runs the others, which resume themselves (an
extraction keeps its finished blocks, a sweep each head's last checkpoint; QbE's DTW starts over). A stage that
fails is recorded with its one-line error and the others go on; a sweep whose store failed is not tried. The
report always runs again (it reads what is there).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.bench.plan import Extraction, Plan, TaskRun
from superb.errors import ConfigError, SuperbError
from superb.files import write_text


@dataclass
class BenchArgs:
    upstream: str
    expdir: Path
    ckpt: Path | None = None
    random_init: str | None = None
    upstream_options: dict[str, Any] | None = None
    dtype: str = "float16"
    lrs: list[float] | None = None  # None: each task's config learning rate
    max_steps: int | None = None  # a smoke run: every task stops after this many steps (labelled in the report)
    protocol: str | None = None  # runner.protocol for every task (dev / s3prl); None: each task's config
    reference: Path | None = None  # a CSV of published rows (report.csv's columns) shown below ours
    device: str = "auto"

    def settings(self) -> dict[str, Any]:
        """What a rerun must share with the run it resumes (bench.json)."""
        return {"upstream": self.upstream, "ckpt": str(self.ckpt) if self.ckpt else None,
                "random_init": self.random_init, "upstream_options": self.upstream_options or {}, "dtype": self.dtype,
                "lrs": self.lrs, "max_steps": self.max_steps, "protocol": self.protocol}


class Stages:
    """``EXPDIR/bench.json``: each stage's status (done / failed with its error), written after every stage."""

    def __init__(self, path: Path, settings: dict[str, Any]):
        self.path = path
        saved = json.loads(path.read_text()) if path.is_file() else {}
        before = saved.get("settings", settings)
        changed = [f"{key} {before.get(key)!r} (now {value!r})" for key, value in settings.items()
                   if before.get(key) != value]
        if changed:
            raise ConfigError(f"{path}: this bench ran with {', '.join(changed)}; use another -p, or its settings")
        self.state = {"settings": settings, "stages": saved.get("stages", {})}

    def done(self, name: str) -> bool:
        return self.state["stages"].get(name, {}).get("status") == "done"

    def failed(self, name: str) -> bool:
        return self.state["stages"].get(name, {}).get("status") == "failed"

    def run(self, name: str, work: Callable[[], Any], say: Callable[[str], None]) -> bool:
        if self.done(name):
            say(f"{name}: done already")
            return True
        say(f"{name} …")
        started = time.perf_counter()
        try:
            work()
        except SuperbError as exc:
            self._record(name, {"status": "failed", "error": str(exc).splitlines()[0]})
            say(f"{name}: FAILED: {str(exc).splitlines()[0]}")
            return False
        self._record(name, {"status": "done", "seconds": round(time.perf_counter() - started, 1)})
        say(f"{name}: done")
        return True

    def _record(self, name: str, outcome: dict[str, Any]) -> None:
        self.state["stages"][name] = outcome
        write_text(self.path, json.dumps(self.state, indent=2))


def run_plan(plan: Plan, args: BenchArgs, upstream: Any = None,
             say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> str:
    """Run every stage not done yet; returns the report's Markdown. ``upstream``: the model ``args`` describe,
    built already (loaded once for every extraction; None: each extraction builds it)."""
    stores = args.expdir / "stores" / args.upstream.replace(":", "_")
    reference = _reference(args.reference) if args.reference is not None else None  # a bad file: said first
    stages = Stages(args.expdir / "bench.json", args.settings())
    total = len(plan.extractions) + len(plan.runs) + 1

    def at(k: int) -> Callable[[str], None]:
        return lambda line: say(f"[{k}/{total}] {line}")

    for k, extraction in enumerate(plan.extractions, start=1):
        stages.run(extraction.name, lambda e=extraction: _extract(e, args, stores, upstream), at(k))
    for k, run in enumerate(plan.runs, start=len(plan.extractions) + 1):
        blocked = [e.name for e in run.extractions if not stages.done(e.name)]
        if blocked:
            at(k)(f"{run.stage}: not run ({', '.join(blocked)} did not finish)")
            continue
        work = _evaluate if run.evaluation else _sweep
        stages.run(run.stage, lambda r=run, w=work: w(r, args, stores), at(k))
    at(total)("report")
    return _report(plan, args, stores, stages, reference)


def _report(plan: Plan, args: BenchArgs, stores: Path, stages: Stages, reference: str | None) -> str:
    """report.md/.csv/.json and plots in EXPDIR (a smoke run says so on top), and provenance.json: the upstream,
    each store's identity, the package versions and the settings."""
    from superb.stores.base import open_store
    from superb.train.report import main_report

    runs = args.expdir / "runs"
    markdown = main_report([runs], args.expdir) if runs.is_dir() else "no task finished; nothing to report\n"
    failed = {name: stage["error"] for name, stage in stages.state["stages"].items() if stage["status"] == "failed"}
    notes = [f"**Smoke run**: every task stopped after {args.max_steps} steps (`--max-steps`); not comparable "
             "with SUPERB's figures."] if args.max_steps else []
    notes += [f"**Failed**: {name}: {error}" for name, error in failed.items()]
    notes += [f"**Not run**: {task}: {why}" for task, why in sorted(plan.missing.items())]
    if notes:
        markdown = "\n".join(notes) + "\n\n" + markdown
    if reference is not None:
        markdown += "\n" + reference
    if notes or reference is not None:
        write_text(args.expdir / "report.md", markdown)
    identities = {}
    for extraction in plan.extractions:
        path = stores / extraction.store_name
        if stages.done(extraction.name):
            with open_store(path) as store:
                identities[extraction.store_name] = {"path": str(path), **{key: store.attrs.get(key) for key in (
                    "upstream", "corpus", "manifest", "layers", "dtype", "superb_version", "created")}}
    versions = {name: _version(name) for name in ("superb", "torch", "torchaudio", "zarr", "numpy")}
    write_text(args.expdir / "provenance.json", json.dumps(
        {"settings": args.settings(), "stores": identities, "versions": versions, "failed": failed,
         "not_run": plan.missing}, indent=2, default=str))
    return markdown


def _reference(path: Path) -> str:
    """A user's CSV of published rows as a Markdown table (its own header, e.g. ``report.csv``'s columns)."""
    import csv

    from superb.train.report import md_row

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"--reference {path}: {exc}") from None
    if len(rows) < 2 or any(len(row) != len(rows[0]) for row in rows):
        raise ConfigError(f"--reference {path}: a header and rows of as many cells are needed")
    lines = [f"## Reference rows ({path.name})", "", md_row(rows[0]), md_row(["---"] * len(rows[0]))]
    return "\n".join(lines + [md_row(row) for row in rows[1:]]) + "\n"


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _extract(extraction: Extraction, args: BenchArgs, stores: Path, upstream: Any) -> None:
    from superb.extract.extraction import ExtractRequest, extract

    extract(ExtractRequest(upstream=args.upstream, corpus=extraction.corpus, root=extraction.root, out=stores,
                           upstream_options=dict(args.upstream_options or {}),
                           corpus_options=dict(extraction.options), ckpt=args.ckpt, random_init=args.random_init,
                           dtype=args.dtype, device=args.device, progress=False), upstream)


def _evaluate(run: TaskRun, args: BenchArgs, stores: Path) -> None:
    from superb.registry import EVALUATIONS

    EVALUATIONS.get(run.task).run(stores / run.extractions[0].store_name, args.expdir / "runs", args.device)


def _sweep(run: TaskRun, args: BenchArgs, stores: Path) -> None:
    from superb.train.sweep import SweepArgs, sweep

    given = dict(run.given)
    overrides = []
    if args.max_steps is not None:
        steps = args.max_steps
        overrides.append(f"config.runner.total_steps={steps},,config.runner.eval_step={steps},,"
                         f"config.runner.save_step={steps},,config.runner.log_step={steps}")
    if args.protocol is not None:
        overrides.append(f"config.runner.protocol={args.protocol}")
    override = ",,".join(overrides) or None
    sweep(SweepArgs(task=run.task, expdir=str(args.expdir / "runs" / run.name), features=str(stores),
                    lrs=args.lrs, override=override, fold=run.fold,
                    labels=str(given["labels"]) if "labels" in given else None, device=args.device),
          auto_resume=True)
