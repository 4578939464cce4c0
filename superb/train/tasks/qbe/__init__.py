"""QbE (s3prl: quesst14_dtw): query-by-example spoken term detection by subsequence DTW, no training."""
