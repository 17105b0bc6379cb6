"""The top-level parser and :func:`main`: the one place an error becomes its message and exit
code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional, TextIO, cast

from venvkeeper import __version__
from venvkeeper.cli import apt, consumers, inventory, predict, repair, restarts, scan
from venvkeeper.cli._common import ExitCode, ParseError, Parser
from venvkeeper.cli.context import Context, Output
from venvkeeper.cli.progress import clear_progress
from venvkeeper.errors import failure_of
from venvkeeper.textutil import escape_value

#: The command families, in the order of --help: each module's add(sub) adds its commands.
FAMILIES = (scan, consumers, predict, repair, restarts, inventory, apt)


class _Inert:
    """What building another command's parser gets while one command runs: it takes every
    call and builds nothing."""

    def __getattr__(self, name: str) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        pass


class _Only:
    """The subcommands action, adding only the parser of the command *only*."""

    def __init__(self, sub: Any, only: str) -> None:
        self.sub = sub
        self.only = only
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name != self.only:
            return _Inert()
        self.found = True
        return self.sub.add_parser(name, **kwargs)


def command_of(words: Sequence[str]) -> Optional[str]:
    """The command word of a command line (after the global options), or None."""
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w == "--config":
            skip = True
        elif w == "--" or not w.startswith("-"):
            return None if w == "--" else w
    return None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole parser; with *only*, a parser of that one command, enough to run it
    (building every command's options costs more than a short command's whole work:
    argparse makes a parser and help formatters for each). A word that names no command
    gets the whole parser, for its error message and the list of commands."""
    parser = Parser(
        prog="venvkeeper",
        description="Find every Python virtual environment on this host and tell which ones"
        " a Python upgrade broke, by reading files only.",
    )
    parser.add_argument("--version", action="version", version=f"venvkeeper {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read only this configuration file (default: /etc/venvkeeper/config.toml, then"
        " $XDG_CONFIG_HOME/venvkeeper/config.toml; also $VENVKEEPER_CONFIG)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an internal error, also print its traceback (it is always saved in the"
        " state directory: /var/lib/venvkeeper for root, else $XDG_STATE_HOME/venvkeeper)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    target = sub if only is None else _Only(sub, only)
    for family in FAMILIES:
        family.add(cast(Any, target))
    if isinstance(target, _Only) and not target.found:
        return build_parser()
    return parser


def main(
    argv: Optional[list[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None
) -> int:
    """Run one command: the only place that turns an error into its message and exit code
    (:func:`failure_of`); ``check`` prints its failure as one UNKNOWN line on stdout."""
    stdout = Output(out or sys.stdout)
    out = cast(TextIO, stdout)
    err = err or sys.stderr
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=command_of(words))
    try:
        try:
            args = parser.parse_args(argv)
        finally:
            if sys.stdout is stdout.stream:  # --help and --version print to sys.stdout
                stdout.flush()
    except ParseError as e:
        if command_of(words) == "check":  # a monitoring plugin answers on stdout, in one line
            from venvkeeper.formats import nagios

            out.write(nagios.render_unknown(f"usage error: {e.message}"))
        e.parser.print_usage(err)
        # argparse quotes most values with repr(), not "unrecognized arguments"
        err.write(f"{e.parser.prog}: error: {escape_value(e.message)}\n")
        stdout.flush()
        return int(ExitCode.ERROR)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else int(ExitCode.ERROR)
    except BrokenPipeError:  # --help | head
        stdout._reader_gone()
        return int(ExitCode.OK)
    if not getattr(args, "func", None):  # a usage error: the usage goes to stderr
        parser.print_usage(err)
        err.write(f"{parser.prog}: error: give a COMMAND (venvkeeper --help lists them)\n")
        return int(ExitCode.ERROR)
    ctx = Context(out, err, config_file=args.config, debug=args.debug)
    try:
        code = int(args.func(args, ctx))
    except KeyboardInterrupt:
        clear_progress()
        err.write("venvkeeper: interrupted\n")
        return 130
    except Exception as e:
        clear_progress()
        failure = failure_of(e)
        if failure.internal:
            _internal(e, words, ctx, check=args.command == "check")
        elif args.command == "check":
            from venvkeeper.formats import nagios

            out.write(nagios.render_unknown("; ".join(failure.lines)))
        else:
            for line in failure.lines:
                err.write(f"venvkeeper: error: {escape_value(line)}\n")
        stdout.flush()
        if failure.internal and os.environ.get("VENVKEEPER_DEBUG"):
            raise
        return failure.code
    stdout.flush()
    return code


def _internal(e: Exception, words: Sequence[str], ctx: Context, check: bool) -> None:
    """An internal error: its traceback saved in the state directory (and printed with
    --debug), one line that names the file (``check``: the plugin's UNKNOWN line)."""
    from venvkeeper.cli.crash import internal_error_line, save_traceback, traceback_text

    saved, why_not = save_traceback(e, words)
    line = internal_error_line(failure_of(e).lines[0], saved, why_not, brief=check)
    if check:  # a monitoring plugin answers on stdout, in one line
        from venvkeeper.formats import nagios

        ctx.out.write(nagios.render_unknown(line))
    else:
        ctx.err.write(f"venvkeeper: {escape_value(line)}\n")
    if ctx.debug:
        ctx.err.write(traceback_text(e, words))
