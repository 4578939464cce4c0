"""Source separation as s3prl's ``separation_stft`` (SUPERB-SG): a mask per speaker on the mixture's STFT.

The store holds the upstream's features of each mixture; the two sources and the mixture itself are read
from the corpus as batches are built (``batch_signals``), and their STFTs are taken on the training device,
so the store stays the only upstream run. The STFT hop is the upstream's frame hop (s3prl ties them); the
features, ``round``-ish ``n / hop`` frames, are cut or zero-padded to the STFT's ``1 + n // hop`` (s3prl's
``match_length``; more than 4 frames apart is an error).

- Head (s3prl's ``SepRNN``): 3 bidirectional LSTM layers of 896 with dropout 0.5 after each, then per speaker
  ``Linear(1792 → 257)`` and ReLU: a non-negative, unbounded magnitude mask.
- Loss (s3prl's ``MSELoss``, uPIT): per mixture and speaker order, ``Σ (mask·|Y| − T)²`` over frames and bins
  of both speakers, divided by the mixture's frames; the better order counts; the batch's sum / (2·B). The
  target ``T`` is ``|S|·max(0, cos(θY − θS))`` (``NPSM``, default), ``|S|·cos(θY − θS)`` (``PSM``) or ``|S|``
  (``AM``).
- Estimates: mask × complex mixture STFT, inverse STFT to the mixture's length, s3prl's end-impulse
  suppression; scored per mixture (``scoring``): SI-SDRi on dev and test, STOI and PESQ on test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superb.errors import ConfigError, StoreError
from superb.extract import audio
from superb.stores.base import FeatureStore
from superb.train.config import Config, ModelConfig, SeparationConfig
from superb.train.data import Item
from superb.train.masks import valid_frames
from superb.train.tasks.lstm import run_lstm
from superb.train.tasks.separation import scoring
from superb.train.tasks.separation.signals import batch_stft, istft, stft_frames, suppress_end_impulse
from superb.train.tasks.utterance import Prepared, check_corpus, splits_by_role

SPEAKERS = 2  # Libri2Mix
MAX_FRAME_GAP = 5  # s3prl's match_length asserts the features are fewer than this many frames off the STFT's
ACTIVATIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def fit_frames(x: torch.Tensor, lengths: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """s3prl's ``match_length`` on a padded batch: utterance ``b``'s features cut or zero-padded to
    ``frames[b]``; the result has ``max(frames)`` frames, zeros past each utterance's own."""
    total = max(int(frames.max()), 1)
    if x.shape[1] < total:
        x = F.pad(x, (0, 0, 0, total - x.shape[1]))
    keep = valid_frames(torch.minimum(lengths.to(frames.device), frames), total, x.device)
    return x[:, :total] * keep[..., None].to(x.dtype)


