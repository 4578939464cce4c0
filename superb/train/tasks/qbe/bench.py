"""QbE by DTW as an evaluation ``superb bench`` runs: no training, SUPERB's layer choice.

Every stored layer is searched on the dev queries, and the layer with the best dev MTWV is scored on the eval
queries (``superb qbe -t dev``, then ``-t test --layers best``), into ``OUT/qbe_dev`` and ``OUT/qbe_test``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from superb.stores.base import open_store
from superb.train.tasks.qbe.run import QbeRequest, run_qbe


@dataclass(frozen=True)
class DtwQbe:
    name: str = "qbe"
    corpus: str = "quesst14"
    description: str = "query-by-example, QUESST 2014, subsequence DTW per stored layer (no training), MTWV"

    def run(self, store: Path, out: Path, device: str = "auto") -> None:
        """The dev search (every layer), then the best dev layer on eval."""
        with open_store(store) as opened:
            run_qbe(QbeRequest(opened, "dev", out / "qbe_dev", None, device=device))
            run_qbe(QbeRequest(opened, "test", out / "qbe_test", "best", select_from=out / "qbe_dev",
                               device=device))


QBE = DtwQbe()
