"""IC (s3prl: fluent_commands): action, object and location; an utterance is right when all three are.

Class lists come from the train split in first-seen order, as s3prl builds them.
"""

from superb.train.tasks.utterance import UtteranceTask, first_seen_classes, splits_by_role

TASK = UtteranceTask(
    name="ic",
    corpus="fluent_commands",
    heads=("action", "object", "location"),
    assign=splits_by_role,
    classes=first_seen_classes,
    description="intent classification, Fluent Speech Commands (action, object, location), accuracy",
)
