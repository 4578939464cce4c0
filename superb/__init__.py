"""superb: SUPERB downstream evaluation from cached self-supervised speech features.

Importing this package is cheap (no torch); the heavy parts load when a command needs them.
"""

__version__ = "0.1.0"
