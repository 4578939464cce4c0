"""SD (s3prl: diarization): speaker diarization on Libri2Mix-style Kaldi data, scored by DER."""
