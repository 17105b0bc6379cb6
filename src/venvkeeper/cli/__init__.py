"""The command line: one small module per command family, over the library.

Each family module (:mod:`.scan`, :mod:`.predict`, :mod:`.repair`, :mod:`.restarts`,
:mod:`.inventory`, :mod:`.apt`) has ``add(sub)``, which adds its commands to the parser,
and one function per command, ``func(args, ctx) -> int``, that calls the library, prints
its result with :func:`._common.emit` (``--format``) and returns the exit code. They import
the library when the command runs, so that a command loads only what it uses.
:mod:`.context` is the frozen context :func:`main` builds once (streams, terminal facts,
configuration); :mod:`._common` the shared options, the exit codes and ``emit``;
:mod:`.progress` the progress line; :mod:`.crash` what an internal error leaves;
:mod:`.main` the parser and :func:`main`. This is the only package that prints or exits.
"""

from __future__ import annotations

from venvkeeper.cli._common import ExitCode, exit_code_for
from venvkeeper.cli.main import build_parser, main

__all__ = ["ExitCode", "build_parser", "exit_code_for", "main"]
