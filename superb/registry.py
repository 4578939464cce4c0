"""Name-keyed registries for upstreams, corpora and store formats.

Every built-in is registered here, explicitly and lazily: an entry is a ``"module:attr"`` string that is
imported only when the name is looked up, so ``import superb`` and ``superb upstreams`` never import
torch. Third-party upstreams join through the ``superb.upstreams`` entry-point group (merged in on the
first lookup) or are named directly as ``module:attr``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from superb.errors import ConfigError, unknown_name


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attribute"
    summary: str


def load_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{target!r} is not of the form 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} (from {target!r}): {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r} (from {target!r})") from None


class Registry:
    """Names → lazily imported objects, with duplicate checks and suggestions for typos."""

    def __init__(self, kind: str, entry_point_group: str | None = None, allow_module_attr: bool = False):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._group = entry_point_group
        self._entry_points_loaded = entry_point_group is None
        self._allow_module_attr = allow_module_attr

    def add(self, name: str, target: str, summary: str, aliases: tuple[str, ...] = ()) -> None:
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ConfigError(f"{self.kind} {key!r} is registered twice")
        self._entries[name] = Entry(name, target, summary)
        for alias in aliases:
            self._aliases[alias] = name

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self._group):
            if ep.name not in self._entries:
                self.add(ep.name, ep.value, f"plug-in from {ep.dist.name if ep.dist else 'an entry point'}")

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases; raises with suggestions if unknown."""
        self._load_entry_points()
        if name in self._entries:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise unknown_name(self.kind, name, list(self._entries) + list(self._aliases))

    def get(self, name: str) -> Any:
        """The registered object; ``module:attr`` names are imported directly where allowed."""
        if self._allow_module_attr and ":" in name:
            return load_target(name)
        return load_target(self._entries[self.canonical(name)].target)

    def entries(self) -> list[Entry]:
        self._load_entry_points()
        return sorted(self._entries.values(), key=lambda e: e.name)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries or name in self._aliases


UPSTREAMS = Registry("upstream", entry_point_group="superb.upstreams", allow_module_attr=True)
UPSTREAMS.add("fbank", "superb.extract.upstreams.kaldi:Fbank",
              "Kaldi 80 log-mel filterbank + deltas (240 dims), per-utterance CMVN, 100 frames/s")
UPSTREAMS.add("mfcc", "superb.extract.upstreams.kaldi:Mfcc",
              "Kaldi 13 MFCC + deltas (39 dims), per-utterance CMVN, 100 frames/s")
UPSTREAMS.add("stft_mag", "superb.extract.upstreams.kaldi:StftMagnitude",
              "linear STFT magnitude (n_fft/hop_length from -g), for separation")
UPSTREAMS.add("wav2vec2", "superb.extract.upstreams.ssl:Wav2Vec2",
              "wav2vec 2.0 (torchaudio model; fairseq .pt, Hugging Face folder or torchaudio state dict)")
UPSTREAMS.add("hubert", "superb.extract.upstreams.ssl:Hubert",
              "HuBERT (torchaudio model; fairseq .pt, Hugging Face folder or torchaudio state dict)")
UPSTREAMS.add("wavlm", "superb.extract.upstreams.ssl:WavLM",
              "WavLM (torchaudio model; microsoft/unilm .pt, Hugging Face folder or torchaudio state dict)")

CORPORA = Registry("corpus")
CORPORA.add("librispeech", "superb.extract.corpora.librispeech:LibriSpeech",
            "LibriSpeech: SPLIT/SPK/CHAP/SPK-CHAP-UTT.flac with SPK-CHAP.trans.txt")
CORPORA.add("speech_commands", "superb.extract.corpora.speech_commands:SpeechCommands",
            "Speech Commands v0.01/v0.02: 12 classes, seeded _silence_ clips, separate test set")
CORPORA.add("voxceleb1", "superb.extract.corpora.voxceleb1:VoxCeleb1",
            "VoxCeleb1: {dev,test}/wav/idNNNNN/VIDEO/NNNNN.wav with iden_split.txt (and veri_test.txt)")
CORPORA.add("fluent_commands", "superb.extract.corpora.fluent_commands:FluentCommands",
            "Fluent Speech Commands: wavs/speakers/SPK/ID.wav with data/{train,valid,test}_data.csv")
CORPORA.add("iemocap", "superb.extract.corpora.iemocap:Iemocap",
            "IEMOCAP: SessionN/sentences/wav with EmoEvaluation labels (neu, hap+exc, ang, sad)")
CORPORA.add("snips", "superb.extract.corpora.snips:Snips",
            "Audio SNIPS (s3prl's slot-filling layout): SPLIT/SPEAKER-snips-SPLIT-N.wav with all.iob.snips.txt")
CORPORA.add("quesst14", "superb.extract.corpora.quesst14:Quesst14",
            "QUESST 2014: Audio/ documents, dev_queries/, eval_queries/ and scoring/ lists (nnenglish, as SUPERB)")
CORPORA.add("sws2013", "superb.extract.corpora.sws2013:Sws2013",
            "SWS 2013: Audio/ documents, dev_queries/ and eval_queries/ (term examples _01 …), scoring_atwv_sws2013/")
CORPORA.add("diarization", "superb.extract.corpora.diarization:Diarization",
            "Libri2Mix-style Kaldi data dirs {train,dev,test}/ with wav.scp, segments, utt2spk, rttm, reco2dur")
