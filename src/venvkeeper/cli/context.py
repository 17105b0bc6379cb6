"""The context of one command: built once by :func:`venvkeeper.cli.main.main` and passed to
the command's function, which reads it and never changes it.

It holds the streams (stdout wrapped in :class:`Output`), what each allows (a
:class:`~venvkeeper.formats.terminal.Terminal`: width, colour, live progress), the global
options, and the configuration, read the first time a command asks for it (a command that
needs none, such as ``inventory``, never reads the files). Nothing of the library is
imported here: start-up stays small (tests/test_startup.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, TextIO

from venvkeeper.formats.terminal import Terminal, decide
from venvkeeper.textutil import escape_value

if TYPE_CHECKING:
    from venvkeeper.cli.progress import ProgressLine
    from venvkeeper.config import Config


def terminal_of(stream: TextIO, environ: Mapping[str, str] = os.environ) -> Terminal:
    """What *stream* allows: the rule of :func:`~venvkeeper.formats.terminal.decide` on
    this process's environment and the stream's own size."""
    tty = stream.isatty()
    size: Optional[int] = None
    if tty:
        try:
            size = os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError):
            size = None
    return decide(tty, environ, size)


class Context:
    """What every command gets (see the module). Frozen: setting an attribute raises."""

    __slots__ = ("_config", "config_file", "debug", "err", "err_term", "err_tty", "out", "term")

    out: TextIO  # stdout (an :class:`Output`: a reader gone is not an error)
    err: TextIO
    term: Terminal  # what stdout allows
    err_term: Terminal  # what stderr allows (the progress line)
    err_tty: bool
    config_file: Optional[str]  # --config
    debug: bool  # --debug: an internal error's traceback is printed too
    _config: list[Config]  # the configuration, once read

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        config_file: Optional[str] = None,
        debug: bool = False,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        init = object.__setattr__
        init(self, "out", out)
        init(self, "err", err)
        init(self, "term", terminal_of(out, environ))
        init(self, "err_term", terminal_of(err, environ))
        init(self, "err_tty", err.isatty())
        init(self, "config_file", config_file)
        init(self, "debug", debug)
        init(self, "_config", [])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the context is frozen: {name} cannot be set")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the context is frozen: {name} cannot be deleted")

    @property
    def config(self) -> Config:
        """The configuration (``--config``, else the system's then the user's file), read
        once; its warnings (a system file this user may not read) go to stderr then."""
        cell: list[Config] = self._config
        if not cell:
            from venvkeeper.config import load_config

            cell.append(load_config(self.config_file))
            for warning in cell[0].warnings:
                self.warn(warning)
        return cell[0]

    def warn(self, message: str) -> None:
        """``venvkeeper: warning: MESSAGE`` on stderr, escaped."""
        self.err.write(f"venvkeeper: warning: {escape_value(message)}\n")

    def progress(self, enabled: bool = True) -> ProgressLine:
        """The scan's progress line on stderr, as stderr allows (none when it is not a
        terminal): ``with ctx.progress() as progress: scan(..., progress=progress)``."""
        from venvkeeper.cli.progress import ProgressLine

        return ProgressLine(self.err, self.err_term, self.err_tty, enabled)


class Output:
    """The commands' stdout. Once its reader has gone (``| head``: a broken pipe) the rest
    is dropped, so that the command runs to its end and exits with its verdict's code;
    the interpreter's last flush at exit goes to /dev/null instead of failing."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def _reader_gone(self) -> None:
        self.gone = True
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
            return
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
