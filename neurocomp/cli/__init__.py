"""Stage 7, the command line; ``neurocomp.cli.main`` builds the parser and runs each command."""

from .main import main

__all__ = ["main"]
