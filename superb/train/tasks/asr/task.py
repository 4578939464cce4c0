"""ASR: LibriSpeech characters with CTC over s3prl's RNN head, greedy and KenLM beam-search decoding, WER.

Head (s3prl's ``asr`` config): SpecAugment on the featurizer output while training (time warp, time and
frequency masks) → ``Linear(D → 1024)`` → 2 × bidirectional LSTM 1024 (dropout 0.2) →
``Linear(2048 → characters + blank)``. WER is corpus-level over words, ``uer`` s3prl's unit error rate
over the greedy output's characters and ``|`` (``cer``: the usual CER over the decoded text); with
``decode.lm`` set, evaluation also beam-searches with the KenLM model (``wer_lm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from superb.stores.base import FeatureStore
from superb.train.config import Config
from superb.train.data import Item
from superb.train.tasks.asr.text import VOCAB, cer, decode, encode, uer, wer
from superb.train.tasks.ctc import CtcTask, greedy
from superb.train.tasks.scoring import write_role_arks
from superb.train.tasks.utterance import Prepared, check_corpus, splits_by_role


class AsrPrediction(NamedTuple):
    text: str  # greedy decoding, as words
    lm_text: str | None  # beam search with the KenLM model, as words (None: no LM)
    units: tuple[int, ...]  # greedy token ids, repeats collapsed and blanks dropped: what s3prl's UER scores


@dataclass(frozen=True)
class SpeechRecognition(CtcTask):
    name: str = "asr"
    corpus: str = "librispeech"
    heads: tuple[str, ...] = ("characters",)
    metric: str = "wer"
    higher_is_better: bool = False
    description: str = "speech recognition, LibriSpeech characters, CTC, WER (+ KenLM beam search)"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        items, ids = {}, {}
        for role, pairs in splits_by_role(store, config.data).items():
            out = []
            for split, i in pairs:
                record = store.split(split).records[i]
                out.append(Item(split, i, tuple(encode(record["meta"].get("transcript", "")))))
            items[role] = out
            ids[role] = [str(store.split(s).ids[i]) for s, i in pairs]
        prepared = Prepared(items=items, classes=[list(VOCAB)], heads=self.heads, ids=ids)
        prepared.extras["specaug"] = config.specaug
        if config.decode.lm:
            from superb.train.tasks.asr.decoding import BeamSearch

            d = config.decode
            prepared.extras["beam"] = BeamSearch(d.lm, lexicon=d.lexicon, beam=d.beam, lm_weight=d.lm_weight,
                                                 word_score=d.word_score)
        return prepared

    def predict(self, logits: torch.Tensor, lengths: torch.Tensor, prepared: Prepared) -> list[AsrPrediction]:
        units = greedy(logits, lengths)
        beam = prepared.extras.get("beam")
        with_lm = beam(logits.float().cpu(), lengths.cpu()) if beam is not None else [None] * len(units)
        return [AsrPrediction(decode(ids), lm, ids) for ids, lm in zip(units, with_lm, strict=True)]

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        refs = [decode(ids) for ids in targets]
        if not any(refs):
            return {"wer": float("nan")}
        texts = [p.text for p in predictions]
        out = {"wer": wer(texts, refs), "uer": uer([p.units for p in predictions], targets), "cer": cer(texts, refs)}
        if predictions and predictions[0].lm_text is not None:
            out["wer_lm"] = wer([p.lm_text for p in predictions], refs)
        return out

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """``ROLE-hyp.ark`` (greedy), ``ROLE-hyp-lm.ark`` (beam search, if any) and ``ROLE-ref.ark``."""
        arks = {"hyp": [p.text.split() for p in predictions], "ref": [decode(ids).split() for ids in targets]}
        if predictions and predictions[0].lm_text is not None:
            arks["hyp-lm"] = [p.lm_text.split() for p in predictions]
        write_role_arks(expdir, role, prepared.ids[role], positions, arks)


TASK = SpeechRecognition()
