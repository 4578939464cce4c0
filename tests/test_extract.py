"""``superb extract`` / ``superb inspect`` end to end through the CLI, on tiny espeak-ng corpora."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from superb.stores.base import open_store
from superb.testing.cli import one_error_line, run_superb_here

TESTS = Path(__file__).parent
SMALL_LAYOUT = ["--chunk-frames", "16", "--shard-frames", "64", "--block-shards", "1"]


def superb(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (no interpreter start-up); a run that is killed runs as a subprocess, with
    ``tests/`` importable (for ``slow_upstream``) and one thread, as here."""
    return run_superb_here(*args, threads=1)




def all_features(path: Path) -> dict[str, np.ndarray]:
    with open_store(path) as store:
        out = {}
        for name in store.splits:
            view = store.split(name)
            assert view.done.all()
            for i in range(len(view)):
                out[f"{name}/{view.ids[i]}"] = view.features(i)
        return out


def assert_same_bytes(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), key


@pytest.fixture(scope="module")
def fbank_store(tmp_path_factory, generic_dir) -> Path:
    out = tmp_path_factory.mktemp("stores") / "fbank"
    result = superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out",
                    str(out), "-q", *SMALL_LAYOUT)
    assert result.returncode == 0, result.stderr
    return out / "generic"


def test_extract_fbank_store_contents(fbank_store, generic_dir):
    from superb.extract import audio
    from superb.registry import UPSTREAMS

    up = UPSTREAMS.get("fbank").create()
    with open_store(fbank_store) as store:
        assert store.attrs["upstream"]["name"] == "fbank"
        assert store.attrs["corpus"]["name"] == "generic"
        assert store.attrs["layers"] == [0] and store.attrs["dim"] == 240
        view = store.split("all")
        assert view.done.all() and len(view) >= 4
        import torch

        for i in range(len(view)):
            record = view.record(i)
            wave = torch.from_numpy(audio.read(record["path"]))  # stereo and 8/22.05 kHz converted
            expected, _ = up(wave[None], torch.tensor([wave.shape[0]]))
            got = view.features(i)
            assert got.dtype == np.float16 and got.shape == (up.spec.num_frames(record["num_samples"]), 1, 240)
            np.testing.assert_allclose(got.astype(np.float32), expected[0].numpy(), atol=5e-3, rtol=2e-3)


def test_inspect_reports_completeness(fbank_store):
    result = superb("inspect", str(fbank_store), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["complete"] and report["upstream"] == "fbank" and report["dim"] == 240
    assert report["splits"]["all"]["done"] == report["splits"]["all"]["utterances"]
    text = superb("inspect", str(fbank_store.parent))  # the upstream folder lists its stores
    assert text.returncode == 0 and "complete" in text.stdout


def test_rerun_is_a_noop_and_other_upstream_is_refused(fbank_store, generic_dir):
    before = all_features(fbank_store)
    again = superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out",
                   str(fbank_store.parent), "-q")
    assert again.returncode == 0, again.stderr
    assert_same_bytes(before, all_features(fbank_store))
    other = superb("extract", "-u", "mfcc", "--corpus", "generic", "--root", str(generic_dir), "--out",
                   str(fbank_store.parent), "-q")
    line = one_error_line(other)
    assert str(fbank_store) in line and "upstream" in line
    options = superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out",
                     str(fbank_store.parent), "-q", "--dtype", "float32")
    assert "dtype" in one_error_line(options)
    assert_same_bytes(before, all_features(fbank_store))


def test_a_store_made_with_the_earlier_cmvn_is_refused(fbank_store):
    """Stores from before s3prl's CMVN (biased std + 1e-5) have no ``cmvn_std``: adding to one would mix recipes."""
    from superb.errors import StoreError
    from superb.extract.extraction import check_same_store

    with open_store(fbank_store) as store:
        attrs = store.attrs
    assert attrs["upstream"]["config"]["cmvn_std"] == "unbiased+1e-10"
    old = json.loads(json.dumps(attrs))
    del old["upstream"]["config"]["cmvn_std"]
    check_same_store(fbank_store, attrs, attrs)
    with pytest.raises(StoreError, match="cmvn_std"):
        check_same_store(fbank_store, old, attrs)