class MaskNetwork(nn.Module):
    """s3prl's ``SepRNN``; gives ``(masks (B, speakers, frames, bins), STFT frames (B,))``. ``reads_batch``:
    ``DownstreamModel`` passes the batch, whose mixture lengths fix the STFT frames."""

    reads_batch = True

    def __init__(self, dim: int, model: ModelConfig, separation: SeparationConfig, hop: int):
        super().__init__()
        hidden = model.rnn_dim
        self.rnns = nn.ModuleList(nn.LSTM(dim if i == 0 else 2 * hidden, hidden, batch_first=True, bidirectional=True)
                                  for i in range(model.rnn_layers))
        self.dropout = nn.Dropout(model.rnn_dropout)  # nn.LSTM's between layers, and s3prl's after the last
        self.masks = nn.ModuleList(nn.Linear(2 * hidden, separation.n_fft // 2 + 1) for _ in range(SPEAKERS))
        self.activation = ACTIVATIONS[separation.mask_activation]
        self.separation, self.hop = separation, hop

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        frames = stft_frames(batch["sep_samples"].to(x.device), self.separation, self.hop)
        x = fit_frames(x, lengths, frames)
        for rnn in self.rnns:
            x = self.dropout(run_lstm(rnn, x, frames))
        return torch.stack([self.activation(linear(x)) for linear in self.masks], dim=1), frames


def _target(mixture: torch.Tensor, sources: torch.Tensor, mask_type: str) -> torch.Tensor:
    """What ``mask · |Y|`` should be: ``(B, S, T, F)`` from the complex mixture and sources (s3prl's MSELoss)."""
    magnitude = sources.abs()
    if mask_type == "AM":
        return magnitude
    cos = torch.cos(torch.angle(mixture)[:, None] - torch.angle(sources))
    return magnitude * (F.relu(cos) if mask_type == "NPSM" else cos)


@dataclass(frozen=True)
class SourceSeparation:
    name: str = "separation_stft"
    corpus: str = "separation"
    heads: tuple[str, ...] = ("sources",)
    metric: str = "si_sdri"
    higher_is_better: bool = True
    description: str = "source separation, Libri2Mix, BLSTM mask on the STFT, uPIT MSE, SI-SDRi / STOI / PESQ"

    def prepare(self, store: FeatureStore, config: Config, seed: int) -> Prepared:
        check_corpus(store, self.name, self.corpus)
        rate = float(store.attrs["frame_rate"])
        hop = upstream_hop(rate, store)
        sep = config.separation
        if sep.hop_length is not None and sep.hop_length != hop:
            raise ConfigError(f"config separation.hop_length {sep.hop_length} differs from the upstream's frame hop "
                              f"{hop} samples ({rate:g} frames/s in {store.path}); the mask's STFT must share the "
                              "features' frames: leave it null")
        if not 1 <= sep.win_length <= sep.n_fft:
            raise ConfigError(f"config separation.win_length {sep.win_length} must lie in [1, n_fft {sep.n_fft}]")
        items: dict[str, list[Item]] = {}
        ids: dict[str, list[str]] = {}
        records: dict[str, list[dict]] = {}
        for role, pairs in splits_by_role(store, config.data).items():
            items[role], ids[role], records[role] = [], [], []
            for split, i in pairs:
                view = store.split(split)
                record = view.records[i]
                features = int(view.offsets[i + 1] - view.offsets[i])
                frames = int(stft_frames(int(record["num_samples"]), sep, hop))
                if abs(features - frames) >= MAX_FRAME_GAP:
                    raise StoreError(f"{store.path}: {split}/{record['id']} has {features} feature frames, its STFT "
                                     f"{frames} (n_fft {sep.n_fft}, hop {hop}); s3prl allows fewer than "
                                     f"{MAX_FRAME_GAP} apart")
                sources = (record.get("meta") or {}).get("sources")
                if not sources or len(sources) != SPEAKERS:
                    raise StoreError(f"{store.path}: {split}/{record['id']} lists no {SPEAKERS} source files "
                                     "(extract it with --corpus separation)")
                items[role].append(Item(split, i, ()))
                ids[role].append(str(record["id"]))
                records[role].append(record)
        notes = {"stft_hop": hop, "n_fft": sep.n_fft, "pad_mode": sep.pad_mode, "permutation": sep.permutation,
                 **{f"mixtures_{role}": len(v) for role, v in items.items()}}
        return Prepared(items=items, classes=[[]], heads=self.heads, notes=notes, ids=ids,
                        extras={"records": records, "hop": hop, "separation": sep})

    def build_head(self, dim: int, model: ModelConfig, prepared: Prepared) -> MaskNetwork:
        return MaskNetwork(dim, model, prepared.extras["separation"], prepared.extras["hop"])

    # -- data -------------------------------------------------------------------------------------
    def batch_signals(self, prepared: Prepared, role: str, positions: list[int]) -> dict[str, torch.Tensor]:
        """The mixtures ``sep_mix (B, N)``, sources ``sep_sources (B, 2, N)`` (16 kHz, zero-padded) and their
        lengths ``sep_samples (B,)``, read from the corpus files the store's manifest names; ``sep_stft``: the
        STFT settings and hop, for the loss."""
        records = [prepared.extras["records"][role][k] for k in positions]
        samples = [int(r["num_samples"]) for r in records]
        mix = torch.zeros(len(records), max(samples + [1]))
        sources = torch.zeros(len(records), SPEAKERS, mix.shape[1])
        for b, (record, n) in enumerate(zip(records, samples, strict=True)):
            mix[b, :n] = torch.from_numpy(audio.read(record["path"], expected=n))
            for s, path in enumerate(record["meta"]["sources"]):
                sources[b, s, :n] = torch.from_numpy(audio.read(path, expected=n))
        return {"sep_mix": mix, "sep_sources": sources, "sep_samples": torch.tensor(samples, dtype=torch.long),
                "sep_stft": (prepared.extras["separation"], prepared.extras["hop"])}

    # -- training ---------------------------------------------------------------------------------
    def loss(self, masks: torch.Tensor, frames: torch.Tensor, batch: dict) -> torch.Tensor:
        """uPIT MSE (s3prl's ``MSELoss``): the better speaker order per mixture, over frames, then batch."""
        sep, hop = batch["sep_stft"]
        mixture = spectra(batch, "sep_mix", sep, hop)
        target = _target(mixture, spectra(batch, "sep_sources", sep, hop), sep.mask_type)
        estimate = masks.float() * mixture.abs()[:, None]
        errors = ((estimate[:, :, None] - target[:, None]) ** 2).sum((-1, -2))  # (B, speaker, source)
        orders = [errors[:, range(SPEAKERS), list(order)].sum(1) for order in itertools.permutations(range(SPEAKERS))]
        best = torch.stack(orders).min(0).values / frames.clamp(min=1)
        return best.sum() / (SPEAKERS * len(best))

    # -- scoring ----------------------------------------------------------------------------------
    def score_batch(self, masks: torch.Tensor, frames: torch.Tensor, batch: dict, prepared: Prepared,
                    role: str) -> list[dict[str, Any]]:
        """Each mixture's estimates (mask × mixture STFT, inverse STFT, end-impulse suppression), scored at once
        so no waveform is kept; STOI and PESQ on test only (s3prl). With ``extras["save_audio"]`` the estimates
        are written there, paired with the references: ``UTT_s1.wav``, ``UTT_s2.wav``."""
        sep, hop = batch["sep_stft"]
        mixture = spectra(batch, "sep_mix", sep, hop)
        save = prepared.extras.get("save_audio")
        scorer = _scorer(prepared, sep)
        out = []
        for b, k in enumerate(batch["index"].tolist()):
            n, t = int(batch["sep_samples"][b]), int(frames[b])
            waves = istft(masks[b, :, :t].float() * mixture[b, :t], sep, hop, n).cpu().numpy()
            if sep.postprocess:
                waves = np.stack([suppress_end_impulse(w) for w in waves])
            scores = scorer.submit(batch["sep_mix"][b, :n].double().cpu().numpy(),
                                   batch["sep_sources"][b, :, :n].double().cpu().numpy(), waves, sep.permutation,
                                   role == "test")
            if save is not None:  # the pairing is needed now: scored here, not on the pool
                scores = scorer.resolve([scores])[0]
                write_estimates(Path(save), prepared.ids[role][k], waves[scores["permutation"]])
            out.append(scores)
        return out

    def collect_scores(self, scores: list, prepared: Prepared) -> list[dict[str, Any]]:
        """The scores ``score_batch`` gave, those still on the scoring pool waited for."""
        return _scorer(prepared, prepared.extras["separation"]).resolve(scores)

    def metrics(self, predictions: list, targets: list, prepared: Prepared, role: str = "dev") -> dict[str, Any]:
        return scoring.summarize(predictions)

    def write_outputs(self, expdir: Path, role: str, positions: list[int], predictions: list, targets: list,
                      prepared: Prepared) -> None:
        """``ROLE_scores.tsv``: each mixture's scores and the estimate paired with s1 and s2."""
        columns = ["si_sdri", "si_sdr", "input_si_sdr", "stoi", "pesq"]
        lines = ["mixture\t" + "\t".join(columns) + "\tpermutation"]
        for k, scores in zip(positions, predictions, strict=True):
            row = {**scores, "si_sdri": scores["si_sdr"] - scores["input_si_sdr"]}
            cells = ["" if row.get(c) is None else f"{row[c]:.4f}" for c in columns]
            lines.append("\t".join([prepared.ids[role][k], *cells, ",".join(map(str, scores["permutation"]))]))
        (expdir / f"{role}_scores.tsv").write_text("\n".join(lines) + "\n")


def _scorer(prepared: Prepared, sep: SeparationConfig) -> scoring.MixtureScorer:
    """The run's scorer (a pool of ``separation.scoring_workers`` processes; null: ``scoring.auto_workers``)."""
    if "scorer" not in prepared.extras:
        workers = scoring.auto_workers() if sep.scoring_workers is None else sep.scoring_workers
        prepared.extras["scorer"] = scoring.MixtureScorer(workers)
    return prepared.extras["scorer"]


def spectra(batch: dict, key: str, sep: SeparationConfig, hop: int) -> torch.Tensor:
    """The complex STFT of ``batch[key]`` (each utterance alone), computed once per batch."""
    cached = batch.setdefault("_sep_spectra", {})
    if key not in cached:
        cached[key] = batch_stft(batch[key], batch["sep_samples"], sep, hop)
    return cached[key]


def upstream_hop(frame_rate: float, store: Any) -> int:
    """Samples per feature frame at 16 kHz; a rate that is not a whole number of samples has no STFT hop."""
    hop = audio.SAMPLE_RATE / frame_rate
    if abs(hop - round(hop)) > 1e-6:
        raise StoreError(f"{store.path}: {frame_rate:g} frames/s is not a whole number of samples per frame; "
                         "separation needs the STFT hop to equal the upstream's")
    return int(round(hop))


def write_estimates(folder: Path, uid: str, waves: np.ndarray) -> None:
    """``UTT_s1.wav``, ``UTT_s2.wav`` as 32-bit float (estimates may exceed ±1; nothing is clipped)."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    for s, wave in enumerate(waves, start=1):
        soundfile.write(str(folder / f"{uid.replace('/', '_')}_s{s}.wav"), wave.astype(np.float32),
                        audio.SAMPLE_RATE, subtype="FLOAT")


TASK = SourceSeparation()
