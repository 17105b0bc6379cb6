"""Output formats: each a pure function from a report to text, chosen through one enum."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from venvkeeper.model.report import Report


class OutputFormat(enum.Enum):
    TABLE = "table"
    JSON = "json"


def render(
    report: Report,
    fmt: OutputFormat,
    *,
    color: bool = False,
    only_problems: bool = False,
    width: int = 0,
) -> str:
    # imported here: a command that renders one format loads only that one
    if fmt is OutputFormat.TABLE:
        from venvkeeper.formats import table

        return table.render(report, color=color, only_problems=only_problems, width=width)
    if fmt is OutputFormat.JSON:
        from venvkeeper.formats import json as json_format

        return json_format.render(report)
    raise AssertionError(f"unhandled format {fmt}")  # pragma: no cover
