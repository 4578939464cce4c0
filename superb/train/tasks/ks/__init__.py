"""KS (s3prl: speech_commands): 12 classes — 10 words, ``_unknown_``, ``_silence_`` — accuracy."""

from superb.extract.corpora.speech_commands import CLASSES
from superb.train.tasks.utterance import UtteranceTask, fixed_classes, splits_by_role

TASK = UtteranceTask(
    name="ks",
    corpus="speech_commands",
    heads=("label",),
    assign=splits_by_role,
    classes=fixed_classes(list(CLASSES)),
    description="keyword spotting, Speech Commands v1.0 (12 classes), accuracy",
    s3prl_balanced_dev=True,
)
