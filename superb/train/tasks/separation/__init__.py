"""Source separation (s3prl's ``separation_stft``)."""
