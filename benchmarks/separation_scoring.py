"""Separation scoring benchmark: mixtures scored per second in the main process ÷ on a pool of processes.

Scoring a mixture as s3prl does (mir_eval's pairing, SI-SDR, and on test STOI and PESQ) is single-threaded numpy
and C, about 1 s per 8 s mixture; s3prl runs it inline, so a GPU waits on it (3,000 test mixtures: about an
hour). ``MixtureScorer`` spreads it over processes (``separation.scoring_workers``). Mixtures: espeak-ng speech
(the tiny Libri2Mix of the tests) repeated to ``--seconds``; estimates: the sources plus noise.

    python benchmarks/separation_scoring.py [--mixtures 16] [--seconds 8] [--workers N (default: cores)]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from superb.testing.corpora import make_libri2mix
from superb.train.tasks.separation.scoring import MixtureScorer, score_mixture


def mixtures(count: int, seconds: float) -> list[tuple]:
    work = Path(tempfile.mkdtemp(prefix="superb-sep-scoring-"))
    try:
        make_libri2mix(work, {"train-100": 0, "dev": 0, "test": count})
        folder = work / "Libri2Mix" / "wav16k" / "min" / "test"
        rng = np.random.default_rng(0)
        jobs = []
        for wav in sorted((folder / "s1").glob("*.wav")):
            sources = np.stack([soundfile.read(str(folder / c / wav.name), dtype="float64")[0] for c in ("s1", "s2")])
            sources = np.tile(sources, (1, int(np.ceil(seconds * 16000 / sources.shape[1]))))[:, : int(seconds * 16000)]
            estimates = sources[::-1] + 0.05 * rng.standard_normal(sources.shape)
            jobs.append((sources.sum(0), sources, estimates, "sir", True))
        return jobs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixtures", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    jobs = mixtures(args.mixtures, args.seconds)
    score_mixture(*jobs[0])  # imports (torchmetrics, mir_eval, pesq, pystoi) out of the timing
    start = time.perf_counter()
    inline = [score_mixture(*job) for job in jobs]
    inline_s = time.perf_counter() - start
    scorer = MixtureScorer(args.workers)
    start = time.perf_counter()
    pooled = scorer.resolve([scorer.submit(*job) for job in jobs])
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    again = scorer.resolve([scorer.submit(*job) for job in jobs])
    warm_s = time.perf_counter() - start
    scorer.close()
    for a, b, c in zip(inline, pooled, again, strict=True):  # one BLAS thread per process: float rounding only
        assert a["permutation"] == b["permutation"] == c["permutation"]
        assert all(np.isclose(a[k], b[k], rtol=1e-9) and b[k] == c[k]
                   for k in ("si_sdr", "input_si_sdr", "stoi", "pesq"))
    print(f"\nmachine: {platform.processor() or 'cpu'}, {len(os.sched_getaffinity(0))} cores; {len(jobs)} mixtures "
          f"of {args.seconds:g} s, pairing 'sir', STOI and PESQ\n")
    print("| scoring | s per mixture | ratio to inline |")
    print("|---|---|---|")
    print(f"| inline (s3prl's way, baseline) | {inline_s / len(jobs):.3f} | 1 |")
    print(f"| {args.workers} processes, first use (spawn + imports) | {cold_s / len(jobs):.3f} "
          f"| {inline_s / cold_s:.2f}x |")
    print(f"| {args.workers} processes, warm | {warm_s / len(jobs):.3f} | {inline_s / warm_s:.2f}x |")


if __name__ == "__main__":
    main()
