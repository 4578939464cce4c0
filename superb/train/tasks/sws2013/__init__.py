"""sws2013: trainable query-by-example spoken term detection (s3prl's sws2013 downstream)."""
