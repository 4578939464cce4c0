"""Intent classification on spoken utterances with s3prl's transformer + SAP head (``superb.train.tasks.sap``).

- ``audio_snips``: Audio SNIPS, one Polly voice per folder. Train = the ``train`` annotations spoken by
  ``data.train_speakers``, dev = ``valid`` by the same voices, test = ``test`` by ``data.test_speakers`` (s3prl's
  defaults: Aditi, Amy / Aditi, so the test voice is a training voice), each voice in turn, in the annotation
  file's order. Classes: the train intents in first-seen order (s3prl's ``Counter``); a dev/test intent outside
  them is an error (s3prl's ``KeyError``).
- ``atis``: spoken ATIS's train/dev/test folders. s3prl gives every intent string of train, dev *and* test an
  output (test-only intents included, never trained); the default here builds the classes from train and
  scores a dev/test utterance whose intent train never has as a miss, left out of the loss
  (``data.intent_classes: s3prl`` restores s3prl's classes). ``results.json`` names the rule
  (``notes.classes_from``) and counts such utterances (``notes.unseen_labels``).
"""

from __future__ import annotations

from superb.errors import ConfigError
from superb.stores.base import FeatureStore
from superb.train.config import Config, DataConfig
from superb.train.tasks.sap import transformer_sap_head
from superb.train.tasks.utterance import Roles, UtteranceTask, first_seen_classes, splits_by_role


def snips_roles(store: FeatureStore, data: DataConfig) -> Roles:
    """Each role's utterances: its split's annotations spoken by its voices, voice after voice."""
    roles: Roles = {}
    plan = (("train", data.train, "train_speakers", data.train_speakers),
            ("dev", data.dev, "train_speakers", data.train_speakers),
            ("test", data.test, "test_speakers", data.test_speakers))
    for role, split, key, speakers in plan:
        by_speaker: dict[str, list[int]] = {}
        for i, record in enumerate(store.split(split).records):
            by_speaker.setdefault(str(record["meta"]["speaker"]), []).append(i)
        pairs = []
        for speaker in speakers:
            if speaker not in by_speaker:
                raise ConfigError(f"config data.{key}: speaker {speaker!r} is not in split {split!r} of {store.path} "
                                  f"(it holds {', '.join(sorted(by_speaker)) or 'none'}); extract the voice with "
                                  f"-c speakers=…,{speaker}")
            pairs.extend((split, i) for i in by_speaker[speaker])
        roles[role] = pairs
    return roles


def describe(config: Config) -> dict[str, str]:
    """The head's one difference from s3prl's, which changes nothing at s3prl's batch of 1."""
    return {"attention_padding": "masked (s3prl's mask has no effect; they agree at its batch size 1)"}


def atis_class_roles(config: Config) -> tuple[str, ...]:
    return ("train", "dev", "test") if config.data.intent_classes == "s3prl" else ("train",)


AUDIO_SNIPS = UtteranceTask(
    name="audio_snips",
    corpus="audio_snips",
    heads=("intent",),
    assign=snips_roles,
    classes=first_seen_classes,
    description="intent classification, Audio SNIPS, transformer + SAP, accuracy",
    head=transformer_sap_head,
    describe=describe,
)

ATIS = UtteranceTask(
    name="atis",
    corpus="atis",
    heads=("intent",),
    assign=splits_by_role,
    classes=first_seen_classes,
    description="intent classification, spoken ATIS, transformer + SAP, accuracy",
    head=transformer_sap_head,
    describe=describe,
    class_roles=atis_class_roles,
    unseen="wrong",
)
