"""Audio, corpus readers, upstream models and the extraction job that fills a feature store."""
