"""The venv's own facts as plain JSON values, and back: what the inventory keeps of each venv
so that the next scan need not read an unchanged venv again.

The encoding is positional (each dataclass a list of its fields in order, enums by value,
tuples as lists) and derived from the model's own field definitions: a field added to
:class:`~venvkeeper.model.venv.VenvFacts` or its parts changes :data:`SIGNATURE`, and facts
kept under another signature are never decoded (the venv is read again). Decoding is the
hot path of an incremental scan, so each class gets its decoder built once, converting only
the fields that need it.

Decoding trusts its input to have been written by :func:`encode` under the same signature:
a value of another shape raises :class:`CodecError` (the caller reads the venv instead).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import typing
from typing import Any, Callable, Optional

from venvkeeper import __version__
from venvkeeper.model import venv as model
from venvkeeper.model.venv import VenvFacts

Decoder = Callable[[Any], Any]


class CodecError(ValueError):
    """Kept facts that cannot be decoded: of another signature, or damaged."""


def _is_dataclass(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


def _encoder(tp: Any) -> Optional[Callable[[Any], Any]]:
    """How to turn a value of type *tp* into JSON values (None: it already is one)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        enc = _encoder(inner[0]) if len(inner) == 1 else None
        if enc is None:
            return None
        return lambda v: None if v is None else enc(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _encoder(args[0])
            if item is None:
                return list
            return lambda v: [item(x) for x in v]
        return list
    if _is_dataclass(tp):
        return _dataclass_encoder(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.value
    return None


def _decoder(tp: Any) -> Optional[Decoder]:
    """How to turn JSON values back into a value of type *tp* (None: as they are)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        dec = _decoder(inner[0]) if len(inner) == 1 else None
        if dec is None:
            return None
        return lambda v: None if v is None else dec(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            if item is None:
                return tuple
            return lambda v: tuple([item(x) for x in v])
        return tuple
    if _is_dataclass(tp):
        return _dataclass_decoder(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = {m.value: m for m in tp}
        return members.__getitem__
    return None


_ENCODERS: dict[type, Callable[[Any], Any]] = {}
_DECODERS: dict[type, Decoder] = {}


def _dataclass_encoder(cls: type) -> Callable[[Any], Any]:
    found = _ENCODERS.get(cls)
    if found is not None:
        return found
    hints = _hints(cls)
    fields = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def enc(v: Any) -> list[Any]:
        return [getattr(v, n) if e is None else e(getattr(v, n)) for n, e in fields]

    _ENCODERS[cls] = enc
    return enc


def _dataclass_decoder(cls: type) -> Decoder:
    found = _DECODERS.get(cls)
    if found is not None:
        return found
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    converters = {i: d for i, n in enumerate(names) if (d := _decoder(hints[n])) is not None}
    width = len(names)
    # what the generated __init__ does, without a call per field: for dataclasses with an
    # instance dict and nothing run after __init__ (the model's frozen dataclasses); the
    # function is written out for the class (as dataclasses writes __init__), the hot path
    # of an incremental scan
    plain = "__slots__" not in vars(cls) and not hasattr(cls, "__post_init__")
    env: dict[str, Any] = {"cls": cls, "new": object.__new__, "CodecError": CodecError}
    parts = []
    for i in range(width):
        if i in converters:
            env[f"c{i}"] = converters[i]
            parts.append(f"c{i}(v[{i}])")
        else:
            parts.append(f"v[{i}]")
    if plain:
        fields = ", ".join(f"{n!r}: {p}" for n, p in zip(names, parts))
        body = f"    o = new(cls)\n    o.__dict__.update({{{fields}}})\n    return o\n"
    else:
        body = f"    return cls({', '.join(parts)})\n"
    code = (
        "def dec(v):\n"
        f"    if type(v) is not list or len(v) != {width}:\n"
        f"        raise CodecError({f'a {cls.__name__} of another shape'!r})\n" + body
    )
    exec(code, env)  # noqa: S102 - our own text, made from the model's field names
    dec: Decoder = env["dec"]
    _DECODERS[cls] = dec
    return dec


def _signature() -> str:
    """The shape of every class the encoding holds, and the version of venvkeeper whose
    inspection read the facts (a fix to inspection must not reuse what it read wrong)."""
    seen: dict[str, list[str]] = {}

    def visit(tp: Any) -> None:
        for a in typing.get_args(tp):
            visit(a)
        if _is_dataclass(tp) and tp.__name__ not in seen:
            hints = _hints(tp)
            seen[tp.__name__] = [f"{f.name}:{hints[f.name]}" for f in dataclasses.fields(tp)]
            for f in dataclasses.fields(tp):
                visit(hints[f.name])
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            seen[tp.__name__] = [str(m.value) for m in tp]

    visit(VenvFacts)
    text = json.dumps([__version__, sorted(seen.items())], sort_keys=True)
    return "facts-1-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def __getattr__(name: str) -> Any:
    # SIGNATURE is computed on first use: importing the codec stays cheap.
    if name == "SIGNATURE":
        value = _signature()
        globals()["SIGNATURE"] = value
        return value
    raise AttributeError(name)


def encode(facts: VenvFacts) -> str:
    """*facts* as JSON text (ASCII: names that are not UTF-8 survive as escapes)."""
    return json.dumps(_dataclass_encoder(VenvFacts)(facts), separators=(",", ":"))


def decode(text: str | bytes) -> VenvFacts:
    """The facts :func:`encode` wrote. Raises :class:`CodecError` for anything else."""
    try:
        value = json.loads(text)
        facts = _dataclass_decoder(VenvFacts)(value)
    except CodecError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as e:
        raise CodecError(f"damaged facts: {type(e).__name__}") from None
    if not isinstance(facts, VenvFacts):
        raise CodecError("not venv facts")
    return facts
