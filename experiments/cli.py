"""``gaaf train`` / ``gaaf reproduce`` / ``gaaf analyze`` subcommands (filled in by the harness)."""

from __future__ import annotations

import argparse


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the experiment subcommands to the ``gaaf`` parser.

    Each subcommand sets ``func`` (``args -> int`` exit status) via ``set_defaults``.
    """