def test_a_kill_between_the_last_flags_and_done_is_repaired(fbank_store, generic_dir, tmp_path):
    """Every shard_done flag written, ``done`` not yet: the rerun derives ``done`` and computes nothing."""
    import shutil

    import zarr

    copy = tmp_path / "fbank" / "generic"
    shutil.copytree(fbank_store, copy)
    before = all_features(copy)
    group = zarr.open_group(str(copy), mode="a")
    for split in group.attrs["splits"]:
        group[split]["done"][:] = False
    rerun = superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out",
                   str(copy.parent), "-q")
    assert rerun.returncode == 0, rerun.stderr
    with open_store(copy) as store:
        assert all(done == total for done, total in store.completeness().values())
    assert_same_bytes(before, all_features(copy))


def test_a_second_writer_is_refused_until_the_first_is_killed(fbank_store, generic_dir):
    """Another process holds the store's writer lock: extract names its PID; after kill -9 a rerun proceeds."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from superb.stores.lock import WriterLock; "
         "WriterLock(Path(sys.argv[1])).claim(); print('held', flush=True); time.sleep(300)", str(fbank_store)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        args = ["extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out",
                str(fbank_store.parent), "-q"]
        line = one_error_line(superb(*args))
        assert str(fbank_store) in line and f"PID {holder.pid} on" in line
    finally:
        holder.kill()  # SIGKILL: the OS drops its lock
        holder.wait()
    rerun = superb(*args)
    assert rerun.returncode == 0, rerun.stderr


def test_a_split_listed_without_its_arrays_is_named(fbank_store, generic_dir, tmp_path):
    damaged = tmp_path / "fbank" / "generic"
    shutil.copytree(fbank_store, damaged)
    shutil.rmtree(damaged / "all" / "done")
    line = one_error_line(superb("inspect", str(damaged)))
    assert str(damaged) in line and "all/done is missing" in line
    line = one_error_line(superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir),
                                 "--out", str(damaged.parent), "-q"))
    assert "all/done is missing" in line


def test_a_store_refuses_another_corpus_and_follows_a_moved_one(generic_dir, tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    shutil.copytree(generic_dir, corpus)

    def extract(root: Path) -> subprocess.CompletedProcess:
        return superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(root), "--out", str(out), "-q",
                      *SMALL_LAYOUT)

    assert extract(corpus).returncode == 0
    store = out / "generic"
    before = all_features(store)
    bigger = tmp_path / "bigger"
    shutil.copytree(generic_dir, bigger)
    first = sorted(bigger.rglob("*.wav"))[0]
    shutil.copy(first, first.with_name("extra.wav"))
    line = one_error_line(extract(bigger))  # once said "store complete" over the old list
    assert f"split 'all' of the store holds other utterances than the corpus at {bigger.resolve()}" in line
    assert f"store {len(before)} utterances, corpus {len(before) + 1}; 1 not in the store" in line

    moved = tmp_path / "moved"
    corpus.rename(moved)  # the old paths are gone: a resume must read the new ones
    group = zarr.open_group(str(store), mode="a")
    group["all"]["shard_done"][:] = False
    group["all"]["done"][:] = False
    again = extract(moved)
    assert again.returncode == 0, again.stderr
    assert f"the corpus moved (root {corpus.resolve()} -> {moved.resolve()}" in again.stderr
    with open_store(store) as opened:
        assert opened.attrs["corpus"]["root"] == str(moved.resolve())
        assert all(r["path"].startswith(str(moved.resolve())) for r in opened.manifest())
    assert_same_bytes(before, all_features(store))


def test_zarr_and_hdf5_hold_the_same_values(fbank_store, generic_dir, tmp_path):
    result = superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(generic_dir), "--out",
                    str(tmp_path), "--format", "hdf5", "-q", *SMALL_LAYOUT)
    assert result.returncode == 0, result.stderr
    h5 = tmp_path / "generic.h5"
    assert h5.is_file() and not (tmp_path / "generic.h5.staging").exists()
    assert_same_bytes(all_features(fbank_store), all_features(h5))
    with open_store(h5) as store:
        assert store.format == "hdf5" and store.manifest() == open_store(fbank_store).manifest()


def test_layers_subset_and_batch_independence(speech_commands_root, tmp_path):
    """``--layers`` keeps exactly those hidden states; batching (by --batch-seconds) changes no value."""
    pytest.importorskip("superb.extract.upstreams.ssl")
    common = ["-u", "wavlm", "--random-init", "tiny", "--corpus", "speech_commands", "--root",
              str(speech_commands_root), "--splits", "dev", "-q", *SMALL_LAYOUT]
    full = superb("extract", *common, "--out", str(tmp_path / "all"), "--batch-seconds", "0.1")
    assert full.returncode == 0, full.stderr
    assert "RANDOM WEIGHTS" in full.stderr
    some = superb("extract", *common, "--out", str(tmp_path / "some"), "--layers", "0,2",
                  "--batch-seconds", "60")
    assert some.returncode == 0, some.stderr
    a, b = all_features(tmp_path / "all" / "speech_commands"), all_features(tmp_path / "some" / "speech_commands")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key].astype(np.float32), a[key][:, [0, 2]].astype(np.float32),
                                   atol=2e-3, rtol=1e-2)
    with open_store(tmp_path / "some" / "speech_commands") as store:
        assert store.layers == [0, 2] and store.attrs["upstream"]["ckpt_sha256"] == "random-init"


def test_kill_9_then_rerun_gives_identical_bytes(speech_commands_root, tmp_path):
    """A batched transformer (equal-length clips share batches), killed mid-way, resumed: same bytes."""
    args = ["extract", "-u", "slow_upstream:SlowWavLM", "--random-init", "tiny", "--corpus", "speech_commands",
            "--root", str(speech_commands_root), "--splits", "train", "--batch-seconds", "4", "-q",
            "--chunk-frames", "16", "--shard-frames", "32", "--block-shards", "1"]
    reference = superb(*args, "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "superb", *args, "--out", str(killed_out)],
                            env={**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = killed_out / "speech_commands"
    shard_done = store / "train" / "shard_done"
    deadline = time.time() + 60
    done_some = False
    while time.time() < deadline and proc.poll() is None:
        try:
            done = open_store(store).split("train").done
            done_some = bool(done.any())
        except Exception:
            done_some = False
        if done_some and shard_done.exists():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert done_some and proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    with open_store(store) as opened:
        done, total = opened.completeness()["train"]
        assert 0 < done < total  # killed mid-way, with finished utterances readable
    resumed = superb(*args, "--out", str(killed_out))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_bytes(all_features(tmp_path / "ref" / "speech_commands"), all_features(store))


def test_bad_audio_fails_in_one_line_and_keeps_finished_work(generic_dir, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(generic_dir, corpus)
    files = sorted(p for p in corpus.rglob("*") if p.suffix in (".wav", ".flac"))
    victim = files[-1]  # last in manifest order, so earlier blocks finish first
    original = victim.read_bytes()
    victim.write_bytes(original[: len(original) // 2])  # truncated: the header still promises more
    out = tmp_path / "out"
    args = ["extract", "-u", "fbank", "--corpus", "generic", "--root", str(corpus), "--out", str(out), "-q",
            *SMALL_LAYOUT]
    line = one_error_line(superb(*args))
    assert victim.name in line
    with open_store(out / "generic") as store:
        done, total = store.completeness()["all"]
        assert 0 < done < total
        kept = {i: store.split("all").features(i) for i in np.nonzero(store.split("all").done)[0]}
    victim.write_bytes(original)
    assert superb(*args).returncode == 0
    with open_store(out / "generic") as store:
        view = store.split("all")
        assert view.done.all()
        for i, features in kept.items():
            assert view.features(i).tobytes() == features.tobytes()


@pytest.mark.parametrize("damage", ["empty", "corrupt", "missing"])
def test_unreadable_audio_is_named(generic_dir, tmp_path, damage):
    corpus = tmp_path / "corpus"
    shutil.copytree(generic_dir, corpus)
    victim = sorted(corpus.rglob("*.wav"))[0]
    tsv = tmp_path / "list.tsv"
    tsv.write_text("".join(f"u{i}\t{p}\n" for i, p in enumerate(sorted(corpus.rglob("*.wav")))))
    if damage == "empty":
        victim.write_bytes(b"")
    elif damage == "corrupt":
        victim.write_bytes(os.urandom(3000))
    else:
        victim.unlink()
    line = one_error_line(superb("extract", "-u", "fbank", "--corpus", "generic", "--root", str(tsv),
                                 "--out", str(tmp_path / "out"), "-q"))
    assert victim.name in line


def test_names_and_layouts_are_checked(generic_dir, speech_commands_root, tmp_path):
    line = one_error_line(superb("extract", "-u", "fbank", "--corpus", "librispeach", "--root",
                                 str(generic_dir), "--out", str(tmp_path)))
    assert "Did you mean 'librispeech'" in line
    line = one_error_line(superb("extract", "-u", "hubret", "--corpus", "generic", "--root",
                                 str(generic_dir), "--out", str(tmp_path)))
    assert "Did you mean 'hubert'" in line
    line = one_error_line(superb("extract", "-u", "wavlm", "--corpus", "generic", "--root",
                                 str(generic_dir), "--out", str(tmp_path)))
    assert "--random-init" in line or "--ckpt" in line
    broken = tmp_path / "sc"
    shutil.copytree(speech_commands_root, broken)
    listed = (broken / "validation_list.txt").read_text().splitlines()
    (broken / "validation_list.txt").write_text("\n".join(listed + ["yes/does_not_exist_nohash_0.wav"]) + "\n")
    test_root = speech_commands_root.parent / "speech_commands_test_set_v0.01"
    line = one_error_line(superb("extract", "-u", "fbank", "--corpus", "speech_commands", "--root",
                                 str(broken), "--test-root", str(test_root), "--out", str(tmp_path)))
    assert "validation_list.txt" in line or "does_not_exist" in line
    config = tmp_path / "fbank.yaml"
    config.write_text("num_mel_bin: 40\n")
    line = one_error_line(superb("extract", "-u", "fbank", "-g", str(config), "--corpus", "generic",
                                 "--root", str(generic_dir), "--out", str(tmp_path)))
    assert "num_mel_bin" in line


def test_splits_can_be_added_later(speech_commands_root, tmp_path):
    common = ["-u", "fbank", "--corpus", "speech_commands", "--root", str(speech_commands_root), "--out",
              str(tmp_path), "-q", *SMALL_LAYOUT]
    assert superb("extract", *common, "--splits", "dev").returncode == 0
    first = all_features(tmp_path / "speech_commands")
    result = superb("extract", *common, "--splits", "dev,test")
    assert result.returncode == 0, result.stderr
    both = all_features(tmp_path / "speech_commands")
    with open_store(tmp_path / "speech_commands") as store:
        assert store.splits == ["dev", "test"]
        labels = {r["meta"]["label"] for r in store.manifest() if r["split"] == "test"}
        assert "_silence_" in labels and "_unknown_" in labels
    assert_same_bytes(first, {k: v for k, v in both.items() if k.startswith("dev/")})
