"""The one envelope of every JSON document venvkeeper writes, its schema version, its
published JSON Schemas and its one encoder (:func:`venvkeeper.textutil.to_json`: valid
UTF-8, control characters escaped).

Every document is ``{"schema_version": N, "kind": KIND, "tool": {"name": "venvkeeper",
"version": V}, ...payload}``: a consumer reads ``kind`` to know what it holds and
validates it against :func:`schema` of that kind.

The compatibility rule: :data:`SCHEMA_VERSION` is raised when a field of any kind is
removed, renamed, changes its type, or changes its meaning (an enum value removed or
renamed is one). Adding a field, a kind or an enum value does not raise it: consumers
ignore what they do not know (the schemas allow unknown top-level fields)."""

from __future__ import annotations

import enum
import json
from typing import Any, Optional

from venvkeeper import __version__
from venvkeeper.textutil import to_json

SCHEMA_VERSION = 2

#: Where the schemas are published: ``{SCHEMA_BASE}/{kind}-{SCHEMA_VERSION}.json``, each a
#: copy of ``venvkeeper/schemas/{kind}.schema.json`` of the package.
SCHEMA_BASE = "https://venvkeeper.example/schemas"

#: The fields of the envelope itself: a payload may not hold them.
ENVELOPE_FIELDS = ("schema_version", "kind", "tool")


class Kind(enum.Enum):
    """What a JSON document holds: one per command (``rollback --list`` has its own)."""

    SCAN = "scan"
    SHOW = "show"
    CODES = "codes"
    PREDICT = "predict"
    PLAN = "plan"
    HOST_PROFILE = "host-profile"
    WHEELHOUSE = "wheelhouse"
    REPAIR = "repair"
    ROLLBACK = "rollback"
    ROLLBACK_LIST = "rollback-list"
    PRUNE_BACKUPS = "prune-backups"
    RESTARTS = "restarts"
    INVENTORY = "inventory"
    CHANGES = "changes"
    HISTORY = "history"
    MATRIX = "matrix"
    CONSUMERS = "consumers"


def envelope(kind: Kind, payload: dict[str, Any]) -> dict[str, Any]:
    """The document of *kind*: the envelope's fields first, then *payload*'s."""
    clash = [k for k in ENVELOPE_FIELDS if k in payload]
    if clash:
        raise ValueError(f"a {kind.value} payload may not hold {', '.join(clash)}")
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind.value,
        "tool": {"name": "venvkeeper", "version": __version__},
        **payload,
    }


def dumps(doc: Any, indent: Optional[int] = 2) -> str:
    """The JSON text of *doc*, every string (keys too) under the one escaping rule, with a
    final newline. ``indent=None`` gives one line (the fast C encoder)."""
    return to_json(doc, indent) + "\n"


def render(kind: Kind, payload: dict[str, Any]) -> str:
    """The JSON text of :func:`envelope` (*kind*, *payload*)."""
    return dumps(envelope(kind, payload))


def schema_id(kind: Kind) -> str:
    return f"{SCHEMA_BASE}/{kind.value}-{SCHEMA_VERSION}.json"


def schema(kind: Kind | str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the documents of *kind*, as shipped in the
    package (``venvkeeper/schemas/KIND.schema.json``)."""
    from importlib.resources import files

    name = Kind(kind).value
    text = (
        files("venvkeeper").joinpath("schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    )
    doc: dict[str, Any] = json.loads(text)
    return doc
