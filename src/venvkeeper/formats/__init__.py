"""Output formats: each a pure function from a report to text, chosen through one enum."""

from __future__ import annotations

import enum

from venvkeeper.formats import json as json_format
from venvkeeper.formats import table
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
    if fmt is OutputFormat.TABLE:
        return table.render(report, color=color, only_problems=only_problems, width=width)
    if fmt is OutputFormat.JSON:
        return json_format.render(report)
    raise AssertionError(f"unhandled format {fmt}")  # pragma: no cover
