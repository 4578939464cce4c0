"""Session fixtures: tiny corpora in their official layouts, built once with espeak-ng and sox.

Tests that change a corpus (to check an error) copy it first (``shutil.copytree``); these stay pristine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from superb.testing.corpora import (
    COMMANDS,
    make_fluent_commands,
    make_generic,
    make_iemocap,
    make_librispeech,
    make_snips,
    make_speech_commands,
    make_voxceleb1,
)

# caches (VoxCeleb1 trim intervals) go to a throw-away folder, never the user's ~/.cache
os.environ["SUPERB_CACHE"] = tempfile.mkdtemp(prefix="superb-test-cache-")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the whole test run, shared by the pytest-xdist workers (each has its own basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(run_dir: Path, name: str, build: Callable[[Path], object]) -> object:
    """``build(folder)``'s result, built by the first worker that asks and read back by the others (a file
    lock keeps them waiting): for data that more than one test file reads and none changes."""
    folder = run_dir / "built-once"
    folder.mkdir(exist_ok=True)
    done = folder / f"{name}.json"
    with FileLock(folder / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder / name, ignore_errors=True)
            done.write_text(json.dumps(build(folder / name)))
    return json.loads(done.read_text())


@pytest.fixture(scope="session")
def ks_small(run_dir: Path) -> tuple[Path, Path]:
    """A Speech Commands v0.01 copy (10 clips a word, 5 speakers) and ``stores/{fbank_plain, fbank}``: fbank
    without CMVN (learnable) and with it (s3prl's default). Read by test_fit and test_distributed_fit."""
    from superb.extract.extraction import ExtractRequest, extract

    def build(folder: Path) -> list[str]:
        root, _ = make_speech_commands(folder / "corpus", per_word=10, speakers=5)
        for name, options in (("fbank_plain", {"cmvn": False}), ("fbank", {})):
            extract(ExtractRequest(upstream="fbank", corpus="speech_commands", root=root,
                                   out=folder / "stores" / name, upstream_options=options, progress=False))
        return [str(root), str(folder / "stores")]

    root, stores = built_once(run_dir, "ks_small", build)
    return Path(root), Path(stores)


@pytest.fixture(scope="session")
def corpora_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpora")


@pytest.fixture(scope="session")
def librispeech_root(corpora_dir: Path) -> Path:
    """``ROOT/{train-clean-100,dev-clean,test-clean}/SPK/CHAP/…``: 2 speakers × 2 utterances per split."""
    return make_librispeech(corpora_dir / "librispeech")


@pytest.fixture(scope="session")
def speech_commands_root(corpora_dir: Path) -> Path:
    """Speech Commands v0.01 training root; ``speech_commands_test_set_v0.01`` is its sibling."""
    train_root, _ = make_speech_commands(corpora_dir / "sc1", version="v0.01")
    return train_root


@pytest.fixture(scope="session")
def speech_commands_v2_root(corpora_dir: Path) -> Path:
    """A smaller v0.02 training root (two commands, two v0.02-era unknown words), test set as sibling."""
    train_root, _ = make_speech_commands(
        corpora_dir / "sc2", version="v0.02", words=(*COMMANDS[:2], "backward", "learn")
    )
    return train_root


@pytest.fixture(scope="session")
def generic_dir(corpora_dir: Path) -> Path:
    """A folder of audio in sub-folders: wav and flac, 8/16/22.05 kHz, one stereo file."""
    return make_generic(corpora_dir / "generic")


@pytest.fixture(scope="session")
def generic_tsv(corpora_dir: Path) -> Path:
    """``corpus.tsv`` with a header, labels, a split column and one absolute path."""
    return make_generic(corpora_dir / "generic_tsv", tsv=True, split_column=True)


@pytest.fixture(scope="session")
def voxceleb1_root(corpora_dir: Path) -> Path:
    """``ROOT/{dev,test}/wav/…``, ``iden_split.txt``, ``veri_test.txt``: 4 + 2 speakers × 2 videos × 3 utts."""
    return make_voxceleb1(corpora_dir / "voxceleb1")


@pytest.fixture(scope="session")
def fluent_commands_root(corpora_dir: Path) -> Path:
    """``ROOT/wavs/speakers/…`` and ``ROOT/data/*_data.csv``: 6 speakers (4/1/1) × 6 intents."""
    return make_fluent_commands(corpora_dir / "fluent_commands")


@pytest.fixture(scope="session")
def iemocap_root(corpora_dir: Path) -> Path:
    """``ROOT/Session1..5``: 8 turns per session (2 dialogs), 8 of the 40 with labels the reader drops."""
    return make_iemocap(corpora_dir / "iemocap")


@pytest.fixture(scope="session")
def librispeech_fbank_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``stores/fbank_plain``: fbank without CMVN of a 4-speaker × 6-utterance LibriSpeech copy per split."""
    from superb.extract.extraction import ExtractRequest, extract

    root = make_librispeech(tmp_path_factory.mktemp("libri_ctc"), speakers=4, utts_per_speaker=6)
    out = tmp_path_factory.mktemp("ctc_stores") / "fbank_plain"
    extract(ExtractRequest(upstream="fbank", corpus="librispeech", root=root, out=out,
                           upstream_options={"cmvn": False}, progress=False))
    return out


@pytest.fixture(scope="session")
def snips_root(corpora_dir: Path) -> Path:
    """s3prl's Audio SNIPS layout: 2 SUPERB speakers × 3 utterances per split folder, all 8 intents' sentences,
    plus a train voice's wav in ``valid/`` and a non-SUPERB voice's wav in ``test/`` (both ignored)."""
    return make_snips(corpora_dir / "snips")


# Test files by measured time, about longest first (seconds of one worker on 2 cores in a full run, 2026-12-07, another
# process on one core: distributed_extract 130, intent 100, distributed_fit 100, separation 95, fit_tasks 85,
# phone 83, sf 80, asr 80, sws2013 70, sweep 65, fit 60, ssl_upstreams 55, asv 45, sd 31, pr 35, extract 35,
# mosei 30; the rest under 15). With --dist loadfile a file runs on one worker; starting the long ones first (and
# --no-loadscope-reorder, which keeps this order instead of xdist's most-tests-first) keeps both workers busy to
# the end rather than leaving the longest file to run alone. A worker takes its next file when two tests are left
# of its own, so the one-test files (sf, asr) sit between files of many tests, not next to each other.
LONGEST_FIRST = ("test_distributed_extract.py", "test_distributed_fit.py", "test_separation.py", "test_sf.py",
                 "test_fit_tasks.py", "test_asr.py", "test_intent.py", "test_sws2013.py", "test_phone.py",
                 "test_sweep.py", "test_asv.py", "test_fit.py", "test_ssl_upstreams.py", "test_sd.py",
                 "test_mosei.py", "test_extract.py", "test_pr.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
