"""Output formats: pure functions from the model to text.

``--format`` (``--json`` is ``--format json``) picks an :class:`OutputFormat`. Each format
is one module, ``formats/<name>_format.py``, whose ``RENDERERS`` maps each document
:class:`~venvkeeper.formats.envelope.Kind` it renders to a function
``(value, term, **options) -> str | Iterable[str]``: *value* is the command's result,
*term* the :class:`~venvkeeper.formats.terminal.Terminal` of stdout, *options* the
command's display options (``only_problems``...), which a format may ignore. The renderers
import their modules when called: a command loads only the one it prints with.

Adding a format is that one module and one member here (a test checks that every format
renders every kind a command prints).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:
    from venvkeeper.formats.envelope import Kind
    from venvkeeper.formats.terminal import Terminal

#: A format's renderer of one kind: ``(value, term, **options)`` to the text, whole or in
#: pieces (a large scan's JSON is written a venv at a time).
Renderer = Callable[..., Union[str, Iterator[str]]]


class OutputFormat(enum.Enum):
    """The formats of ``--format``; each value names its module ``formats/<value>_format.py``."""

    TABLE = "table"
    JSON = "json"

    @property
    def renderers(self) -> Mapping[Kind, Renderer]:
        from importlib import import_module

        table: Mapping[Kind, Renderer] = import_module(
            f"venvkeeper.formats.{self.value}_format"
        ).RENDERERS
        return table


#: What a command prints when it is not told.
DEFAULT = OutputFormat.TABLE


def chunks(
    fmt: OutputFormat, kind: Kind, value: Any, term: Terminal, **options: Any
) -> Iterator[str]:
    """*value* (a command's result of *kind*) in *fmt*, in pieces."""
    try:
        renderer = fmt.renderers[kind]
    except KeyError:
        from venvkeeper.errors import UsageError

        raise UsageError(f"--format {fmt.value} cannot show {kind.value}") from None
    out = renderer(value, term, **options)
    if isinstance(out, str):
        yield out
    else:
        yield from out


def render(fmt: OutputFormat, kind: Kind, value: Any, term: Terminal, **options: Any) -> str:
    """*value* in *fmt*, whole (see :func:`chunks`)."""
    return "".join(chunks(fmt, kind, value, term, **options))
