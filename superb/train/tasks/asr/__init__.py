"""ASR (s3prl: asr): character CTC over 2 × BiLSTM 1024, greedy and KenLM beam-search decoding, WER."""
