"""What every JSON document venvkeeper writes shares: the schema version and one encoder
(:func:`venvkeeper.textutil.to_json`: valid UTF-8, control characters escaped)."""

from __future__ import annotations

from typing import Any, Optional

from venvkeeper.textutil import to_json

SCHEMA_VERSION = 1


def dumps(doc: Any, indent: Optional[int] = 2) -> str:
    """The JSON text of *doc*, every string (keys too) under the one escaping rule, with a
    final newline. ``indent=None`` gives one line (the fast C encoder)."""
    return to_json(doc, indent) + "\n"
