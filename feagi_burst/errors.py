"""Errors a user can fix: the CLI prints their one-line message and exits with code 2."""
from __future__ import annotations


class InputError(Exception):
    """Bad user input: a file, a genome, a config or a stimulus that cannot be used as given.

    The message is one line saying what is wrong, where, and how to fix it.
    """
