"""Errors a user can fix: the CLI prints their one-line message and exits with code 2."""
from __future__ import annotations

from collections.abc import Callable


class InputError(Exception):
    """Bad user input: a file, a genome, a config or a stimulus that cannot be used as given.

    The message is one line saying what is wrong, where, and how to fix it.
    """


Where = str | Callable[[], str]  # a place in the file, built only when an error names it


class FileContext:
    """Where we are in a file, to build one-line error messages (the genome loader and its
    morphology parser share it, so both write `path: where: what; fix`)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: Where, what: str, fix: str) -> InputError:
        where = where() if callable(where) else where
        msg = f"{self.path}: {where}: {what}; {fix}" if where else f"{self.path}: {what}; {fix}"
        return InputError(" ".join(msg.split()))  # one line, whatever the pieces contain
