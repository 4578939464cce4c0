"""ASR: LibriSpeech characters with CTC over s3prl's RNN head, greedy and KenLM beam-search decoding, WER.

Head (s3prl's ``asr`` config): SpecAugment on the featurizer output while training (time and frequency
masks; s3prl also warps time, which we do not) → ``Linear(D → 1024)`` → 2 × bidirectional LSTM 1024
(dropout 0.2) → ``Linear(2048 → characters + blank)``. WER is corpus-level over words; with
``decode.lm`` set, evaluation also beam-searches with the KenLM model (``wer_lm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from superb.stores.base import FeatureStore
from superb.train.config import Config, ModelConfig, SpecAugConfig
from superb.train.data import Item
from superb.train.tasks.asr.text import VOCAB, cer, decode, encode, wer
from superb.train.tasks.ctc import ctc_loss, greedy
from superb.train.tasks.scoring import write_role_arks
from superb.train.tasks.utterance import Prepared, check_corpus, splits_by_role


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugConfig) -> torch.Tensor:
    """Zero random time spans (within each row's valid frames) and feature bands; ``x`` is ``(B, T, D)``."""
    x = x.clone()
    dim = x.shape[-1]
    for b, n in enumerate(lengths.tolist()):
        for _ in range(cfg.num_time_mask):
            width = int(torch.randint(0, cfg.time_mask_width + 1, ()))
            if 0 < width < n:
                start = int(torch.randint(0, n - width + 1, ()))
                x[b, start : start + width] = 0
        for _ in range(cfg.num_freq_mask):
            width = int(torch.randint(0, cfg.freq_mask_width + 1, ()))
            if 0 < width < dim:
                start = int(torch.randint(0, dim - width + 1, ()))
                x[b, :, start : start + width] = 0
    return x


class RnnCtcHead(nn.Module):
    def __init__(self, dim: int, model: ModelConfig, specaug: SpecAugConfig, vocab: int):
        super().__init__()
        self.specaug = specaug
        self.projector = nn.Linear(dim, model.projector_dim)
        sizes = [model.projector_dim] + [2 * model.rnn_dim] * model.rnn_layers
        self.rnns = nn.ModuleList(nn.LSTM(sizes[i], model.rnn_dim, batch_first=True, bidirectional=True)
                                  for i in range(model.rnn_layers))
        self.dropout = nn.Dropout(model.rnn_dropout)
        self.output = nn.Linear(sizes[-1], vocab)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)`` → logits ``(B, T, vocab)``; padding never reaches the LSTMs (packed)."""
        if self.training and self.specaug.enabled:
            x = spec_augment(x, lengths, self.specaug)
        x = self.projector(x)
        total = x.shape[1]
        for rnn in self.rnns:
            packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
            x, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=total)
            x = self.dropout(x)
        return self.output(x)


@dataclass(frozen=True)
class SpeechRecognition:
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

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> RnnCtcHead:
        return RnnCtcHead(dim, model, prepared.extras["specaug"], len(VOCAB))

    def loss(self, logits: torch.Tensor, lengths: torch.Tensor, batch: dict) -> torch.Tensor:
        return ctc_loss(logits, lengths, batch)

    def predict(self, logits: torch.Tensor, lengths: torch.Tensor, prepared: Prepared) -> list[tuple]:
        """Per utterance: (greedy text, beam-search text or None)."""
        texts = [decode(ids) for ids in greedy(logits, lengths)]
        beam = prepared.extras.get("beam")
        with_lm = beam(logits.float().cpu(), lengths.cpu()) if beam is not None else [None] * len(texts)
        return list(zip(texts, with_lm, strict=True))

    def metrics(self, predictions: list, targets: list, prepared: Prepared) -> dict[str, Any]:
        refs = [decode(ids) for ids in targets]
        if not any(refs):
            return {"wer": float("nan")}
        out = {"wer": wer([p[0] for p in predictions], refs), "cer": cer([p[0] for p in predictions], refs)}
        if predictions and predictions[0][1] is not None:
            out["wer_lm"] = wer([p[1] for p in predictions], refs)
        return out

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """``ROLE-hyp.ark`` (greedy), ``ROLE-hyp-lm.ark`` (beam search, if any) and ``ROLE-ref.ark``."""
        arks = {"hyp": [greedy_text.split() for greedy_text, _ in predictions],
                "ref": [decode(ids).split() for ids in targets]}
        if predictions and predictions[0][1] is not None:
            arks["hyp-lm"] = [lm_text.split() for _, lm_text in predictions]
        write_role_arks(expdir, role, prepared.ids[role], positions, arks)


TASK = SpeechRecognition()
