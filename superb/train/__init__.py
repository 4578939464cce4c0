"""Training downstream heads from feature stores (or on the fly): config, data, featurizer, trainer, tasks."""
