"""The plan of a ``superb bench``: which corpora are under the data root, which tasks they let run, and the stages.

Everything a task needs comes from the registries, not from a table here: its corpus and that corpus's options
(``task.corpus``, ``task.corpus_options``: ASV's verification reader), a second corpus it tests on
(``task.test_corpus``: QUESST 2014 for sws2013), folders it needs besides (``task.needs``: the phone tasks' CPC
labels) and its folds (``task.folds``: ER's five sessions); evaluations without training (``EVALUATIONS``: QbE's
DTW) name their corpus the same way. Adding a task does not touch bench.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from superb.bench.discover import corpus_signatures, find_folders
from superb.errors import ConfigError, SuperbError, unknown_name
from superb.extract.extraction import DTYPES
from superb.registry import CORPORA, EVALUATIONS, TASKS

SKIPPED_TASKS = ("example",)  # a plumbing check, not part of SUPERB


@dataclass(frozen=True)
class Extraction:
    """One store to write: a corpus read with some options (the key: a store serves every task that reads it)."""

    corpus: str
    root: Path
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def store_name(self) -> str:
        return CORPORA.get(self.corpus)(self.root, **dict(self.options)).store_name

    @property
    def name(self) -> str:
        return f"extract {self.store_name}"


@dataclass(frozen=True)
class TaskRun:
    """One sweep of a task (and fold), or one evaluation without training (QbE's DTW): the stores it reads and
    the folders it is given."""

    task: str
    fold: int | None
    extractions: tuple[Extraction, ...]
    given: tuple[tuple[str, Path], ...] = ()  # fit's argument → folder (labels)
    evaluation: bool = False  # an EVALUATIONS entry: run on its store, nothing trained

    @property
    def name(self) -> str:
        return self.task if self.fold is None else f"{self.task}_fold{self.fold}"

    @property
    def stage(self) -> str:
        return self.name if self.evaluation else f"sweep {self.name}"


@dataclass
class Audio:
    """What a store will hold, from the reader's lists and audio headers (no audio decoded)."""

    utterances: int = 0
    hours: float = 0.0
    error: str | None = None  # the reader's one line, when the layout is there but broken


@dataclass
class Plan:
    data_root: Path
    found: dict[str, Path]  # corpus or needed folder → the one chosen
    ambiguous: dict[str, list[Path]]
    extractions: dict[Extraction, Audio]
    runs: list[TaskRun]
    missing: dict[str, str]  # task → why it cannot run
    spec: dict[str, Any] = field(default_factory=dict)  # the upstream's layers, dim, frame rate
    forward_rate: float | None = None  # measured seconds of upstream forward per second of audio (None: not)

    def store_bytes(self, extraction: Extraction, dtype: str) -> int:
        """The store's size on disk: hours × frame rate × layers × dim × bytes per value."""
        seconds = self.extractions[extraction].hours * 3600
        spec = self.spec
        return int(seconds * spec["frame_rate"] * spec["num_layers"] * spec["dim"] * np.dtype(DTYPES[dtype]).itemsize)


def make_plan(data_root: Path, roots: dict[str, Path], tasks: list[str] | None, spec: dict[str, Any]) -> Plan:
    """Find the corpora under ``data_root`` (``roots`` overrides: corpus → folder), read each one's list files to
    count its audio, and plan the extractions and sweeps of ``tasks`` (default: every registered task)."""
    if not data_root.is_dir():
        raise ConfigError(f"--data-root {data_root}: not a folder")
    signatures = corpus_signatures()
    wanted = _wanted(tasks)
    needs = {name: holds for t, registry in wanted for name, holds in getattr(registry.get(t), "needs", ())}
    found = find_folders(data_root, {**signatures, **needs})
    for name, folder in roots.items():
        if name not in signatures and name not in needs:
            raise ConfigError(f"--root {name}={folder}: {name!r} is no corpus (see `superb corpora`) nor a "
                              f"folder a chosen task needs ({', '.join(sorted(needs)) or 'none'})")
        if not folder.is_dir():
            raise ConfigError(f"--root {name}={folder}: not a folder")
        found[name] = [folder]
    ambiguous = {name: folders for name, folders in found.items() if len(folders) > 1}
    chosen = {name: folders[0] for name, folders in found.items() if len(folders) == 1}
    extractions: dict[Extraction, Audio] = {}
    runs, missing = [], {}
    for name, registry in wanted:
        task = registry.get(name)
        if not task.corpus:
            missing[name] = "reads no corpus of its own"
            continue
        corpus_names = [c for c in (task.corpus, getattr(task, "test_corpus", None)) if c]
        given_names = [n for n, _ in getattr(task, "needs", ())]
        lacking = [c for c in corpus_names + given_names if c not in chosen]
        if lacking:
            missing[name] = _why(lacking, ambiguous)
            continue
        stores = []
        for corpus in corpus_names:
            options = tuple(getattr(task, "corpus_options", ())) if corpus == task.corpus else ()
            extraction = Extraction(corpus, chosen[corpus], options)
            if extraction not in extractions:
                extractions[extraction] = _audio(extraction)
            stores.append(extraction)
        broken = [f"{e.store_name}: {extractions[e].error}" for e in stores if extractions[e].error]
        if broken:
            missing[name] = "; ".join(broken)
            continue
        given = tuple((n, chosen[n]) for n in given_names)
        for fold in getattr(task, "folds", ()) or (None,):
            runs.append(TaskRun(name, fold, tuple(stores), given, registry is EVALUATIONS))
    used = {e for run in runs for e in run.extractions}
    return Plan(data_root, chosen, ambiguous, {e: a for e, a in extractions.items() if e in used}, runs, missing,
                spec)


def forward_rate(upstream: Any, device: Any, seconds: float = 10.0) -> float:
    """Seconds the upstream's forward takes per second of audio on ``device``: one warm-up second, then one
    ``seconds``-long utterance of noise, timed (the extraction's reads and writes are not in it)."""
    import time

    import torch

    upstream = upstream.to(device).eval()
    wav = torch.randn(1, int(16_000 * seconds), device=device) * 0.1
    with torch.no_grad():
        upstream(wav[:, :16_000], torch.tensor([16_000]))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        upstream(wav, torch.tensor([wav.shape[1]]))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / seconds


def _wanted(tasks: list[str] | None) -> list[tuple[str, Any]]:
    """``(name, registry)`` of the chosen tasks and evaluations (default: all but the plumbing check)."""
    known = [(e.name, TASKS) for e in TASKS.entries() if e.name not in SKIPPED_TASKS]
    known += [(e.name, EVALUATIONS) for e in EVALUATIONS.entries()]
    if not tasks:
        return known
    out = []
    for name in tasks:
        registry = next((r for r in (TASKS, EVALUATIONS) if name in r), None)
        if registry is None:
            raise unknown_name("task or evaluation", name, [n for n, _ in known])
        out.append((registry.canonical(name), registry))
    return out


def _audio(extraction: Extraction) -> Audio:
    try:
        reader_type = CORPORA.get(extraction.corpus)
        reader = reader_type(extraction.root, **{**dict(extraction.options), **reader_type.counting_options})
        utterances = reader.utterances(reader.default_splits())
    except SuperbError as exc:
        return Audio(error=str(exc).splitlines()[0])
    return Audio(len(utterances), sum(u.duration for u in utterances) / 3600)


def _why(lacking: list[str], ambiguous: dict[str, list[Path]]) -> str:
    parts = []
    for name in lacking:
        if name in ambiguous:
            parts.append(f"{name}: several copies ({', '.join(map(str, ambiguous[name]))}); choose one with "
                         f"--root {name}=PATH")
        else:
            parts.append(f"{name}: not found")
    return "; ".join(parts)


def render(plan: Plan, upstream: str, dtype: str, expdir: Path) -> str:
    """The plan as a user reads it before anything runs: corpora, stages, store sizes, what cannot run."""
    spec = plan.spec
    lines = [f"superb bench plan: upstream {upstream} ({spec['num_layers']} × {spec['dim']} hidden states at "
             f"{spec['frame_rate']:g} frames/s, {dtype}), data root {plan.data_root}, results in {expdir}", "",
             "found:"]
    lines += [f"  {name:<16} {folder}" for name, folder in sorted(plan.found.items())]
    lines += [f"  {name:<16} several copies: {', '.join(map(str, folders))} (choose with --root {name}=PATH)"
              for name, folders in sorted(plan.ambiguous.items())]
    total, hours = 0, 0.0
    lines += ["", "stages:"]
    for k, (extraction, audio) in enumerate(plan.extractions.items(), start=1):
        size = plan.store_bytes(extraction, dtype)
        total, hours = total + size, hours + audio.hours
        lines.append(f"  {k:>2}. {extraction.name:<28} {audio.utterances} utterances, {audio.hours:.2f} h: "
                     f"{_gb(size)}{_duration(plan, audio.hours, ', ~')}")
    for k, run in enumerate(plan.runs, start=len(plan.extractions) + 1):
        lines.append(f"  {k:>2}. {run.stage}")
    lines.append(f"  {len(plan.extractions) + len(plan.runs) + 1:>2}. report")
    lines += ["", f"stores in all: {_gb(total)}; {_disk_line(expdir, total)}"]
    if plan.forward_rate is not None:
        lines.append(f"extraction time: {_duration(plan, hours, '~')} of upstream forward (measured here: "
                     f"{plan.forward_rate:.4f} s per audio second; reads, writes and training not counted)")
    if plan.missing:
        lines += ["", "tasks that cannot run:"]
        lines += [f"  {task:<20} {why}" for task, why in sorted(plan.missing.items())]
    return "\n".join(lines)


def disk_free(expdir: Path) -> int:
    """Free bytes where ``expdir`` is (or would be created)."""
    folder = expdir
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _disk_line(expdir: Path, needed: int) -> str:
    free = disk_free(expdir)
    verdict = "fits" if needed <= free else "DOES NOT FIT"
    return f"{_gb(free)} free at {expdir}: {verdict}"


def _duration(plan: Plan, hours: float, prefix: str) -> str:
    if plan.forward_rate is None:
        return ""
    seconds = hours * 3600 * plan.forward_rate
    return f"{prefix}{seconds / 3600:.1f} h" if seconds >= 3600 else f"{prefix}{seconds / 60:.1f} min"


def _gb(size: int) -> str:
    return f"{size / 1e9:.3f} GB" if size < 1e11 else f"{size / 1e12:.2f} TB"
