"""``superb sweep`` end to end on every task (but the untrained QbE), each on its tiny espeak-ng corpus.

    python -m superb.testing.every_task DIR [--tasks ks,asr] [--steps 4]

``DIR/corpora/CORPUS`` gets each corpus in its official layout (``superb.testing.corpora``, at the smallest sizes
the tests train on) and ``DIR/stores/CORPUS/`` its feature stores, both built once and reused on a rerun (a corpus
with its ``.built`` mark, a store that is complete). Then each task's sweep of two learning rates runs through the
CLI in a subprocess (one at a time, one torch thread) into ``DIR/sweeps/TASK`` (cleared first), with the tests'
overrides that shrink its head; it passes when ``sweep.json`` lists two heads, each with its ``results.json``.
One line per task (OK/FAIL, seconds, the last stderr line of a failure), ``DIR/every_task.json`` with the
outcomes (stderr in ``DIR/logs/TASK.stderr``); the exit status is 1 if any task failed, or if ``superb tasks``
lists one this table lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from superb.testing import corpora as make

UPSTREAMS = {"fbank_plain": ("fbank", {"cmvn": False}), "fbank": ("fbank", {}), "stft_mag": ("stft_mag", {})}


@dataclass(frozen=True)
class Extract:
    corpus: str  # the reader's name (superb corpora)
    options: dict = field(default_factory=dict)  # corpus options (superb extract -c)
    sub: str = ""  # the corpus root inside the builder's folder, when that holds several corpora


@dataclass(frozen=True)
class Corpus:
    build: Callable[[Path], object]  # writes the corpus into a folder; returns its root (or a tuple: root first)
    stores: dict[str, Extract]  # "UPSTREAM/STORE" (a key of UPSTREAMS, the store's name) → what to extract


@dataclass(frozen=True)
class Task:
    corpus: str
    features: str  # inside DIR/stores/CORPUS: one store, or a folder of stores (sws2013 reads two)
    args: tuple[str, ...] = ()  # "{corpus}" stands for DIR/corpora/CORPUS
    override: str = ""


def _plain(corpus: str) -> dict[str, Extract]:
    return {f"fbank_plain/{corpus}": Extract(corpus)}


CORPORA = {
    "speech_commands": Corpus(make.make_speech_commands, _plain("speech_commands")),
    "voxceleb1": Corpus(lambda d: make.make_voxceleb1(d, speakers=10, videos=2, utts_per_video=4, test_speakers=3),
                        {**_plain("voxceleb1"),
                         "fbank_plain/voxceleb1_sv": Extract("voxceleb1", {"verification": True, "min_seconds": 1})}),
    "fluent_commands": Corpus(make.make_fluent_commands, _plain("fluent_commands")),
    "iemocap": Corpus(make.make_iemocap, _plain("iemocap")),
    "librispeech": Corpus(lambda d: make.make_librispeech(d, speakers=4, utts_per_speaker=6), _plain("librispeech")),
    "librispeech_phones": Corpus(lambda d: make.make_librispeech_phones(d / "LibriSpeech", d / "labels",
                                                                        speakers=6, utts_per_speaker=6),
                                 _plain("librispeech")),
    "snips": Corpus(make.make_snips, _plain("snips")),
    "audio_snips": Corpus(make.make_audio_snips, _plain("audio_snips")),
    "atis": Corpus(make.make_atis, _plain("atis")),
    "mosei": Corpus(make.make_mosei, _plain("mosei")),
    "diarization": Corpus(make.make_diarization, _plain("diarization")),
    "libri2mix": Corpus(make.make_libri2mix, {"stft_mag/separation": Extract("separation")}),
    "sws2013": Corpus(lambda d: (d, make.make_sws2013(d), make.make_quesst14(d)),
                      {"fbank/sws2013": Extract("sws2013", sub="sws2013Database_dev_eval"),
                       "fbank/quesst14": Extract("quesst14", sub="quesst14Database")}),
}

# the tests' small heads (test_asr, test_sf, test_asv, test_intent, test_sd, test_separation, test_sws2013)
CTC = ("config.model.rnn_dim=64,,config.model.rnn_layers=1,,config.model.projector_dim=64,,"
       "config.specaug.enabled=false,,config.data.batch_size=8")
INTENT = ("config.data.batch_size=8,,config.runner.gradient_accumulate_steps=1,,config.model.encoder_dim=64,,"
          "config.model.encoder_ffn=128,,config.model.encoder_heads=4")
PHONES = ("--labels", "{corpus}/labels")

TASKS = {
    "asr": Task("librispeech", "fbank_plain/librispeech", override=CTC),
    "asv": Task("voxceleb1", "fbank_plain/voxceleb1_sv",
                override="config.data.dev_speakers=2,,config.runner.gradient_accumulate_steps=1,,"
                         "config.data.batch_size=8,,config.model.projector_dim=64,,config.model.agg_dim=128"),
    "atis": Task("atis", "fbank_plain/atis", override=INTENT),
    "audio_snips": Task("audio_snips", "fbank_plain/audio_snips", override=INTENT),
    "er": Task("iemocap", "fbank_plain/iemocap", ("--fold", "1")),
    "example": Task("speech_commands", "fbank_plain/speech_commands"),
    "ic": Task("fluent_commands", "fbank_plain/fluent_commands"),
    "ks": Task("speech_commands", "fbank_plain/speech_commands"),
    "mosei": Task("mosei", "fbank_plain/mosei",
                  override="config.runner.gradient_accumulate_steps=1,,config.data.batch_size=8"),
    "phone_1hidden": Task("librispeech_phones", "fbank_plain/librispeech", PHONES),
    "phone_linear": Task("librispeech_phones", "fbank_plain/librispeech", PHONES),
    "phone_linear_concat": Task("librispeech_phones", "fbank_plain/librispeech", PHONES),
    "pr": Task("librispeech", "fbank_plain/librispeech",
               override="config.runner.gradient_accumulate_steps=1,,config.data.batch_size=8"),
    "sd": Task("diarization", "fbank_plain/diarization",
               override="config.runner.gradient_accumulate_steps=1,,config.data.batch_size=4,,"
                        "config.model.rnn_dim=128,,config.data.chunk_frames=200"),
    "separation_stft": Task("libri2mix", "stft_mag/separation",
                            override="config.model.rnn_layers=1,,config.model.rnn_dim=64"),
    "sf": Task("snips", "fbank_plain/snips", override=CTC),
    "sid": Task("voxceleb1", "fbank_plain/voxceleb1"),
    "sws2013": Task("sws2013", "fbank",
                    override="config.optimizer.warmup_steps=0,,config.model.hidden_size=128,,"
                             "config.model.projector_dim=64,,config.data.window_seconds=1.0,,"
                             "config.data.window_hop_seconds=0.25"),
}
TIMEOUT_S = 1800


def _complete(path: Path) -> bool:
    from superb.stores.base import open_store

    try:
        with open_store(path) as store:
            return all(done == total for done, total in store.completeness().values())
    except Exception:  # absent or torn: extract again (it resumes)
        return False


def build(folder: Path, names: list[str] | None = None) -> None:
    """Every corpus (or those ``names``) and its stores under ``folder``; what is already there is kept."""
    from superb.extract.extraction import ExtractRequest, extract

    for name in names or list(CORPORA):
        corpus, base = CORPORA[name], folder / "corpora" / name
        mark = base / ".built"
        if not mark.is_file():
            print(f"building corpus {name} …", flush=True)
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True)
            root = corpus.build(base)
            mark.write_text(str(root[0] if isinstance(root, tuple) else root))
        root = Path(mark.read_text())
        for where, job in corpus.stores.items():
            label = where.split("/")[0]
            target = folder / "stores" / name / where
            if _complete(target):
                continue
            print(f"extracting {where} of {name} …", flush=True)
            upstream, options = UPSTREAMS[label]
            with warnings.catch_warnings():  # the tiny corpora's notes (ATIS rows without audio, short clips)
                warnings.simplefilter("ignore", UserWarning)
                path = extract(ExtractRequest(upstream=upstream, corpus=job.corpus, root=root / job.sub,
                                              out=target.parent, upstream_options=dict(options),
                                              corpus_options=dict(job.options), progress=False))
            if Path(path) != target or not _complete(target):
                raise RuntimeError(f"{name}: extraction wrote {path}, expected a complete {target}")


def run_task(folder: Path, name: str, steps: int) -> dict:
    """``superb sweep`` of two learning rates for task ``name``; its outcome."""
    task = TASKS[name]
    expdir, log = folder / "sweeps" / name, folder / "logs" / f"{name}.stderr"
    shutil.rmtree(expdir, ignore_errors=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    override = ",,".join(filter(None, [f"config.runner.total_steps={steps},,config.runner.eval_step={steps},,"
                                       f"config.runner.save_step={steps},,config.runner.log_step={steps}",
                                       task.override]))
    extra = [a.format(corpus=folder / "corpora" / task.corpus) for a in task.args]
    command = [sys.executable, "-m", "superb", "sweep", "-d", name,
               "--features", str(folder / "stores" / task.corpus / task.features), "-p", str(expdir),
               "--lr", "1e-3,1e-4", "-o", override, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SUPERB_CACHE": str(folder / "cache")}
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        code, stderr = done.returncode, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, stderr = None, (exc.stderr or b"").decode(errors="replace") + f"\ntimed out after {TIMEOUT_S} s"
    seconds = time.monotonic() - start
    log.write_text(stderr)
    problem = None if code == 0 else f"exit status {code}"
    if problem is None:
        summary = expdir / "sweep.json"
        heads = json.loads(summary.read_text())["heads"] if summary.is_file() else []
        missing = [h["name"] for h in heads if not (expdir / h["name"] / "results.json").is_file()]
        if len(heads) != 2 or missing:
            problem = f"sweep.json lists {len(heads)} head(s); without results.json: {missing}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    return {"task": name, "ok": problem is None, "seconds": round(seconds, 1), "problem": problem,
            "last_stderr": lines[-1] if problem and lines else None, "command": command}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--tasks", help="comma-separated (default: all)")
    parser.add_argument("--steps", type=int, default=4)
    opts = parser.parse_args(argv)
    from superb.registry import TASKS as REGISTERED

    folder = opts.dir.absolute()
    registered = [entry.name for entry in REGISTERED.entries()]
    unlisted = [t for t in registered if t not in TASKS]
    if unlisted:  # a task registered since this table was written: it needs a corpus and overrides here
        print(f"no entry in {__name__}.TASKS for: {', '.join(unlisted)}", file=sys.stderr)
    names = [t.strip() for t in opts.tasks.split(",")] if opts.tasks else list(TASKS)
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    os.environ["SUPERB_CACHE"] = str(folder / "cache")  # VoxCeleb1's trim intervals: not the user's ~/.cache
    build(folder, list(dict.fromkeys(TASKS[t].corpus for t in names)))
    outcomes = []
    for name in names:
        out = run_task(folder, name, opts.steps)
        outcomes.append(out)
        tail = "" if out["ok"] else f"  {out['problem']}: {out['last_stderr']}"
        print(f"{name:<20} {'OK' if out['ok'] else 'FAIL':<4} {out['seconds']:7.1f} s{tail}", flush=True)
    (folder / "every_task.json").write_text(json.dumps(outcomes, indent=2))
    return 0 if all(o["ok"] for o in outcomes) and not unlisted else 1


if __name__ == "__main__":
    sys.exit(main())
