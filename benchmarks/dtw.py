"""DTW benchmark: (query, document) pairs per second of superb's batched subsequence DTW ÷ s3prl's recipe
(scipy ``cdist`` + dtw-python, asymmetric, open begin and end) on the same pairs, same machine.

Random features shaped like QUESST14 with a Base model: queries of 50–100 frames, documents of 300–1,000,
768 dims, ``cosine_exp`` with min-max normalised rows (s3prl's defaults; ``--no-minmax-norm`` for raw
distances). dtw-python runs a sample of the pairs (it is slow); both rates are per pair. Also the
recursion's cell updates per second (query frames × document frames ÷ time spent after the distance
product). Goal: ≥ 100× on CPU.

    python benchmarks/dtw.py [--queries 8] [--docs 400] [--reference-pairs 60] [--device cpu] [--dtype float32]
                             [--no-minmax-norm]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from superb.train.tasks.qbe.dtw import DISTANCES, Documents, many_query_costs, query_costs, subsequence_costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--reference-pairs", type=int, default=60)
    parser.add_argument("--distance", default="cosine_exp", choices=sorted(DISTANCES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--no-minmax-norm", dest="minmax", action="store_false", help="DTW on raw distances")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    queries = [rng.standard_normal((int(rng.integers(50, 101)), args.dim)).astype(np.float32)
               for _ in range(args.queries)]
    docs = [rng.standard_normal((int(rng.integers(300, 1001)), args.dim)).astype(np.float32)
            for _ in range(args.docs)]
    dtype = getattr(torch, args.dtype)

    # ours: every query against every document
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    packed = Documents([torch.from_numpy(d) for d in docs], dtype=dtype, device=args.device)
    query_costs(torch.from_numpy(queries[0]), packed, args.distance)  # warm-up
    sync()
    start = time.perf_counter()
    ours = many_query_costs([torch.from_numpy(q) for q in queries], packed, args.distance, args.minmax)
    sync()
    ours_seconds = time.perf_counter() - start
    pairs = args.queries * args.docs
    # the recursion alone, on precomputed distances
    dists = [DISTANCES[args.distance](torch.from_numpy(q).to(args.device, dtype), packed) for q in queries]
    sync()
    start = time.perf_counter()
    for dist in dists:
        subsequence_costs(dist, packed)
    sync()
    recursion_seconds = time.perf_counter() - start
    cells = sum(len(q) for q in queries) * len(packed.frames)

    # s3prl's recipe on a sample of the same pairs; this file's own name would shadow dtw-python's package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    from superb.testing import s3prl_qbe

    sample = [(k % args.queries, (7 * k) % args.docs) for k in range(args.reference_pairs)]
    start = time.perf_counter()
    reference = []
    for qi, di in sample:
        _, _, score = s3prl_qbe.match(queries[qi], docs[di], qi, di, s3prl_qbe.dist_fn(args.distance), args.minmax,
                                      s3prl_qbe.SUBSEQUENCE_DTWRC)
        reference.append(-score)
    reference_seconds = time.perf_counter() - start
    error = max(abs(float(ours[qi][di]) - r) for (qi, di), r in zip(sample, reference, strict=True))

    ours_rate, reference_rate = pairs / ours_seconds, len(sample) / reference_seconds
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"{platform.processor() or 'cpu'}, {torch.get_num_threads()} threads"
    print(f"\nmachine: {device}; torch {torch.__version__}; {args.queries} queries x {args.docs} documents, "
          f"{args.dim} dims, {args.distance}{', min-max rows' if args.minmax else ''}, {args.dtype}\n")
    print("| implementation | pairs/s | ratio | goal |")
    print("|---|---|---|---|")
    print(f"| s3prl: scipy cdist + dtw-python ({len(sample)} pairs) | {reference_rate:.1f} | 1 | |")
    print(f"| superb batched subsequence DTW ({pairs} pairs) | {ours_rate:.0f} | {ours_rate / reference_rate:.0f}x "
          "| >= 100x |")
    print(f"\nrecursion alone: {cells / recursion_seconds / 1e6:.0f} M cells/s "
          f"({recursion_seconds / ours_seconds:.0%} of our time); max |cost difference| {error:.2e}")


if __name__ == "__main__":
    main()
