"""SF (s3prl: ctc + snips.yaml): slot filling on Audio SNIPS, CTC over characters + slot tags."""
