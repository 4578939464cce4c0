"""Tiny corpora in their official layouts, spoken by espeak-ng voices, for tests and the demo.

Each builder writes the real directory tree (list files, transcripts, extra README files a real archive has)
so the readers in ``superb.extract.corpora`` are tested on the layout users have. A "speaker" is an
espeak-ng voice with its own pitch and speed. Same arguments, same bytes (see ``superb.testing.speech``).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from superb.extract.corpora.separation import subsample_ids
from superb.testing.speech import require_tools, synthesize, synthesize_phones, write_noise

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


PHONE_CLASSES = 41  # s3prl's class_num for the CPC phone labels
LABEL_STEP = 160  # samples per label frame: 10 ms at 16 kHz, as the CPC alignments


def frame_phone_labels(events: Sequence[tuple[int, str]], samples: int, classes: dict[str, int]) -> list[int]:
    """One class id per 10 ms frame (``samples // 160`` frames): the phoneme sounding at the frame's centre;
    before the first phoneme, the pause ``_``. ``classes`` grows with new phonemes (ids in order of first use)."""
    starts = [start for start, _ in events]
    labels = []
    for k in range(samples // LABEL_STEP):
        i = int(np.searchsorted(starts, k * LABEL_STEP + LABEL_STEP // 2, side="right")) - 1
        phoneme = events[i][1] if i >= 0 else "_"
        phoneme = re.sub(r"(?<=.)[0-9:;]+$", "", phoneme)  # stress and length marks: @2 → @, _: → _
        labels.append(classes.setdefault(phoneme, len(classes)))
    return labels


def make_librispeech_phones(root: str | Path, labels: str | Path, speakers: int = 4, utts_per_speaker: int = 6,
                            test_every: int = 4) -> tuple[Path, Path]:
    """A LibriSpeech ``train-clean-100`` copy and CPC phone labels for it, as s3prl's phone tasks read them.

    ``labels`` gets ``converted_aligned_phones.txt`` (``UTTID ID ID …``, one class id per 10 ms, from espeak-ng's
    phoneme events, stress and length marks dropped; the pause ``_`` is class 0), ``train_split.txt`` and
    ``test_split.txt`` (one id per line, no newline after the last, as the real files). Every
    ``test_every``-th utterance of a speaker is a test utterance (CPC's test split shares speakers with
    train); the corpus's last utterance is in neither list, as one of the real train-clean-100's is not.
    Returns ``(root, labels)``."""
    root, labels = Path(root), Path(labels)
    plan = []
    for j in range(speakers):
        who = voice(j)
        for u in range(utts_per_speaker):
            spk, chap = librispeech_ids(0, j, 0)
            uid = f"{spk}-{chap}-{u:04d}"
            plan.append((uid, _SENTENCES[(3 * j + u) % len(_SENTENCES)], root / "train-clean-100" / spk / chap, who))
    events: dict[str, list] = {}

    def speak(uid: str, text: str, folder: Path, who: Voice) -> None:
        events[uid] = synthesize_phones(text.lower(), folder / f"{uid}.flac", voice=who.name, pitch=who.pitch,
                                        speed=who.speed)

    _run_all([lambda item=item: speak(*item) for item in plan])
    transcripts: dict[Path, list[str]] = {}
    classes = {"_": 0}
    lines, train, test = [], [], []
    for n, (uid, text, folder, _) in enumerate(plan):
        spk, chap, _ = uid.split("-")
        transcripts.setdefault(folder / f"{spk}-{chap}.trans.txt", []).append(f"{uid} {text}")
        frames = frame_phone_labels(events[uid], soundfile.info(folder / f"{uid}.flac").frames, classes)
        lines.append(" ".join([uid, *map(str, frames)]))
        if n < len(plan) - 1:
            (test if int(uid.rsplit("-", 1)[1]) % test_every == test_every - 1 else train).append(uid)
    if len(classes) > PHONE_CLASSES:
        raise RuntimeError(f"espeak-ng used {len(classes)} phonemes; the CPC labels have {PHONE_CLASSES} classes")
    for path, rows in transcripts.items():
        path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "converted_aligned_phones.txt").write_text("".join(line + "\n" for line in lines))
    (labels / "train_split.txt").write_text("\n".join(train))
    (labels / "test_split.txt").write_text("\n".join(test))
    return root, labels


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


def _token(seed: str, length: int) -> str:
    """A random-looking alphanumeric id (YouTube video, FSC speaker) that only depends on ``seed``."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


# -- VoxCeleb1 -------------------------------------------------------------------------------------------

_VOX_FIRST_ID = {"dev": 10001, "test": 10270}  # the real archives' first speaker ids


@dataclass(frozen=True)
class VoxUtterance:
    """One file of the tiny VoxCeleb1: ``tree`` (``dev``/``test``), ``rel`` path, ``iden_split`` code 1/2/3."""

    tree: str
    rel: str
    code: int
    speaker_index: int


def voxceleb1_plan(speakers: int = 6, videos: int = 2, utts_per_video: int = 3,
                   test_speakers: int = 2, iden_test_utts: int = 1) -> list[VoxUtterance]:
    """The files ``make_voxceleb1`` writes, in ``iden_split.txt`` order.

    The last ``test_speakers`` of ``speakers`` live in the test archive (as VoxCeleb1's 40 do); each speaker's
    last ``iden_test_utts`` utterances are identification test (3), the one before dev (2), the rest train
    (1), so every speaker is in all three splits as in the real ``iden_split.txt``.
    """
    per_speaker = videos * utts_per_video
    if iden_test_utts < 1:
        raise ValueError(f"need iden_test_utts >= 1, got {iden_test_utts}")
    if per_speaker < iden_test_utts + 2 or not 0 <= test_speakers <= speakers:
        raise ValueError(f"need videos * utts_per_video >= {iden_test_utts + 2} (got {per_speaker}) and 0 <= "
                         f"test_speakers <= speakers (got {test_speakers}, {speakers})")
    first_test = per_speaker - iden_test_utts
    plan = []
    for k in range(speakers):
        tree = "test" if k >= speakers - test_speakers else "dev"
        offset = k - (speakers - test_speakers) if tree == "test" else k
        speaker = f"id{_VOX_FIRST_ID[tree] + offset}"
        for v in range(videos):
            video = _token(f"vox-{speaker}-{v}", 11)
            for u in range(utts_per_video):
                i = v * utts_per_video + u
                code = 3 if i >= first_test else 2 if i == first_test - 1 else 1
                plan.append(VoxUtterance(tree, f"{speaker}/{video}/{u + 1:05d}.wav", code, k))
    return plan


def make_voxceleb1(root: str | Path, speakers: int = 6, videos: int = 2, utts_per_video: int = 3,
                   test_speakers: int = 2, iden_test_utts: int = 1) -> Path:
    """Write ``ROOT/{dev,test}/wav/idNNNNN/VIDEO/NNNNN.wav``, ``iden_split.txt``, ``veri_test.txt``; return ``root``.

    Files and splits as in ``voxceleb1_plan``; a speaker is ``voice(k)``, each utterance a different sentence.
    ``veri_test.txt`` (``LABEL PATH1 PATH2``) pairs every test-archive utterance with the next one of its
    speaker (1) and with the same position of the next test speaker (0), so trials are balanced.
    """
    root = Path(root)
    plan = voxceleb1_plan(speakers, videos, utts_per_video, test_speakers, iden_test_utts)
    jobs = []
    for n, item in enumerate(plan):
        text = _SENTENCES[(5 * item.speaker_index + n) % len(_SENTENCES)].lower()
        jobs.append(_speak(text, root / item.tree / "wav" / item.rel, voice(item.speaker_index)))
    _run_all(jobs)
    (root / "iden_split.txt").write_text("".join(f"{u.code} {u.rel}\n" for u in plan), encoding="utf-8")

    by_speaker: dict[int, list[str]] = {}
    for item in plan:
        if item.tree == "test":
            by_speaker.setdefault(item.speaker_index, []).append(item.rel)
    trials = []
    groups = list(by_speaker.values())
    for g, rels in enumerate(groups):
        other = groups[(g + 1) % len(groups)]
        for i, rel in enumerate(rels):
            trials.append(f"1 {rel} {rels[(i + 1) % len(rels)]}")
            if len(groups) > 1:
                trials.append(f"0 {rel} {other[i % len(other)]}")
    (root / "veri_test.txt").write_text("".join(t + "\n" for t in trials), encoding="utf-8")

    meta = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    for k, rel in sorted({u.speaker_index: u.rel for u in plan}.items()):
        tree = next(u.tree for u in plan if u.speaker_index == k)
        meta.append(f"{rel.split('/')[0]}\tSpeaker_{k}\t{'fm'[k % 2]}\tNowhere\t{tree}")
    (root / "vox1_meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    (root / "README.txt").write_text("tiny synthetic VoxCeleb1 for tests\n", encoding="utf-8")
    return root


# -- Fluent Speech Commands ------------------------------------------------------------------------------

# (action, object, location, phrasings): real FSC values, incl. a two-word action and a comma to quote
FSC_INTENTS = (
    ("activate", "lights", "kitchen", ("Turn on the kitchen lights", "Kitchen lights on")),
    ("deactivate", "music", "none", ("Stop the music", "Turn off the music")),
    ("increase", "volume", "none", ("Turn up the volume", "Louder, please")),
    ("decrease", "heat", "washroom", ("Turn the heat down in the washroom", "Washroom heat down")),
    ("bring", "shoes", "none", ("Bring my shoes", "Get me my shoes")),
    ("change language", "Chinese", "none", ("Switch the language to Chinese", "Chinese")),
)
FSC_HEADER = ("", "path", "speakerId", "transcription", "action", "object", "location")


@dataclass(frozen=True)
class FscUtterance:
    """One row of the tiny Fluent Speech Commands: its CSV (``train``/``valid``/``test``) and fields."""

    csv: str
    path: str  # relative to the root: wavs/speakers/SPK/UUID.wav
    speaker: str
    speaker_index: int
    transcription: str
    action: str
    object: str
    location: str


def fluent_commands_plan(speakers: int = 6, per_intent: int = 1, test_speakers: int = 1) -> list[FscUtterance]:
    """The rows ``make_fluent_commands`` writes: every speaker says every intent ``per_intent`` times.

    Speakers are disjoint across CSVs as in the real corpus: the last ``test_speakers`` are ``test``, the
    one before ``valid``, the rest ``train``.
    """
    if test_speakers < 1:
        raise ValueError(f"need test_speakers >= 1, got {test_speakers}")
    if speakers < test_speakers + 2:
        test = "test" if test_speakers == 1 else f"{test_speakers} for test"
        raise ValueError(f"need at least {test_speakers + 2} speakers (one each for train, valid, {test}), "
                         f"got {speakers}")
    plan = []
    first_test = speakers - test_speakers
    for k in range(speakers):
        role = "test" if k >= first_test else "valid" if k == first_test - 1 else "train"
        speaker = _token(f"fsc-speaker-{k}", 16)
        for i, (action, obj, location, phrasings) in enumerate(FSC_INTENTS):
            for r in range(per_intent):
                digest = hashlib.sha256(f"fsc-{k}-{i}-{r}".encode()).hexdigest()
                uid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
                plan.append(FscUtterance(role, f"wavs/speakers/{speaker}/{uid}.wav", speaker, k,
                                         phrasings[(k + r) % len(phrasings)], action, obj, location))
    return plan


def make_fluent_commands(root: str | Path, speakers: int = 6, per_intent: int = 1, test_speakers: int = 1) -> Path:
    """Write ``ROOT/wavs/speakers/SPK/UUID.wav`` and ``ROOT/data/{train,valid,test}_data.csv``; return ``root``.

    Rows as in ``fluent_commands_plan``, written like pandas' ``to_csv``: the real header with the unnamed
    index column, quoting only where needed.
    """
    root = Path(root)
    plan = fluent_commands_plan(speakers, per_intent, test_speakers)
    _run_all([_speak(u.transcription, root / u.path, voice(u.speaker_index)) for u in plan])
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for role in ("train", "valid", "test"):
        rows = [u for u in plan if u.csv == role]
        with (data / f"{role}_data.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(FSC_HEADER)
            for n, u in enumerate(rows):
                writer.writerow((n, u.path, u.speaker, u.transcription, u.action, u.object, u.location))
    demographics = ["speakerId,Self-reported fluency level ,First Language spoken,"
                    "Current language used for work/school,gender,ageRange"]
    for speaker in dict.fromkeys(u.speaker for u in plan):
        demographics.append(f"{speaker},native,English (Canada),English (Canada),female,22-40")
    (data / "speaker_demographics.csv").write_text("\n".join(demographics) + "\n", encoding="utf-8")
    return root


# -- IEMOCAP ---------------------------------------------------------------------------------------------

# balanced over the four SUPERB classes (hap counts hap + exc), with two labels the reader must drop
IEMOCAP_LABEL_CYCLE = ("neu", "hap", "ang", "fru", "sad", "exc", "neu", "ang", "xxx", "sad")
# (pitch, words/min) per emotion, overriding the speaker's own, so a tiny model can tell emotions apart
IEMOCAP_PROSODY = {"neu": (40, 160), "hap": (85, 200), "exc": (90, 215), "ang": (60, 250), "sad": (10, 110),
                   "fru": (50, 180), "xxx": (45, 170)}
_IEMOCAP_WORDS = {"neu": "Neutral", "hap": "Happiness", "exc": "Excited", "ang": "Anger", "sad": "Sadness",
                  "fru": "Frustration", "xxx": "Other"}
_IEMOCAP_VOICES = {"F": ("en-gb+f3", "en-gb-x-rp+f2", "en-gb-x-gbcwmd+f4", "en-us+f5", "en-us+f2"),
                   "M": ("en-us", "en-gb-scotland", "en-029+m3", "en-us-nyc", "en-gb+m7")}


@dataclass(frozen=True)
class IemocapTurn:
    """One labelled turn of the tiny IEMOCAP."""

    session: int
    dialog: str
    id: str
    gender: str  # of the speaking turn: F or M
    label: str  # as in EmoEvaluation, before SUPERB's mapping


def iemocap_plan(sessions: Sequence[int] = (1, 2, 3, 4, 5), per_session: int = 8) -> list[IemocapTurn]:
    """The turns ``make_iemocap`` writes: per session an improvised and a scripted dialog, turns alternating
    female/male, labels following ``IEMOCAP_LABEL_CYCLE`` across the whole corpus."""
    plan = []
    g = 0
    for s in sessions:
        dialogs = (f"Ses{s:02d}F_impro01", f"Ses{s:02d}M_script01_1")
        sizes = ((per_session + 1) // 2, per_session // 2)
        for dialog, size in zip(dialogs, sizes, strict=True):
            for j in range(size):
                gender = "FM"[j % 2]
                label = IEMOCAP_LABEL_CYCLE[g % len(IEMOCAP_LABEL_CYCLE)]
                plan.append(IemocapTurn(s, dialog, f"{dialog}_{gender}{j // 2:03d}", gender, label))
                g += 1
    return plan


def _emo_evaluation(turns: list[IemocapTurn]) -> str:
    """An EmoEvaluation file: ``%`` header, then per turn its label line and the annotators' lines."""
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for j, t in enumerate(turns):
        start = 2.0 + 3.1 * j
        vad = {"neu": 2.5, "hap": 4.0, "exc": 4.5, "ang": 1.5, "sad": 1.0}.get(t.label, 3.0)
        lines.append(f"[{start:.4f} - {start + 2.6:.4f}]\t{t.id}\t{t.label}\t[{vad:.4f}, {vad:.4f}, 2.5000]")
        word = _IEMOCAP_WORDS[t.label]
        other = "Neutral" if t.label == "xxx" else word
        lines += [f"C-E1:\t{word};\t()", f"C-E2:\t{other};\t(annotator note)",
                  f"A-E1:\tval {int(vad)}; act 2; dom  3;\t()", ""]
    return "\n".join(lines) + "\n"


def make_iemocap(root: str | Path, sessions: Sequence[int] = (1, 2, 3, 4, 5), per_session: int = 8) -> Path:
    """Write ``ROOT/SessionN/sentences/wav/DIALOG/UTT.wav`` and ``ROOT/SessionN/dialog/EmoEvaluation/DIALOG.txt``.

    Turns as in ``iemocap_plan``. Per session one female and one male voice speak; each emotion has its own
    pitch and speed (``IEMOCAP_PROSODY``). Alongside are the files a real release has that the reader must
    skip: ``Categorical/``, ``Attribute/`` and ``Self-evaluation/`` annotator files and the transcriptions.
    Returns ``root``.
    """
    root = Path(root)
    plan = iemocap_plan(sessions, per_session)
    jobs = []
    for n, t in enumerate(plan):
        pitch, speed = IEMOCAP_PROSODY[t.label]
        names = _IEMOCAP_VOICES[t.gender]
        who = Voice(names[(t.session - 1) % len(names)], pitch, speed)
        text = _SENTENCES[n % len(_SENTENCES)].lower()
        jobs.append(_speak(text, root / f"Session{t.session}/sentences/wav/{t.dialog}/{t.id}.wav", who))
    _run_all(jobs)
    for dialog in dict.fromkeys(t.dialog for t in plan):
        turns = [t for t in plan if t.dialog == dialog]
        session = root / f"Session{turns[0].session}/dialog"
        labels = session / "EmoEvaluation"
        for sub in ("Categorical", "Attribute", "Self-evaluation"):
            (labels / sub).mkdir(parents=True, exist_ok=True)
        (labels / f"{dialog}.txt").write_text(_emo_evaluation(turns), encoding="utf-8")
        (labels / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
            "".join(f"{t.id} :{_IEMOCAP_WORDS[t.label]}; ()\n" for t in turns), encoding="utf-8")
        (labels / "Attribute" / f"{dialog}_e1_atr.txt").write_text(
            "".join(f"{t.id} :act 2; val 3; dom  3; ()\n" for t in turns), encoding="utf-8")
        (labels / "Self-evaluation" / f"{dialog}.txt").write_text(
            "".join(f"[0.0000 - 1.0000]\t{t.id}\t:{_IEMOCAP_WORDS[t.label]};\n" for t in turns), encoding="utf-8")
        (session / "transcriptions").mkdir(exist_ok=True)
        (session / "transcriptions" / f"{dialog}.txt").write_text(
            "".join(f"{t.id} [{2.0 + 3.1 * j:08.4f}-{4.6 + 3.1 * j:08.4f}]: "
                    f"{_SENTENCES[plan.index(t) % len(_SENTENCES)].lower()}\n" for j, t in enumerate(turns)),
            encoding="utf-8")
    (root / "README.txt").write_text("tiny synthetic IEMOCAP for tests\n", encoding="utf-8")
    return root


# -- Audio SNIPS -----------------------------------------------------------------------------------------

# (intent, words, slot tags): SNIPS intents and slot names, tags bare as in s3prl's all.iob.snips.txt; one
# utterance without slots, one with "&" (s3prl spells it AND) and one with a "?" word (s3prl skips it)
SNIPS_ITEMS = (
    ("PlayMusic", "PLAY THE SONG YESTERDAY BY THE BEATLES", "O O music_item track O artist artist"),
    ("AddToPlaylist", "ADD THIS TRACK TO MY ROAD TRIP PLAYLIST", "O O music_item O playlist_owner playlist playlist O"),
    ("GetWeather", "WHAT IS THE WEATHER IN PARIS TOMORROW", "O O O O O city timeRange"),
    ("BookRestaurant", "BOOK A TABLE FOR FOUR AT A PIZZERIA", "O O O O party_size_number O O restaurant_type"),
    ("RateBook", "RATE THIS BOOK FIVE OUT OF SIX", "O object_select object_type rating_value O O best_rating"),
    ("PlayMusic", "PLAY SOME ROCK & ROLL", "O O genre genre genre"),
    ("GetWeather", "WHAT'S THE WEATHER LIKE", "O O O O"),
    ("SearchScreeningEvent", "WHEN IS THE MOVIE SCHEDULE ?", "O O O object_type object_type O"),
)
SNIPS_SPEAKERS = {  # SUPERB's speaker split (s3prl snips.yaml), by split folder
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "valid": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}
SNIPS_FOREIGN_SPEAKER = "Olivia"  # a Polly voice outside SUPERB's lists: its wav must be ignored
_SNIPS_FIRST_ITEM = {"train": 0, "valid": 3, "test": 5}  # split folders start at different sentences


@dataclass(frozen=True)
class SnipsUtterance:
    """One wav of the tiny Audio SNIPS: its split folder, id (= stem), words, tags, intent, and whether SUPERB
    keeps it (``kept``: its speaker is in that split's SUPERB list)."""

    folder: str
    id: str
    speaker: str
    words: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str
    kept: bool


def snips_item(split_folder: str, n: int) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(intent, words, tags)`` of utterance ``n`` of a split folder (every speaker of a split reads the same)."""
    intent, text, tags = SNIPS_ITEMS[(_SNIPS_FIRST_ITEM[split_folder] + n) % len(SNIPS_ITEMS)]
    return intent, tuple(text.split()), tuple(tags.split())


def snips_plan(per_speaker: int = 3, speakers_per_split: int = 2) -> list[SnipsUtterance]:
    """The wavs ``make_snips`` writes: the first ``speakers_per_split`` SUPERB speakers of each split folder read
    utterances 0..per_speaker-1 of it; plus two wavs SUPERB drops: the first train speaker's utterance 0 in
    ``valid/`` (the real folders hold all 16 voices) and one of a voice outside SUPERB's lists in ``test/``."""
    plan = []
    for folder, speakers in SNIPS_SPEAKERS.items():
        for speaker in speakers[:speakers_per_split]:
            for n in range(per_speaker):
                intent, words, tags = snips_item(folder, n)
                plan.append(SnipsUtterance(folder, f"{speaker}-snips-{folder}-{n}", speaker, words, tags, intent, True))
    for folder, speaker in (("valid", SNIPS_SPEAKERS["train"][0]), ("test", SNIPS_FOREIGN_SPEAKER)):
        intent, words, tags = snips_item(folder, 0)
        plan.append(SnipsUtterance(folder, f"{speaker}-snips-{folder}-0", speaker, words, tags, intent, False))
    return plan


def _snips_voice(speaker: str) -> Voice:
    names = [s for speakers in SNIPS_SPEAKERS.values() for s in speakers] + [SNIPS_FOREIGN_SPEAKER]
    return voice(names.index(speaker))


def make_snips(root: str | Path, per_speaker: int = 3, speakers_per_split: int = 2) -> Path:
    """Write s3prl's Audio SNIPS layout under ``root`` and return it.

    ``ROOT/{train,valid,test}/SPEAKER-snips-SPLIT-N.wav`` as in ``snips_plan``; ``ROOT/all.iob.snips.txt`` with
    a line for utterances 0..per_speaker-1 of every SUPERB speaker in every split folder (as the real file has
    lines for all voices; most have no wav here), none for the foreign voice; ``ROOT/slots.txt`` (``O`` first,
    then the slot names, sorted), and a README.
    """
    root = Path(root)
    plan = snips_plan(per_speaker, speakers_per_split)
    _run_all([_speak(" ".join(u.words).lower(), root / u.folder / f"{u.id}.wav", _snips_voice(u.speaker))
              for u in plan])
    lines = []
    for folder in SNIPS_SPEAKERS:
        for speaker in sorted(s for speakers in SNIPS_SPEAKERS.values() for s in speakers):
            for n in range(per_speaker):
                intent, words, tags = snips_item(folder, n)
                lines.append(f"{speaker}-snips-{folder}-{n} BOS {' '.join(words)} EOS\tO {' '.join(tags)} {intent}")
    (root / "all.iob.snips.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    slots = sorted({tag for _, _, tags in SNIPS_ITEMS for tag in tags.split()} - {"O"})
    (root / "slots.txt").write_text("O\n" + "".join(s + "\n" for s in slots), encoding="utf-8")
    (root / "README.md").write_text("tiny synthetic Audio SNIPS (s3prl layout) for tests\n", encoding="utf-8")
    return root


# -- Intent classification: Audio SNIPS (s3prl's audio_slu) and spoken ATIS -------------------------------

#: intent → sentence templates (a city or an object filled in), so the intent lies in the words
INTENT_TEMPLATES = {
    "GetWeather": ("what is the weather in {}", "will it rain in {} tomorrow"),
    "PlayMusic": ("play some music by {}", "put on a song from {}"),
    "BookRestaurant": ("book a table for two in {}", "reserve a restaurant near {}"),
}
_INTENT_FILLERS = ("paris", "boston", "london", "denver", "madrid", "tokyo", "chicago", "berlin")
AUDIO_SNIPS_VOICES = {"Aditi": 0, "Amy": 1, "Brian": 2}  # Polly name → the espeak-ng voice standing in for it


def intent_rows(split: str, count: int) -> list[tuple[str, str, str]]:
    """``(u_id, words, intent)`` rows of a split: intents in turn, templates and fillers varying."""
    intents = list(INTENT_TEMPLATES)
    rows = []
    for n in range(count):
        intent = intents[n % len(intents)]
        templates = INTENT_TEMPLATES[intent]
        text = templates[(n // len(intents)) % len(templates)].format(_INTENT_FILLERS[(3 * n + len(split)) % 8])
        rows.append((f"snips-{split}-{n}", text, intent))
    return rows


def make_audio_snips(root: str | Path, counts: dict[str, int] | None = None,
                     speakers: Sequence[str] = ("Aditi", "Amy")) -> Path:
    """s3prl's ``audio_slu`` layout under ``root``: ``audio_SPEAKER/snips/U_ID.mp3`` (22.05 kHz mp3, written by
    libsndfile) for every annotated utterance and voice, and ``data/nlu_annotation/{train,valid,test}`` (TSV with
    the external repo's header ``u_id, utterance, slot-labels, intent``; slot labels all ``O``). Returns root."""
    root = Path(root)
    counts = counts or {"train": 30, "valid": 6, "test": 6}
    rows = {split: intent_rows(split, n) for split, n in counts.items()}
    folder = root / "data" / "nlu_annotation"
    folder.mkdir(parents=True, exist_ok=True)
    for split, listed in rows.items():
        lines = ["u_id\tutterance\tslot-labels\tintent"]
        lines += [f"{u_id}\t{text}\t{' '.join('O' for _ in text.split())}\t{intent}" for u_id, text, intent in listed]
        (folder / split).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="superb-audio-snips-") as tmp:
        jobs, targets = [], []
        for speaker in speakers:
            for listed in rows.values():
                for u_id, text, _ in listed:
                    wav = Path(tmp) / f"{speaker}-{u_id}.wav"
                    jobs.append(_speak(text, wav, voice(AUDIO_SNIPS_VOICES.get(speaker, 3)), rate=22_050))
                    targets.append((wav, root / f"audio_{speaker}" / "snips" / f"{u_id}.mp3"))
        _run_all(jobs)
        for wav, mp3 in targets:
            data, rate = soundfile.read(str(wav), dtype="float32")
            mp3.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(mp3), data, rate, format="MP3")
    return root


ATIS_INTENTS = {"GetWeather": "atis_ground_service", "PlayMusic": "atis_flight",
                "BookRestaurant": "atis_flight#atis_airfare"}


def make_atis(root: str | Path, counts: dict[str, int] | None = None) -> Path:
    """s3prl's ``atis`` layout under ``root``: ``{train,dev,test}/ID.wav`` (16 kHz; six voices, so a tiny model
    learns from 48 utterances; the real splits are speaker-disjoint)
    and ``nlu_iob/iob.{train,dev,test}`` (``ID BOS WORDS EOS<TAB>O TAGS… INTENT``, no header). Intents include a
    combined one (``atis_flight#atis_airfare``); the test list ends with a test-only intent (``atis_airline``),
    a row whose wav is missing, and a repeated id (s3prl drops the last two). Returns root."""
    root = Path(root)
    counts = counts or {"train": 48, "dev": 9, "test": 12}
    voices = {"train": range(4, 10), "dev": range(4, 10), "test": range(4, 10)}
    jobs, lines = [], {}
    for split, count in counts.items():
        listed = [(f"atis_{split}_{n:04d}", text, ATIS_INTENTS[intent]) for n, (_, text, intent)
                  in enumerate(intent_rows(split, count))]
        if split == "test":
            listed.append((f"atis_{split}_{count:04d}", "which airlines fly from boston", "atis_airline"))
        for n, (uid, text, _) in enumerate(listed):
            chosen = voices[split]
            jobs.append(_speak(text, root / split / f"{uid}.wav", voice(chosen[n % len(chosen)])))
        rows = [f"{uid} BOS {text} EOS\tO {' '.join('O' for _ in text.split())} {intent}"
                for uid, text, intent in listed]
        if split == "test":
            rows += ["atis_test_9999 BOS no audio EOS\tO O O atis_flight", rows[0]]
        lines[split] = rows
    _run_all(jobs)
    (root / "nlu_iob").mkdir(parents=True, exist_ok=True)
    for split, rows in lines.items():
        (root / "nlu_iob" / f"iob.{split}").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "all.trans.txt").write_text("")  # present in s3prl's copy, not read
    return root


# -- CMU-MOSEI (full recordings and s3prl's label CSV) ----------------------------------------------------

_MOSEI_SENTENCES = {1: ("i really love this wonderful movie", "what a great and happy day", "this is excellent"),
                    -1: ("i hate this terrible film", "what an awful and sad day", "this is horrible")}
_MOSEI_SCORES = {1: (0.33, 1.5, 2.7), -1: (-0.33, -1.2, -2.5)}


def mosei_label7(score: float) -> int:
    """s3prl's 7-class rule (``convert_label.py``): sign(a)·ceil(abs(a)), exactly 0 stays 0."""
    for bound, label in ((-2, -3), (-1, -2), (0, -1)):
        if score < bound:
            return label
    if score == 0:
        return 0
    return 1 if score <= 1 else 2 if score <= 2 else 3


def make_mosei(root: str | Path, videos: dict[int, int] | None = None, per_video: int = 4) -> Path:
    """CMU-MOSEI's audio layout under ``root``: ``Audio/Full/WAV_16000/VIDEO.wav`` (one voice per video, its
    segments a second apart), and s3prl's ``CMU_MOSEI_Labels.csv`` at the root (latin-1, its columns, a
    YouTube-style id with a leading dash). Segment k alternates positive and negative sentences with scores
    whose labels follow s3prl's rules (``label2a``, ``label2b``, ``label7``; ``label6`` the strongest emotion:
    0 happy for positive, 1 sad for negative). ``videos`` maps s3prl's split code (0 train, 1 dev, 2 test, 3 none)
    to a number of videos; the first segment of the first video starts before 0 s (s3prl clips it). Returns root."""
    root = Path(root)
    videos = videos or {0: 12, 1: 3, 2: 5, 3: 1}
    plan = []  # (video id, split code, [(sentence, score)])
    for code, count in videos.items():
        for v in range(count):
            vid = f"-{code}v{v:02d}_x{hashlib.md5(f'{code}{v}'.encode()).hexdigest()[:6]}"
            segments = []
            for k in range(per_video):
                sign = 1 if (k + v) % 2 == 0 else -1
                n = (k + v + code) % 3
                segments.append((_MOSEI_SENTENCES[sign][n], _MOSEI_SCORES[sign][n]))
            plan.append((vid, code, segments))
    audio = root / "Audio" / "Full" / "WAV_16000"
    audio.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="superb-mosei-") as tmp:
        pieces = {(vid, k): Path(tmp) / f"{vid}_{k}.wav" for vid, _, segs in plan for k in range(len(segs))}
        _run_all([_speak(segs[k][0], pieces[(vid, k)], voice(p % 6)) for p, (vid, _, segs) in enumerate(plan)
                  for k in range(len(segs))])
        for p, (vid, code, segs) in enumerate(plan):
            wave, t = [np.zeros(8000)], 0.5
            for k, (_, score) in enumerate(segs):
                speech = _trimmed_turn(pieces[(vid, k)])
                start, end = t, t + len(speech) / 16_000
                shown = -0.04 if p == 0 and k == 0 else round(start, 3)  # a negative start, as 239 real rows
                sign = -1 if score < 0 else 1
                rows.append((vid, k, shown, round(end, 3), int(score >= 0), sign, 0 if sign > 0 else 1,
                             mosei_label7(score), code))
                wave += [speech, np.zeros(16_000)]
                t = end + 1.0
            soundfile.write(str(audio / f"{vid}.wav"), np.concatenate(wave).astype(np.float32), 16_000,
                            subtype="PCM_16")
    lines = [",file,index,start,end,label2a,label2b,label6,label7,split"]
    lines += [f"{n},{vid},{k},{start},{end},{a},{b},{six},{seven},{code}"
              for n, (vid, k, start, end, a, b, six, seven, code) in enumerate(rows)]
    (root / "CMU_MOSEI_Labels.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return root


# -- Speaker diarization (Libri2Mix-style Kaldi data dirs) -------------------------------------------------

DIARIZATION_SPLITS = ("train", "dev", "test")
DIARIZATION_WAV_SCP = {"train": "relative", "dev": "absolute", "test": "relative"}  # how wav.scp lists paths
SPEECH_THRESHOLD = 0.01  # |sample| above this is speech: espeak-ng's lead-in/out stays under 1e-3
_DIAR_PHRASES = ("good morning", "see you later", "hello there", "thank you very much", "the cat sat down",
                 "not today", "come in please", "over here")  # short, so four turns fit in a few seconds
_DIAR_MIN_GAP_MS = 250  # silence before, between and after turns (the overlap excepted)
_DIAR_PEAK = 0.45  # each turn's peak, so two overlapping turns never clip


def _loud_part(wave: np.ndarray, level: float, rate: int) -> np.ndarray | None:
    """``wave`` from its first to its last sample louder than ``level``, zero-padded to whole milliseconds (so
    a builder's times are exact in 3 decimals and lie where speech is, not on espeak-ng's silent edges);
    None when nothing is that loud."""
    loud = np.flatnonzero(np.abs(wave.astype(np.float64)) > level)
    if loud.size == 0:
        return None
    wave = wave[loud[0]: loud[-1] + 1]
    return np.pad(wave, (0, -len(wave) % (rate // 1000)))


def _trimmed_turn(path: Path) -> np.ndarray:
    """A synthesized turn's loud part (``_loud_part``) at peak ``_DIAR_PEAK``."""
    wave, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    wave = _loud_part(wave.mean(axis=1), SPEECH_THRESHOLD, rate) if rate == 16_000 else None
    if wave is None:
        raise RuntimeError(f"{path}: expected 16 kHz speech from espeak-ng")
    return wave * (_DIAR_PEAK / np.abs(wave).max())


def _diarization_timeline(lengths_ms: Sequence[int], seconds: float, rng: np.random.Generator,
                          rec: str) -> list[int]:
    """Start times (ms) of turns A1, B1, A2, B2: silent gaps between the first three, B2 starting 30-60% of
    the shorter of A2/B2 before A2 ends (the one partial overlap), gaps of random share of the spare time."""
    a1, b1, a2, b2 = lengths_ms
    overlap = int(rng.uniform(0.3, 0.6) * min(a2, b2))
    total_ms = round(seconds * 1000)
    spare = total_ms - (a1 + b1 + a2 + b2 - overlap) - 4 * _DIAR_MIN_GAP_MS
    if spare < 0:
        need = (total_ms - spare) / 1000
        raise ValueError(f"seconds={seconds} is too short for recording {rec}: its turns need {need:.3f} s")
    lead, gap1, gap2, _ = (_DIAR_MIN_GAP_MS + np.floor(rng.dirichlet(np.ones(4)) * spare)).astype(int)
    start_a1 = int(lead)
    start_b1 = start_a1 + a1 + int(gap1)
    start_a2 = start_b1 + b1 + int(gap2)
    return [start_a1, start_b1, start_a2, start_a2 + a2 - overlap]


_LOW_VOICES = (Voice("en-gb+m7", 30, 170), Voice("en-gb-x-gbclan+m2", 35, 165), Voice("en-gb-scotland", 40, 180),
               Voice("en-us-nyc", 45, 190))
_HIGH_VOICES = (Voice("en-us+f5", 80, 185), Voice("en-gb-x-rp+f2", 72, 175), Voice("en-gb+f3", 68, 160),
                Voice("en-gb-x-gbcwmd+f4", 62, 155))


def diarization_voice(index: int) -> Voice:
    """Speaker ``index`` of the tiny diarization corpus: recording ``k`` pairs speaker ``2k`` (a low voice) with
    ``2k + 1`` (a high one), so a small model has a cue it can learn from a few recordings; every round of
    four recordings moves pitch and speed, so no voice repeats and the splits stay speaker-disjoint."""
    k, high = divmod(index, 2)
    base = (_HIGH_VOICES if high else _LOW_VOICES)[k % 4]
    lap = k // 4
    pitch = base.pitch + 3 * lap if high else base.pitch - 3 * lap
    return Voice(base.name, max(0, min(99, pitch)), base.speed + 7 * lap)


def make_diarization(root: str | Path, recordings_per_split: int = 2, seconds: float = 6.0, seed: int = 0) -> Path:
    """Write Libri2Mix-style Kaldi data dirs ``ROOT/{train,dev,test}/`` and their audio in ``ROOT/wav/SPLIT/``.

    Each recording (``seconds`` long, 16 kHz mono) mixes two voices taking turns A, B, A, B: silence before,
    between and after the turns, and the last two turns partly overlapping. Every recording has its own pair
    of voices (``diarization_voice(2k)`` low, ``diarization_voice(2k + 1)`` high, for the k-th recording
    overall), so the splits are speaker-
    disjoint as Libri2Mix's (drawn from LibriSpeech's splits) are. Turn times are where the trimmed speech is
    (``SPEECH_THRESHOLD``), on a 1 ms grid; gaps and the overlap's length come from ``seed``.

    Per split: ``wav.scp`` (paths relative to ``ROOT`` or absolute, as ``DIARIZATION_WAV_SCP`` says),
    ``segments``, ``utt2spk``, ``spk2utt``, ``rttm`` (s3prl's 9-field lines), ``reco2dur``, and ``reco2num_spk``
    (an extra file readers must tolerate). Same arguments, same bytes. Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    recs = []  # (split, rec, [(speaker, text_index, voice index)] * 4 in turn order)
    for s, split in enumerate(DIARIZATION_SPLITS):
        for r in range(recordings_per_split):
            k = s * recordings_per_split + r
            pair = (2 * k, 2 * k + 1)
            speakers = [str(103 + 11 * i) for i in pair]
            rec = "_".join(f"{spk}-{1000 + i}-{r:04d}" for spk, i in zip(speakers, pair, strict=True))
            turns = [(speakers[j], (3 * k + u) % len(_DIAR_PHRASES), pair[j]) for u, j in enumerate((0, 1, 0, 1))]
            recs.append((split, rec, turns))
    with tempfile.TemporaryDirectory(prefix="superb-diarization-") as tmp:
        sources = {(v, t): Path(tmp) / f"{v}_{t}.wav" for _, _, turns in recs for _, t, v in turns}
        _run_all([_speak(_DIAR_PHRASES[t], path, diarization_voice(v)) for (v, t), path in sources.items()])
        speech = {key: _trimmed_turn(path) for key, path in sources.items()}

    total = round(seconds * 1000) * 16
    lists: dict[str, dict[str, list[str]]] = {split: {} for split in DIARIZATION_SPLITS}
    rttm: dict[str, list[tuple[str, int, int, str]]] = {split: [] for split in DIARIZATION_SPLITS}
    for split, rec, turns in recs:
        waves = [speech[(v, t)] for _, t, v in turns]
        starts = _diarization_timeline([len(w) // 16 for w in waves], seconds, rng, rec)
        mix = np.zeros(total)
        for wave, start in zip(waves, starts, strict=True):
            mix[16 * start: 16 * start + len(wave)] += wave
        path = root / "wav" / split / f"{rec}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), mix.astype(np.float32), 16_000, subtype="PCM_16")
        shown = str(path.resolve()) if DIARIZATION_WAV_SCP[split] == "absolute" else path.relative_to(root).as_posix()
        out = lists[split]
        out.setdefault("wav.scp", []).append(f"{rec} {shown}")
        out.setdefault("reco2dur", []).append(f"{rec} {total / 16_000:.3f}")
        out.setdefault("reco2num_spk", []).append(f"{rec} 2")
        for (spk, _, _), wave, start in zip(turns, waves, starts, strict=True):
            end = start + len(wave) // 16
            seg = f"{spk}_{rec}_{start:07d}_{end:07d}"
            out.setdefault("segments", []).append(f"{seg} {rec} {start / 1000:.3f} {end / 1000:.3f}")
            out.setdefault("utt2spk", []).append(f"{seg} {spk}")
            rttm[split].append((rec, start, end, spk))
    for split, files in lists.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        by_speaker: dict[str, list[str]] = {}
        for line in files.get("utt2spk", []):
            seg, spk = line.split()
            by_speaker.setdefault(spk, []).append(seg)
        files["spk2utt"] = [f"{spk} {' '.join(sorted(segs))}" for spk, segs in by_speaker.items()]
        files = {name: sorted(lines) for name, lines in files.items()}
        files["rttm"] = [f"SPEAKER {rec} 1 {start / 1000:.3f} {(end - start) / 1000:.3f} <NA> <NA> {spk} <NA>"
                         for rec, start, end, spk in sorted(rttm[split])]
        for name, lines in files.items():
            (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (root / "README.txt").write_text("tiny synthetic Libri2Mix-style diarization data for tests\n", encoding="utf-8")
    return root


# -- Separation: Libri2Mix as s3prl's separation_stft reads it ---------------------------------------------

LIBRI2MIX_PARTS = ("train-100", "dev", "test")
_MIX_SENTENCES = ("the boat sailed across the lake", "please call me after lunch", "green apples grow on trees",
                  "the library opens at nine", "we walked home in the rain", "turn left at the old bridge",
                  "my brother plays the violin", "a cold wind came from the north")


def _libri2mix_id(part: int, k: int, speaker: int) -> str:
    """A LibriSpeech-style ``SPK-CHAP-UTT`` id of mixture ``k``'s ``speaker`` (0 or 1) in part ``part``."""
    return f"{100 + 37 * (2 * (part * 100 + k) + speaker)}-{2000 + k}-{speaker:04d}"


def make_libri2mix(root: str | Path, mixtures: dict[str, int] | None = None, dev_subset: int = 3,
                   seed: int = 0) -> Path:
    """A tiny Libri2Mix (16 kHz, ``min``) and s3prl's Kaldi-style folders of it; returns the folder to pass
    as ``--root`` (``ROOT/datasets/Libri2Mix``, holding ``wav16k/min/PART/{s1,s2,mix_clean}/wav.scp``).

    The audio is where LibriMix writes it, ``ROOT/Libri2Mix/wav16k/min/PART/{s1,s2,mix_clean}/ID1_ID2.wav``:
    each mixture pairs a low and a high espeak-ng voice (``diarization_voice``: no voice in two parts) saying
    different sentences, both scaled by a seeded gain, cut to the shorter (``min``), and summed into
    ``mix_clean`` as float32 WAVs. ``data_prepare.py``'s lists (absolute paths, sorted, ``utt2spk``/``spk2utt``
    mapping each id to itself) are then written for each part, and ``dev_1000`` as ``subsample.py`` draws it
    (``dev_subset`` mixtures, seed 7). Same arguments, same bytes."""
    root = Path(root)
    counts = mixtures or {"train-100": 16, "dev": 4, "test": 4}
    rng = np.random.default_rng(seed)
    plan = []  # (part, mixture id, [(voice index, sentence index)] * 2)
    voice_index = 0
    for p, part in enumerate(LIBRI2MIX_PARTS):
        for k in range(counts.get(part, 0)):
            speakers = [(voice_index + j, (3 * (p * 100 + k) + 5 * j) % len(_MIX_SENTENCES)) for j in range(2)]
            voice_index += 2
            plan.append((part, "_".join(_libri2mix_id(p, k, j) for j in range(2)), speakers))
    with tempfile.TemporaryDirectory(prefix="superb-libri2mix-") as tmp:
        spoken = {key: Path(tmp) / f"{key[0]}_{key[1]}.wav" for _, _, pair in plan for key in pair}
        _run_all([_speak(_MIX_SENTENCES[t], path, diarization_voice(v)) for (v, t), path in spoken.items()])
        speech = {key: _trimmed_turn(path) for key, path in spoken.items()}
    audio_base = root / "Libri2Mix" / "wav16k" / "min"
    for part, mid, pair in plan:
        waves = [speech[key] * rng.uniform(0.4, 0.9) for key in pair]
        n = min(len(w) for w in waves)
        signals = {"s1": waves[0][:n], "s2": waves[1][:n]}
        signals["mix_clean"] = signals["s1"] + signals["s2"]
        for condition, wave in signals.items():
            path = audio_base / part / condition / f"{mid}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), wave.astype(np.float32), 16_000, subtype="FLOAT")
    lists = root / "datasets" / "Libri2Mix" / "wav16k" / "min"
    for part in LIBRI2MIX_PARTS:
        ids = sorted(mid for p, mid, _ in plan if p == part)
        folders = {part: ids}
        if part == "dev":
            folders["dev_1000"] = subsample_ids(ids, dev_subset)
        for folder, chosen in folders.items():
            for condition in ("s1", "s2", "mix_clean"):
                out = lists / folder / condition
                out.mkdir(parents=True, exist_ok=True)
                wavs = [(audio_base / part / condition / f"{mid}.wav").resolve() for mid in chosen]
                (out / "wav.scp").write_text("".join(f"{m} {w}\n" for m, w in zip(chosen, wavs, strict=True)))
                same = "".join(f"{m} {m}\n" for m in chosen)
                (out / "utt2spk").write_text(same)
                (out / "spk2utt").write_text(same)
    return root / "datasets" / "Libri2Mix"


# -- Query by example: QUESST 2014 and SWS 2013 ----------------------------------------------------------

QUESST_TERMS = ("weather", "music", "garden", "window", "coffee", "station")
SWS_TERMS = ("river", "doctor", "yellow", "market", "pencil")
_QUESST_FILLERS = ("the old man said", "we talked about", "nobody expected", "she pointed at", "they saw")
_QBE_TAIL = "again"
_SWS_DISTRACTORS = ("nothing", "tomorrow", "the weekend", "a long letter")  # documents without a term
_QBE_RATE = 8_000  # both corpora are 8 kHz telephone-band audio
_QBE_PAUSE_MS = (250, 120, 300)  # silence before the first piece, between two pieces, after the last


def _trimmed_piece(path: Path) -> np.ndarray:
    """A synthesised piece's int16 samples, its loud part (``_loud_part``)."""
    wave, rate = soundfile.read(str(path), dtype="int16")
    wave = _loud_part(wave, SPEECH_THRESHOLD * 32768, rate) if rate == _QBE_RATE and wave.ndim == 1 else None
    if wave is None:
        raise RuntimeError(f"{path}: expected {_QBE_RATE} Hz mono speech from espeak-ng")
    return wave


def _qbe_documents(base: Path, documents: dict[str, tuple[tuple[str, str, str], Voice]],
                   queries: dict[Path, tuple[str, Voice]]) -> dict[str, tuple[float, float, float]]:
    """Write each document ``base/Audio/ID.wav`` as its ``(filler, term, tail)`` pieces, each spoken on its own by
    the document's voice and trimmed, joined by the ``_QBE_PAUSE_MS`` silences, and each query file as spoken
    (espeak-ng's own silence kept). Returns ``{id: (seconds, term start, term duration)}``, exact in 3 decimals
    (every piece and pause is whole ms)."""
    ms = _QBE_RATE // 1000
    lead, between, trail = (np.zeros(p * ms, dtype=np.int16) for p in _QBE_PAUSE_MS)
    spoken = dict.fromkeys((text, who) for texts, who in documents.values() for text in texts)
    with tempfile.TemporaryDirectory(prefix="superb-qbe-") as tmp:
        paths = {key: Path(tmp) / f"piece{i:04d}.wav" for i, key in enumerate(spoken)}
        _run_all([_speak(text, path, who, rate=_QBE_RATE) for (text, who), path in paths.items()]
                 + [_speak(text, path, who, rate=_QBE_RATE) for path, (text, who) in queries.items()])
        pieces = {key: _trimmed_piece(path) for key, path in paths.items()}
    times = {}
    for doc, ((filler, term, tail), who) in documents.items():
        before = np.concatenate([lead, pieces[(filler, who)], between])
        spoken_term = pieces[(term, who)]
        wave = np.concatenate([before, spoken_term, between, pieces[(tail, who)], trail])
        path = base / "Audio" / f"{doc}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), wave, _QBE_RATE, subtype="PCM_16")
        times[doc] = (len(wave) / _QBE_RATE, len(before) / _QBE_RATE, len(spoken_term) / _QBE_RATE)
    return times


def _write_xml(root: ET.Element, path: Path) -> None:
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(str(path), encoding="UTF-8", xml_declaration=True)
    with path.open("a", encoding="utf-8") as f:
        f.write("\n")


def _write_qbe_groundtruth(folder: Path, ecf_name: str, tlist_name: str, rttm_name: str,
                           documents: dict[str, tuple[str, float]], terms: Sequence[str],
                           occurrences: Sequence[tuple[str, float, float, str]]) -> None:
    """Write a NIST STD ground truth as QUESST 2014 and SWS 2013 ship it, into ``folder``.

    Args:
        documents: ``{document id: (audio path relative to the corpus folder, seconds)}``: the ECF's excerpts.
        terms: the term ids of the term list (query ids, example suffixes dropped).
        occurrences: ``(document id, tbeg, dur, term id)`` in seconds: the RTTM's ``LEXEME`` lines, sorted. The
            RTTM starts with a ``SPEAKER`` line for the first document (readers keep only ``LEXEME`` lines).
    """
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(seconds for _, seconds in documents.values())
    ecf = ET.Element("ecf", source_signal_duration=f"{total:.3f}", language="multiple", version="superb-tiny")
    for doc in sorted(documents):
        rel, seconds = documents[doc]
        ET.SubElement(ecf, "excerpt", audio_filename=rel, channel="1", tbeg="0.000", dur=f"{seconds:.3f}",
                      source_type="splitcts")
    _write_xml(ecf, folder / ecf_name)
    tlist = ET.Element("termlist", ecf_filename=ecf_name, language="multiple", encoding="UTF-8",
                       version="superb-tiny")
    for term in terms:
        ET.SubElement(ET.SubElement(tlist, "term", termid=term), "termtext").text = term
    _write_xml(tlist, folder / tlist_name)
    first = min(documents)
    lines = [f"SPEAKER {first} 1 0.000 {documents[first][1]:.3f} <NA> <NA> spk <NA>"]
    lines += [f"LEXEME {doc} 1 {tbeg:.3f} {dur:.3f} {term} lex <NA> <NA>"
              for doc, tbeg, dur, term in sorted(occurrences)]
    (folder / rttm_name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_quesst14(root: str | Path, docs_per_term: int = 2, other_language_docs: int = 2) -> Path:
    """Write a tiny ``quesst14Database/`` layout under ``root`` (8 kHz wavs, as the corpus) and return it.

    Every term of ``QUESST_TERMS`` is spoken inside ``docs_per_term`` documents (a filler phrase, the term and
    "again", each synthesised on its own by the document's voice and joined with short pauses, so the term's
    place is known) and once as a dev and once as an eval query (by yet another voice). The lists give paths
    with the archive's folder first (``quesst14Database/Audio/…``), as the real ones do, and mark all of it
    ``nnenglish`` except ``other_language_docs`` extra documents and one query per split marked ``basque``
    (SUPERB leaves them out), which the basque documents hold. ``scoring/groundtruth_quesst14_{dev,eval}/``
    hold the ground truth (``quesst14.ecf.xml``, ``quesst14_SPLIT.tlist.xml``, ``quesst14_SPLIT.rttm``) of
    every language.
    """
    base = Path(root) / "quesst14Database"
    documents: dict[str, tuple[tuple[str, str, str], Voice]] = {}
    queries: dict[Path, tuple[str, Voice]] = {}
    lines: dict[str, list[str]] = {"docs": [], "dev": [], "eval": []}
    term_of: dict[str, int] = {}  # document -> index of the term it holds (len(QUESST_TERMS): the basque one)
    n = 0
    for t, term in enumerate(QUESST_TERMS):
        for k in range(docs_per_term):
            n += 1
            doc = f"quesst14_{n:05d}"
            documents[doc] = ((_QUESST_FILLERS[(t + k) % len(_QUESST_FILLERS)], term, _QBE_TAIL), voice(t + 2 * k))
            term_of[doc] = t
            lines["docs"].append(f"quesst14Database/Audio/{doc}.wav nnenglish")
        for s, split in enumerate(("dev", "eval")):
            name = f"quesst14_{split}_{t + 1:04d}"
            queries[base / f"{split}_queries" / f"{name}.wav"] = (term, voice(7 + s))
            lines[split].append(f"quesst14Database/{split}_queries/{name}.wav nnenglish")
    for k in range(other_language_docs):
        n += 1
        doc = f"quesst14_{n:05d}"
        documents[doc] = (("a sentence from", "another language", _QBE_TAIL), voice(k))
        term_of[doc] = len(QUESST_TERMS)
        lines["docs"].append(f"quesst14Database/Audio/{doc}.wav basque")
    for split in ("dev", "eval"):
        name = f"quesst14_{split}_{len(QUESST_TERMS) + 1:04d}"
        queries[base / f"{split}_queries" / f"{name}.wav"] = ("another language", voice(9))
        lines[split].append(f"quesst14Database/{split}_queries/{name}.wav basque")
    times = _qbe_documents(base, documents, queries)
    names = {"docs": "language_key_utterances.lst", "dev": "language_key_dev.lst", "eval": "language_key_eval.lst"}
    for split, name in names.items():
        (base / "scoring" / name).parent.mkdir(parents=True, exist_ok=True)
        (base / "scoring" / name).write_text("".join(line + "\n" for line in lines[split]), encoding="utf-8")
    ecf = {doc: (f"Audio/{doc}.wav", seconds) for doc, (seconds, _, _) in times.items()}
    for split in ("dev", "eval"):
        terms = [f"quesst14_{split}_{t + 1:04d}" for t in range(len(QUESST_TERMS) + 1)]
        found = [(doc, tbeg, dur, terms[term_of[doc]]) for doc, (_, tbeg, dur) in times.items()]
        _write_qbe_groundtruth(base / "scoring" / f"groundtruth_quesst14_{split}", "quesst14.ecf.xml",
                               f"quesst14_{split}.tlist.xml", f"quesst14_{split}.rttm", ecf, terms, found)
    (base / "README.txt").write_text("tiny synthetic QUESST 2014 for tests\n", encoding="utf-8")
    return Path(root)


def make_sws2013(root: str | Path, docs_per_term: int = 2, distractor_docs: int = 3, extra_examples: int = 2) -> Path:
    """Write a tiny ``sws2013Database_dev_eval/`` layout under ``root`` (8 kHz wavs, as the corpus) and return it.

    ``Audio/sws2013_NNNNN.wav``: every term of ``SWS_TERMS`` spoken inside ``docs_per_term`` documents (filler,
    term, "again", synthesised separately and joined, as in ``make_quesst14``), then ``distractor_docs``
    documents holding no term. ``dev_queries/sws2013_dev_NNN.wav`` and ``eval_queries/sws2013_eval_NNN.wav``:
    each term once per split by voices no document uses; the first ``extra_examples`` dev terms also have a
    second example ``sws2013_dev_NNN_01.wav`` by yet another voice. ``scoring_atwv_sws2013/sws2013_{dev,eval}/``
    holds the ground truth (``sws2013.ecf.xml``, ``sws2013_SPLIT.tlist.xml``, ``sws2013_SPLIT.rttm``).
    """
    if not 0 <= extra_examples <= len(SWS_TERMS):
        raise ValueError(f"need 0 <= extra_examples <= {len(SWS_TERMS)}, got {extra_examples}")
    base = Path(root) / "sws2013Database_dev_eval"
    documents: dict[str, tuple[tuple[str, str, str], Voice]] = {}
    queries: dict[Path, tuple[str, Voice]] = {}
    term_of: dict[str, int] = {}
    for t, term in enumerate(SWS_TERMS):
        for k in range(docs_per_term):
            doc = f"sws2013_{len(documents) + 1:05d}"
            documents[doc] = ((_QUESST_FILLERS[(t + 2 * k + 1) % len(_QUESST_FILLERS)], term, _QBE_TAIL),
                              voice(t + 2 * k))
            term_of[doc] = t
        for s, split in enumerate(("dev", "eval")):
            queries[base / f"{split}_queries" / f"sws2013_{split}_{t + 1:03d}.wav"] = (term, voice(7 + s))
        if t < extra_examples:
            queries[base / "dev_queries" / f"sws2013_dev_{t + 1:03d}_01.wav"] = (term, voice(9))
    for d in range(distractor_docs):
        doc = f"sws2013_{len(documents) + 1:05d}"
        filler = _QUESST_FILLERS[d % len(_QUESST_FILLERS)]
        documents[doc] = ((filler, _SWS_DISTRACTORS[d % len(_SWS_DISTRACTORS)], _QBE_TAIL), voice(3 + d))
    times = _qbe_documents(base, documents, queries)
    ecf = {doc: (f"Audio/{doc}.wav", seconds) for doc, (seconds, _, _) in times.items()}
    for split in ("dev", "eval"):
        terms = [f"sws2013_{split}_{t + 1:03d}" for t in range(len(SWS_TERMS))]
        found = [(doc, times[doc][1], times[doc][2], terms[t]) for doc, t in term_of.items()]
        _write_qbe_groundtruth(base / "scoring_atwv_sws2013" / f"sws2013_{split}", "sws2013.ecf.xml",
                               f"sws2013_{split}.tlist.xml", f"sws2013_{split}.rttm", ecf, terms, found)
    (base / "README.txt").write_text("tiny synthetic SWS 2013 (dev and eval) for tests\n", encoding="utf-8")
    return Path(root)
