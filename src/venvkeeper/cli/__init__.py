"""The command line: one small module per command family, over the library.

Each family module (:mod:`.scan`, :mod:`.predict`, :mod:`.repair`, :mod:`.restarts`,
:mod:`.inventory`, :mod:`.apt`) has ``add(sub)``, which adds its commands to the parser,
and one function per command that parses nothing more, calls the library, renders the
result with :mod:`venvkeeper.formats` and returns the exit code. They import the library
when the command runs, so that a command loads only what it uses. :mod:`._common` holds
the shared options and the exit codes; :mod:`.main` the parser and :func:`main`. This is
the only package that prints or exits.
"""

from __future__ import annotations

from venvkeeper.cli._common import ExitCode, exit_code_for
from venvkeeper.cli.main import build_parser, main

__all__ = ["ExitCode", "build_parser", "exit_code_for", "main"]
