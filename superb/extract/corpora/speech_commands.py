"""Speech Commands v0.01/v0.02 as SUPERB's 12-class keyword spotting corpus.

Training root (the unpacked ``speech_commands_v0.0X.tar.gz``): ``WORD/HASH_nohash_N.wav``,
``_background_noise_/*.wav``, ``validation_list.txt``, ``testing_list.txt``. The lists were written with
TensorFlow's speaker-hash rule, so we follow them exactly rather than re-hashing: ``dev`` is
``validation_list.txt``, ``train`` is every other word file not in ``testing_list.txt``. The
``testing_list`` files are not used: SUPERB tests on the separate test archive
(``speech_commands_test_set_v0.0X``: 12 class folders incl. ``_silence_`` and ``_unknown_``).

``_silence_`` for train/dev: s3prl crops a random second of background noise on every draw. A store needs a
fixed list, so we cut ``silence_clips`` 1-second clips per split at positions drawn from a SHA-256 of
(``silence_seed``, split, clip index) — stable across machines and library versions. By default a split
gets ``ceil(10 %)`` of its word clips, TensorFlow's ``silence_percentage`` default; with class-balanced
sampling in training the count only sets how many distinct noise snippets the head sees.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import ConfigError, CorpusError
from superb.extract.audio import AudioInfo, probe, resampled_length
from superb.extract.corpora.base import Corpus, Utterance, utterance_from_file
from superb.files import numbered_lines

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
CLASSES = (*COMMANDS, UNKNOWN, SILENCE)
WORDS_V1 = (*COMMANDS, "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
WORDS_V2 = (*WORDS_V1, "backward", "forward", "follow", "learn", "visual")
NOISE_DIR = "_background_noise_"
LISTS = {"dev": "validation_list.txt", "excluded": "testing_list.txt"}
SILENCE_FRACTION = 0.10  # TensorFlow speech_commands' silence_percentage default

_NAME = re.compile(r"^(?:(?P<word>[^_]+)_)?(?P<speaker>[^_]+)_nohash_\d+$")


def detect_version(root: Path) -> str:
    """``"v0.01"`` or ``"v0.02"``: from the folder name if it says, else from v0.02's extra word folders."""
    named = re.search(r"v0\.0([12])", root.name)
    if named:
        return f"v0.0{named.group(1)}"
    return "v0.02" if any((root / w).is_dir() for w in WORDS_V2[len(WORDS_V1):]) else "v0.01"


def label_of(word: str) -> str:
    """One of the 12 SUPERB classes for a word folder."""
    return word if word in COMMANDS or word in (UNKNOWN, SILENCE) else UNKNOWN


def silence_offset(seed: int, split: str, index: int, span: int) -> int:
    """Deterministic start in ``[0, span)`` of silence clip ``index`` of ``split``."""
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % span