CORPORA.add("separation", "superb.extract.corpora.separation:Separation",
            "Libri2Mix 16 kHz min as s3prl's data_prepare.py writes it: wav16k/min/SPLIT/{mix_clean,s1,s2}/wav.scp")
CORPORA.add("audio_snips", "superb.extract.corpora.audio_snips:AudioSnips",
            "Audio SNIPS for intents (s3prl's audio_slu): audio_SPEAKER/snips/U_ID.mp3, data/nlu_annotation/SPLIT")
CORPORA.add("atis", "superb.extract.corpora.atis:Atis",
            "spoken ATIS (s3prl's atis folder): {train,dev,test}/ID.wav with nlu_iob/iob.SPLIT")
CORPORA.add("mosei", "superb.extract.corpora.mosei:Mosei",
            "CMU-MOSEI: Full/WAV_16000/VIDEO.wav cut by s3prl's CMU_MOSEI_Labels.csv segments (as its pydub script)")
CORPORA.add("generic", "superb.extract.corpora.generic:Generic",
            "any folder of audio, or a TSV of id<TAB>path[<TAB>label]")

def corpus_reader(identity: dict[str, Any]) -> Any:
    """The reader a store was extracted with, from the identity it records (``attrs["corpus"]``: name, root,
    options), e.g. to find its ground truth again."""
    from pathlib import Path

    return CORPORA.get(identity["name"])(Path(identity["root"]), **identity.get("options", {}))


TASKS = Registry("task")
TASKS.add("ks", "superb.train.tasks.ks:TASK", "keyword spotting, Speech Commands (12 classes), accuracy",
          aliases=("speech_commands",))
TASKS.add("ic", "superb.train.tasks.ic:TASK", "intent classification, Fluent Speech Commands, accuracy",
          aliases=("fluent_commands",))
TASKS.add("sid", "superb.train.tasks.sid:TASK", "speaker identification, VoxCeleb1, accuracy",
          aliases=("voxceleb1",))
TASKS.add("er", "superb.train.tasks.er:TASK", "emotion recognition, IEMOCAP 4 classes, 5 folds, accuracy",
          aliases=("emotion",))
TASKS.add("pr", "superb.train.tasks.pr.task:TASK", "phoneme recognition, LibriSpeech phones (CMUdict), CTC, PER",
          aliases=("libriphone",))
TASKS.add("asr", "superb.train.tasks.asr.task:TASK", "speech recognition, LibriSpeech characters, CTC, WER "
          "(+ KenLM beam search)")
TASKS.add("sf", "superb.train.tasks.sf.task:TASK", "slot filling, Audio SNIPS, CTC, slot-type F1 / slot-value CER")
TASKS.add("asv", "superb.train.tasks.asv.task:TASK", "speaker verification, VoxCeleb1 trials, EER / minDCF",
          aliases=("sv_voxceleb1",))
TASKS.add("sd", "superb.train.tasks.sd.task:TASK", "speaker diarization, Libri2Mix Kaldi dirs, DER",
          aliases=("diarization",))
TASKS.add("phone_linear", "superb.train.tasks.phone.task:PHONE_LINEAR",
          "phone classification, CPC LibriSpeech frame labels (--labels), linear, frame accuracy")
TASKS.add("phone_linear_concat", "superb.train.tasks.phone.task:PHONE_LINEAR_CONCAT",
          "phone classification, CPC LibriSpeech frame labels (--labels), linear on 9 frames, frame accuracy")
TASKS.add("phone_1hidden", "superb.train.tasks.phone.task:PHONE_1HIDDEN",
          "phone classification, CPC LibriSpeech frame labels (--labels), 1 hidden layer, frame accuracy")
TASKS.add("separation_stft", "superb.train.tasks.separation.task:TASK",
          "source separation, Libri2Mix (s3prl's folders), BLSTM mask on the STFT, SI-SDRi / STOI / PESQ",
          aliases=("separation",))
TASKS.add("audio_snips", "superb.train.tasks.intent:AUDIO_SNIPS",
          "intent classification, Audio SNIPS (Polly voices per split), transformer + SAP, accuracy")
TASKS.add("atis", "superb.train.tasks.intent:ATIS", "intent classification, spoken ATIS, transformer + SAP, accuracy")
TASKS.add("mosei", "superb.train.tasks.mosei:TASK",
          "sentiment / emotion, CMU-MOSEI (2/3/6/7 classes: data.num_class), mean-pool + linear, accuracy, macro F1")
TASKS.add("sws2013", "superb.train.tasks.sws2013.task:TASK",
          "trainable QbE: SWS 2013 dev pairs, attention-pooled window embeddings, tested on QUESST 2014, MTWV")
TASKS.add("example", "superb.train.tasks.example:TASK", "plumbing check: random labels on any corpus store")

#: evaluations without training that ``superb bench`` runs on a store: ``corpus``, ``run(store, out, device)``
EVALUATIONS = Registry("evaluation")
EVALUATIONS.add("qbe", "superb.train.tasks.qbe.bench:QBE",
                "query-by-example, QUESST 2014, DTW per stored layer, best dev layer scored on eval (superb qbe)")

STORE_FORMATS = Registry("store format")
STORE_FORMATS.add("zarr", "superb.stores.zarr_store:ZarrFormat", "Zarr v3 group, sharded (default)")
STORE_FORMATS.add("hdf5", "superb.stores.hdf5_store:Hdf5Format", "one HDF5 file, published once complete")
