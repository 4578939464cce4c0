"""``make demo``: the main job on built-in data, on any machine, in a couple of minutes.

Synthesises a small Speech Commands corpus (official v0.01 layout, espeak-ng voices as speakers), then
runs ``superb extract`` for ``fbank`` and for a tiny random-init ``wavlm`` into ``DEMO/stores`` and
shows ``superb inspect`` for both. Rerunning reuses the corpus and finds the stores complete.

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
    common = ["--corpus", "speech_commands", "--root", str(train_root)]
    for upstream, extra in (("fbank", []), ("wavlm", ["--random-init", "tiny", "--seed", "0"])):
        print(f"\n$ superb extract -u {upstream} {' '.join(extra + common)} --out {stores / upstream}", flush=True)
        superb(["extract", "-u", upstream, *extra, *common, "--out", str(stores / upstream)])
        print(f"\n$ superb inspect {stores / upstream / 'speech_commands'}", flush=True)
        superb(["inspect", str(stores / upstream / "speech_commands")])


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"))
