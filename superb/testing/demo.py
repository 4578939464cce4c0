"""``make demo``: the main job on built-in data, on any machine, in a few minutes.

Synthesises a small Speech Commands corpus (official v0.01 layout, espeak-ng voices as speakers), runs
``superb extract`` for ``fbank`` (s3prl's default, per-utterance CMVN), ``fbank`` without CMVN and a tiny
random-init ``wavlm`` into ``DEMO/stores``, shows ``superb inspect``, trains the KS head on each store
for a few hundred steps (``superb fit``) and prints ``superb report``, then runs ``superb bench`` on the corpus
folder (every task whose corpus is there: KS; fbank without CMVN, 100 steps). Rerunning reuses the corpus, finds the stores complete
and the runs finished.

    python -m superb.testing.demo [DEMO_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from superb.cli import main as superb
from superb.testing.corpora import make_speech_commands


def run(folder: Path) -> None:
    corpus = folder / "corpus"
    train_root = corpus / "speech_commands_v0.01"
    if not (train_root / "validation_list.txt").is_file():
        print(f"synthesising a Speech Commands v0.01 corpus with espeak-ng in {corpus} …", flush=True)
        make_speech_commands(corpus, version="v0.01", per_word=10, speakers=5)
    stores = folder / "stores"
    (folder / "fbank-no-cmvn.yaml").write_text("cmvn: false\n")
    upstreams = {
        "fbank": ["-u", "fbank"],
        "fbank_no_cmvn": ["-u", "fbank", "-g", str(folder / "fbank-no-cmvn.yaml")],
        "wavlm": ["-u", "wavlm", "--random-init", "tiny", "--seed", "0"],
    }
    common = ["--corpus", "speech_commands", "--root", str(train_root)]
    for name, flags in upstreams.items():
        out = stores / name
        _show(["extract", *flags, *common, "--out", str(out)])
        _show(["inspect", str(out / "speech_commands")])
    steps = "config.runner.total_steps=300,,config.runner.eval_step=100,,config.runner.save_step=100,,"
    steps += "config.runner.log_step=100,,config.optimizer.lr=1e-3"
    runs = folder / "result"
    for name in upstreams:
        expdir = runs / f"ks_{name}"
        _show(["fit", "-d", "ks", "--features", str(stores / name), "-p", str(expdir), "-a", "-o", steps])
    _show(["report", str(runs), "--out", str(folder / "report")])
    # the whole benchmark in one command: every task whose corpus is under the folder (here KS), a smoke run
    _show(["bench", *upstreams["fbank_no_cmvn"], "--data-root", str(corpus), "-p", str(folder / "bench"),
           "--max-steps", "100", "--lr", "1e-3"])


def _show(argv: list[str]) -> None:
    print(f"\n$ superb {' '.join(argv)}", flush=True)
    superb(argv)

if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"))
