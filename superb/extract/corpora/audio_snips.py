"""Audio SNIPS for intent classification, as s3prl's ``audio_snips`` downstream reads it.

``--root`` is the unzipped ``audio_slu`` folder (``audio_slu_v3.zip``, with the files of
aws-samples/aws-lex-noisy-spoken-language-understanding copied on top), or a folder with one such copy inside:

- ``audio_SPEAKER/snips/U_ID.mp3``: one Amazon Polly voice per folder (22.05 kHz mp3, decoded by libsndfile
  and resampled to 16 kHz here; s3prl asserts 22.05 kHz, any rate is converted here);
- ``data/nlu_annotation/{train,valid,test}`` (no extension): tab-separated with a header, of which the columns
  ``u_id`` and ``intent`` are read (``utterance`` and ``slot-labels`` are not needed).

Option ``speakers`` (``-c speakers=Aditi,Amy``, a list, or ``all``): the voices to extract, by default s3prl's
(train and dev: Aditi, Amy; test: Aditi); each must have its folder. Every annotated utterance of every chosen
voice is extracted, in the annotation file's order (s3prl's class order is first-seen in the train file); its id
is ``SPEAKER-U_ID``, meta ``speaker``, ``intent``, ``u_id``. The task picks its voices per split at fit time
(``data.train_speakers``, ``data.test_speakers``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superb.errors import CorpusError
from superb.extract.corpora.base import Corpus, Utterance, layout_root, utterance_from_file

SPLITS = ("train", "valid", "test")
ANNOTATIONS = Path("data") / "nlu_annotation"
DEFAULT_SPEAKERS = ("Aditi", "Amy")  # s3prl's audio_snips/config.yaml: train Aditi, Amy; test Aditi
#: the 16 Polly voices of Audio SNIPS (s3prl's config lists them)
VOICES = ("Aditi", "Amy", "Brian", "Emma", "Geraint", "Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly",
          "Matthew", "Nicole", "Raveena", "Russell", "Salli")


class AudioSnips(Corpus):
    name = "audio_snips"
    version = 1
    splits = SPLITS
    options: dict[str, Any] = {"speakers": ",".join(DEFAULT_SPEAKERS)}

    @classmethod
    def signature(cls, folder: Path) -> bool:
        return (folder / ANNOTATIONS).is_dir()

    @property
    def base(self) -> Path:
        return layout_root(self.root, lambda p: (p / ANNOTATIONS).is_dir(), "audio_slu")

    def speakers(self) -> list[str]:
        """The voices to extract; each must have its ``audio_SPEAKER/snips`` folder."""
        chosen = self.opts["speakers"]
        present = sorted(p.name[len("audio_"):] for p in self.base.glob("audio_*") if (p / "snips").is_dir())
        if chosen == "all":
            if not present:
                raise CorpusError(f"{self.base}: no audio_SPEAKER/snips/ folder")
            return present
        names = [s.strip() for s in chosen.split(",")] if isinstance(chosen, str) else [str(s) for s in chosen]
        for name in names:
            if not (self.base / f"audio_{name}" / "snips").is_dir():
                raise CorpusError(f"{self.base / f'audio_{name}' / 'snips'}: speaker {name!r} (-c speakers) has no "
                                  f"folder (voices here: {', '.join(present) or 'none'})")
        return names

    def utterances(self, splits: Sequence[str]) -> list[Utterance]:
        speakers = self.speakers()
        out: list[Utterance] = []
        for split in self.check_splits(splits):
            rows = read_annotation(self.base / ANNOTATIONS / split)
            for speaker in speakers:
                folder = self.base / f"audio_{speaker}" / "snips"
                for u_id, intent, where in rows:
                    path = folder / f"{u_id}.mp3"
                    if not path.is_file():
                        raise CorpusError(f"{where}: {u_id!r} has no audio for speaker {speaker!r} ({path} not found)")
                    meta = {"speaker": speaker, "intent": intent, "u_id": u_id}
                    out.append(utterance_from_file(f"{speaker}-{u_id}", split, path, meta))
        return out


def read_annotation(path: Path) -> list[tuple[str, str, str]]:
    """``(u_id, intent, file:line)`` of each row of an annotation TSV (header with ``u_id`` and ``intent``)."""
    if not path.is_file():
        raise CorpusError(f"{path}: Audio SNIPS annotation not found; is --root the audio_slu folder "
                          f"(holding {ANNOTATIONS}/{{{','.join(SPLITS)}}})?")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read the annotation ({exc})") from None
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    header = next(reader, None)
    if header is None:
        raise CorpusError(f"{path}: empty annotation file")
    columns = {name.strip(): k for k, name in enumerate(header)}
    missing = [c for c in ("u_id", "intent") if c not in columns]
    if missing:
        raise CorpusError(f"{path}:1: no column {missing[0]!r} in the header ({', '.join(header)})")
    rows, seen = [], {}
    for row in reader:
        lineno = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(columns["u_id"], columns["intent"]):
            raise CorpusError(f"{path}:{lineno}: {len(row)} fields, the header has {len(header)}")
        u_id, intent = row[columns["u_id"]].strip(), row[columns["intent"]].strip()
        if not u_id or not intent:
            raise CorpusError(f"{path}:{lineno}: empty u_id or intent")
        if u_id in seen:
            raise CorpusError(f"{path}:{lineno}: u_id {u_id!r} listed twice (first on line {seen[u_id]})")
        seen[u_id] = lineno
        rows.append((u_id, intent, f"{path}:{lineno}"))
    return rows
