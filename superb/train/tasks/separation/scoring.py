"""Separation scores as s3prl reports them (asteroid 0.4.4's ``get_metrics``, which calls pb_bss).

Per mixture, with the two estimates paired to the two references first:
- pairing (``separation.permutation``): ``sir``, s3prl's, takes mir_eval's ``bss_eval_sources`` permutation
  (the one with the highest mean SIR, from 512-tap distortion filters: about 0.5 s per 8 s mixture);
  ``si_sdr`` takes the pairing with the higher mean SI-SDR (nearly free; the two differ only on mixtures
  separated badly enough that SIR and SI-SDR disagree); a mixture with an all-zero estimate or reference, which
  mir_eval refuses (s3prl crashes), is paired by SI-SDR and marked ``silent``;
- ``si_sdr``: SI-SDR **without mean removal** (pb_bss's ``si_sdr``), torchmetrics' with ``zero_mean=False``, in
  float64, the mean over the two sources; ``input_si_sdr`` the same with the mixture as both estimates;
  s3prl's ``si_sdr`` record is their difference (SI-SDRi);
- ``stoi``: classic STOI (``pystoi``, not extended) and ``pesq``: wide-band PESQ (the ``pesq`` package, mode
  ``wb`` at 16 kHz), each the mean over the two paired sources. Both only on test, as s3prl. PESQ refuses some
  signals (no utterance found: silence): such a mixture has no PESQ and is counted in ``pesq_failed``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import warnings
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16_000


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """SI-SDR (dB) of each row of ``estimate`` against the same row of ``reference``, no mean removal."""
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    ref, est = np.broadcast_arrays(np.asarray(reference, np.float64), np.asarray(estimate, np.float64))
    return scale_invariant_signal_distortion_ratio(torch.from_numpy(est.copy()), torch.from_numpy(ref.copy()),
                                                   zero_mean=False).numpy()


def sir_permutation(references: np.ndarray, estimates: np.ndarray) -> tuple[int, ...]:
    """mir_eval's ``bss_eval_sources`` pairing: ``estimates[perm[j]]`` goes with ``references[j]``."""
    from mir_eval.separation import bss_eval_sources

    with warnings.catch_warnings():  # mir_eval 0.8 deprecates bss_eval_sources (pinned < 0.9); s3prl scores with it
        warnings.simplefilter("ignore", FutureWarning)
        perm = bss_eval_sources(references, estimates, compute_permutation=True)[3]
    return tuple(int(k) for k in perm)


def si_sdr_permutation(references: np.ndarray, estimates: np.ndarray) -> tuple[int, ...]:
    """The pairing with the highest mean SI-SDR."""
    perms = list(itertools.permutations(range(len(references))))
    return max(perms, key=lambda perm: float(si_sdr(references, estimates[list(perm)]).mean()))


PERMUTATIONS = {"sir": sir_permutation, "si_sdr": si_sdr_permutation}


def score_mixture(mixture: np.ndarray, references: np.ndarray, estimates: np.ndarray, permutation: str,
                  perceptual: bool) -> dict[str, Any]:
    """Scores of one mixture (``(N,)``), its references and estimates (``(S, N)``); ``perceptual`` adds STOI and
    PESQ. ``permutation`` lists which estimate went with each reference."""
    references = np.asarray(references, np.float64)
    estimates = np.asarray(estimates, np.float64)
    silent = not (references.any(axis=1).all() and estimates.any(axis=1).all())
    if silent and permutation == "sir":  # mir_eval refuses an all-zero signal (s3prl's scorer crashes there)
        permutation = "si_sdr"
    perm = PERMUTATIONS[permutation](references, estimates)
    paired = estimates[list(perm)]
    out: dict[str, Any] = {"si_sdr": float(si_sdr(references, paired).mean()),
                           "input_si_sdr": float(si_sdr(references, mixture[None]).mean()),
                           "permutation": list(perm), **({"silent": True} if silent else {})}
    if perceptual:
        from pesq import PesqError, pesq
        from pystoi import stoi

        out["stoi"] = float(np.mean([stoi(r, e, SAMPLE_RATE, extended=False) for r, e in zip(references, paired)]))
        try:
            out["pesq"] = float(np.mean([pesq(SAMPLE_RATE, r, e, "wb") for r, e in zip(references, paired)]))
        except (PesqError, ValueError):  # pesq 0.0.4 raises ValueError (not PesqError) on an all-zero estimate
            out["pesq"] = None
    return out


def summarize(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over mixtures: ``si_sdri`` (the selection metric), ``si_sdr``, ``input_si_sdr``, and where scored
    ``stoi`` and ``pesq`` (over the mixtures PESQ could score; ``pesq_failed`` counts the others)."""
    if not scores:
        return {"si_sdri": float("nan")}
    si = np.array([s["si_sdr"] for s in scores])
    given = np.array([s["input_si_sdr"] for s in scores])
    out: dict[str, Any] = {"si_sdri": float(np.mean(si - given)), "si_sdr": float(si.mean()),
                           "input_si_sdr": float(given.mean()), "mixtures": len(scores)}
    if all("stoi" in s for s in scores):
        out["stoi"] = float(np.mean([s["stoi"] for s in scores]))
        pesq = [s["pesq"] for s in scores if s["pesq"] is not None]
        out["pesq"] = float(np.mean(pesq)) if pesq else float("nan")
        out["pesq_failed"] = len(scores) - len(pesq)
    silent = sum(1 for s in scores if s.get("silent"))
    if silent:
        out["silent_mixtures"] = silent
    return out


def _one_thread() -> None:
    """A scoring process uses one core: the pool, not BLAS or torch threads, spreads the work."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def auto_workers() -> int:
    """Scoring processes when ``separation.scoring_workers`` is null: up to 8, leaving a core to training;
    none on a machine of 2 cores or fewer (each process imports torch, torchmetrics and mir_eval: ~10 s)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 2 else min(8, cores - 1)


class MixtureScorer:
    """``score_mixture`` inline (``workers`` 0) or on a pool of processes, so scoring (mir_eval, PESQ, STOI: about
    1 s a mixture, single-threaded) keeps pace with a GPU. ``submit`` gives a result or a future, at most
    ``4 × workers`` pending (waiting on the oldest), so memory stays bounded; ``resolve`` turns them into
    results. Processes are spawned, not forked (the trainer's threads and OpenMP state must not be copied), and
    each uses one BLAS thread, so scores agree with inline ones to float rounding (``benchmarks/separation_scoring.py``:
    1.9× on 2 cores)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[Future] = deque()

    def submit(self, *args: Any) -> dict[str, Any] | Future:
        if self.workers <= 0:
            return score_mixture(*args)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_one_thread)
        while len(self._pending) >= 4 * self.workers:
            self._pending.popleft().result()
        future = self._pool.submit(score_mixture, *args)
        self._pending.append(future)
        return future

    def resolve(self, items: list) -> list[dict[str, Any]]:
        self._pending.clear()
        return [item.result() if isinstance(item, Future) else item for item in items]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
