"""Fit benchmark: training steps per second from the store ÷ on the fly, same head, batch and machine.

The on-the-fly baseline runs a frozen random-init WavLM (Base by default) inside every step, as s3prl's
runner does; the store path reads the same model's stored hidden states. Both train the same head on
the weighted sum of 13 × 768 hidden states, no gradient accumulation: ``--task ks`` (Linear → mean-pool
→ Linear, batch 32 × 1 s, Speech Commands), ``--task pr`` (linear CTC head, batch 16 LibriSpeech-like
utterances of 2–6 s), ``--task asr`` (s3prl's 2 × BLSTM 1024 CTC head, batch 8 of the same utterances),
``--task asv`` (x-vector + AM-softmax, batch 10, VoxCeleb1 verification store, silence-trimmed), ``--task sd``
(LSTM + PIT, batch 8 two-speaker recordings of 8 s), ``--task phone_linear`` (linear frame classifier, batch 32
bucketed as s3prl, CPC-style labels), ``--task separation_stft`` (s3prl's 3 × BLSTM 896 mask head and uPIT
loss, batch 8 two-speaker mixtures, the sources read from disk each step on both paths) or ``--task sws2013``
(s3prl's QbE embedder, 16 pairs = 32 windows of 3 s a step: cut from the stored frames, or 3 s of audio through
the upstream on the fly; no QUESST store, so no test). Also ``--preload`` (the split held in RAM). Goal: store
≥ 30× on the fly (CPU); a heavy head (sd, separation_stft) bounds the ratio, as it costs the same on both paths.

    python benchmarks/fit.py [--task ks|pr|asr|asv|sd|phone_linear|separation_stft|sws2013] [--size base] [--steps 40]
                             [--otf-steps 6] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from superb.extract.extraction import ExtractRequest, extract
from superb.testing.corpora import (
    make_diarization,
    make_libri2mix,
    make_librispeech,
    make_librispeech_phones,
    make_speech_commands,
    make_sws2013,
    make_voxceleb1,
)
from superb.train.runner import FitArgs, fit

def _phones(root: Path) -> tuple[Path, dict]:
    corpus, labels = make_librispeech_phones(root / "LibriSpeech", root / "labels", speakers=4, utts_per_speaker=10)
    return corpus, {"labels": str(labels)}


# task → (corpus name, builder returning the corpus root and extra fit args, batch size, corpus options,
# task overrides)
CORPORA = {
    "ks": ("speech_commands", lambda root: (make_speech_commands(root, per_word=16, speakers=5)[0], {}), 32, {}, ""),
    "pr": ("librispeech", lambda root: (make_librispeech(root, speakers=4, utts_per_speaker=8), {}), 16, {}, ""),
    "asr": ("librispeech", lambda root: (make_librispeech(root, speakers=4, utts_per_speaker=8), {}), 8, {}, ""),
    "asv": ("voxceleb1", lambda root: (make_voxceleb1(root, speakers=8, videos=2, utts_per_video=4,
                                                      test_speakers=2), {}),
            10, {"verification": True, "min_seconds": 1.0}, ",,config.data.dev_speakers=2"),
    "sd": ("diarization", lambda root: (make_diarization(root, recordings_per_split=8, seconds=8.0), {}), 8, {}, ""),
    "phone_linear": ("librispeech", _phones, 32, {}, ""),
    "separation_stft": ("separation", lambda root: (make_libri2mix(root, {"train-100": 16, "dev": 2, "test": 2},
                                                                  dev_subset=2), {}), 8, {}, ""),
    "sws2013": ("sws2013", lambda root: (make_sws2013(root, docs_per_term=4) / "sws2013Database_dev_eval", {}),
                16, {}, ""),
}


def task_store(task: str, work: Path, size: str, device: str) -> tuple[Path, dict, int, str]:
    """The task's tiny corpus under ``work/corpus`` and its random-init WavLM store in ``work/stores``: the corpus
    root, extra fit args, batch size and the task's overrides."""
    corpus, build, batch, corpus_options, task_override = CORPORA[task]
    root, extra = build(work / "corpus")
    extract(ExtractRequest(upstream="wavlm", corpus=corpus, root=root, out=work / "stores",
                           corpus_options=corpus_options, random_init=size, device=device, progress=False))
    return root, extra, batch, task_override


def machine(device: str) -> str:
    """What ran a benchmark: the GPU's name, or the CPU and torch's thread count."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"


def timed_fit(args: FitArgs, steps: int, warmup: int) -> float:
    """Steps per second over steps ``warmup+1 … steps`` (the first ones warm caches and workers)."""
    stamps: dict[int, float] = {}
    fit(args, on_step=lambda step: stamps.__setitem__(step, time.perf_counter()))
    return (steps - warmup) / (stamps[steps] - stamps[warmup])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="ks", choices=sorted(CORPORA))
    parser.add_argument("--size", default="base", choices=["tiny", "base", "large"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--otf-steps", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="superb-fit-bench-"))
    try:
        train_root, fit_extra, batch, task_override = task_store(args.task, work, args.size, args.device)

        def run(name: str, steps: int, warmup: int, **kw) -> float:
            override = (f"config.runner.total_steps={steps},,config.runner.eval_step={10 * steps},,"
                        f"config.runner.save_step={10 * steps},,config.runner.log_step={steps},,"
                        f"config.data.batch_size={batch},,config.data.num_workers={args.workers},,"
                        "config.runner.gradient_accumulate_steps=1" + task_override)
            fit_args = FitArgs(task=args.task, expdir=str(work / "runs" / name), override=override, seed=0,
                               device=args.device, **fit_extra, **kw)
            return timed_fit(fit_args, steps, warmup)

        store = run("store", args.steps, 5, features=str(work / "stores"))
        preload = run("preload", args.steps, 5, features=str(work / "stores"), preload=True)
        otf = run("otf", args.otf_steps, 1, upstream="wavlm", random_init=args.size, root=str(train_root))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmachine: {machine(args.device)}; torch {torch.__version__}; task {args.task}, "
          f"batch {CORPORA[args.task][2]}, WavLM {args.size} (random init, 13 x 768 for Base)\n")
    print("| path | steps/s | ratio to on the fly | goal |")
    print("|---|---|---|---|")
    print(f"| on the fly, frozen upstream (baseline) | {otf:.3f} | 1 | |")
    print(f"| from the store (Zarr, {args.workers} loader threads) | {store:.2f} | {store / otf:.1f}x | >= 30x |")
    print(f"| from the store, --preload | {preload:.2f} | {preload / otf:.1f}x | >= 30x |")


if __name__ == "__main__":
    main()
