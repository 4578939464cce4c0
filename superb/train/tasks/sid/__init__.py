"""SID (s3prl: voxceleb1): speaker identification over iden_split.txt's speakers, accuracy."""

from superb.train.tasks.utterance import UtteranceTask, sorted_classes, splits_by_role

TASK = UtteranceTask(
    name="sid",
    corpus="voxceleb1",
    heads=("label",),
    assign=splits_by_role,
    classes=sorted_classes,
    description="speaker identification, VoxCeleb1 (1,251 speakers), accuracy",
)
