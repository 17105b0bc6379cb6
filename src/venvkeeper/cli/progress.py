"""The scan's progress line on stderr, as the terminal rule allows it."""

from __future__ import annotations

import time
from typing import Callable, Optional, TextIO

from venvkeeper.formats.terminal import Terminal
from venvkeeper.textutil import noun

#: The progress lines on screen now: :func:`clear_progress` takes them away.
_shown: list[ProgressLine] = []


class ProgressLine:
    """The scan's progress on *stream* (stderr). A terminal that can (*term*'s ``live``)
    gets one line redrawn in place (``\\r``, ``ESC[K``); a dumb terminal (*tty* but not
    live) one plain line, once, when the scan takes a while; anything else nothing. Used
    as a context manager, it takes its line away when the scan ends however it ends (an
    error, Ctrl-C)."""

    def __init__(self, stream: TextIO, term: Terminal, tty: bool, enabled: bool = True) -> None:
        self.stream = stream
        self.live = enabled and term.live
        self.dumb = enabled and not self.live and tty
        self.started = time.monotonic()
        self.drawn = False
        self.told = False

    def __call__(self, dirs: int, venvs: int) -> None:
        elapsed = time.monotonic() - self.started
        if self.dumb:
            if not self.told and elapsed >= 1:
                self.told = True
                self.stream.write("venvkeeper: scanning...\n")
                self.stream.flush()
            return
        if not self.live:
            return
        # The walk may run in another process: then only venvs are counted as they come.
        walked = f"{dirs:,} {noun(dirs, 'directory', 'directories')}, " if dirs else ""
        judged = f"{venvs:,} {noun(venvs, 'venv')} judged"
        self.stream.write(f"\r\x1b[Kscanning: {walked}{judged} ({elapsed:.0f}s)")
        self.stream.flush()
        if not self.drawn:
            self.drawn = True
            _shown.append(self)

    def clear(self) -> None:
        if self.drawn:
            self.drawn = False
            if self in _shown:
                _shown.remove(self)
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):  # the terminal went away: nothing to clear
                pass

    def __enter__(self) -> Optional[Callable[[int, int], None]]:
        return self if (self.live or self.dumb) else None

    def __exit__(self, *exc: object) -> None:
        self.clear()


def progress_line(stream: TextIO, enabled: bool = True) -> ProgressLine:
    """The progress line of *stream* as this process's environment allows it:
    ``with progress_line(err) as progress: scan(..., progress=progress)`` (commands use
    :meth:`venvkeeper.cli.context.Context.progress`, which decided once)."""
    from venvkeeper.cli.context import terminal_of

    return ProgressLine(stream, terminal_of(stream), stream.isatty(), enabled)


def clear_progress() -> None:
    """Take away any progress line still on screen (main's Ctrl-C and error paths)."""
    for shown in list(_shown):
        shown.clear()
