"""Tiny corpora in their official layouts, spoken by espeak-ng voices, for tests and the demo.

Each builder writes the real directory tree (list files, transcripts, extra README files a real archive has)
so the readers in ``superb.extract.corpora`` are tested on the layout users have. A "speaker" is an
espeak-ng voice with its own pitch and speed. Same arguments, same bytes (see ``superb.testing.speech``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.testing.speech import require_tools, synthesize, write_noise

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SC_VOCABULARY = {
    "v0.01": (*COMMANDS, "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
              "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"),
}
SC_VOCABULARY["v0.02"] = (*SC_VOCABULARY["v0.01"], "backward", "forward", "follow", "learn", "visual")
SC_DEFAULT_UNKNOWN = {"v0.01": ("bed", "zero"), "v0.02": ("bed", "forward")}
LIBRISPEECH_SPLITS = ("train-clean-100", "dev-clean", "test-clean")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice (+variant), its pitch (0-99) and speed (words/min)."""

    name: str
    pitch: int
    speed: int


VOICES = (
    Voice("en-us", 50, 170),
    Voice("en-gb+f3", 68, 160),
    Voice("en-gb-scotland", 40, 180),
    Voice("en-029+m3", 55, 150),
    Voice("en-gb-x-rp+f2", 72, 175),
    Voice("en-us-nyc", 45, 190),
    Voice("en-gb-x-gbclan+m2", 35, 165),
    Voice("en-gb-x-gbcwmd+f4", 62, 155),
    Voice("en-us+f5", 80, 185),
    Voice("en-gb+m7", 30, 170),
)


def voice(index: int) -> Voice:
    """Speaker ``index``: the voices in turn, each round a little higher and faster so all differ."""
    base = VOICES[index % len(VOICES)]
    lap = index // len(VOICES)
    return Voice(base.name, min(99, base.pitch + 7 * lap), base.speed + 10 * lap)


def _run_all(jobs: Sequence[Callable[[], Any]]) -> None:
    """Run independent file-writing jobs on a few threads (each waits on an espeak-ng/sox process)."""
    require_tools()
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        for _ in pool.map(lambda job: job(), jobs):
            pass


def _speak(text: str, path: Path, who: Voice, **kwargs: Any) -> Callable[[], Path]:
    return lambda: synthesize(text, path, voice=who.name, pitch=who.pitch, speed=who.speed, **kwargs)


# -- LibriSpeech -----------------------------------------------------------------------------------------

_SENTENCES = (
    "THE CAT SAT ON THE MAT",
    "A QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "SHE SELLS SEA SHELLS BY THE SEA SHORE",
    "IT WAS THE BEST OF TIMES",
    "THE RAIN IN SPAIN STAYS MAINLY IN THE PLAIN",
    "HE DIDN'T KNOW WHERE THE ROAD WOULD LEAD",
    "ALL THAT GLITTERS IS NOT GOLD",
    "THE OLD MAN AND THE SEA",
)


def librispeech_ids(split_index: int, speaker_index: int, chapter_index: int) -> tuple[str, str]:
    """``(speaker, chapter)`` ids of the tiny LibriSpeech; speakers differ across splits, as in the corpus."""
    speaker = 100 * (split_index + 1) + 11 * speaker_index + 3
    return str(speaker), str(1000 * (split_index + 1) + 10 * speaker_index + chapter_index)


def make_librispeech(
    root: str | Path,
    splits: Sequence[str] = LIBRISPEECH_SPLITS,
    speakers: int = 2,
    utts_per_speaker: int = 2,
    chapters: int = 1,
    top_folder: bool = False,
) -> Path:
    """Write ``ROOT/SPLIT/SPK/CHAP/SPK-CHAP-UTT.flac`` + ``SPK-CHAP.trans.txt`` and return ``root``.

    ``top_folder=True`` puts the splits under ``ROOT/LibriSpeech/`` as the tarballs do. A speaker's
    utterances are dealt over ``chapters`` chapters.
    """
    root = Path(root)
    base = root / "LibriSpeech" if top_folder else root
    jobs = []
    transcripts: dict[Path, list[str]] = {}
    for s, split in enumerate(splits):
        for j in range(speakers):
            who = voice(s * speakers + j)
            for u in range(utts_per_speaker):
                spk, chap = librispeech_ids(s, j, u % chapters)
                uid = f"{spk}-{chap}-{u:04d}"
                text = _SENTENCES[(7 * s + 3 * j + u) % len(_SENTENCES)]
                folder = base / split / spk / chap
                jobs.append(_speak(text.lower(), folder / f"{uid}.flac", who))
                transcripts.setdefault(folder / f"{spk}-{chap}.trans.txt", []).append(f"{uid} {text}")
    _run_all(jobs)
    for path, lines in transcripts.items():
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    for extra in ("README.TXT", "SPEAKERS.TXT", "CHAPTERS.TXT", "LICENSE.TXT"):
        (base / extra).write_text("tiny synthetic LibriSpeech for tests\n", encoding="utf-8")
    return root