class SpeechCommands(Corpus):
    """Speech Commands reader; meta: ``label`` (one of ``CLASSES``), ``word`` (folder), ``speaker`` (HASH).

    Options:
        test_root: the unpacked test archive (Default: the sibling ``speech_commands_test_set_v0.0X``).
        silence_seed: seed of the ``_silence_`` clip positions (Default: 0).
        silence_clips: ``_silence_`` clips in each of train and dev (Default: 10 % of the split's words).
    """

    name = "speech_commands"
    version = 1
    splits = ("train", "dev", "test")
    options: dict[str, Any] = {"test_root": None, "silence_seed": 0, "silence_clips": None}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return all((folder / name).is_file() for name in LISTS.values())

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        for key in ("silence_seed", "silence_clips"):
            value = self.opts[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"corpus option {key} must be a non-negative integer, got {value!r}")
        self.dataset_version = detect_version(self.root)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset_version": self.dataset_version}

    @property
    def test_root(self) -> Path:
        given = self.opts["test_root"]
        if given is not None:
            return Path(given).expanduser().resolve()
        return self.root.parent / f"speech_commands_test_set_{self.dataset_version}"

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            found = self._test_set() if split == "test" else self._train_or_dev(split)
            out.extend(sorted(found, key=lambda u: u.id))
        return out

    # -- train / dev ---------------------------------------------------------------------------------------

    def _word_files(self) -> dict[str, Path]:
        """``{"WORD/NAME.wav": path}`` for every word folder (not ``_background_noise_``, not hidden)."""
        files: dict[str, Path] = {}
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith(("_", ".")):
                continue
            for path in folder.iterdir():
                if path.is_file() and path.suffix.lower() == ".wav" and not path.name.startswith("."):
                    files[f"{folder.name}/{path.name}"] = path
        return files

    def _read_list(self, name: str, files: dict[str, Path]) -> dict[str, int]:
        """``{entry: line number}`` of a list file; every entry must name a word file."""
        path = self.root / name
        if not path.is_file():
            raise CorpusError(f"{path}: Speech Commands list file not found; is --root the unpacked training "
                              "archive (speech_commands_v0.0X)?")
        entries: dict[str, int] = {}
        for lineno, raw in numbered_lines(path):
            entry = raw.strip()
            if not entry:
                continue
            if entry not in files:
                raise CorpusError(f"{path}:{lineno}: {entry!r} names no file under {self.root}")
            entries.setdefault(entry, lineno)
        return entries

    def _train_or_dev(self, split: str) -> list[Utterance]:
        files = self._word_files()
        dev = self._read_list(LISTS["dev"], files)
        excluded = self._read_list(LISTS["excluded"], files)
        both = sorted(set(dev) & set(excluded))
        if both:
            raise CorpusError(f"{self.root / LISTS['dev']}:{dev[both[0]]}: {both[0]!r} is also in "
                              f"{LISTS['excluded']} (line {excluded[both[0]]})")
        noise = self._noise_files()
        chosen = sorted(dev) if split == "dev" else sorted(set(files) - set(dev) - set(excluded))
        words = [self._word_utterance(entry, split, files[entry]) for entry in chosen]
        count = self.opts["silence_clips"]
        if count is None:
            count = math.ceil(SILENCE_FRACTION * len(words))
        return words + self._silence(split, count, noise)

    def _word_utterance(self, entry: str, split: str, path: Path) -> Utterance:
        word, name = entry.split("/", 1)
        stem = Path(name).stem
        match = _NAME.match(stem)
        meta = {"label": label_of(word), "word": word, "speaker": match.group("speaker") if match else ""}
        return utterance_from_file(f"{word}/{stem}", split, path, meta)

    def _noise_files(self) -> list[tuple[Path, AudioInfo]]:
        folder = self.root / NOISE_DIR
        if not folder.is_dir():
            raise CorpusError(f"{folder}: background-noise folder not found (the _silence_ class is cut from it)")
        paths = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() == ".wav" and not p.name.startswith("."))
        return [(p, probe(p)) for p in paths]

    def _silence(self, split: str, count: int, noise: list[tuple[Path, AudioInfo]]) -> list[Utterance]:
        """``count`` 1-second clips, taken from the noise files in turn (as s3prl draws each equally)."""
        if count == 0:
            return []
        # one second at the file's own rate resamples to exactly SAMPLE_RATE samples
        usable = [(p, info) for p, info in noise if info.frames >= info.sample_rate]
        if not usable:
            raise CorpusError(f"{self.root / NOISE_DIR}: no background-noise .wav of 1 s or longer to cut "
                              f"{count} _silence_ clips from")
        clips = []
        for index in range(count):
            path, info = usable[index % len(usable)]
            frames = info.sample_rate
            start = silence_offset(self.opts["silence_seed"], split, index, info.frames - frames + 1)
            clips.append(Utterance(
                id=f"{SILENCE}/{split}-{index:05d}",
                split=split,
                path=str(path.resolve()),
                num_samples=resampled_length(frames, info.sample_rate),
                meta={"label": SILENCE, "word": SILENCE, "speaker": ""},
                start=start,
                frames=frames,
            ))
        return clips

    # -- test ----------------------------------------------------------------------------------------------

    def _test_set(self) -> list[Utterance]:
        root = self.test_root
        if not root.is_dir():
            raise CorpusError(f"{root}: Speech Commands test set not found; unpack "
                              f"speech_commands_test_set_{self.dataset_version}.tar.gz there or pass --test-root")
        missing = [c for c in CLASSES if not (root / c).is_dir()]
        if missing:
            raise CorpusError(f"{root / missing[0]}: class folder missing from the test set (expected the 12 "
                              f"folders {', '.join(CLASSES)})")
        out = []
        for label in CLASSES:
            for path in sorted((root / label).iterdir()):
                if not path.is_file() or path.suffix.lower() != ".wav" or path.name.startswith("."):
                    continue
                match = _NAME.match(path.stem)
                word = label
                if label == UNKNOWN and match and match.group("word"):
                    word = match.group("word")  # the test archive names unknown words WORD_HASH_nohash_N
                meta = {"label": label, "word": word, "speaker": match.group("speaker") if match else ""}
                out.append(utterance_from_file(f"{label}/{path.stem}", "test", path, meta))
        return out

