"""SD as s3prl's ``diarization``: frame-level two-speaker activity with an LSTM, PIT BCE, DER.

Labels come from each recording's segments at the store's frame rate (frame ``k`` covers
``[k, k+1) / rate``; a turn ``[s, e)`` marks frames ``rint(s·rate)`` to ``rint(e·rate)``, as s3prl/EEND).
Training reads fixed 2,000-frame chunks (s3prl's ``chunk_size``); dev and test run whole recordings. Head:
1-layer LSTM 512 → Linear(2). Loss: BCE under the better of the two speaker orders (PIT).

Scoring: the activity is turned into turns at every threshold × median-filter setting of s3prl's
``score.sh`` ({0.3 … 0.7} × {1, 11}), written as RTTM, and scored with DER (collar 0, overlap scored;
``superb.train.tasks.sd.scoring``). The checkpoint is picked on dev DER at threshold 0.5 without filtering;
``runner.protocol: dev`` (default) then picks the setting on dev, ``s3prl`` picks it on test as s3prl does.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError
from superb.stores.base import FeatureStore
from superb.train.config import Config, ModelConfig
from superb.train.data import Item
from superb.train.masks import valid_frames
from superb.train.tasks.lstm import run_lstm
from superb.train.tasks.sd.scoring import activity_to_segments, der, write_rttm
from superb.train.tasks.utterance import Prepared, check_corpus, splits_by_role

SPEAKERS = 2  # Libri2Mix
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MEDIANS = (1, 11)
DEFAULT_SETTING = (0.5, 1)  # what the checkpoint is selected with during training


def setting_name(threshold: float, median: int) -> str:
    return f"th{threshold:.1f}_med{median}"


class DiarizationHead(nn.Module):
    def __init__(self, dim: int, model: ModelConfig):
        super().__init__()
        self.lstm = nn.LSTM(dim, model.rnn_dim, num_layers=model.rnn_layers, batch_first=True)
        self.output = nn.Linear(model.rnn_dim, SPEAKERS)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D)`` → speaker logits ``(B, T, 2)``; padding never reaches the LSTM."""
        return self.output(run_lstm(self.lstm, x, lengths))


def frame_labels(segments: list, speakers: list[str], frames: int, rate: float) -> np.ndarray:
    """``(frames, 2)`` 0/1 activity of the recording's speakers (sorted ids; a missing second speaker is 0)."""
    column = {s: k for k, s in enumerate(speakers)}
    labels = np.zeros((frames, SPEAKERS), dtype=np.int8)
    for start, end, speaker in segments:
        first, last = int(np.rint(start * rate)), int(np.rint(end * rate))
        labels[max(first, 0) : min(last, frames), column[speaker]] = 1
    return labels


