"""SF: Audio SNIPS slot filling as s3prl's ``ctc`` + ``snips.yaml``: CTC over characters and slot tags.

The target is the transcript with every slot value wrapped in begin/end slot tokens
(``superb.train.tasks.sf.slots.iob_to_tagged``). The head is s3prl's snips.yaml one, the ASR head
(SpecAugment as its ``specaug`` block, time masks not adaptive → projector → 2 × BiLSTM 1024); SPEC's
table names the linear PR head, which ``-o config.model.head=linear`` selects. Decoding is greedy.
Metrics are s3prl's: slot-type F1 (the best-dev selection metric) and slot-value CER.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superb.stores.base import FeatureStore
from superb.train.config import Config
from superb.train.data import Item
from superb.train.tasks.ctc import CtcTask, token_ids
from superb.train.tasks.scoring import write_role_arks
from superb.train.tasks.sf.slots import build_vocabulary, iob_to_tagged, render, slot_type_f1, slot_value_cer
from superb.train.tasks.utterance import Prepared, check_corpus, splits_by_role


@dataclass(frozen=True)
class SlotFilling(CtcTask):
    name: str = "sf"
    corpus: str = "snips"
    heads: tuple[str, ...] = ("tokens",)
    metric: str = "slot_type_f1"
    higher_is_better: bool = True
    description: str = "slot filling, Audio SNIPS, CTC over characters + slot tags, slot-type F1 / value CER"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        roles = splits_by_role(store, config.data)
        tagged = {role: [iob_to_tagged(store.split(s).records[i]["meta"]["words"],
                                       store.split(s).records[i]["meta"]["slots"]) for s, i in pairs]
                  for role, pairs in roles.items()}
        # the symbol set is closed (letters, separators, the slot inventory): take it from every split
        vocab = build_vocabulary([seq for seqs in tagged.values() for seq in seqs])
        index = {t: k for k, t in enumerate(vocab)}
        items, ids = {}, {}
        for role, pairs in roles.items():
            ids[role] = [str(store.split(s).ids[i]) for s, i in pairs]
            items[role] = [Item(s, i, token_ids(seq, index, f"{store.path}: {ids[role][k]}"))
                           for k, ((s, i), seq) in enumerate(zip(pairs, tagged[role], strict=True))]
        return Prepared(items=items, classes=[vocab], heads=self.heads, ids=ids, extras={"specaug": config.specaug})

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        vocab = prepared.classes[0]
        hyps = [[vocab[t] for t in seq] for seq in predictions]
        refs = [[vocab[t] for t in seq] for seq in targets]
        if not refs:
            return {"slot_type_f1": float("nan")}
        return {"slot_type_f1": slot_type_f1(hyps, refs), "slot_value_cer": slot_value_cer(hyps, refs)}

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        vocab = prepared.classes[0]

        def text(ids: tuple[int, ...]) -> list[str]:  # s3prl's rendering: words, B-slot … E-slot tags
            return render([vocab[t] for t in ids]).split()

        write_role_arks(expdir, role, prepared.ids[role], positions,
                        {"hyp": [text(seq) for seq in predictions], "ref": [text(seq) for seq in targets]})


TASK = SlotFilling()
