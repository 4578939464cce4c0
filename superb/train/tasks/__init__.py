"""Downstream tasks, one folder each, registered in ``superb.registry.TASKS``."""