@dataclass(frozen=True)
class SpeakerDiarization:
    name: str = "sd"
    corpus: str = "diarization"
    heads: tuple[str, ...] = ("activity",)
    metric: str = "der"
    higher_is_better: bool = False
    s3prl_selects_on_test: bool = True  # the post-processing setting, not the checkpoint
    description: str = "speaker diarization, Libri2Mix Kaldi dirs, LSTM + PIT, DER"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        rate = float(store.attrs["frame_rate"])
        chunk = config.data.chunk_frames
        items: dict[str, list[Item]] = {}
        ids: dict[str, list[str]] = {}
        reference: dict[str, dict[str, list]] = {}
        for role, pairs in splits_by_role(store, config.data).items():
            items[role], ids[role], reference[role] = [], [], {}
            for split, i in pairs:
                view = store.split(split)
                record, frames = view.records[i], int(view.offsets[i + 1] - view.offsets[i])
                speakers = sorted(record["meta"]["speakers"])
                if len(speakers) > SPEAKERS:
                    raise ConfigError(f"{store.path}: recording {record['id']!r} has {len(speakers)} speakers; "
                                      f"task 'sd' models {SPEAKERS} (Libri2Mix)")
                labels = frame_labels(record["meta"]["segments"], speakers, frames, rate)
                if role == "train":  # s3prl's fixed chunks; the last one shorter
                    for start in range(0, frames, chunk):
                        window = labels[start : start + chunk]
                        items[role].append(Item(split, i, window.reshape(-1), start, len(window)))
                        ids[role].append(f"{record['id']}@{start}")
                else:
                    items[role].append(Item(split, i, labels.reshape(-1)))
                    ids[role].append(str(record["id"]))
                    reference[role][str(record["id"])] = [tuple(s) for s in record["meta"]["segments"]]
        notes = {"frame_rate": rate, "chunk_frames": chunk, "train_chunks": len(items.get("train", []))}
        return Prepared(items=items, classes=[[str(k) for k in range(SPEAKERS)]], heads=self.heads, notes=notes,
                        ids=ids, extras={"reference": reference, "frame_shift": 1.0 / rate})

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> DiarizationHead:
        return DiarizationHead(dim, model)

    def loss(self, logits: torch.Tensor, lengths: torch.Tensor, batch: dict) -> torch.Tensor:
        """PIT BCE: per recording, the mean BCE over its frames under the better speaker order."""
        labels = _labels(batch, logits.shape[1]).to(logits.dtype)
        mask = valid_frames(lengths, logits.shape[1], logits.device).to(logits.dtype)
        per_order = []
        for order in itertools.permutations(range(SPEAKERS)):
            bce = F.binary_cross_entropy_with_logits(logits.float(), labels[..., list(order)].float(),
                                                     reduction="none").mean(-1)
            per_order.append((bce * mask).sum(1) / lengths.clamp(min=1))
        return torch.stack(per_order).min(0).values.mean()

    def predict(self, logits: torch.Tensor, lengths: torch.Tensor, prepared: Prepared) -> list[np.ndarray]:
        probs = torch.sigmoid(logits.float()).cpu().numpy()
        return [probs[b, : int(n)] for b, n in enumerate(lengths.tolist())]

    def _turns(self, predictions: list, prepared: Prepared, role: str, threshold: float, median: int) -> dict:
        """``{recording: turns}`` of one post-processing setting (predictions in item order)."""
        shift = prepared.extras["frame_shift"]
        return {rec: activity_to_segments(p, shift, threshold, median)
                for rec, p in zip(prepared.ids[role], predictions, strict=True)}

    def _all_turns(self, predictions: list, prepared: Prepared, role: str) -> dict[str, dict]:
        """``{setting: {recording: turns}}`` for s3prl's 10 threshold × median settings."""
        return {setting_name(t, m): self._turns(predictions, prepared, role, t, m)
                for t in THRESHOLDS for m in MEDIANS}

    @staticmethod
    def _summary(out: dict[str, float]) -> dict[str, float]:
        """DER and its three parts as fractions of the reference speech."""
        if not out.get("total"):
            return {"der": out["der"]}
        parts = {"miss_rate": "missed", "false_alarm_rate": "false_alarm", "speaker_error_rate": "confusion"}
        return {"der": out["der"], **{name: out[part] / out["total"] for name, part in parts.items()}}

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        """DER at threshold 0.5, no median filter (the checkpoint selection metric), with its parts."""
        reference = prepared.extras["reference"].get(role)
        if not reference:
            return {"der": float("nan")}
        return self._summary(der(reference, self._turns(predictions, prepared, role, *DEFAULT_SETTING)))

    def final_metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict:
        """DER of every threshold × median setting (``settings``), the default one's as ``der`` with its
        parts. The turns are kept in ``extras["turns"]`` for ``write_outputs`` to write as RTTM."""
        reference = prepared.extras["reference"].get(role)
        if not reference:
            return {"der": float("nan")}
        turns = self._all_turns(predictions, prepared, role)
        prepared.extras.setdefault("turns", {})[role] = turns
        scored = {name: der(reference, hypothesis) for name, hypothesis in turns.items()}
        return {**self._summary(scored[setting_name(*DEFAULT_SETTING)]),
                "settings": {name: out["der"] for name, out in scored.items()}}

    def select_setting(self, scores: dict[str, dict], protocol: str) -> tuple[dict[str, dict], dict[str, Any]]:
        """Pick the post-processing on dev (``protocol: dev``) or on test (``s3prl``); report DER there.

        Returns the roles' metrics (plain numbers, as results.json wants) and the extra results fields:
        ``setting`` (name, the role it was chosen on) and every setting's DER per role (``settings``)."""
        chosen_on = "test" if protocol == "s3prl" else "dev"
        table = {role: metrics.pop("settings") for role, metrics in scores.items() if "settings" in metrics}
        pool = table.get(chosen_on)
        if not pool:
            return scores, {"settings": table} if table else {}
        best = min(pool, key=lambda name: (pool[name], name))
        for role, settings in table.items():
            scores[role]["der"] = settings[best]
        return scores, {"setting": {"name": best, "chosen_on": chosen_on}, "settings": table}

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """``ROLE_activity/REC.npy`` (frame posteriors) and ``rttm/ROLE/SETTING.rttm`` for every setting."""
        if role not in prepared.extras["reference"]:
            return
        names = [prepared.ids[role][k] for k in positions]
        activity = expdir / f"{role}_activity"
        activity.mkdir(exist_ok=True)
        for name, probs in zip(names, predictions, strict=True):
            np.save(activity / f"{name.replace('/', '_')}.npy", probs)
        (activity / "frame_shift.json").write_text(json.dumps({"seconds": prepared.extras["frame_shift"]}))
        rttm = expdir / "rttm" / role
        rttm.mkdir(parents=True, exist_ok=True)
        turns = prepared.extras.get("turns", {}).get(role) or self._all_turns(predictions, prepared, role)
        for name, hypothesis in turns.items():
            write_rttm(rttm / f"{name}.rttm", hypothesis)


def _labels(batch: dict, frames: int) -> torch.Tensor:
    """The padded flat targets back to ``(B, T, 2)``."""
    targets = batch["targets"]
    if targets.shape[1] < frames * SPEAKERS:
        targets = F.pad(targets, (0, frames * SPEAKERS - targets.shape[1]))
    return targets[:, : frames * SPEAKERS].reshape(targets.shape[0], frames, SPEAKERS)


TASK = SpeakerDiarization()
