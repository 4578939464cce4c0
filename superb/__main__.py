"""``python -m superb`` (and ``torchrun -m superb``) runs the CLI."""

from superb.cli import main

main()