# -- Speech Commands -------------------------------------------------------------------------------------

_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # ~134M, TensorFlow's constant in the hashing rule
_ROLES = ("training", "training", "training", "validation", "testing")  # speaker i's role: _ROLES[i % 5]


def which_set(filename: str, validation_percentage: float = 10.0, testing_percentage: float = 10.0) -> str:
    """TensorFlow's rule: a file's speaker hash decides ``"training"``, ``"validation"`` or ``"testing"``.

    It is how ``validation_list.txt``/``testing_list.txt`` were made (from the Speech Commands README).
    """
    speaker = re.sub(r"_nohash_.*$", "", os.path.basename(filename))
    hashed = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    percentage = (hashed % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def speaker_hash(index: int, role: str) -> str:
    """An 8-hex speaker hash for synthetic speaker ``index`` that ``which_set`` puts in ``role``."""
    for attempt in range(100_000):
        candidate = hashlib.sha1(f"speaker-{index}-{attempt}".encode()).hexdigest()[:8]
        if which_set(f"{candidate}_nohash_0.wav") == role:
            return candidate
    raise RuntimeError(f"no hash found for role {role!r}")  # unreachable: each role takes ~10 draws


def make_speech_commands(
    root: str | Path,
    version: str = "v0.01",
    words: Sequence[str] | None = None,
    per_word: int = 5,
    speakers: int = 5,
    noise_seconds: float = 3.0,
    test_silence: int | None = None,
) -> tuple[Path, Path]:
    """Write a training archive and its test archive side by side under ``root``.

    Returns ``(ROOT/speech_commands_VERSION, ROOT/speech_commands_test_set_VERSION)``.

    Args:
        words: word folders (Default: the 10 commands and two "unknown" words of ``version``).
        per_word: clips per word; clip i is spoken by speaker ``i % speakers`` (its ``_nohash_N`` is
            ``i // speakers``). Speaker k is in training, validation or testing by ``_ROLES[k % 5]``, via a
            hash the TensorFlow rule maps there, so the list files follow that rule. With fewer than 5
            speakers dev or test is empty. ``per_word=20, speakers=10`` gives 12/4/4 clips per word.
        noise_seconds: length of each ``_background_noise_`` file (one of them is at 22.05 kHz).
        test_silence: ``_silence_`` clips in the test archive (Default: the test clips of one command word).
    """
    if version not in SC_VOCABULARY:
        raise ValueError(f"unknown Speech Commands version {version!r} (choose from {', '.join(SC_VOCABULARY)})")
    words = tuple(words) if words is not None else (*COMMANDS, *SC_DEFAULT_UNKNOWN[version])
    strangers = [w for w in words if w not in SC_VOCABULARY[version]]
    if strangers:
        raise ValueError(f"{strangers[0]!r} is not a Speech Commands {version} word")
    root = Path(root)
    train_root = root / f"speech_commands_{version}"
    test_root = root / f"speech_commands_test_set_{version}"
    roles = [_ROLES[k % len(_ROLES)] for k in range(speakers)]
    hashes = [speaker_hash(k, roles[k]) for k in range(speakers)]

    jobs, lists, test_copies = [], {"validation": [], "testing": []}, []
    for word in words:
        for i in range(per_word):
            k, rep = i % speakers, i // speakers
            base = voice(k)
            who = Voice(base.name, base.pitch, base.speed + 15 * rep)
            name = f"{hashes[k]}_nohash_{rep}.wav"
            # speaker 1 keeps espeak-ng's natural length: the real corpus has clips under 1 s too
            jobs.append(_speak(word, train_root / word / name, who, duration=None if k == 1 else 1.0))
            role = which_set(name)
            if role != "training":
                lists[role].append(f"{word}/{name}")
            if role == "testing":
                folder, test_name = (word, name) if word in COMMANDS else ("_unknown_", f"{word}_{name}")
                test_copies.append((train_root / word / name, test_root / folder / test_name))

    noises = (("white_noise.wav", 16_000, "white"), ("pink_noise.wav", 16_000, "pink"),
              ("running_tap.wav", 22_050, "pink"))
    for seed, (name, rate, color) in enumerate(noises):
        path = train_root / "_background_noise_" / name
        jobs.append(lambda p=path, r=rate, c=color, s=seed: write_noise(p, noise_seconds, rate=r, seed=s, color=c))
    _run_all(jobs)

    for role, entries in lists.items():
        (train_root / f"{role}_list.txt").write_text("".join(e + "\n" for e in sorted(entries)), encoding="utf-8")
    (train_root / "README.md").write_text("tiny synthetic Speech Commands for tests\n", encoding="utf-8")
    (train_root / "LICENSE").write_text("CC BY 4.0 (synthetic)\n", encoding="utf-8")
    (train_root / "_background_noise_" / "README.md").write_text("noise files\n", encoding="utf-8")

    for folder in (*COMMANDS, "_unknown_", "_silence_"):
        (test_root / folder).mkdir(parents=True, exist_ok=True)
    for src, dst in test_copies:
        shutil.copyfile(src, dst)
    per_class = sum(1 for _, dst in test_copies if dst.parent.name == COMMANDS[0])
    for k in range(per_class if test_silence is None else test_silence):
        write_noise(test_root / "_silence_" / f"silence_{k:04d}.wav", 1.0, seed=1000 + k,
                    color="white" if k % 2 else "pink", amplitude=0.05 + 0.01 * (k % 5))
    (test_root / "README.md").write_text("tiny synthetic Speech Commands test set\n", encoding="utf-8")
    return train_root, test_root


# -- generic ---------------------------------------------------------------------------------------------

# (id, text, speaker, rate, channels, suffix, label): mixed rates, one stereo file, wav and flac
_GENERIC_ITEMS = (
    ("alice/greeting", "good morning", 0, 16_000, 1, ".wav", "greet"),
    ("alice/farewell", "see you later", 0, 22_050, 1, ".flac", "bye"),
    ("bob/greeting", "hello there", 1, 16_000, 2, ".wav", "greet"),
    ("bob/farewell", "goodbye now", 1, 8_000, 1, ".wav", "bye"),
    ("carol", "hi", 2, 16_000, 1, ".flac", "greet"),
)


def make_generic(root: str | Path, tsv: bool = False, split_column: bool = False) -> Path:
    """Write a few utterances under ``ROOT/audio/`` and return that folder, or with ``tsv`` a TSV listing them.

    The TSV (``ROOT/corpus.tsv``) has a header, ids unlike the file names, one absolute path, a label, and
    with ``split_column`` a fourth column alternating ``train``/``test``.
    """
    root = Path(root)
    audio = root / "audio"
    jobs = [
        _speak(text, audio / f"{uid}{suffix}", voice(spk), rate=rate, channels=channels)
        for uid, text, spk, rate, channels, suffix, _ in _GENERIC_ITEMS
    ]
    _run_all(jobs)
    (audio / "notes.txt").write_text("not audio: ignored\n", encoding="utf-8")
    if not tsv:
        return audio
    header = "id\tpath\tlabel" + ("\tsplit" if split_column else "")
    lines = [header]
    for n, (uid, _, _, _, _, suffix, label) in enumerate(_GENERIC_ITEMS):
        path = audio / f"{uid}{suffix}"
        shown = str(path.resolve()) if n == len(_GENERIC_ITEMS) - 1 else path.relative_to(root).as_posix()
        fields = [f"utt{n}", shown, label] + (["train" if n % 2 == 0 else "test"] if split_column else [])
        lines.append("\t".join(fields))
    out = root / "corpus.tsv"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
