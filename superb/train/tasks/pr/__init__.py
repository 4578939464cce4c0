"""PR (s3prl: ctc + libriphone.yaml): phoneme recognition with CTC, PER."""
