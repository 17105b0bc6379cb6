"""Terminal output that reads: plurals, the width and colour decisions, the table layout at
80 columns, the progress line, and the table in a real terminal (tmux)."""

from __future__ import annotations

from venvkeeper.textutil import noun, plural


def test_plural_is_one_rule() -> None:
    assert plural(1, "venv") == "1 venv"
    assert plural(0, "venv") == "0 venvs"
    assert plural(2, "venv") == "2 venvs"
    assert plural(1, "process", "processes") == "1 process"
    assert plural(3, "process", "processes") == "3 processes"
    assert noun(1, "needs", "need") == "needs" and noun(2, "needs", "need") == "need"
