"""Errors that end a run with one clear line and exit code 2 (shared by sinks, recorder and worker)."""


class OutputError(Exception):
    """An output file cannot be opened or written."""
